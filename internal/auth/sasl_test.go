package auth

import (
	"context"
	"errors"
	"testing"

	"github.com/emersion/go-sasl"
)

// runClient drives a server exchange with a go-sasl client (an independent
// implementation of PLAIN and LOGIN). Without ir the client waits for the
// server's first challenge (empty for PLAIN, "Username:" for LOGIN) and
// sends what would have been its initial response, as a client without
// SASL-IR does.
func runClient(t *testing.T, srv SASL, c sasl.Client, ir bool) error {
	t.Helper()
	_, resp, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	if !ir {
		chal, done, err := srv.Next(nil)
		if err != nil || done || (len(chal) != 0 && string(chal) != "Username:") {
			t.Fatalf("first challenge without initial response: %q %v %v", chal, done, err)
		}
	}
	for {
		chal, done, err := srv.Next(resp)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if resp, err = c.Next(chal); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPLAIN(t *testing.T) {
	a, _ := newTestAuth(t, testParams(), map[string]string{"alice@example.test": "pw one"})
	ctx := context.Background()
	cases := []struct {
		authzid, user, pw string
		ir, ok            bool
	}{
		{"", "alice@example.test", "pw one", true, true},
		{"", "alice@example.test", "pw one", false, true},
		{"alice@example.test", "alice@example.test", "pw one", true, true},
		{"ALICE@example.test", "alice@example.test#phone", "pw one", true, true},
		{"", "alice@example.test#tablet", "pw one", false, true},
		{"bob@example.test", "alice@example.test", "pw one", true, false},
		{"", "alice@example.test", "pw two", true, false},
		{"", "nobody@example.test", "pw one", true, false},
	}
	for _, c := range cases {
		srv, _ := a.NewSASL(ctx, "PLAIN")
		err := runClient(t, srv, sasl.NewPlainClient(c.authzid, c.user, c.pw), c.ir)
		if c.ok {
			if err != nil || srv.Account().Name != "alice@example.test" || srv.Username() != c.user {
				t.Errorf("%+v: err %v account %q username %q", c, err, srv.Account().Name, srv.Username())
			}
		} else if !errors.Is(err, ErrAuthFailed) || srv.Account().Name != "" {
			t.Errorf("%+v: err %v account %q, want failure", c, err, srv.Account().Name)
		}
		if _, _, err := srv.Next([]byte("again")); err == nil {
			t.Errorf("%+v: Next after the end succeeded", c)
		}
	}
}

func TestParsePlainRejects(t *testing.T) {
	for _, m := range []string{"", "\x00", "\x00\x00", "a\x00b", "a\x00\x00pw", "\x00user\x00", "\x00u\x00p\x00", "\x00\xff\x00pw"} {
		if _, _, _, err := ParsePlain([]byte(m)); !errors.Is(err, ErrMalformed) || !errors.Is(err, ErrAuthFailed) {
			t.Errorf("ParsePlain(%q) = %v", m, err)
		}
	}
	z, u, p, err := ParsePlain([]byte("\x00user\x00pass word"))
	if err != nil || z != "" || u != "user" || p != "pass word" {
		t.Fatalf("ParsePlain: %q %q %q %v", z, u, p, err)
	}
}

func TestLOGIN(t *testing.T) {
	a, _ := newTestAuth(t, testParams(), map[string]string{"alice@example.test": "pw"})
	ctx := context.Background()
	// Exact prompts of draft-murchison-sasl-login section 2.
	srv, _ := a.NewSASL(ctx, "LOGIN")
	chal, done, err := srv.Next(nil)
	if string(chal) != "Username:" || done || err != nil {
		t.Fatalf("first challenge %q %v %v", chal, done, err)
	}
	chal, done, err = srv.Next([]byte("alice@example.test#phone"))
	if string(chal) != "Password:" || done || err != nil {
		t.Fatalf("second challenge %q %v %v", chal, done, err)
	}
	if _, done, err = srv.Next([]byte("pw")); !done || err != nil || srv.Account().Name != "alice@example.test" || srv.Username() != "alice@example.test#phone" {
		t.Fatalf("final: %v %v %+v", done, err, srv.Account())
	}
	for _, ir := range []bool{true, false} {
		srv, _ := a.NewSASL(ctx, "LOGIN")
		if err := runClient(t, srv, sasl.NewLoginClient("alice@example.test", "pw"), ir); err != nil {
			t.Fatalf("go-sasl LOGIN client (ir=%v): %v", ir, err)
		}
		srv, _ = a.NewSASL(ctx, "LOGIN")
		if err := runClient(t, srv, sasl.NewLoginClient("alice@example.test", "nope"), ir); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("wrong LOGIN password: %v", err)
		}
	}
	srv, _ = a.NewSASL(ctx, "LOGIN")
	if _, _, err := srv.Next([]byte{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty username: %v", err)
	}
}
