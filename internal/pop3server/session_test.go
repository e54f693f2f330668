package pop3server

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// observer watches an account the way an IMAP session does: woken by the
// notifier, it reads the change feed.
type observer struct {
	t     *testing.T
	e     *env
	a     mailstore.Account
	w     *mailstore.Watcher
	since mailstore.ModSeq
}

func (e *env) observe(t *testing.T, a mailstore.Account) *observer {
	t.Helper()
	ms, err := e.store.HighestModSeq(context.Background(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	w := e.store.Watch(a.ID)
	t.Cleanup(w.Close)
	return &observer{t: t, e: e, a: a, w: w, since: ms}
}

// quiet asserts the feed is empty. A wake-up alone proves nothing (the
// store may deliver one for the commit that seeded the account after
// Append returned); the feed is the truth.
func (o *observer) quiet() {
	o.t.Helper()
	if ch := o.changes(); len(ch) != 0 {
		o.t.Fatalf("changes before QUIT: %+v", ch)
	}
}

// woken waits until the notifier woke the observer and the feed holds
// changes, as an IMAP session in IDLE would see them.
func (o *observer) woken() []mailstore.Change {
	o.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-o.w.C:
		case <-deadline:
			o.t.Fatalf("no wake-up with changes after QUIT")
		}
		if ch := o.changes(); len(ch) > 0 {
			return ch
		}
	}
}

func (o *observer) changes() []mailstore.Change {
	o.t.Helper()
	ch, err := o.e.store.Changes(context.Background(), o.a.ID, o.since, 0)
	if err != nil {
		o.t.Fatal(err)
	}
	return ch
}

func TestDeleteModes(t *testing.T) {
	for _, mode := range []string{DeleteExpunge, DeleteHide, DeleteTrash} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, withConfig(func(c *Config) { c.Delete = mode }))
			a := e.account("alice@example.org")
			e.deliver(a, msg("one", "1\r\n"), msg("two", "2\r\n"), msg("three", "3\r\n"))
			inbox := e.mailbox(a, "INBOX")
			obs := e.observe(t, a)

			c := e.dial()
			c.login(a.Name)
			c.ok("DELE 1")
			c.ok("DELE 3")
			// RFC 1939 section 6: nothing changes before UPDATE.
			obs.quiet()
			if got := e.uids(a, "INBOX"); len(got) != 3 {
				t.Fatalf("INBOX before QUIT: %v", got)
			}
			if r := c.cmd("QUIT"); r != "+OK pop.example.test signing off (2 messages deleted)" {
				t.Fatalf("QUIT: %s", r)
			}
			c.expectClosed()

			switch mode {
			case DeleteExpunge, DeleteTrash:
				ch := obs.woken()
				var gone []mailstore.UID
				var created int
				for _, c := range ch {
					switch {
					case c.Kind == mailstore.ChangeExpunge && c.MailboxID == inbox.ID:
						gone = append(gone, c.UID)
					case c.Kind == mailstore.ChangeMessage && c.Created && c.MailboxID != inbox.ID:
						created++
					}
				}
				slices.Sort(gone)
				if !slices.Equal(gone, []mailstore.UID{1, 3}) {
					t.Errorf("expunges in the feed: %v (%+v)", gone, ch)
				}
				if got := e.uids(a, "INBOX"); !slices.Equal(got, []mailstore.UID{2}) {
					t.Errorf("INBOX: %v", got)
				}
				trash := e.uids(a, "Trash")
				if mode == DeleteTrash {
					if len(trash) != 2 || created != 2 {
						t.Errorf("Trash has %v, feed created %d", trash, created)
					}
				} else {
					if len(trash) != 0 {
						t.Errorf("Trash has %v", trash)
					}
					del, err := e.store.ListDeleted(context.Background(), a.ID)
					if err != nil {
						t.Fatal(err)
					}
					if len(del) != 2 {
						t.Errorf("recoverable deleted messages: %d, want 2", len(del))
					}
				}
			case DeleteHide:
				// Hidden from POP3, untouched for IMAP: no change at all
				// in the IMAP-visible feed.
				if ch := obs.changes(); len(ch) != 0 {
					t.Errorf("hide changed IMAP-visible state: %+v", ch)
				}
				if got := e.uids(a, "INBOX"); len(got) != 3 {
					t.Errorf("INBOX: %v", got)
				}
			}

			// Whatever the mode, POP3 no longer shows the messages.
			c = e.dial()
			c.login(a.Name)
			if r := c.cmd("UIDL"); !strings.HasPrefix(r, "+OK") {
				t.Fatal(r)
			}
			if got := c.multi(); got != fmt.Sprintf("1 %d.2\r\n", inbox.UIDValidity) {
				t.Errorf("UIDL after QUIT: %q", got)
			}
			c.ok("QUIT")
		})
	}
}

