package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/roost-mail/roost/internal/tlsutil"
)

// `roost config check` must not say "ok" for a configuration that `roost
// serve` then refuses: a certificate or key that is missing, unreadable or
// not a matching pair fails the check with the reason.
func TestConfigCheckLoadsCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, _, err := tlsutil.SelfSigned(dir, "mail.example.test")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(filepath.Dir(certFile), "selfsigned-key.pem")
	p := filepath.Join(dir, "roost.toml")
	c := cli{t: t, cfgPath: p}
	write := func(cert, key string) {
		t.Helper()
		cfg := fmt.Sprintf("data_dir = %q\n[tls]\ncert_file = %q\nkey_file = %q\n", filepath.Join(dir, "data"), cert, key)
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	write(certFile, keyFile)
	if out := c.ok("", "config", "check"); out != "ok: "+p+"\n" {
		t.Fatalf("config check of a good pair said %q", out)
	}
	write("/nonexistent/cert.pem", "/nonexistent/key.pem")
	c.fails(1, "/nonexistent/cert.pem: no such file or directory", "config", "check")
	// Certificate given as the key too: both files exist, but no pair.
	write(certFile, certFile)
	c.fails(1, "tls: load "+certFile, "config", "check")
	// The check leaves the data directory alone.
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Fatalf("config check touched the data dir: %v", err)
	}
}
