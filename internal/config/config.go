// Package config owns Roost's configuration: the typed Config that mirrors
// the TOML file (DESIGN.md section 5), its defaults, strict loading (an
// unknown key or a value of the wrong type is an error naming the key and
// its line) and Validate.
//
// A Config is a plain value passed down from main; there is no global
// configuration state. Relative paths (data_dir, tls.cert_file,
// tls.key_file) are relative to the working directory of the process, as
// every other command-line tool treats them.
package config

import (
	"os"
	"time"
)

// Config is the whole configuration file.
type Config struct {
	Hostname string `toml:"hostname"` // SMTP greeting/EHLO, IMAP/POP3 greetings
	DataDir  string `toml:"data_dir"` // embedded store, self-signed certificate
	LogLevel string `toml:"log_level"`

	Store      Store      `toml:"store"`
	Listen     Listen     `toml:"listen"`
	TLS        TLS        `toml:"tls"`
	POP3       POP3       `toml:"pop3"`
	Submission Submission `toml:"submission"`
	Delivery   Delivery   `toml:"delivery"`
	Retention  Retention  `toml:"retention"`
	Auth       Auth       `toml:"auth"`
	Limits     Limits     `toml:"limits"`
}

// Store selects the mail store backend.
type Store struct {
	Backend string `toml:"backend"` // "sqlite" or "postgres"
	DSN     string `toml:"dsn"`     // postgres connection string
	// FlagSync is FlagSyncAlways or FlagSyncDeferred: whether a flag
	// change, and the expunge of \Deleted messages, is synced to disk
	// before the client hears OK (sqlite only).
	FlagSync string `toml:"flag_sync"`
}

// Flag sync modes (store.flag_sync).
const (
	FlagSyncAlways   = "always"
	FlagSyncDeferred = "deferred"
)

// Backends.
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

// Listen lists the addresses of each listener; an empty list turns that
// listener off.
type Listen struct {
	SMTP        []string `toml:"smtp"`        // MX, STARTTLS offered
	Submission  []string `toml:"submission"`  // STARTTLS, AUTH required
	Submissions []string `toml:"submissions"` // implicit TLS
	IMAP        []string `toml:"imap"`
	IMAPS       []string `toml:"imaps"`
	POP3        []string `toml:"pop3"`
	POP3S       []string `toml:"pop3s"`
	HTTP        []string `toml:"http"`
}

// Listener names, as used in Listen and in logs.
const (
	ListenSMTP        = "smtp"
	ListenSubmission  = "submission"
	ListenSubmissions = "submissions"
	ListenIMAP        = "imap"
	ListenIMAPS       = "imaps"
	ListenPOP3        = "pop3"
	ListenPOP3S       = "pop3s"
	ListenHTTP        = "http"
)

// Named is one listener kind with its addresses.
type Named struct {
	Name  string
	Addrs []string
	// ImplicitTLS: TLS from the first byte (submissions, imaps, pop3s).
	ImplicitTLS bool
}

// All lists every listener kind in a fixed order.
func (l Listen) All() []Named {
	return []Named{
		{ListenSMTP, l.SMTP, false},
		{ListenSubmission, l.Submission, false},
		{ListenSubmissions, l.Submissions, true},
		{ListenIMAP, l.IMAP, false},
		{ListenIMAPS, l.IMAPS, true},
		{ListenPOP3, l.POP3, false},
		{ListenPOP3S, l.POP3S, true},
		{ListenHTTP, l.HTTP, false},
	}
}

// TLS configures certificates.
type TLS struct {
	CertFile  string `toml:"cert_file"` // empty: self-signed in data_dir
	KeyFile   string `toml:"key_file"`
	ACMEEmail string `toml:"acme_email"` // set: certificates for hostname by ACME
	// ACMEDirectory is the ACME server's directory URL; empty: Let's
	// Encrypt production.
	ACMEDirectory string `toml:"acme_directory"`
}

