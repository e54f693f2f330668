// Package auth owns password handling and login: the stored password format
// (argon2id plus a SCRAM-SHA-256 verifier, see hash.go), verification with
// a bounded cache of recent successes, the delay after a failure, and the
// server side of the SASL mechanisms SCRAM-SHA-256, PLAIN and LOGIN that
// IMAP, POP3 and SMTP submission share.
//
// It looks accounts up through mailstore.Directory and knows nothing of any
// protocol's framing: front ends base64-decode and frame, auth decides.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// ErrAuthFailed is wrapped by every failed login, whatever the reason
// (unknown user, wrong password, malformed exchange): front ends answer
// all of them alike so that a client learns nothing about which it was.
var ErrAuthFailed = errors.New("authentication failed")

// ErrMalformed is wrapped (together with ErrAuthFailed) when a SASL
// message does not follow its mechanism's syntax.
var ErrMalformed = errors.New("malformed SASL message")

// ErrNoMechanism is returned by NewSASL for a mechanism auth does not offer.
var ErrNoMechanism = errors.New("unsupported SASL mechanism")

// Params are the cost and policy knobs.
type Params struct {
	// argon2id cost (RFC 9106 section 4).
	Time, MemoryKiB uint32
	Threads         uint8
	// FailDelay is waited after each failed attempt to slow guessing.
	FailDelay time.Duration
	// CacheSize bounds the number of accounts with a cached successful
	// verification (0: no cache); CacheTTL is how long one is trusted.
	CacheSize int
	CacheTTL  time.Duration
	// SCRAMIterations is the PBKDF2 iteration count of new SCRAM-SHA-256
	// verifiers; RFC 7677 section 4 asks for at least 4096.
	SCRAMIterations int
}

// DefaultParams are RFC 9106 section 4's second recommended option
// (t=3, 64 MiB) with two lanes, a one-second failure delay and a small
// cache.
func DefaultParams() Params {
	return Params{
		Time:            3,
		MemoryKiB:       64 * 1024,
		Threads:         2,
		FailDelay:       time.Second,
		CacheSize:       1024,
		CacheTTL:        10 * time.Minute,
		SCRAMIterations: 4096,
	}
}

