package smtpserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"os"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/queue"
	"github.com/roost-mail/roost/internal/storage/sqlite"
)

const testPassword = "correct horse battery staple"

// env is a store with domain x.test, accounts alice and bob, alias
// al@x.test -> alice.
type env struct {
	store mailstore.Store
	authn *auth.Authenticator
	alice mailstore.Account
	bob   mailstore.Account
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("ROOST_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newEnv(t testing.TB) *env {
	t.Helper()
	st, err := sqlite.Open(t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	if err := st.AddDomain(ctx, "x.test"); err != nil {
		t.Fatal(err)
	}
	p := auth.DefaultParams()
	p.Time, p.MemoryKiB, p.Threads, p.FailDelay = 1, 64, 1, 50*time.Millisecond
	hash, err := auth.HashPassword(testPassword, p)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: st, authn: auth.New(st, p)}
	if e.alice, err = st.AddAccount(ctx, "alice@x.test", hash); err != nil {
		t.Fatal(err)
	}
	if e.bob, err = st.AddAccount(ctx, "bob@x.test", hash); err != nil {
		t.Fatal(err)
	}
	if err := st.AddAlias(ctx, "al@x.test", "alice@x.test"); err != nil {
		t.Fatal(err)
	}
	return e
}

// start runs a server on 127.0.0.1:0 and returns its address.
func (e *env) start(t testing.TB, q *queue.Queue, cfg Config, implicitTLS bool) (*Server, string) {
	t.Helper()
	if cfg.Hostname == "" {
		cfg.Hostname = "mx.x.test"
	}
	s := New(e.store, e.authn, q, cfg, testLogger(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln, implicitTLS) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// startHeldQueue runs a server whose outbound queue is not running, so
// that what a submission queues stays for the test to read (queued).
func (e *env) startHeldQueue(t testing.TB, cfg Config) string {
	t.Helper()
	q := queue.New(e.store, queue.Config{Hostname: "mx.x.test"}, testLogger(t))
	_, addr := e.start(t, q, cfg, false)
	return addr
}

// queued lists the outbound queue's entries.
func (e *env) queued(t testing.TB) []mailstore.QueueEntry {
	t.Helper()
	es, err := e.store.ListQueue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// inbox returns the raw messages of an account's mailbox with that
// special use ("" for INBOX).
func (e *env) mailbox(t testing.TB, acct mailstore.Account, special string) [][]byte {
	t.Helper()
	ctx := context.Background()
	var mb mailstore.Mailbox
	var err error
	if special == "" {
		mb, err = e.store.GetMailbox(ctx, acct.ID, mailstore.InboxName)
	} else {
		mb, err = e.store.MailboxBySpecialUse(ctx, acct.ID, special)
	}
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	err = e.store.Fetch(ctx, acct.ID, mb.ID, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}, mailstore.FetchIDs, 0, func(m *mailstore.Message) error {
		raw, err := e.store.ReadBlob(ctx, m.BlobID)
		if err != nil {
			return err
		}
		out = append(out, raw)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// selfSigned makes a TLS server config for "mx.x.test".
func selfSigned(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mx.x.test"},
		DNSNames:     []string{"mx.x.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}