func TestTrashRecreated(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.Delete = DeleteTrash }))
	a := e.account("alice@example.org")
	e.deliver(a, msg("one", "1\r\n"))
	if err := e.store.DeleteMailbox(context.Background(), a.ID, "Trash"); err != nil {
		t.Fatal(err)
	}
	c := e.dial()
	c.login(a.Name)
	c.ok("DELE 1")
	c.ok("QUIT")
	if got := e.uids(a, "Trash"); len(got) != 1 {
		t.Fatalf("Trash after QUIT: %v", got)
	}
	mb, err := e.store.MailboxBySpecialUse(context.Background(), a.ID, mailstore.SpecialTrash)
	if err != nil || mb.Name != "Trash" {
		t.Fatalf("\\Trash mailbox: %+v, %v", mb, err)
	}
}

func TestDeviceViews(t *testing.T) {
	// expunge mode: devices hide all the same.
	e := newEnv(t)
	a := e.account("alice@example.org")
	e.deliver(a, msg("one", "1\r\n"), msg("two", "2\r\n"), msg("three", "3\r\n"))
	obs := e.observe(t, a)

	// The phone takes everything and deletes it.
	phone := e.dial()
	phone.login(a.Name + "#phone")
	if r := phone.ok("STAT"); !strings.HasPrefix(r, "+OK 3 ") {
		t.Fatalf("phone STAT: %s", r)
	}
	for i := 1; i <= 3; i++ {
		phone.ok("RETR " + strconv.Itoa(i))
		phone.multi()
		phone.ok("DELE " + strconv.Itoa(i))
	}
	// The laptop logs in meanwhile: another view, another lock.
	laptop := e.dial()
	laptop.login(a.Name + "#Laptop")
	phone.ok("QUIT")
	phone.expectClosed()

	if r := laptop.ok("STAT"); !strings.HasPrefix(r, "+OK 3 ") {
		t.Fatalf("laptop STAT: %s", r)
	}
	laptop.ok("QUIT")

	// IMAP's INBOX is untouched and saw no change.
	if got := e.uids(a, "INBOX"); !slices.Equal(got, []mailstore.UID{1, 2, 3}) {
		t.Fatalf("INBOX: %v", got)
	}
	if ch := obs.changes(); len(ch) != 0 {
		t.Fatalf("device DELE changed IMAP-visible state: %+v", ch)
	}

	// New mail reaches both devices, once each.
	e.deliver(a, msg("four", "4\r\n"))
	phone = e.dial()
	phone.login(a.Name + "#PHONE")
	if r := phone.ok("STAT"); !strings.HasPrefix(r, "+OK 1 ") {
		t.Fatalf("phone STAT after new mail: %s", r)
	}
	phone.ok("UIDL 1")
	phone.ok("QUIT")
	laptop = e.dial()
	laptop.login(a.Name + "#laptop")
	if r := laptop.ok("STAT"); !strings.HasPrefix(r, "+OK 4 ") {
		t.Fatalf("laptop STAT after new mail: %s", r)
	}
	laptop.ok("QUIT")

	// The account's own view is a third one.
	own := e.dial()
	own.login(a.Name)
	if r := own.ok("STAT"); !strings.HasPrefix(r, "+OK 4 ") {
		t.Fatalf("own view STAT: %s", r)
	}
	own.ok("QUIT")

	// A bad device name fails the login.
	bad := e.dial()
	bad.ok("USER " + a.Name + "#my.phone")
	if r := bad.cmd("PASS " + testPassword); r != "-ERR [AUTH] Authentication failed" {
		t.Fatalf("bad device: %s", r)
	}
}