// withDefaults fills zero cost fields so that a partly filled Params never
// produces an unusable hash.
func (p Params) withDefaults() Params {
	d := DefaultParams()
	if p.Time == 0 {
		p.Time = d.Time
	}
	if p.MemoryKiB == 0 {
		p.MemoryKiB = d.MemoryKiB
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	if p.SCRAMIterations == 0 {
		p.SCRAMIterations = d.SCRAMIterations
	}
	return p
}

// Authenticator verifies logins against a directory. Safe for concurrent
// use.
type Authenticator struct {
	dir   mailstore.Directory
	p     Params
	cache *cache
	// macKey keys the hashes of passwords in the cache and the fake SCRAM
	// salts of unknown users; it lives only in this process's memory.
	macKey []byte
	// hashSlots bounds concurrent argon2id computations: each takes
	// MemoryKiB of memory, and a burst of logins must not exhaust it.
	hashSlots chan struct{}
	// dummy is verified for unknown users so that their failure costs the
	// same time as a wrong password.
	dummy argonHash
	// newNonce makes SCRAM server nonces; tests replace it.
	newNonce func() string
	// hashes counts argon2id computations (cache effectiveness).
	hashes atomic.Int64
}

// New makes an Authenticator.
func New(dir mailstore.Directory, p Params) *Authenticator {
	p = p.withDefaults()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic("auth: crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	a := &Authenticator{
		dir:       dir,
		p:         p,
		cache:     newCache(p.CacheSize, p.CacheTTL),
		macKey:    key,
		hashSlots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
		newNonce:  randomNonce,
	}
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	a.dummy = argonHash{time: p.Time, memory: p.MemoryKiB, threads: p.Threads, salt: salt, key: make([]byte, argonKeyLen)}
	return a
}

// Stats reports counters for metrics: argon2id verifications done and
// accounts in the cache.
func (a *Authenticator) Stats() (hashes int64, cached int) {
	return a.hashes.Load(), a.cache.len()
}

// Mechanisms lists the SASL mechanisms offered, strongest first.
func (a *Authenticator) Mechanisms() []string {
	return []string{"SCRAM-SHA-256", "PLAIN", "LOGIN"}
}

// Invalidate drops the cached verification of an account (after a password
// change or deletion). The cache also compares the stored hash, so a
// changed password never matches a stale entry even without this call.
func (a *Authenticator) Invalidate(account string) {
	a.cache.remove(strings.ToLower(account))
}

// Authenticate checks a login (an account name or alias; case-insensitive).
// On failure it waits FailDelay (ctx-aware) and returns an error wrapping
// ErrAuthFailed.
func (a *Authenticator) Authenticate(ctx context.Context, username, password string) (mailstore.Account, error) {
	acct, err := a.verifyPassword(ctx, username, password)
	if err != nil {
		return mailstore.Account{}, a.fail(ctx, err)
	}
	return acct, nil
}

// verifyPassword does the work of Authenticate without the failure delay.
func (a *Authenticator) verifyPassword(ctx context.Context, username, password string) (mailstore.Account, error) {
	name := strings.ToLower(strings.TrimSpace(username))
	if name == "" || password == "" {
		return mailstore.Account{}, fmt.Errorf("%w: empty username or password", ErrAuthFailed)
	}
	acct, err := a.dir.ResolveAddress(ctx, name)
	if err != nil {
		if errors.Is(err, mailstore.ErrNoSuchAccount) || errors.Is(err, mailstore.ErrInvalidName) {
			// Spend the time a real verification takes so that
			// response timing does not reveal which accounts exist.
			if herr := a.argonVerify(ctx, a.dummy, password); herr != nil {
				return mailstore.Account{}, herr
			}
			return mailstore.Account{}, fmt.Errorf("%w: unknown user", ErrAuthFailed)
		}
		return mailstore.Account{}, fmt.Errorf("look up %q: %w", name, err)
	}
	mac := a.passwordMAC(acct.Name, password)
	if a.cache.hit(acct.Name, acct.PasswordHash, mac) {
		return acct, nil
	}
	h, _, err := parseStored(acct.PasswordHash)
	if err != nil {
		return mailstore.Account{}, fmt.Errorf("%w: account %s: %w", ErrAuthFailed, acct.Name, err)
	}
	ok, err := a.argonVerifyOK(ctx, h, password)
	if err != nil {
		return mailstore.Account{}, err
	}
	if !ok {
		return mailstore.Account{}, fmt.Errorf("%w: wrong password", ErrAuthFailed)
	}
	a.cache.put(acct.Name, acct.PasswordHash, mac)
	return acct, nil
}

// argonVerify runs a verification whose result is ignored (the dummy).
func (a *Authenticator) argonVerify(ctx context.Context, h argonHash, password string) error {
	_, err := a.argonVerifyOK(ctx, h, password)
	return err
}

func (a *Authenticator) argonVerifyOK(ctx context.Context, h argonHash, password string) (bool, error) {
	select {
	case a.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("%w: %w", ErrAuthFailed, ctx.Err())
	}
	defer func() { <-a.hashSlots }()
	a.hashes.Add(1)
	return h.verify(password), nil
}

// passwordMAC is the cache's fingerprint of a password: keyed, so a memory
// dump of the cache does not allow an offline dictionary attack without
// the process's key, and never the password itself.
func (a *Authenticator) passwordMAC(account, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, a.macKey)
	m.Write([]byte(account))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// fail waits FailDelay, or until ctx ends, and returns err (which wraps
// ErrAuthFailed, or is an internal error that must not read as a wrong
// password).
func (a *Authenticator) fail(ctx context.Context, err error) error {
	if a.p.FailDelay > 0 {
		t := time.NewTimer(a.p.FailDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return err
}

// stripDevice removes a POP3 device suffix: "user@domain#phone" logs in
// as user@domain (DESIGN.md section 4).
func stripDevice(username string) string {
	if i := strings.IndexByte(username, '#'); i >= 0 {
		return username[:i]
	}
	return username
}
