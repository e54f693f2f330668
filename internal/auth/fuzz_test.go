package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParsePlain(f *testing.F) {
	for _, s := range []string{"\x00alice@example.test\x00secret", "alice\x00alice\x00pw", "\x00\x00", "a\x00b", "\x00u\x00p\x00q", "\x00\xc3\x28\x00pw"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		z, u, p, err := ParsePlain(msg)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || !errors.Is(err, ErrAuthFailed) {
				t.Fatalf("error %v does not wrap ErrMalformed and ErrAuthFailed", err)
			}
			return
		}
		if u == "" || p == "" || !utf8.ValidString(z+u+p) || strings.ContainsRune(z+u+p, 0) {
			t.Fatalf("accepted bad fields %q %q %q", z, u, p)
		}
		if z+"\x00"+u+"\x00"+p != string(msg) {
			t.Fatalf("fields do not reassemble the message")
		}
	})
}

func FuzzParseClientFirst(f *testing.F) {
	for _, s := range []string{
		"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
		"y,,n=alice@example.test#phone,r=abc,x=ext",
		"n,a=al=2Cice,n=al=3Dice,r=abc",
		"p=tls-unique,,n=user,r=abc",
		"n,,m=x,n=user,r=abc",
		"n,,n=user=2,r=abc",
		"n,,",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		cf, err := parseClientFirst(msg)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if cf.gs2Header+cf.bare != string(msg) {
			t.Fatalf("header %q + bare %q != message", cf.gs2Header, cf.bare)
		}
		if cf.username == "" || !validNonce(cf.nonce) || !strings.HasSuffix(cf.gs2Header, ",") {
			t.Fatalf("accepted %+v", cf)
		}
	})
}

func FuzzParseClientFinal(f *testing.F) {
	for _, s := range []string{
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=eSws,r=abc,x=y,p=AAAA",
		"c=biws,r=abc",
		"r=abc,c=biws,p=AAAA",
		"c=!!!,r=abc,p=AAAA",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		cf, err := parseClientFinal(msg)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !strings.HasPrefix(string(msg), cf.withoutProof+",p=") || len(cf.proof) == 0 || !validNonce(cf.nonce) {
			t.Fatalf("accepted %+v", cf)
		}
	})
}

// FuzzSCRAMServer feeds arbitrary client messages to a live exchange: it
// must never panic and never succeed without the password.
func FuzzSCRAMServer(f *testing.F) {
	f.Add([]byte("n,,n=alice@example.test,r=abc"), []byte("c=biws,r=abc,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	f.Add([]byte("y,a=alice@example.test,n=alice@example.test,r=x"), []byte("c=eSxhPWFsaWNlQGV4YW1wbGUudGVzdCw=,r=x,p=AAAA"))
	p := testParams()
	p.FailDelay = 0
	a, _ := newTestAuth(f, p, map[string]string{"alice@example.test": "pw"})
	a.newNonce = func() string { return "" } // lets seeds guess the full nonce
	f.Fuzz(func(t *testing.T, first, final []byte) {
		srv, _ := a.NewSASL(context.Background(), "SCRAM-SHA-256")
		if _, done, err := srv.Next(first); err != nil || done {
			return
		}
		if _, done, err := srv.Next(final); err == nil || done {
			t.Fatalf("exchange succeeded without the password: %q %q", first, final)
		}
	})
}

func FuzzParseStored(f *testing.F) {
	good, _ := HashPassword("pw", testParams())
	f.Add(good)
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$scram-sha-256$i=4096$c2FsdA$AAAA$AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		h, v, err := parseStored(s)
		if err != nil {
			if !errors.Is(err, ErrBadHash) {
				t.Fatalf("error %v does not wrap ErrBadHash", err)
			}
			return
		}
		// Bounds that keep one verification cheap enough.
		if h.memory > 4<<20 || h.time > 64 || h.threads == 0 || (v.iter != 0 && v.iter > 10_000_000) {
			t.Fatalf("accepted costly parameters %+v %+v", h, v)
		}
	})
}