// POP3 configures POP3 behaviour.
type POP3 struct {
	// Delete is what DELE does: "expunge", "hide" or "trash"
	// (DESIGN.md section 4).
	Delete string `toml:"delete"`
}

// POP3 delete modes.
const (
	POP3Expunge = "expunge"
	POP3Hide    = "hide"
	POP3Trash   = "trash"
)

// Submission configures mail submission.
type Submission struct {
	SaveSent bool `toml:"save_sent"` // file a copy in the sender's Sent
}

// Delivery configures outbound delivery.
type Delivery struct {
	Smarthost string `toml:"smarthost"` // "host:port": relay everything through it
	Resolver  string `toml:"resolver"`  // "host:port" DNS server; empty: the system's
	Port      int    `toml:"port"`      // port of a recipient's MX
	// Transport maps a recipient domain to "host:port", like Postfix's
	// transport map.
	Transport map[string]string `toml:"transport"`
	// Postmaster is the address (an account or alias) that receives mail
	// for postmaster@ any served domain that has no such address of its
	// own (RFC 5321 section 4.5.1); empty: only where one exists.
	Postmaster string `toml:"postmaster"`
}

// Retention configures how long deleted mail and expunge history stay.
type Retention struct {
	// DeletedDays: expunged mail stays recoverable this long.
	DeletedDays int `toml:"deleted_days"`
	// TombstoneDays: expunge tombstones (QRESYNC VANISHED history) are
	// kept this long; a client resyncing from older state gets a full
	// resync instead.
	TombstoneDays int `toml:"tombstone_days"`
}

// Auth configures password hashing and login throttling.
type Auth struct {
	Argon2Time      uint32        `toml:"argon2_time"`       // argon2id passes
	Argon2MemoryKiB uint32        `toml:"argon2_memory_kib"` // argon2id memory
	Argon2Threads   uint8         `toml:"argon2_threads"`    // argon2id lanes
	FailDelay       time.Duration `toml:"fail_delay"`        // wait after a failed login, e.g. "1s"
	CacheSize       int           `toml:"cache_size"`        // accounts with a cached verification; 0: no cache
	CacheTTL        time.Duration `toml:"cache_ttl"`         // how long a cached verification is trusted
}

// Limits bound what clients may send.
type Limits struct {
	// MaxMessageBytes is the largest message accepted by SMTP and
	// APPEND (SMTP SIZE, RFC 1870).
	MaxMessageBytes int64 `toml:"max_message_bytes"`
	// MaxRecipients per SMTP transaction; RFC 5321 section 4.5.3.1.8
	// asks for at least 100.
	MaxRecipients int `toml:"max_recipients"`
}

// Defaults returns the configuration used for every key the file leaves
// out: everything on loopback with unprivileged ports, the embedded store
// in ./roost-data.
func Defaults() *Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return &Config{
		Hostname: host,
		DataDir:  "roost-data",
		LogLevel: "info",
		Store:    Store{Backend: BackendSQLite, FlagSync: FlagSyncAlways},
		Listen: Listen{
			SMTP:        []string{"127.0.0.1:2525"},
			Submission:  []string{"127.0.0.1:2587"},
			Submissions: []string{"127.0.0.1:2465"},
			IMAP:        []string{"127.0.0.1:1143"},
			IMAPS:       []string{"127.0.0.1:1993"},
			POP3:        []string{"127.0.0.1:1110"},
			POP3S:       []string{"127.0.0.1:1995"},
			HTTP:        []string{"127.0.0.1:8080"},
		},
		POP3:       POP3{Delete: POP3Expunge},
		Submission: Submission{SaveSent: true},
		Delivery:   Delivery{Port: 25},
		Retention:  Retention{DeletedDays: 30, TombstoneDays: 90},
		Auth: Auth{
			Argon2Time:      3,
			Argon2MemoryKiB: 64 * 1024,
			Argon2Threads:   2,
			FailDelay:       time.Second,
			CacheSize:       1024,
			CacheTTL:        10 * time.Minute,
		},
		Limits: Limits{MaxMessageBytes: 50 << 20, MaxRecipients: 100},
	}
}
