package imapserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/storage/sqlite"
)

const testPassword = "secret pass"

// testEnv is a real server on 127.0.0.1:0 over a temp-dir SQLite store.
type testEnv struct {
	store *sqlite.Store
	srv   *Server
	addr  string
	users map[string]mailstore.Account
}

func testParams() auth.Params {
	p := auth.DefaultParams()
	p.Time, p.MemoryKiB, p.Threads = 1, 64, 1
	p.FailDelay = 10 * time.Millisecond
	p.SCRAMIterations = 4096
	return p
}

func newTestEnv(t testing.TB, cfg Config, users ...string) *testEnv {
	t.Helper()
	return newTestEnvDir(t, t.TempDir(), cfg, sqlite.Options{}, users...)
}

// newTestEnvDir is newTestEnv over the store in dir, opened with opts, for
// tests that reach into the database.
func newTestEnvDir(t testing.TB, dir string, cfg Config, opts sqlite.Options, users ...string) *testEnv {
	t.Helper()
	if len(users) == 0 {
		users = []string{"alice@example.test", "bob@example.test"}
	}
	st, err := sqlite.Open(dir, opts)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	ctx := context.Background()
	if err := st.AddDomain(ctx, "example.test"); err != nil {
		t.Fatalf("AddDomain: %v", err)
	}
	p := testParams()
	env := &testEnv{store: st, users: map[string]mailstore.Account{}}
	for _, u := range users {
		h, err := auth.HashPassword(testPassword, p)
		if err != nil {
			t.Fatalf("HashPassword: %v", err)
		}
		a, err := st.AddAccount(ctx, u, h)
		if err != nil {
			t.Fatalf("AddAccount: %v", err)
		}
		env.users[u] = a
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("IMAPTEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	env.srv = New(st, auth.New(st, p), cfg, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	env.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- env.srv.Serve(ln, false) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := env.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-served
		st.Close()
	})
	return env
}

// deliver stores a message in a user's INBOX the way SMTP delivery does.
func (e *testEnv) deliver(t testing.TB, user, raw string) mailstore.AppendResult {
	t.Helper()
	res, err := e.store.Deliver(context.Background(), mailstore.Delivery{
		Raw:        []byte(raw),
		Recipients: []mailstore.DeliveryTarget{{AccountID: e.users[user].ID}},
	})
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	return res[0]
}

func testMessage(i int) string {
	return fmt.Sprintf("From: Sender %d <sender%d@example.org>\r\nTo: alice@example.test\r\nSubject: test message %d\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <m%d@example.org>\r\n\r\nHello body %d\r\n", i, i, i, i, i)
}

// rawClient speaks IMAP bytes over a socket; every read has a deadline.
type rawClient struct {
	t    testing.TB
	c    net.Conn
	r    *bufio.Reader
	tagN int
}

func (e *testEnv) dial(t testing.TB) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawClient{t: t, c: c, r: bufio.NewReader(c)}
	if g := rc.line(); !strings.HasPrefix(g, "* OK ") {
		t.Fatalf("greeting: %q", g)
	}
	return rc
}

// dialPipe starts a session over a pipe, a connection that is neither
// TLS nor loopback, and returns its client before the greeting is read.
func (e *testEnv) dialPipe(t testing.TB) *rawClient {
	t.Helper()
	cli, srv := net.Pipe()
	t.Cleanup(func() { cli.Close() })
	e.srv.wg.Add(1)
	go e.srv.handle(srv, false)
	return &rawClient{t: t, c: cli, r: bufio.NewReader(cli)}
}

// twoDevices is alice's account with n messages delivered and two of her
// sessions: a with INBOX selected, b logged in.
func twoDevices(t *testing.T, n int) (env *testEnv, a, b *rawClient) {
	t.Helper()
	env = newTestEnv(t, Config{})
	for i := 1; i <= n; i++ {
		env.deliver(t, alice, testMessage(i))
	}
	a = env.login(t, alice)
	a.ok("SELECT INBOX")
	return env, a, env.login(t, alice)
}

func (e *testEnv) login(t testing.TB, user string) *rawClient {
	t.Helper()
	c := e.dial(t)
	c.ok("LOGIN " + quote(user) + " " + quote(testPassword))
	return c
}

func quote(s string) string { return strconv.Quote(s) }

func (c *rawClient) send(s string) {
	c.t.Helper()
	_ = c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.c, s+"\r\n"); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// line reads one response line, literals included (CRLF inside kept).
func (c *rawClient) line() string {
	c.t.Helper()
	return c.lineWithin(30 * time.Second)
}

func (c *rawClient) lineWithin(d time.Duration) string {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(d))
	var b strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read (so far %q): %v", b.String()+l, err)
		}
		b.WriteString(l)
		body := strings.TrimSuffix(l, "\r\n")
		if n, _, ok := literalSuffix([]byte(body)); ok && strings.HasSuffix(body, "}") {
			buf := make([]byte, n)
			if _, err := io.ReadFull(c.r, buf); err != nil {
				c.t.Fatalf("read literal: %v", err)
			}
			b.Write(buf)
			continue
		}
		return strings.TrimSuffix(b.String(), "\r\n")
	}
}

// cmd sends a tagged command and returns every line up to and including
// the tagged reply.
func (c *rawClient) cmd(command string) []string {
	c.t.Helper()
	c.tagN++
	tag := fmt.Sprintf("t%d", c.tagN)
	c.send(tag + " " + command)
	return c.readUntil(tag)
}

func (c *rawClient) readUntil(tag string) []string {
	c.t.Helper()
	var out []string
	for {
		l := c.line()
		out = append(out, l)
		if strings.HasPrefix(l, tag+" ") {
			return out
		}
	}
}

// ok runs a command that must succeed.
func (c *rawClient) ok(command string) []string {
	c.t.Helper()
	lines := c.cmd(command)
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last[strings.IndexByte(last, ' ')+1:], "OK") {
		c.t.Fatalf("%s: %q", command, lines)
	}
	return lines
}

// expect reads lines until one matches re (within a deadline) and returns it.
func (c *rawClient) expect(re string) string {
	c.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		l := c.lineWithin(time.Until(deadline))
		if rx.MatchString(l) {
			return l
		}
	}
	c.t.Fatalf("no line matching %q", re)
	return ""
}

func hasLine(lines []string, re string) bool {
	rx := regexp.MustCompile(re)
	for _, l := range lines {
		if rx.MatchString(l) {
			return true
		}
	}
	return false
}

func mustHave(t testing.TB, lines []string, res ...string) {
	t.Helper()
	for _, re := range res {
		if !hasLine(lines, re) {
			t.Fatalf("no line matching %q in:\n%s", re, strings.Join(lines, "\n"))
		}
	}
}
