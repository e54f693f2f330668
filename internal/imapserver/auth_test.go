package imapserver

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/roost-mail/roost/internal/mailstore"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestAuthenticatePlain(t *testing.T) {
	env := newTestEnv(t, Config{})
	// SASL-IR (RFC 4959).
	c := env.dial(t)
	lines := c.ok("AUTHENTICATE PLAIN " + b64("\x00alice@example.test\x00"+testPassword))
	mustHave(t, lines, `OK \[CAPABILITY IMAP4rev1 .*\] Logged in`)
	// Without an initial response: an empty challenge first.
	c = env.dial(t)
	c.send("a1 AUTHENTICATE PLAIN")
	c.expect(`^\+ $`)
	c.send(b64("\x00alice@example.test\x00wrong"))
	c.expect(`^a1 NO \[AUTHENTICATIONFAILED\] Authentication failed$`)
	// Cancelled exchange, then LOGIN with a wrong password, then a good one.
	c.send("a2 AUTHENTICATE LOGIN")
	c.expect(`^\+ `)
	c.send("*")
	c.expect(`^a2 BAD Authentication cancelled$`)
	c.send(`a3 LOGIN alice@example.test nope`)
	c.expect(`^a3 NO \[AUTHENTICATIONFAILED\]`)
	c.ok(`LOGIN alice@example.test "secret pass"`)
}

func TestAuthenticateUnknownMechanism(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.dial(t)
	lines := c.cmd("AUTHENTICATE FOO")
	mustHave(t, lines, `^t1 NO \[CANNOT\] Unsupported mechanism$`)
}

func TestAuthenticateImapclient(t *testing.T) {
	env := newTestEnv(t, Config{})
	cl := dialRaw(t, env)
	if err := cl.Authenticate(sasl.NewPlainClient("", "alice@example.test", testPassword)); err != nil {
		t.Fatalf("AUTHENTICATE PLAIN: %v", err)
	}
}

// SCRAM-SHA-256 (RFC 7677) through auth.NewSASL, with the final server
// message sent as a last challenge.
func TestAuthenticateSCRAM(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.dial(t)
	cnonce := "rOprNGfwEbeRWgbNEkqO"
	first := "n=alice@example.test,r=" + cnonce
	c.send("s1 AUTHENTICATE SCRAM-SHA-256 " + b64("n,,"+first))
	chal := c.expect(`^\+ `)
	sf, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(chal, "+ "))
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]string{}
	for _, kv := range strings.Split(string(sf), ",") {
		k, v, _ := strings.Cut(kv, "=")
		attrs[k] = v
	}
	salt, _ := base64.StdEncoding.DecodeString(attrs["s"])
	iter, _ := strconv.Atoi(attrs["i"])
	salted, err := pbkdf2.Key(sha256.New, testPassword, salt, iter, 32)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(k []byte, m string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(m)); return h.Sum(nil) }
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	final := "c=biws,r=" + attrs["r"]
	authMsg := first + "," + string(sf) + "," + final
	sig := mac(stored[:], authMsg)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	c.send(b64(final + ",p=" + base64.StdEncoding.EncodeToString(proof)))
	v := c.expect(`^\+ `)
	vb, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(v, "+ "))
	serverSig := mac(mac(salted, "Server Key"), authMsg)
	if string(vb) != "v="+base64.StdEncoding.EncodeToString(serverSig) {
		t.Fatalf("server signature %q", vb)
	}
	c.send("")
	c.expect(`^s1 OK \[CAPABILITY .*\] Logged in$`)
}

