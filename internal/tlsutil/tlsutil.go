// Package tlsutil owns Roost's certificates: certificate and key files
// given by the operator (re-read when they change on disk, so a renewal by
// certbot needs no restart), certificates obtained by ACME
// (golang.org/x/crypto/acme/autocert), or, by default, a self-signed ECDSA
// certificate made once and kept in the data directory so that clients
// that pinned it keep trusting it across restarts.
package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// Options say where certificates come from. Exactly one source is used:
// CertFile/KeyFile if set, else ACME if ACMEEmail is set, else a
// self-signed certificate in Dir.
type Options struct {
	Hostname          string
	CertFile, KeyFile string
	ACMEEmail         string
	ACMEDirectory     string // empty: Let's Encrypt production
	Dir               string // data directory: self-signed cert, ACME cache
}

// Certs serves certificates to TLS listeners.
type Certs struct {
	// Source says where certificates come from: "files", "acme" or
	// "self-signed".
	Source string
	// SelfSignedCert is the PEM file of the self-signed certificate (for
	// operators who want to import it into a client); "" otherwise.
	SelfSignedCert string

	get   func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	acme  *autocert.Manager
	files *certFiles
}

// New prepares the certificate source. For files and the self-signed
// certificate it loads (or makes) them now, so a bad file fails startup
// rather than the first handshake.
func New(o Options) (*Certs, error) {
	switch {
	case o.CertFile != "" || o.KeyFile != "":
		f := &certFiles{cert: o.CertFile, key: o.KeyFile, every: 5 * time.Second}
		if _, err := f.load(); err != nil {
			return nil, err
		}
		return &Certs{Source: "files", get: f.get, files: f}, nil
	case o.ACMEEmail != "":
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			Cache:      autocert.DirCache(filepath.Join(o.Dir, "acme")),
			HostPolicy: autocert.HostWhitelist(o.Hostname),
			Email:      o.ACMEEmail,
		}
		if o.ACMEDirectory != "" {
			m.Client = &acme.Client{DirectoryURL: o.ACMEDirectory}
		}
		return &Certs{Source: "acme", get: m.GetCertificate, acme: m}, nil
	default:
		certFile, cert, err := SelfSigned(o.Dir, o.Hostname)
		if err != nil {
			return nil, err
		}
		return &Certs{Source: "self-signed", SelfSignedCert: certFile, get: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }}, nil
	}
}

// CheckFiles loads an operator's certificate and key the way New does,
// for `roost config check`, which must fail where serve would fail but
// without making anything in the data directory.
func CheckFiles(certFile, keyFile string) error {
	_, err := (&certFiles{cert: certFile, key: keyFile}).load()
	return err
}

// TLSConfig returns a server configuration for the listeners. TLS 1.2 is
// the floor (RFC 8996 retired 1.0 and 1.1; RFC 8314 section 4.1 asks mail
// services for current TLS).
func (c *Certs) TLSConfig() *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get}
	if c.acme != nil {
		cfg.NextProtos = append(cfg.NextProtos, acme.ALPNProto)
	}
	return cfg
}

// HTTPHandler wraps the HTTP listener's handler so that ACME http-01
// challenges are answered (the listener must then be reachable on port
// 80); without ACME it returns h unchanged.
func (c *Certs) HTTPHandler(h http.Handler) http.Handler {
	if c.acme == nil {
		return h
	}
	return c.acme.HTTPHandler(h)
}

// certFiles re-reads an operator's certificate and key when either file
// changes, checking at most every few seconds.
type certFiles struct {
	cert, key string
	every     time.Duration // how often the files are checked

	mu      sync.Mutex
	current *tls.Certificate // guarded by mu
	stamp   string           // mtimes and sizes the current pair was read at
	checked time.Time
}

func (f *certFiles) stat() (string, error) {
	var s string
	for _, p := range []string{f.cert, f.key} {
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("tls: %w", err)
		}
		s += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return s, nil
}

func (f *certFiles) load() (*tls.Certificate, error) {
	stamp, err := f.stat()
	if err != nil {
		return nil, err
	}
	pair, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("tls: load %s and %s: %w", f.cert, f.key, err)
	}
	f.mu.Lock()
	f.current, f.stamp, f.checked = &pair, stamp, time.Now()
	f.mu.Unlock()
	return &pair, nil
}

func (f *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	cur, stamp, fresh := f.current, f.stamp, time.Since(f.checked) < f.every
	if !fresh {
		f.checked = time.Now()
	}
	f.mu.Unlock()
	if fresh {
		return cur, nil
	}
	if s, err := f.stat(); err == nil && s != stamp {
		// A half-written renewal fails to load: keep serving the old
		// pair until the files are whole.
		if pair, err := f.load(); err == nil {
			return pair, nil
		}
	}
	return cur, nil
}

// SelfSigned returns the self-signed certificate kept in dir, making a new
// one when there is none, it does not cover hostname, or it expires within
// 30 days. It returns the certificate file's path.
func SelfSigned(dir, hostname string) (string, *tls.Certificate, error) {
	tdir := filepath.Join(dir, "tls")
	certFile, keyFile := filepath.Join(tdir, "selfsigned-cert.pem"), filepath.Join(tdir, "selfsigned-key.pem")
	// A missing, damaged, expiring or wrong-name pair is replaced rather
	// than refusing to start: it is ours, nobody else relies on it.
	if pair, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil {
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err == nil && leaf.VerifyHostname(hostname) == nil && time.Until(leaf.NotAfter) > 30*24*time.Hour {
			return certFile, &pair, nil
		}
	}
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return "", nil, fmt.Errorf("tls: %w", err)
	}
	certPEM, keyPEM, err := makeSelfSigned(hostname)
	if err != nil {
		return "", nil, err
	}
	// Key first, then certificate, each via rename: a crash leaves
	// either the old pair or a key whose certificate is missing (which
	// the next start replaces), never a certificate with a foreign key.
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return "", nil, err
	}
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return "", nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return "", nil, fmt.Errorf("tls: %w", err)
	}
	return certFile, &pair, nil
}

func makeSelfSigned(hostname string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("tls: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"Roost self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(2 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{hostname, "localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(hostname); ip != nil {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("tls: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("tls: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	return nil
}
