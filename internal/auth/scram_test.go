package auth

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
)

// scramClient is a client written from RFC 5802 section 3 and RFC 7677
// for these tests, sharing no code with the server.
type scramClient struct {
	user, authzid, password, cnonce string
	gs2                             string // "n" or "y"

	firstBare, authMsg string
	saltedPassword     []byte
}

func (c *scramClient) first() []byte {
	esc := strings.NewReplacer("=", "=3D", ",", "=2C")
	az := ""
	if c.authzid != "" {
		az = "a=" + esc.Replace(c.authzid)
	}
	if c.gs2 == "" {
		c.gs2 = "n"
	}
	c.firstBare = "n=" + esc.Replace(c.user) + ",r=" + c.cnonce
	return []byte(c.gs2 + "," + az + "," + c.firstBare)
}

func (c *scramClient) final(serverFirst []byte) ([]byte, error) {
	attrs := map[byte]string{}
	for _, kv := range strings.Split(string(serverFirst), ",") {
		if len(kv) < 2 || kv[1] != '=' {
			return nil, fmt.Errorf("bad server attribute %q", kv)
		}
		attrs[kv[0]] = kv[2:]
	}
	if !strings.HasPrefix(attrs['r'], c.cnonce) || len(attrs['r']) == len(c.cnonce) {
		return nil, fmt.Errorf("server nonce %q does not extend ours", attrs['r'])
	}
	salt, err := base64.StdEncoding.DecodeString(attrs['s'])
	if err != nil {
		return nil, err
	}
	iter, err := strconv.Atoi(attrs['i'])
	if err != nil || iter < 4096 {
		return nil, fmt.Errorf("iteration count %q below RFC 7677's 4096", attrs['i'])
	}
	c.saltedPassword, _ = pbkdf2.Key(sha256.New, c.password, salt, iter, 32)
	mac := func(key []byte, s string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	clientKey := mac(c.saltedPassword, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	gs2 := c.gs2 + ","
	if c.authzid != "" {
		gs2 += "a=" + strings.NewReplacer("=", "=3D", ",", "=2C").Replace(c.authzid)
	}
	gs2 += ","
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(gs2)) + ",r=" + attrs['r']
	c.authMsg = c.firstBare + "," + string(serverFirst) + "," + withoutProof
	sig := mac(storedKey[:], c.authMsg)
	proof := make([]byte, len(sig))
	for i := range sig {
		proof[i] = clientKey[i] ^ sig[i]
	}
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

func (c *scramClient) verify(serverFinal []byte) error {
	m := hmac.New(sha256.New, c.saltedPassword)
	m.Write([]byte("Server Key"))
	serverKey := m.Sum(nil)
	m = hmac.New(sha256.New, serverKey)
	m.Write([]byte(c.authMsg))
	if want := "v=" + base64.StdEncoding.EncodeToString(m.Sum(nil)); string(serverFinal) != want {
		return fmt.Errorf("server signature %q, want %q", serverFinal, want)
	}
	return nil
}

// scramLogin runs a whole exchange; initial says whether client-first
// goes as an initial response.
func scramLogin(t *testing.T, a *Authenticator, c *scramClient, initial bool) (SASL, error) {
	t.Helper()
	srv, err := a.NewSASL(context.Background(), "SCRAM-SHA-256")
	if err != nil {
		t.Fatal(err)
	}
	if !initial {
		chal, done, err := srv.Next(nil)
		if len(chal) != 0 || done || err != nil {
			t.Fatalf("no-initial-response challenge %q %v %v", chal, done, err)
		}
	}
	sf, done, err := srv.Next(c.first())
	if err != nil || done {
		return srv, fmt.Errorf("server-first: %w (done %v)", err, done)
	}
	if srv.Account().Name != "" {
		t.Fatal("Account() set before the proof was checked")
	}
	cf, err := c.final(sf)
	if err != nil {
		t.Fatalf("client rejects server-first %q: %v", sf, err)
	}
	fin, done, err := srv.Next(cf)
	if err != nil {
		return srv, err
	}
	if !done {
		t.Fatal("server not done after client-final")
	}
	if err := c.verify(fin); err != nil {
		t.Fatal(err)
	}
	return srv, nil
}

// TestSCRAMVector is RFC 7677 section 3's example exchange, byte for byte.
func TestSCRAMVector(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	v, err := newSCRAMVerifier("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	argon, _ := HashPassword("pencil", testParams())
	argon, _, _ = strings.Cut(argon, " ")
	d := &fixedDirectory{accounts: map[string]mailstore.Account{"user": {ID: 1, Name: "user", PasswordHash: argon + " " + v.String()}}}
	a := New(d, testParams())
	a.newNonce = func() string { return "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" }
	srv, _ := a.NewSASL(context.Background(), "SCRAM-SHA-256")
	sf, done, err := srv.Next([]byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
	if err != nil || done {
		t.Fatal(err, done)
	}
	if want := "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"; string(sf) != want {
		t.Fatalf("server-first %q, want %q", sf, want)
	}
	fin, done, err := srv.Next([]byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	if err != nil || !done {
		t.Fatal(err, done)
	}
	if want := "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="; string(fin) != want {
		t.Fatalf("server-final %q, want %q", fin, want)
	}
	if srv.Account().Name != "user" {
		t.Fatalf("account %+v", srv.Account())
	}
	// Our own client computes the same proof from the same inputs.
	c := &scramClient{user: "user", password: "pencil", cnonce: "rOprNGfwEbeRWgbNEkqO"}
	c.first()
	cf, err := c.final(sf)
	if err != nil || !strings.HasSuffix(string(cf), "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=") {
		t.Fatalf("test client disagrees with RFC 7677: %q %v", cf, err)
	}
}

func TestSCRAM(t *testing.T) {
	pw := "p@ss,word=ünïcode"
	a, d := newTestAuth(t, testParams(), map[string]string{"alice@example.test": pw, "a,b=c@example.test": "x"})
	d.aliases["al@example.test"] = "alice@example.test"
	for _, c := range []struct {
		name   string
		client scramClient
		ir     bool
		acct   string
	}{
		{"plain", scramClient{user: "alice@example.test", password: pw, cnonce: "abc"}, true, "alice@example.test"},
		{"no initial response", scramClient{user: "alice@example.test", password: pw, cnonce: "abc"}, false, "alice@example.test"},
		{"y flag", scramClient{user: "alice@example.test", password: pw, cnonce: "x", gs2: "y"}, true, "alice@example.test"},
		{"authzid", scramClient{user: "Alice@example.test", authzid: "alice@example.test", password: pw, cnonce: "n"}, true, "alice@example.test"},
		{"device", scramClient{user: "alice@example.test#phone", password: pw, cnonce: "n"}, true, "alice@example.test"},
		{"alias", scramClient{user: "al@example.test", password: pw, cnonce: "n"}, true, "alice@example.test"},
		{"escaped name", scramClient{user: "a,b=c@example.test", password: "x", cnonce: "q"}, true, "a,b=c@example.test"},
	} {
		srv, err := scramLogin(t, a, &c.client, c.ir)
		if err != nil || srv.Account().Name != c.acct || srv.Username() != c.client.user {
			t.Errorf("%s: %v, account %q, username %q", c.name, err, srv.Account().Name, srv.Username())
		}
	}
	for _, c := range []struct {
		name   string
		client scramClient
	}{
		{"wrong password", scramClient{user: "alice@example.test", password: "p@ss,word", cnonce: "abc"}},
		{"unknown user", scramClient{user: "nobody@example.test", password: pw, cnonce: "abc"}},
		{"other authzid", scramClient{user: "alice@example.test", authzid: "a,b=c@example.test", password: pw, cnonce: "abc"}},
	} {
		srv, err := scramLogin(t, a, &c.client, true)
		if !errors.Is(err, ErrAuthFailed) || srv.Account().Name != "" {
			t.Errorf("%s: %v account %q, want failure", c.name, err, srv.Account().Name)
		}
	}
}

func TestSCRAMRejects(t *testing.T) {
	a, _ := newTestAuth(t, testParams(), map[string]string{"alice@example.test": "pw"})
	ctx := context.Background()
	for _, first := range []string{
		"p=tls-unique,,n=alice@example.test,r=abc", // channel binding not offered
		"x,,n=alice@example.test,r=abc",
		"n,,m=ext,n=alice@example.test,r=abc", // RFC 5802 section 5.1: unknown mandatory extension
		"n,,n=alice@example.test",
		"n,,r=abc,n=alice@example.test",
		"n,,n=,r=abc",
		"n,,n=al=ice,r=abc",
		"n,,n=alice,r=a,bc",
		"n,,n=alice,r=",
		"n,b=x,n=alice,r=abc",
		"n,,n=alice,r=abc,1",
		"",
	} {
		srv, _ := a.NewSASL(ctx, "SCRAM-SHA-256")
		if _, _, err := srv.Next([]byte(first)); !errors.Is(err, ErrMalformed) {
			t.Errorf("client-first %q: %v", first, err)
		}
	}
	// A well-formed client-final that tampers with the channel binding or
	// the nonce fails even though the proof would be right otherwise.
	for _, tamper := range []func(string) string{
		func(s string) string { return strings.Replace(s, "c=biws", "c=eSws", 1) },
		func(s string) string { return strings.Replace(s, ",r=abc", ",r=abd", 1) },
		func(s string) string { return s[:strings.LastIndex(s, ",p=")] },
		func(s string) string { return s + "x" },
	} {
		c := &scramClient{user: "alice@example.test", password: "pw", cnonce: "abc"}
		srv, _ := a.NewSASL(ctx, "SCRAM-SHA-256")
		sf, _, err := srv.Next(c.first())
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := c.final(sf)
		bad := tamper(string(cf))
		if _, done, err := srv.Next([]byte(bad)); !errors.Is(err, ErrAuthFailed) || done {
			t.Errorf("tampered client-final %q accepted: %v", bad, err)
		}
	}
	// Unknown users get a server-first that looks like a real one, stable
	// per name, so it tells nothing.
	first := func(user string) string {
		srv, _ := a.NewSASL(ctx, "SCRAM-SHA-256")
		sf, _, err := srv.Next([]byte("n,,n=" + user + ",r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		_, salt, _ := strings.Cut(string(sf), ",s=")
		return salt
	}
	if s1, s2 := first("ghost@example.test"), first("ghost@example.test"); s1 != s2 || !strings.HasSuffix(s1, ",i=4096") {
		t.Fatalf("unknown user salts %q %q", s1, s2)
	}
}

// serverSalt is the s= of the server-first-message SCRAM gives user.
func serverSalt(t *testing.T, a *Authenticator, user string) string {
	t.Helper()
	srv, err := a.NewSASL(context.Background(), "SCRAM-SHA-256")
	if err != nil {
		t.Fatal(err)
	}
	chal, _, err := srv.Next([]byte("n,,n=" + user + ",r=abc"))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range strings.Split(string(chal), ",") {
		if s, ok := strings.CutPrefix(kv, "s="); ok {
			return s
		}
	}
	t.Fatalf("no salt in %q", chal)
	return ""
}

// RFC 5802 section 9: the server-first-message must not tell which
// accounts exist. Every spelling that finds an account (case, spaces, a
// #device suffix) gets its one salt, so an unknown name's spellings must
// share one fake salt too: two unauthenticated AUTHENTICATEs comparing
// "x#a" with "x#b" would otherwise tell a real account from a made-up one.
func TestSCRAMSaltHidesAccounts(t *testing.T) {
	a, _ := newTestAuth(t, testParams(), map[string]string{"alice@example.test": "pw"})
	for _, user := range []string{"alice@example.test", "nobody@example.test"} {
		want := serverSalt(t, a, user)
		for _, spelling := range []string{user + "#phone", user + "#laptop", strings.ToUpper(user), " " + user} {
			if got := serverSalt(t, a, spelling); got != want {
				t.Errorf("salt for %q differs from %q's", spelling, user)
			}
		}
	}
}