func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// A connection that is neither TLS nor loopback (a pipe here) gets
// LOGINDISABLED and no password commands until STARTTLS (RFC 9051 section
// 6.2.3, RFC 8314).
func TestPlaintextRefusedUntilSTARTTLS(t *testing.T) {
	env := newTestEnv(t, Config{})
	env.srv.cfg.TLS = selfSigned(t)
	c := env.dialPipe(t)
	g := c.line()
	if !strings.Contains(g, "LOGINDISABLED") || !strings.Contains(g, "STARTTLS") || strings.Contains(g, "AUTH=") {
		t.Fatalf("greeting: %q", g)
	}
	mustHave(t, c.cmd(`LOGIN alice@example.test "secret pass"`), `^t1 NO \[PRIVACYREQUIRED\]`)
	mustHave(t, c.cmd(`AUTHENTICATE PLAIN `+b64("\x00alice@example.test\x00"+testPassword)), `^t2 NO \[PRIVACYREQUIRED\]`)
	c.ok("STARTTLS")
	tc := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.HandshakeContext(context.Background()); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c = &rawClient{t: t, c: tc, r: bufio.NewReader(tc), tagN: 10}
	lines := c.ok("CAPABILITY")
	if hasLine(lines, "LOGINDISABLED") || hasLine(lines, " STARTTLS") || !hasLine(lines, "AUTH=PLAIN") {
		t.Fatalf("capabilities after STARTTLS: %q", lines)
	}
	c.ok(`LOGIN alice@example.test "secret pass"`)
}

func TestImplicitTLS(t *testing.T) {
	env := newTestEnv(t, Config{})
	env.srv.cfg.TLS = selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go env.srv.Serve(ln, true)
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &rawClient{t: t, c: conn, r: bufio.NewReader(conn)}
	if g := c.line(); !strings.HasPrefix(g, "* OK [CAPABILITY") || strings.Contains(g, "STARTTLS") {
		t.Fatalf("greeting: %q", g)
	}
	c.ok(`LOGIN alice@example.test "secret pass"`)
}

func TestAutologout(t *testing.T) {
	env := newTestEnv(t, Config{LoginTimeout: 200 * time.Millisecond})
	c := env.dial(t)
	c.expect(`^\* BYE Autologout`)
}

func TestShutdownSaysBye(t *testing.T) {
	env := newTestEnv(t, Config{})
	a := env.login(t, "alice@example.test")
	a.ok("SELECT INBOX")
	a.send("i IDLE")
	a.expect(`^\+ `)
	b := env.login(t, "alice@example.test")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := env.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	a.expect(`^\* BYE Server shutting down$`)
	b.expect(`^\* BYE Server shutting down$`)
	if _, err := net.Dial("tcp", env.addr); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

// panicStore is the real store with one method made to panic: fault
// injection for the session's recovery.
type panicStore struct{ mailstore.Store }

func (panicStore) Status(context.Context, int64, int64) (mailstore.MailboxStatus, error) {
	panic("injected fault")
}

func TestPanicIsolated(t *testing.T) {
	env := newTestEnv(t, Config{})
	env.srv.store = panicStore{env.store}
	a := env.login(t, "alice@example.test")
	a.send("p1 STATUS INBOX (MESSAGES)")
	_ = a.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.r.ReadString('\n'); err == nil {
		t.Fatal("connection survived a panic")
	}
	b := env.login(t, "alice@example.test")
	b.ok("NOOP")
}

func TestTooManyAuthFailures(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.dial(t)
	for i := 1; i < maxAuthFailures; i++ {
		mustHave(t, c.cmd("LOGIN alice@example.test wrong"), `^t\d+ NO \[AUTHENTICATIONFAILED\]`)
	}
	c.send("last LOGIN alice@example.test wrong")
	c.expect(`^last NO \[AUTHENTICATIONFAILED\]`)
	c.expect(`^\* BYE Too many authentication failures$`)
}

// A store that cannot answer is not a wrong password: the client is told
// to come back later (UNAVAILABLE, RFC 5530 section 3), not that its
// credentials failed, and the attempts do not count toward the
// connection's limit of failed logins.
func TestAuthenticateStoreDown(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.dial(t)
	if err := env.store.Close(); err != nil {
		t.Fatal(err)
	}
	for range maxAuthFailures + 1 {
		lines := c.cmd("AUTHENTICATE PLAIN " + b64("\x00alice@example.test\x00"+testPassword))
		mustHave(t, lines, `^t\d+ NO \[UNAVAILABLE\]`)
		lines = c.cmd("LOGIN alice@example.test " + `"` + testPassword + `"`)
		mustHave(t, lines, `^t\d+ NO \[UNAVAILABLE\]`)
	}
	c.ok("NOOP")
}