func TestInUse(t *testing.T) {
	e := newEnv(t)
	a := e.account("alice@example.org")
	e.deliver(a, msg("one", "1\r\n"))

	first := e.dial()
	first.login(a.Name)
	second := e.dial()
	second.ok("USER " + a.Name)
	if r := second.cmd("PASS " + testPassword); !strings.HasPrefix(r, "-ERR [IN-USE] ") {
		t.Fatalf("second login: %s", r)
	}
	// A device view has a lock of its own.
	dev := e.dial()
	dev.login(a.Name + "#tablet")
	dev.ok("QUIT")

	// The first session drops without QUIT: no UPDATE, lock released.
	first.ok("DELE 1")
	first.c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		second.ok("USER " + a.Name)
		r := second.cmd("PASS " + testPassword)
		if strings.HasPrefix(r, "+OK") {
			break
		}
		if !strings.HasPrefix(r, "-ERR [IN-USE]") || time.Now().After(deadline) {
			t.Fatalf("login after the first session ended: %s", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := second.ok("STAT"); !strings.HasPrefix(r, "+OK 1 ") {
		t.Fatalf("STAT: %s (a dropped session must not delete)", r)
	}
	second.ok("QUIT")
}

func TestLoginDelay(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.LoginDelay = time.Hour }))
	a := e.account("alice@example.org")
	c := e.dial()
	c.send("CAPA")
	c.read()
	if caps := c.multi(); !strings.Contains(caps, "LOGIN-DELAY 3600\r\n") {
		t.Fatalf("CAPA: %q", caps)
	}
	c.login(a.Name)
	c.ok("QUIT")
	c = e.dial()
	c.ok("USER " + a.Name)
	if r := c.cmd("PASS " + testPassword); !strings.HasPrefix(r, "-ERR [LOGIN-DELAY] ") {
		t.Fatalf("second login within the delay: %s", r)
	}
	// The refused login released the maildrop lock; another view has its
	// own delay.
	c.login(a.Name + "#phone")
	c.ok("QUIT")
}

