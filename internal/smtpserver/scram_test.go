package smtpserver

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
)

// scramLogin runs a SCRAM-SHA-256 client exchange (RFC 5802, RFC 7677) on
// the wire, including the final 334 carrying the server signature that
// RFC 4954 section 4 prescribes, and checks the server's signature.
func scramLogin(t *testing.T, w *wire, user, pass string) {
	t.Helper()
	b64 := base64.StdEncoding
	nb := make([]byte, 18)
	rand.Read(nb)
	cnonce := b64.EncodeToString(nb)
	bare := "n=" + user + ",r=" + cnonce
	r := w.cmd("AUTH SCRAM-SHA-256 "+b64.EncodeToString([]byte("n,,"+bare)), "334 ")
	sfirst, err := b64.DecodeString(strings.TrimPrefix(r, "334 "))
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]string{}
	for _, kv := range strings.Split(string(sfirst), ",") {
		if len(kv) > 2 {
			attrs[kv[:1]] = kv[2:]
		}
	}
	salt, _ := b64.DecodeString(attrs["s"])
	iter, _ := strconv.Atoi(attrs["i"])
	if !strings.HasPrefix(attrs["r"], cnonce) {
		t.Fatalf("server nonce %q", attrs["r"])
	}
	salted, err := pbkdf2.Key(sha256.New, pass, salt, iter, 32)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(k []byte, s string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(s)); return h.Sum(nil) }
	ck := mac(salted, "Client Key")
	sk := sha256.Sum256(ck)
	without := "c=biws,r=" + attrs["r"]
	authMsg := bare + "," + string(sfirst) + "," + without
	sig := mac(sk[:], authMsg)
	proof := make([]byte, len(ck))
	for i := range ck {
		proof[i] = ck[i] ^ sig[i]
	}
	r = w.cmd(b64.EncodeToString([]byte(without+",p="+b64.EncodeToString(proof))), "334 ")
	final, _ := b64.DecodeString(strings.TrimPrefix(r, "334 "))
	want := "v=" + b64.EncodeToString(mac(mac(salted, "Server Key"), authMsg))
	if string(final) != want {
		t.Fatalf("server final %q, want %q", final, want)
	}
	w.cmd("", "235 ")
}
