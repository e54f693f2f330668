package queue

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/storage/sqlite"
)

func testLogger() *slog.Logger {
	if os.Getenv("ROOST_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// openStore opens a sqlite store in dir with domain x.test and account
// alice@x.test.
func openStore(t testing.TB, dir string) (mailstore.Store, mailstore.Account) {
	t.Helper()
	st, err := sqlite.Open(dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	acct, err := st.GetAccount(ctx, "alice@x.test")
	if err != nil {
		if err := st.AddDomain(ctx, "x.test"); err != nil {
			t.Fatal(err)
		}
		if acct, err = st.AddAccount(ctx, "alice@x.test", "x"); err != nil {
			t.Fatal(err)
		}
	}
	return st, acct
}

// sinkMsg is one message a sink accepted.
type sinkMsg struct {
	From  string
	Rcpts []string
	Data  string
	TLS   bool // the message came over TLS
	// DSN parameters as received (the sink advertises DSN only when
	// started by startSinkDSN).
	Mail     smtp.MailOptions
	RcptOpts []smtp.RcptOptions
}

// sink is a go-smtp server on loopback standing in for a remote MX.
// Recipients whose local part starts with "reject" get 550 5.1.1, with
// "defer" 451 4.2.0.
type sink struct {
	addr string
	srv  *smtp.Server
	ln   net.Listener

	mu   sync.Mutex
	msgs []sinkMsg
	got  chan struct{}

	// accepts counts connections; closed counts sessions ended (a
	// STARTTLS ends one and starts another on the same connection).
	accepts, closed atomic.Int32
}

// countingListener counts accepted connections into n.
type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func startSink(t testing.TB, addr string) *sink {
	return startSinkTLS(t, addr, nil)
}

// startSinkTLS is startSink offering STARTTLS with cfg; tune, if given,
// sets up the server further before it serves (not after: its
// connection goroutines read the settings).
func startSinkTLS(t testing.TB, addr string, cfg *tls.Config, tune ...func(*smtp.Server)) *sink {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port of a stopped sink may linger
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{addr: ln.Addr().String(), ln: ln, got: make(chan struct{}, 1000)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s, c: c}, nil }))
	s.srv.Domain = "sink.test"
	s.srv.TLSConfig = cfg
	s.srv.ErrorLog = slogPrinter{}
	for _, f := range tune {
		f(s.srv)
	}
	go s.srv.Serve(countingListener{ln, &s.accepts})
	t.Cleanup(s.stop)
	return s
}

// startSinkDSN is startSink advertising DSN (RFC 3461).
func startSinkDSN(t testing.TB) *sink {
	return startSinkTLS(t, "", nil, func(srv *smtp.Server) { srv.EnableDSN = true })
}

func (s *sink) stop() { s.srv.Close() }

func (s *sink) messages() []sinkMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMsg(nil), s.msgs...)
}

// wait waits until the sink holds n messages.
func (s *sink) wait(t testing.TB, n int) []sinkMsg {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if m := s.messages(); len(m) >= n {
			return m
		}
		select {
		case <-s.got:
		case <-deadline:
			t.Fatalf("sink has %d messages, want %d", len(s.messages()), n)
		}
	}
}

func isTLS(c *smtp.Conn) bool {
	_, ok := c.TLSConnectionState()
	return ok
}

// selfSigned makes a TLS server config with a certificate nobody trusts.
func selfSigned(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sink.test"},
		DNSNames: []string{"sink.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

type slogPrinter struct{}

func (slogPrinter) Printf(string, ...any) {}
func (slogPrinter) Println(...any)        {}

type sinkSession struct {
	s     *sink
	c     *smtp.Conn
	from  string
	rcpts []string
	mail  smtp.MailOptions
	ropts []smtp.RcptOptions
}

func (ss *sinkSession) Reset() {
	ss.from, ss.rcpts, ss.mail, ss.ropts = "", nil, smtp.MailOptions{}, nil
}
func (ss *sinkSession) Logout() error {
	ss.s.closed.Add(1)
	return nil
}
func (ss *sinkSession) Mail(from string, opts *smtp.MailOptions) error {
	ss.from = from
	if opts != nil {
		ss.mail = *opts
	}
	return nil
}
func (ss *sinkSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	switch {
	case strings.HasPrefix(to, "reject"):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	case strings.HasPrefix(to, "defer"):
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "try later"}
	}
	ss.rcpts = append(ss.rcpts, to)
	var o smtp.RcptOptions
	if opts != nil {
		o = *opts
	}
	ss.ropts = append(ss.ropts, o)
	return nil
}
func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, sinkMsg{From: ss.from, Rcpts: ss.rcpts, Data: string(b), TLS: isTLS(ss.c), Mail: ss.mail, RcptOpts: ss.ropts})
	ss.s.mu.Unlock()
	ss.s.got <- struct{}{}
	return nil
}

// runQueue starts q.Run until the test ends.
func runQueue(t testing.TB, q *Queue) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// inbox returns the raw messages in an account's INBOX.
func inbox(t testing.TB, st mailstore.Store, acct mailstore.Account) [][]byte {
	t.Helper()
	ctx := context.Background()
	mb, err := st.GetMailbox(ctx, acct.ID, mailstore.InboxName)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	err = st.Fetch(ctx, acct.ID, mb.ID, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}, mailstore.FetchIDs, 0, func(m *mailstore.Message) error {
		raw, err := st.ReadBlob(ctx, m.BlobID)
		out = append(out, raw)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitFor polls cond (the store has no event for "queue empty").
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func queueLen(t testing.TB, st mailstore.Store) int {
	es, err := st.ListQueue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

const testMsg = "From: alice@x.test\r\nTo: bob@remote.test\r\nSubject: out\r\nMessage-ID: <out@x.test>\r\n\r\nbody\r\n"

// closedAddr is a loopback address nothing listens on (a port reserved,
// then closed): connections to it fail.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// expiringQueue is a queue whose remote.test is unreachable (closedAddr),
// with retries, the delay warning and expiry all within two seconds.
func expiringQueue(t testing.TB, st mailstore.Store) *Queue {
	return New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": closedAddr(t)},
		RetryBase: 100 * time.Millisecond, RetryMax: 100 * time.Millisecond, WarnAfter: 200 * time.Millisecond, MaxAge: 1500 * time.Millisecond}, testLogger())
}
