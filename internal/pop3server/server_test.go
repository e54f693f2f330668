package pop3server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/storage/sqlite"
)

// testParams keep argon2id cheap in tests; the failure delay is short but
// real.
var testParams = auth.Params{Time: 1, MemoryKiB: 1024, Threads: 1, FailDelay: 20 * time.Millisecond, CacheSize: 64, CacheTTL: time.Minute, SCRAMIterations: 4096}

const testPassword = "correct horse"

// env is a real server on 127.0.0.1 over a temp-dir SQLite store.
type env struct {
	t      testing.TB
	store  *sqlite.Store
	authn  *auth.Authenticator
	srv    *Server
	addr   string
	cfg    Config
	params auth.Params
	// wrap, if set, is the store as the server sees it (see sizeStore).
	wrap func(mailstore.Store) mailstore.Store
}

type envOption func(*env)

func withConfig(f func(*Config)) envOption { return func(e *env) { f(&e.cfg) } }

func withAuthParams(p auth.Params) envOption { return func(e *env) { e.params = p } }

func withStore(wrap func(mailstore.Store) mailstore.Store) envOption {
	return func(e *env) { e.wrap = wrap }
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	st, err := sqlite.Open(t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, store: st, params: testParams, cfg: Config{Hostname: "pop.example.test"}}
	for _, o := range opts {
		o(e)
	}
	e.authn = auth.New(st, e.params)
	if err := st.AddDomain(context.Background(), "example.org"); err != nil {
		t.Fatalf("add domain: %v", err)
	}
	e.start()
	return e
}

// start runs a server on a fresh loopback listener.
func (e *env) start() {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatalf("listen: %v", err)
	}
	e.serve(ln, false)
	e.addr = ln.Addr().String()
}

func (e *env) serve(ln net.Listener, implicitTLS bool) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if e.srv == nil {
		var st mailstore.Store = e.store
		if e.wrap != nil {
			st = e.wrap(e.store)
		}
		e.srv = New(st, e.authn, e.cfg, log)
		srv := e.srv
		e.t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				e.t.Errorf("shutdown: %v", err)
			}
		})
	}
	srv := e.srv
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, implicitTLS) }()
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; err != nil {
			e.t.Errorf("Serve: %v", err)
		}
	})
}

// account makes a user with testPassword.
func (e *env) account(name string) mailstore.Account {
	e.t.Helper()
	hash, err := auth.HashPassword(testPassword, e.params)
	if err != nil {
		e.t.Fatalf("hash: %v", err)
	}
	a, err := e.store.AddAccount(context.Background(), name, hash)
	if err != nil {
		e.t.Fatalf("add account: %v", err)
	}
	return a
}

func (e *env) mailbox(a mailstore.Account, name string) mailstore.Mailbox {
	e.t.Helper()
	mb, err := e.store.GetMailbox(context.Background(), a.ID, name)
	if err != nil {
		e.t.Fatalf("get mailbox %s: %v", name, err)
	}
	return mb
}

// deliver appends raw messages to INBOX and returns their UIDs.
func (e *env) deliver(a mailstore.Account, raws ...string) []mailstore.UID {
	e.t.Helper()
	inbox := e.mailbox(a, "INBOX")
	reqs := make([]mailstore.AppendRequest, len(raws))
	for i, r := range raws {
		reqs[i] = mailstore.AppendRequest{MailboxID: inbox.ID, Raw: []byte(r), InternalDate: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	}
	res, err := e.store.Append(context.Background(), a.ID, reqs)
	if err != nil {
		e.t.Fatalf("append: %v", err)
	}
	uids := make([]mailstore.UID, len(res))
	for i, r := range res {
		uids[i] = r.UID
	}
	return uids
}

func (e *env) uids(a mailstore.Account, mailbox string) []mailstore.UID {
	e.t.Helper()
	u, _, err := e.store.UIDs(context.Background(), a.ID, e.mailbox(a, mailbox).ID)
	if err != nil {
		e.t.Fatalf("uids: %v", err)
	}
	return u
}

// client is a raw POP3 client for transcripts.
type client struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func (e *env) dial() *client { return e.dialT(e.t) }

// dialT connects with t as the test (a fuzz target's own t).
func (e *env) dialT(t testing.TB) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	if g := cl.read(); !strings.HasPrefix(g, "+OK ") {
		t.Fatalf("greeting %q", g)
	}
	return cl
}

func (c *client) send(line string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.c, line+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

func (c *client) read() string {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("line without CRLF: %q", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// cmd sends a command and returns the status line.
func (c *client) cmd(line string) string {
	c.t.Helper()
	c.send(line)
	return c.read()
}

// ok sends a command and fails unless the answer is +OK.
func (c *client) ok(line string) string {
	c.t.Helper()
	r := c.cmd(line)
	if !strings.HasPrefix(r, "+OK") {
		c.t.Fatalf("%s: %s", line, r)
	}
	return r
}

// multi reads the body of a multi-line response, unstuffed, lines joined
// with CRLF (each line ends in CRLF).
func (c *client) multi() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l := c.read()
		if l == "." {
			return b.String()
		}
		if strings.HasPrefix(l, ".") {
			l = l[1:]
		}
		b.WriteString(l)
		b.WriteString("\r\n")
	}
}

func (c *client) login(user string) {
	c.t.Helper()
	c.ok("USER " + user)
	c.ok("PASS " + testPassword)
}

// expectClosed asserts the server closed the connection with nothing more
// to say.
func (c *client) expectClosed() {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != io.EOF {
		c.t.Fatalf("want EOF, got %q, %v", l, err)
	}
}

// selfSigned makes a TLS server config and a client config trusting it.
func selfSigned(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pop.example.test"},
		DNSNames:     []string{"pop.example.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	client = &tls.Config{RootCAs: pool, ServerName: "pop.example.test"}
	return server, client
}

// remoteListener hands out real TCP connections that report a
// non-loopback peer (TEST-NET-1, RFC 5737), as a connection from the
// network looks: the server must then refuse passwords without TLS.
type remoteListener struct{ net.Listener }

type remoteConn struct{ net.Conn }

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c}, nil
}

func (remoteConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000}
}

func msg(subject, body string) string {
	return fmt.Sprintf("From: bob@example.net\r\nTo: alice@example.org\r\nSubject: %s\r\nMessage-ID: <%s@example.net>\r\n\r\n%s", subject, strings.ReplaceAll(subject, " ", "."), body)
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
