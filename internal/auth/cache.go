package auth

import (
	"container/list"
	"crypto/sha256"
	"crypto/subtle"
	"sync"
	"time"
)

// cache remembers recent successful password verifications, like
// Dovecot's auth cache, so that a client polling every minute (or a phone
// opening five IMAP connections at once) does not pay argon2id's cost each
// time. One entry per account; least recently used entries go first.
//
// An entry holds the account's stored hash string as it was when verified:
// a changed password hash (passwd from the CLI, another node) never
// matches a stale entry, even if Invalidate was not called.
type cache struct {
	size int
	ttl  time.Duration
	now  func() time.Time

	mu sync.Mutex
	// lru and byName are guarded by mu: front is most recently used.
	lru    *list.List
	byName map[string]*list.Element
}

type cacheEntry struct {
	account string
	stored  string
	mac     [sha256.Size]byte
	expires time.Time
}

func newCache(size int, ttl time.Duration) *cache {
	return &cache{size: size, ttl: ttl, now: time.Now, lru: list.New(), byName: make(map[string]*list.Element)}
}

func (c *cache) enabled() bool { return c.size > 0 && c.ttl > 0 }

// hit reports whether account has an unexpired entry for the same stored
// hash and the same password fingerprint.
func (c *cache) hit(account, stored string, mac [sha256.Size]byte) bool {
	if !c.enabled() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.byName[account]
	if el == nil {
		return false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) || e.stored != stored {
		c.lru.Remove(el)
		delete(c.byName, account)
		return false
	}
	if subtle.ConstantTimeCompare(e.mac[:], mac[:]) != 1 {
		return false
	}
	c.lru.MoveToFront(el)
	return true
}

func (c *cache) put(account, stored string, mac [sha256.Size]byte) {
	if !c.enabled() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &cacheEntry{account: account, stored: stored, mac: mac, expires: c.now().Add(c.ttl)}
	if el := c.byName[account]; el != nil {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.byName[account] = c.lru.PushFront(e)
	for c.lru.Len() > c.size {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.byName, last.Value.(*cacheEntry).account)
	}
}

func (c *cache) remove(account string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.byName[account]; el != nil {
		c.lru.Remove(el)
		delete(c.byName, account)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