func TestCleartextRefused(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	e := newEnv(t, withConfig(func(c *Config) { c.TLS = serverTLS }))
	a := e.account("alice@example.org")
	e.deliver(a, msg("one", "1\r\n"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.serve(remoteListener{ln}, false)
	e.addr = ln.Addr().String()

	c := e.dial()
	c.send("CAPA")
	c.read()
	caps := c.multi()
	if strings.Contains(caps, "USER\r\n") || strings.Contains(caps, "SASL") || !strings.Contains(caps, "STLS\r\n") {
		t.Fatalf("CAPA without TLS from the network: %q", caps)
	}
	want := "-ERR [AUTH] Authentication requires TLS (use STLS) or a loopback connection"
	for _, cmd := range []string{"USER " + a.Name, "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+a.Name+"\x00"+testPassword))} {
		if r := c.cmd(cmd); r != want {
			t.Fatalf("%s: %s", cmd, r)
		}
	}
	// STLS with a command pipelined behind it in clear: the server must
	// not run it after the handshake.
	c.send("STLS\r\nCAPA")
	if r := c.read(); r != "+OK Begin TLS negotiation" {
		t.Fatalf("STLS: %s", r)
	}
	tc := tls.Client(c.c, clientTLS)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.c = tc
	c.r.Reset(tc)
	if r := c.cmd("NOOP"); r != "-ERR Command not valid in this state" {
		t.Fatalf("first answer after STLS: %q (injected command run?)", r)
	}
	c.send("CAPA")
	c.read()
	caps = c.multi()
	if !strings.Contains(caps, "USER\r\n") || !strings.Contains(caps, "SASL ") || strings.Contains(caps, "STLS") {
		t.Fatalf("CAPA after STLS: %q", caps)
	}
	if r := c.cmd("STLS"); r != "-ERR Command not valid in this state" && r != "-ERR TLS already active" {
		t.Fatalf("second STLS: %s", r)
	}
	c.login(a.Name)
	c.ok("QUIT")
}

func TestImplicitTLS(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	e := newEnv(t, withConfig(func(c *Config) { c.TLS = serverTLS }))
	a := e.account("alice@example.org")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.serve(remoteListener{ln}, true)
	tc, err := tls.Dial("tcp", ln.Addr().String(), clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	c := &client{t: t, c: tc}
	c.r = newReader(tc)
	if g := c.read(); g != "+OK pop.example.test Roost POP3 server ready" {
		t.Fatalf("greeting: %s", g)
	}
	c.send("CAPA")
	c.read()
	if caps := c.multi(); strings.Contains(caps, "STLS") || !strings.Contains(caps, "USER") {
		t.Fatalf("CAPA over implicit TLS: %q", caps)
	}
	c.login(a.Name)
	c.ok("QUIT")
}

func TestSCRAM(t *testing.T) {
	e := newEnv(t)
	a := e.account("alice@example.org")
	e.deliver(a, msg("one", "1\r\n"))
	for _, user := range []string{a.Name, a.Name + "#phone"} {
		c := e.dial()
		cnonce := "rOprNGfwEbeRWgbNEkqO"
		first := "n=" + user + ",r=" + cnonce
		r := c.cmd("AUTH SCRAM-SHA-256 " + base64.StdEncoding.EncodeToString([]byte("n,,"+first)))
		serverFirst := challenge(t, r)
		attrs := scramAttrs(serverFirst)
		salt, _ := base64.StdEncoding.DecodeString(attrs["s"])
		iter, _ := strconv.Atoi(attrs["i"])
		if !strings.HasPrefix(attrs["r"], cnonce) || iter < 4096 {
			t.Fatalf("server-first %q", serverFirst)
		}
		salted, err := pbkdf2.Key(sha256.New, testPassword, salt, iter, 32)
		if err != nil {
			t.Fatal(err)
		}
		clientKey := hmacSHA(salted, "Client Key")
		storedKey := sha256.Sum256(clientKey)
		final := "c=biws,r=" + attrs["r"]
		authMsg := first + "," + serverFirst + "," + final
		sig := hmacSHA(storedKey[:], authMsg)
		proof := make([]byte, len(sig))
		for i := range sig {
			proof[i] = clientKey[i] ^ sig[i]
		}
		r = c.cmd(base64.StdEncoding.EncodeToString([]byte(final + ",p=" + base64.StdEncoding.EncodeToString(proof))))
		serverFinal := challenge(t, r)
		wantSig := hmacSHA(hmacSHA(salted, "Server Key"), authMsg)
		if serverFinal != "v="+base64.StdEncoding.EncodeToString(wantSig) {
			t.Fatalf("server-final %q", serverFinal)
		}
		if r := c.cmd(""); r != "+OK Logged in, 1 message" {
			t.Fatalf("after SCRAM: %s", r)
		}
		c.ok("QUIT")
	}
}

func challenge(t *testing.T, line string) string {
	t.Helper()
	if !strings.HasPrefix(line, "+ ") {
		t.Fatalf("want a challenge, got %q", line)
	}
	b, err := base64.StdEncoding.DecodeString(line[2:])
	if err != nil {
		t.Fatalf("challenge %q: %v", line, err)
	}
	return string(b)
}

func scramAttrs(s string) map[string]string {
	m := make(map[string]string)
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func hmacSHA(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

func TestAutologout(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.IdleTimeout = 300 * time.Millisecond }))
	a := e.account("alice@example.org")
	e.deliver(a, msg("one", "1\r\n"))
	c := e.dial()
	c.login(a.Name)
	c.ok("DELE 1")
	// RFC 1939 section 3: the server closes without a response and
	// without UPDATE.
	c.expectClosed()
	if got := e.uids(a, "INBOX"); len(got) != 1 {
		t.Fatalf("INBOX after autologout: %v", got)
	}
	// The lock was released at once.
	c = e.dial()
	c.login(a.Name)
	c.ok("QUIT")
}

// TestLastReplyNotReset: a client pipelines more after QUIT. The
// server reads no further, yet the client must read QUIT's answer and
// then the end of the stream, not a reset that can destroy the answer
// (the unread input would make a plain close send one; linger).
func TestLastReplyNotReset(t *testing.T) {
	e := newEnv(t)
	a := e.account("alice@example.org")
	c := e.dial()
	c.login(a.Name)
	junk := strings.Repeat("NOOP\r\n", 32<<10)
	go func() { _, _ = io.WriteString(c.c, "QUIT\r\n"+junk) }()
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, err := io.ReadAll(c.r)
	if err != nil || !strings.HasPrefix(string(out), "+OK") || strings.Count(string(out), "\r\n") != 1 {
		t.Fatalf("after QUIT and more: %q, %v; want one +OK line and the end", out, err)
	}
}

func TestShutdown(t *testing.T) {
	e := newEnv(t)
	a := e.account("alice@example.org")
	e.deliver(a, msg("one", "1\r\n"))
	c := e.dial()
	c.login(a.Name)
	c.ok("DELE 1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if r := c.read(); r != "-ERR [SYS/TEMP] Server shutting down, try again later" {
		t.Fatalf("after Shutdown: %s", r)
	}
	c.expectClosed()
	if got := e.uids(a, "INBOX"); len(got) != 1 {
		t.Fatalf("INBOX after shutdown: %v", got)
	}
	if _, err := net.DialTimeout("tcp", e.addr, time.Second); err == nil {
		t.Fatalf("listener still accepts after Shutdown")
	}
}

// sizeStore is the real store seen through a store that counts blob
// reads and, with hideLineSize, does not know line sizes (LineSize 0, as
// a backend that does not store them answers).
type sizeStore struct {
	mailstore.Store
	hideLineSize bool
	reads        atomic.Int64
}

func (s *sizeStore) ReadBlob(ctx context.Context, id string) ([]byte, error) {
	s.reads.Add(1)
	return s.Store.ReadBlob(ctx, id)
}

func (s *sizeStore) Fetch(ctx context.Context, acct, mbox int64, uids mailstore.UIDSet, f mailstore.FetchFields, since mailstore.ModSeq, fn func(*mailstore.Message) error) error {
	return s.Store.Fetch(ctx, acct, mbox, uids, f, since, func(m *mailstore.Message) error {
		if s.hideLineSize {
			m.LineSize = 0
		}
		return fn(m)
	})
}

// TestSizesExact checks that LIST and STAT report exactly what RETR sends,
// for stored messages with any mix of line ends: from the sizes the store
// recorded at delivery (no blob read before RETR), and computed from the
// blobs when the store does not know them.
func TestSizesExact(t *testing.T) {
	for _, hide := range []bool{false, true} {
		t.Run(fmt.Sprintf("hideLineSize=%v", hide), func(t *testing.T) {
			st := &sizeStore{hideLineSize: hide}
			e := newEnv(t, withStore(func(inner mailstore.Store) mailstore.Store {
				st.Store = inner
				return st
			}))
			testSizesExact(t, e, st)
		})
	}
}

func testSizesExact(t *testing.T, e *env, st *sizeStore) {
	a := e.account("alice@example.org")
	raws := []string{
		"Subject: crlf\r\n\r\nbody\r\n",
		"Subject: lf\n\nbody\n.\n..\n",
		"Subject: mixed\r\n\nbody\r\nmore\nlast",
		"Subject: cr\r\n\r\na\rb\r\r\n",
		"Subject: empty body\r\n\r\n",
		strings.Repeat("X-Long: "+strings.Repeat("y", 990)+"\n", 200) + "\n" + strings.Repeat(".dots\n", 1000),
	}
	e.deliver(a, raws...)
	c := e.dial()
	c.login(a.Name)
	c.ok("STAT")
	c.ok("LIST")
	list := c.multi()
	if n := st.reads.Load(); st.hideLineSize != (n > 0) {
		t.Errorf("%d blob reads for STAT and LIST (store knows sizes: %v)", n, !st.hideLineSize)
	}
	var total int64
	for i, l := range strings.Split(strings.TrimSuffix(list, "\r\n"), "\r\n") {
		var n int
		var size int64
		if _, err := fmt.Sscanf(l, "%d %d", &n, &size); err != nil || n != i+1 {
			t.Fatalf("LIST line %q", l)
		}
		r := c.ok("RETR " + strconv.Itoa(n))
		if r != fmt.Sprintf("+OK %d octets", size) {
			t.Errorf("RETR %d: %s, LIST said %d", n, r, size)
		}
		body := c.multi()
		if int64(len(body)) != size {
			t.Errorf("message %d: LIST %d octets, RETR sent %d", n, size, len(body))
		}
		if want := strings.ReplaceAll(strings.ReplaceAll(raws[i], "\r\n", "\n"), "\n", "\r\n"); strings.TrimSuffix(body, "\r\n") != strings.TrimSuffix(want, "\r\n") {
			t.Errorf("message %d content differs", n)
		}
		total += size
	}
	if r := c.ok("STAT"); r != fmt.Sprintf("+OK %d %d", len(raws), total) {
		t.Errorf("STAT %s, sum of LIST %d", r, total)
	}
	c.ok("QUIT")
}

// TestExpungedMeanwhile: IMAP expunges a message after the POP3 snapshot;
// the snapshot keeps its numbers and QUIT still succeeds.
func TestExpungedMeanwhile(t *testing.T) {
	e := newEnv(t)
	a := e.account("alice@example.org")
	e.deliver(a, msg("one", "1\r\n"), msg("two", "2\r\n"))
	c := e.dial()
	c.login(a.Name)
	inbox := e.mailbox(a, "INBOX")
	if _, _, err := e.store.Expunge(context.Background(), a.ID, inbox.ID, mailstore.UIDSetOf(1)); err != nil {
		t.Fatal(err)
	}
	if r := c.ok("STAT"); !strings.HasPrefix(r, "+OK 2 ") {
		t.Fatalf("STAT: %s", r)
	}
	c.ok("RETR 1") // the blob is retained for the retention window
	if body := c.multi(); !strings.Contains(body, "Subject: one") {
		t.Fatalf("RETR 1: %q", body)
	}
	c.ok("DELE 1")
	c.ok("DELE 2")
	c.ok("QUIT")
	if got := e.uids(a, "INBOX"); len(got) != 0 {
		t.Fatalf("INBOX: %v", got)
	}
}

// TestLockLostBeforeUpdate: if the maildrop lease was taken over (it
// lapsed while the session hung), QUIT must not apply deletions.
func TestLockLostBeforeUpdate(t *testing.T) {
	e := newEnv(t)
	a := e.account("alice@example.org")
	e.deliver(a, msg("one", "1\r\n"))
	c := e.dial()
	c.login(a.Name)
	c.ok("DELE 1")

	e.srv.mu.Lock()
	var owner string
	for s := range e.srv.sessions {
		if s.drop != nil {
			owner = s.id
		}
	}
	e.srv.mu.Unlock()
	if owner == "" {
		t.Fatal("no logged-in session")
	}
	ctx := context.Background()
	name := "pop3:" + strconv.FormatInt(a.ID, 10) + ":"
	if err := e.store.ReleaseLease(ctx, name, owner); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.store.AcquireLease(ctx, name, "another node", time.Now().Add(time.Minute)); err != nil || !ok {
		t.Fatalf("take over lease: %v %v", ok, err)
	}
	if r := c.cmd("QUIT"); r != "-ERR [IN-USE] Maildrop lock lost to another session; no changes made" {
		t.Fatalf("QUIT: %s", r)
	}
	c.expectClosed()
	if got := e.uids(a, "INBOX"); len(got) != 1 {
		t.Fatalf("INBOX: %v", got)
	}
	// The session's clean-up did not release the other owner's lease.
	if ok, _ := e.store.AcquireLease(ctx, name, "third", time.Now().Add(time.Minute)); ok {
		t.Fatal("lease of another owner was released")
	}
}

// FuzzSession sends arbitrary command lines to a logged-in session of a
// real server and checks that each gets exactly one well-formed answer and
// that the session survives. QUIT is replaced by NOOP (so that the maildrop
// stays the same); every input ends with RSET and QUIT.
func FuzzSession(f *testing.F) {
	for _, s := range commandSeeds {
		f.Add(s)
	}
	f.Add("LIST\nRETR 2\nTOP 2 1\nDELE 1\nLIST 1\nUIDL\nRSET\nSTAT")
	f.Add("TOP 3 999999999\nRETR 999999999999\nDELE 0\nLIST -1\nUIDL 4")
	e := newEnv(f)
	a := e.account("alice@example.org")
	e.deliver(a, seedBasic...)
	f.Fuzz(func(t *testing.T, input string) {
		c := e.dialT(t)
		c.login(a.Name)
		lines := strings.Split(input, "\n")
		if len(lines) > 20 {
			lines = lines[:20]
		}
		for _, l := range lines {
			l = strings.TrimSuffix(l, "\r")
			if strings.ContainsRune(l, '\r') || len(l) > maxLine-2 {
				continue
			}
			cmd, perr := parseCommand(l)
			if perr == nil && cmd.Name == "QUIT" {
				l, cmd = "NOOP", command{Name: "NOOP"}
			}
			r := c.cmd(l)
			switch {
			case strings.HasPrefix(r, "-ERR "):
			case r == "+OK" || strings.HasPrefix(r, "+OK "):
				if perr != nil {
					t.Fatalf("%q: malformed but answered %q", l, r)
				}
				multi := cmd.Name == "CAPA" || cmd.Name == "RETR" || cmd.Name == "TOP" ||
					(cmd.Name == "LIST" || cmd.Name == "UIDL") && len(cmd.Args) == 0
				if multi {
					c.multi()
				}
			default:
				t.Fatalf("%q: answer %q", l, r)
			}
		}
		c.ok("RSET")
		c.ok("QUIT")
		c.expectClosed()
		c.c.Close()
	})
}
