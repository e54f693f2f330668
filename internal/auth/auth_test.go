package auth

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// fixedDirectory is a directory of fixed accounts and aliases, enough for
// the lookups auth makes (ResolveAddress); every other Directory method
// panics through the nil embedded interface, so a test that strays beyond
// auth's contract fails loudly. The store's own directory behaviour is
// pinned by mailstore/storetest.
type fixedDirectory struct {
	mailstore.Directory
	mu       sync.Mutex
	accounts map[string]mailstore.Account
	aliases  map[string]string
	err      error // returned by every lookup when set (store down)
}

func (d *fixedDirectory) ResolveAddress(_ context.Context, addr string) (mailstore.Account, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return mailstore.Account{}, d.err
	}
	addr = strings.ToLower(addr)
	if to, ok := d.aliases[addr]; ok {
		addr = to
	}
	a, ok := d.accounts[addr]
	if !ok {
		return mailstore.Account{}, mailstore.ErrNoSuchAccount
	}
	return a, nil
}

func (d *fixedDirectory) setHash(name, hash string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.accounts[name]
	a.PasswordHash = hash
	d.accounts[name] = a
}

// testParams are cheap enough for tests but have every feature on.
func testParams() Params {
	return Params{Time: 1, MemoryKiB: 64, Threads: 1, FailDelay: 20 * time.Millisecond, CacheSize: 16, CacheTTL: time.Minute, SCRAMIterations: 4096}
}

func newTestAuth(t testing.TB, p Params, users map[string]string) (*Authenticator, *fixedDirectory) {
	t.Helper()
	d := &fixedDirectory{accounts: map[string]mailstore.Account{}, aliases: map[string]string{}}
	id := int64(1)
	for name, pw := range users {
		h, err := HashPassword(pw, p)
		if err != nil {
			t.Fatal(err)
		}
		_, dom, _ := strings.Cut(name, "@")
		d.accounts[name] = mailstore.Account{ID: id, Name: name, Domain: dom, PasswordHash: h}
		id++
	}
	return New(d, p), d
}

var storedRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43} \$scram-sha-256\$i=4096\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}\$[A-Za-z0-9+/]{43}$`)

func TestHashFormat(t *testing.T) {
	h, err := HashPassword("correct horse", testParams())
	if err != nil {
		t.Fatal(err)
	}
	if !storedRE.MatchString(h) {
		t.Fatalf("stored format: %q", h)
	}
	h2, _ := HashPassword("correct horse", testParams())
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	a, v, err := parseStored(h)
	if err != nil {
		t.Fatal(err)
	}
	if !a.verify("correct horse") || a.verify("correct horsE") || a.verify("") {
		t.Fatal("argon2id verify gives the wrong answer")
	}
	if v.iter != 4096 || !HasSCRAM(h) {
		t.Fatalf("scram verifier: %+v", v)
	}
	// Without the verifier the hash still parses (plaintext only).
	argonOnly, _, _ := strings.Cut(h, " ")
	if _, v, err := parseStored(argonOnly); err != nil || v.iter != 0 || HasSCRAM(argonOnly) {
		t.Fatalf("argon-only hash: %v %+v", err, v)
	}
	// Zero Params get the defaults rather than an unusable hash.
	if d := (Params{}).withDefaults(); d.Time != 3 || d.MemoryKiB != 65536 || d.Threads != 2 || d.SCRAMIterations != 4096 {
		t.Fatalf("withDefaults: %+v", d)
	}
}

func TestParseStoredRejects(t *testing.T) {
	good, _ := HashPassword("x", testParams())
	argon, scram, _ := strings.Cut(good, " ")
	bad := []string{
		"",
		"plain",
		"$2a$10$bcrypt",
		strings.Replace(argon, "v=19", "v=16", 1),
		strings.Replace(argon, "m=64", "m=99999999", 1),
		strings.Replace(argon, "t=1", "t=0", 1),
		strings.Replace(argon, "p=1", "p=1,x=2", 1),
		strings.Replace(argon, "$argon2id$", "$argon2i$", 1),
		argon + "$extra",
		argon + " garbage",
		argon + " " + strings.Replace(scram, "i=4096", "i=0", 1),
		argon + " " + strings.Replace(scram, "i=4096", "i=x", 1),
		argon + " " + scram[:len(scram)-4],
		argon + " " + scram + "$more",
	}
	for _, s := range bad {
		if _, _, err := parseStored(s); !errors.Is(err, ErrBadHash) {
			t.Errorf("parseStored(%q) = %v, want ErrBadHash", s, err)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	a, d := newTestAuth(t, testParams(), map[string]string{"alice@example.test": "s3cret pass"})
	d.aliases["postmaster@example.test"] = "alice@example.test"
	ctx := context.Background()
	for _, login := range []string{"alice@example.test", "ALICE@Example.Test", "postmaster@example.test"} {
		acct, err := a.Authenticate(ctx, login, "s3cret pass")
		if err != nil || acct.Name != "alice@example.test" {
			t.Fatalf("Authenticate(%q) = %+v, %v", login, acct, err)
		}
	}
	for _, c := range []struct{ user, pw string }{
		{"alice@example.test", "wrong"},
		{"alice@example.test", ""},
		{"alice@example.test", "s3cret pass "},
		{"bob@example.test", "s3cret pass"},
		{"", "s3cret pass"},
		{"alice@example.test#phone", "s3cret pass"}, // the POP3 server strips devices, not Authenticate
	} {
		start := time.Now()
		_, err := a.Authenticate(ctx, c.user, c.pw)
		if !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("Authenticate(%q, %q) = %v, want ErrAuthFailed", c.user, c.pw, err)
		}
		if el := time.Since(start); el < testParams().FailDelay {
			t.Fatalf("failure returned after %v, before the fail delay", el)
		}
	}
}

func TestAuthenticateStoreError(t *testing.T) {
	a, d := newTestAuth(t, testParams(), map[string]string{"alice@example.test": "pw"})
	d.err = errors.New("disk on fire")
	_, err := a.Authenticate(context.Background(), "alice@example.test", "pw")
	if err == nil || errors.Is(err, ErrAuthFailed) {
		t.Fatalf("store failure must not read as a wrong password: %v", err)
	}
}

func TestFailDelayHonoursContext(t *testing.T) {
	p := testParams()
	p.FailDelay = time.Hour
	a, _ := newTestAuth(t, p, map[string]string{"alice@example.test": "pw"})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := a.Authenticate(ctx, "alice@example.test", "bad")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Authenticate ignored the cancelled context during the fail delay")
	}
}

func TestCache(t *testing.T) {
	a, d := newTestAuth(t, testParams(), map[string]string{"alice@example.test": "one", "bob@example.test": "two"})
	ctx := context.Background()
	login := func(user, pw string) error { _, err := a.Authenticate(ctx, user, pw); return err }
	if err := login("alice@example.test", "one"); err != nil {
		t.Fatal(err)
	}
	h0, n := a.Stats()
	if n != 1 {
		t.Fatalf("cache holds %d entries, want 1", n)
	}
	if err := login("alice@example.test", "one"); err != nil {
		t.Fatal(err)
	}
	if h1, _ := a.Stats(); h1 != h0 {
		t.Fatalf("second login ran argon2id again (%d -> %d): cache missed", h0, h1)
	}
	// A wrong password is not a cache hit and is verified for real.
	if err := login("alice@example.test", "One"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("wrong password after cached success: %v", err)
	}
	// The password hash changes behind auth's back (CLI on another
	// process): the old password must stop working at once.
	h, _ := HashPassword("new", testParams())
	d.setHash("alice@example.test", h)
	if err := login("alice@example.test", "one"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("stale cache entry accepted the old password: %v", err)
	}
	if err := login("alice@example.test", "new"); err != nil {
		t.Fatal(err)
	}
	a.Invalidate("Alice@Example.test")
	if _, n := a.Stats(); n != 0 {
		t.Fatalf("Invalidate left %d entries", n)
	}
}

func TestCacheBoundAndTTL(t *testing.T) {
	c := newCache(2, time.Minute)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	var m1, m2 [32]byte
	m2[0] = 1
	c.put("a", "h", m1)
	c.put("b", "h", m1)
	if !c.hit("a", "h", m1) { // a is now most recently used
		t.Fatal("miss on a")
	}
	c.put("c", "h", m1) // evicts b, the least recently used
	if c.len() != 2 || c.hit("b", "h", m1) || !c.hit("a", "h", m1) || !c.hit("c", "h", m1) {
		t.Fatalf("LRU eviction wrong: len %d", c.len())
	}
	if c.hit("a", "h", m2) || c.hit("a", "other", m1) {
		t.Fatal("hit with a different password or stored hash")
	}
	now = now.Add(2 * time.Minute)
	if c.hit("c", "h", m1) {
		t.Fatal("expired entry hit")
	}
	off := newCache(0, time.Minute)
	off.put("a", "h", m1)
	if off.hit("a", "h", m1) {
		t.Fatal("disabled cache hit")
	}
}

func TestMechanisms(t *testing.T) {
	a, _ := newTestAuth(t, testParams(), nil)
	for _, m := range a.Mechanisms() {
		if _, err := a.NewSASL(context.Background(), strings.ToLower(m)); err != nil {
			t.Fatalf("offered mechanism %s: %v", m, err)
		}
	}
	if _, err := a.NewSASL(context.Background(), "CRAM-MD5"); !errors.Is(err, ErrNoMechanism) {
		t.Fatalf("CRAM-MD5: %v", err)
	}
}
