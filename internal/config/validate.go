package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"strings"
)

// Validate checks the values of every key and reports all problems at
// once, joined into one line ("key: problem; key: problem").
func (c *Config) Validate() error {
	var v validator
	if c.Hostname == "" || strings.ContainsAny(c.Hostname, " \t\r\n/") {
		v.add("hostname", "must be a host name, got %q", c.Hostname)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		v.add("log_level", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	switch c.Store.Backend {
	case BackendSQLite:
		if c.DataDir == "" {
			v.add("data_dir", "must be set for the sqlite backend")
		}
		if c.Store.DSN != "" {
			v.add("store.dsn", "is only used by the postgres backend")
		}
	case BackendPostgres:
		if c.Store.DSN == "" {
			v.add("store.dsn", "must be set for the postgres backend")
		}
	default:
		v.add("store.backend", "must be sqlite or postgres, got %q", c.Store.Backend)
	}
	switch c.Store.FlagSync {
	case FlagSyncAlways:
	case FlagSyncDeferred:
		// PostgreSQL could commit asynchronously too, but a crash of its
		// server cannot be told from here, so lost flag changes could not
		// be made up for (storage/sqlite/flagsync.go).
		if c.Store.Backend == BackendPostgres {
			v.add("store.flag_sync", "deferred is only available with the sqlite backend")
		}
	default:
		v.add("store.flag_sync", "must be always or deferred, got %q", c.Store.FlagSync)
	}

	seen := map[string]string{}
	for _, l := range c.Listen.All() {
		for _, a := range l.Addrs {
			key := "listen." + l.Name
			if err := checkHostPort(a, true); err != nil {
				v.add(key, "%v", err)
				continue
			}
			// Port 0 picks a free port each time and is never a clash.
			if _, port, _ := net.SplitHostPort(a); port != "0" {
				if other, dup := seen[a]; dup {
					v.add(key, "address %q is also used by listen.%s", a, other)
				}
				seen[a] = l.Name
			}
		}
	}

	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		v.add("tls", "cert_file and key_file must be set together")
	}
	if c.TLS.ACMEEmail != "" {
		if _, err := mail.ParseAddress(c.TLS.ACMEEmail); err != nil {
			v.add("tls.acme_email", "is not an email address: %q", c.TLS.ACMEEmail)
		}
		if c.TLS.CertFile != "" {
			v.add("tls.acme_email", "cannot be used together with cert_file")
		}
	}

	switch c.POP3.Delete {
	case POP3Expunge, POP3Hide, POP3Trash:
	default:
		v.add("pop3.delete", "must be expunge, hide or trash, got %q", c.POP3.Delete)
	}

	if c.Delivery.Smarthost != "" {
		if err := checkHostPort(c.Delivery.Smarthost, false); err != nil {
			v.add("delivery.smarthost", "%v", err)
		}
	}
	if c.Delivery.Resolver != "" {
		if err := checkHostPort(c.Delivery.Resolver, false); err != nil {
			v.add("delivery.resolver", "%v", err)
		}
	}
	if c.Delivery.Postmaster != "" && !strings.Contains(c.Delivery.Postmaster, "@") {
		v.add("delivery.postmaster", "is not an address: %q", c.Delivery.Postmaster)
	}
	if c.Delivery.Port < 1 || c.Delivery.Port > 65535 {
		v.add("delivery.port", "must be 1-65535, got %d", c.Delivery.Port)
	}
	for dom, route := range c.Delivery.Transport {
		if dom == "" || strings.ContainsAny(dom, " @/:") {
			v.add("delivery.transport", "%q is not a domain", dom)
		}
		if err := checkHostPort(route, false); err != nil {
			v.add("delivery.transport."+dom, "%v", err)
		}
	}

	if c.Retention.DeletedDays < 0 {
		v.add("retention.deleted_days", "must be >= 0, got %d", c.Retention.DeletedDays)
	}
	if c.Retention.TombstoneDays < 0 {
		v.add("retention.tombstone_days", "must be >= 0, got %d", c.Retention.TombstoneDays)
	}

	// RFC 9106 section 3.1: t >= 1, p >= 1, m >= 8*p KiB.
	if c.Auth.Argon2Time < 1 || c.Auth.Argon2Time > 64 {
		v.add("auth.argon2_time", "must be 1-64, got %d", c.Auth.Argon2Time)
	}
	if c.Auth.Argon2Threads < 1 {
		v.add("auth.argon2_threads", "must be >= 1")
	}
	if c.Auth.Argon2MemoryKiB < 8*uint32(max(c.Auth.Argon2Threads, 1)) || c.Auth.Argon2MemoryKiB > 4<<20 {
		v.add("auth.argon2_memory_kib", "must be between 8*argon2_threads and 4194304, got %d", c.Auth.Argon2MemoryKiB)
	}
	if c.Auth.FailDelay < 0 {
		v.add("auth.fail_delay", "must be >= 0")
	}
	if c.Auth.CacheSize < 0 {
		v.add("auth.cache_size", "must be >= 0")
	}
	if c.Auth.CacheTTL < 0 {
		v.add("auth.cache_ttl", "must be >= 0")
	}

	if c.Limits.MaxMessageBytes < 1024 {
		v.add("limits.max_message_bytes", "must be at least 1024, got %d", c.Limits.MaxMessageBytes)
	}
	if c.Limits.MaxRecipients < 1 {
		v.add("limits.max_recipients", "must be >= 1, got %d", c.Limits.MaxRecipients)
	}
	return v.err()
}

type validator struct{ problems []string }

func (v *validator) add(key, format string, args ...any) {
	v.problems = append(v.problems, key+": "+fmt.Sprintf(format, args...))
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(v.problems, "; "))
}

// checkHostPort accepts "host:port" with a numeric port (0 only when
// allowZero: a listener on a free port).
func checkHostPort(s string, allowZero bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if strings.ContainsAny(host, " \t") {
		return fmt.Errorf("%q has a bad host", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !allowZero) {
		return fmt.Errorf("%q has a bad port", s)
	}
	return nil
}
