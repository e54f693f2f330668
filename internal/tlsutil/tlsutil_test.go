package tlsutil

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// handshake serves one TLS connection on 127.0.0.1 with cfg and returns the
// certificate the client saw, verified against roots for serverName.
func handshake(t *testing.T, cfg *tls.Config, roots *x509.CertPool, serverName string) (*x509.Certificate, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.(*tls.Conn).Handshake()
		io.Copy(io.Discard, c)
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: serverName})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

func poolOf(t *testing.T, certFile string) *x509.CertPool {
	t.Helper()
	pemData, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pemData) {
		t.Fatal("bad PEM")
	}
	return p
}

func TestSelfSigned(t *testing.T) {
	dir := t.TempDir()
	c, err := New(Options{Hostname: "mail.example.test", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != "self-signed" || c.SelfSignedCert != filepath.Join(dir, "tls", "selfsigned-cert.pem") {
		t.Fatalf("source %q file %q", c.Source, c.SelfSignedCert)
	}
	fi, err := os.Stat(filepath.Join(dir, "tls", "selfsigned-key.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	roots := poolOf(t, c.SelfSignedCert)
	for _, name := range []string{"mail.example.test", "localhost", "127.0.0.1"} {
		if _, err := handshake(t, c.TLSConfig(), roots, name); err != nil {
			t.Fatalf("handshake as %s: %v", name, err)
		}
	}
	if _, err := handshake(t, c.TLSConfig(), roots, "other.test"); err == nil {
		t.Fatal("certificate valid for a name it should not cover")
	}
	if v := c.TLSConfig().MinVersion; v != tls.VersionTLS12 {
		t.Fatalf("MinVersion %x", v)
	}

	// A restart keeps the same certificate...
	before, _ := os.ReadFile(c.SelfSignedCert)
	if _, err := New(Options{Hostname: "mail.example.test", Dir: dir}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(c.SelfSignedCert)
	if !bytes.Equal(before, after) {
		t.Fatal("self-signed certificate replaced on restart")
	}
	// ...unless the hostname changed or the file is damaged.
	if _, err := New(Options{Hostname: "new.example.test", Dir: dir}); err != nil {
		t.Fatal(err)
	}
	renamed, _ := os.ReadFile(c.SelfSignedCert)
	if bytes.Equal(before, renamed) {
		t.Fatal("certificate not renewed for a new hostname")
	}
	os.WriteFile(c.SelfSignedCert, []byte("garbage"), 0o644)
	if _, err := New(Options{Hostname: "new.example.test", Dir: dir}); err != nil {
		t.Fatalf("damaged certificate not replaced: %v", err)
	}
}

func TestCertFilesReload(t *testing.T) {
	dir := t.TempDir()
	cert1, key1, _ := makeSelfSigned("one.example.test")
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(certFile, cert1, 0o644)
	os.WriteFile(keyFile, key1, 0o600)
	c, err := New(Options{CertFile: certFile, KeyFile: keyFile, Hostname: "ignored"})
	if err != nil || c.Source != "files" {
		t.Fatalf("%v %q", err, c.Source)
	}
	roots := poolOf(t, certFile)
	if _, err := handshake(t, c.TLSConfig(), roots, "one.example.test"); err != nil {
		t.Fatal(err)
	}
	// Renewal on disk: served without restart once the recheck interval
	// passed.
	cert2, key2, _ := makeSelfSigned("two.example.test")
	os.WriteFile(certFile, cert2, 0o644)
	os.WriteFile(keyFile, key2, 0o600)
	later := time.Now().Add(time.Hour)
	os.Chtimes(certFile, later, later)
	c.files.every = 0
	if _, err := handshake(t, c.TLSConfig(), poolOf(t, certFile), "two.example.test"); err != nil {
		t.Fatalf("renewed certificate not served: %v", err)
	}

	if _, err := New(Options{CertFile: filepath.Join(dir, "missing.pem"), KeyFile: keyFile}); err == nil {
		t.Fatal("missing certificate file accepted")
	}
	os.WriteFile(keyFile, key1, 0o600) // key no longer matches cert2
	if _, err := New(Options{CertFile: certFile, KeyFile: keyFile}); err == nil {
		t.Fatal("mismatched key accepted")
	}
}

func TestACMEWiring(t *testing.T) {
	// ACME cannot be exercised without a CA; check that it is selected,
	// offers the tls-alpn-01 protocol and answers http-01 paths itself.
	c, err := New(Options{Hostname: "mail.example.test", ACMEEmail: "ops@example.test", Dir: t.TempDir()})
	if err != nil || c.Source != "acme" {
		t.Fatalf("%v %q", err, c.Source)
	}
	if p := c.TLSConfig().NextProtos; len(p) != 1 || p[0] != "acme-tls/1" {
		t.Fatalf("NextProtos %v", p)
	}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	h := c.HTTPHandler(inner)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://mail.example.test/healthz", nil))
	if rec.Code != 299 {
		t.Fatalf("non-challenge path not passed through: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://mail.example.test/.well-known/acme-challenge/x", nil))
	if rec.Code == 299 {
		t.Fatal("challenge path passed to the inner handler")
	}
	self, _ := New(Options{Hostname: "h", Dir: t.TempDir()})
	if self.HTTPHandler(inner) == nil || len(self.TLSConfig().NextProtos) != 0 {
		t.Fatal("non-ACME source changed the HTTP handler or ALPN")
	}
}
