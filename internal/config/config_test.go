package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// designExample is DESIGN.md section 5's example, plus the keys Roost added.
const designExample = `hostname = "mail.example.test"      # greeting/EHLO name
data_dir = "roost-data"             # embedded store and message files

[store]
backend = "sqlite"                  # or "postgres"
dsn = ""                            # for postgres
flag_sync = "always"                # or "deferred" (sqlite only)

[listen]                            # an empty list turns a listener off
smtp        = ["127.0.0.1:2525"]    # MX; STARTTLS offered
submission  = ["127.0.0.1:2587"]    # STARTTLS; AUTH required
submissions = ["127.0.0.1:2465"]    # implicit TLS
imap        = ["127.0.0.1:1143"]
imaps       = ["127.0.0.1:1993"]
pop3        = []
pop3s       = ["127.0.0.1:1995", "[::1]:1995"]
http        = ["127.0.0.1:8080"]    # autoconfig, metrics, health, admin API

[tls]
cert_file = ""                      # empty: a self-signed certificate made in data_dir
key_file  = ""
acme_email = ""                     # set (with public listeners) to get certificates by ACME

[pop3]
delete = "hide"                     # or "expunge", "trash"

[submission]
save_sent = false

[delivery]                          # outbound
smarthost = ""
resolver  = "127.0.0.1:5353"
port      = 2525
[delivery.transport]
"other.test" = "127.0.0.2:2525"

[retention]
deleted_days = 7
tombstone_days = 60

[auth]
argon2_time = 2
argon2_memory_kib = 19456
argon2_threads = 1
fail_delay = "250ms"
cache_ttl = "1m"

[limits]
max_message_bytes = 1048576
`

func TestParseDesignExample(t *testing.T) {
	cfg, err := Parse([]byte(designExample), "roost.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Hostname = "mail.example.test"
	want.Listen.POP3 = []string{}
	want.Listen.POP3S = []string{"127.0.0.1:1995", "[::1]:1995"}
	want.POP3.Delete = POP3Hide
	want.Submission.SaveSent = false
	want.Delivery = Delivery{Resolver: "127.0.0.1:5353", Port: 2525, Transport: map[string]string{"other.test": "127.0.0.2:2525"}}
	want.Retention = Retention{DeletedDays: 7, TombstoneDays: 60}
	want.Auth = Auth{Argon2Time: 2, Argon2MemoryKiB: 19456, Argon2Threads: 1, FailDelay: 250 * time.Millisecond, CacheSize: 1024, CacheTTL: time.Minute}
	want.Limits.MaxMessageBytes = 1 << 20
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	cfg, err := Parse(nil, "empty.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Defaults()) {
		t.Fatalf("empty file differs from Defaults: %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestUnknownKeysNameKeyAndLine(t *testing.T) {
	for _, c := range []struct{ toml, want string }{
		{"hostname = \"x\"\nhostnam = \"y\"\n", `line 2: unknown key "hostnam"`},
		{"[listen]\nimap = []\nimap4 = []\n", `line 3: unknown key "listen.imap4"`},
		{"\n\n[lissen]\nimap = []\n", `line 3: unknown key "lissen"`},
		{"[pop3]\n\n\ndelete.mode = \"x\"\n", `line 4: key "pop3.delete": incompatible types`},
		{"store = { backend = \"sqlite\", flavour = \"x\" }\n", `line 1: unknown key "store.flavour"`},
		{"tls.cert = \"a\"\n", `line 1: unknown key "tls.cert"`},
		{"x = \"\"\"\na = 1\n\"\"\"\n[auth]\nargon3 = 1\n", `line 5: unknown key "auth.argon3"`},
	} {
		_, err := Parse([]byte(c.toml), "f.toml")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "f.toml: ") {
			t.Errorf("%q: error %v, want it to contain %q", c.toml, err, c.want)
		}
	}
}

func TestTypeErrorsNameKeyAndLine(t *testing.T) {
	for _, c := range []struct{ toml, key, line string }{
		{"hostname = 5\n", `"hostname"`, "line 1"},
		{"[listen]\n\nsmtp = \"127.0.0.1:25\"\n", `"listen.smtp"`, "line 3"},
		{"[retention]\ndeleted_days = \"30\"\n", `"retention.deleted_days"`, "line 2"},
		{"[auth]\nfail_delay = \"soon\"\n", `"auth.fail_delay"`, "line 2"},
		{"[auth]\nargon2_threads = 300\n", `"auth.argon2_threads"`, "line 2"},
		{"[submission]\nsave_sent = \"yes\"\n", `"submission.save_sent"`, "line 2"},
		// A bare number would be nanoseconds: 1ns of fail delay is none.
		{"[auth]\n\nfail_delay = 1\n", `"auth.fail_delay"`, "line 3"},
		{"auth.cache_ttl = 600\n", `"auth.cache_ttl"`, "line 1"},
		{"[auth]\ncache_ttl = 1.5\n", `"auth.cache_ttl"`, "line 2"},
	} {
		_, err := Parse([]byte(c.toml), "f.toml")
		if err == nil || !strings.Contains(err.Error(), c.key) || !strings.Contains(err.Error(), c.line) {
			t.Errorf("%q: error %v, want key %s and %s", c.toml, err, c.key, c.line)
		}
	}
	if _, err := Parse([]byte("hostname = \n"), "f.toml"); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("syntax error: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.POP3.Delete = "shred" }, "pop3.delete"},
		{func(c *Config) { c.Store.Backend = "mysql" }, "store.backend"},
		{func(c *Config) { c.Store.Backend = BackendPostgres }, "store.dsn: must be set"},
		{func(c *Config) { c.Store.DSN = "postgres://x" }, "store.dsn: is only used"},
		{func(c *Config) { c.Store.FlagSync = "never" }, "store.flag_sync: must be always or deferred"},
		{func(c *Config) {
			c.Store.Backend, c.Store.DSN, c.Store.FlagSync = BackendPostgres, "postgres://x", FlagSyncDeferred
		}, "store.flag_sync: deferred is only available with the sqlite backend"},
		{func(c *Config) { c.DataDir = "" }, "data_dir"},
		{func(c *Config) { c.Listen.IMAP = []string{"localhost"} }, "listen.imap"},
		{func(c *Config) { c.Listen.IMAP = []string{"127.0.0.1:99999"} }, "listen.imap"},
		{func(c *Config) { c.Listen.POP3 = c.Listen.IMAP }, "listen.pop3: address \"127.0.0.1:1143\" is also used by listen.imap"},
		{func(c *Config) { c.Retention.DeletedDays = -1 }, "retention.deleted_days"},
		{func(c *Config) { c.Retention.TombstoneDays = -1 }, "retention.tombstone_days"},
		{func(c *Config) { c.TLS.CertFile = "a.pem" }, "tls: cert_file and key_file"},
		{func(c *Config) { c.TLS.ACMEEmail = "not an address" }, "tls.acme_email"},
		{func(c *Config) { c.Delivery.Smarthost = "relay" }, "delivery.smarthost"},
		{func(c *Config) { c.Delivery.Port = 0 }, "delivery.port"},
		{func(c *Config) { c.Delivery.Postmaster = "admin" }, "delivery.postmaster"},
		{func(c *Config) { c.Delivery.Transport = map[string]string{"a.test": "x"} }, "delivery.transport.a.test"},
		{func(c *Config) { c.Auth.Argon2Time = 0 }, "auth.argon2_time"},
		{func(c *Config) { c.Auth.Argon2MemoryKiB = 4 }, "auth.argon2_memory_kib"},
		{func(c *Config) { c.Auth.FailDelay = -time.Second }, "auth.fail_delay"},
		{func(c *Config) { c.Limits.MaxMessageBytes = 10 }, "limits.max_message_bytes"},
		{func(c *Config) { c.Hostname = "" }, "hostname"},
		{func(c *Config) { c.LogLevel = "loud" }, "log_level"},
	} {
		cfg := Defaults()
		c.mod(cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want error containing %q, got %v", c.want, err)
		}
	}
	// Every problem is reported, on one line.
	cfg := Defaults()
	cfg.POP3.Delete = "x"
	cfg.Retention.DeletedDays = -1
	err := cfg.Validate()
	if err == nil || strings.Count(err.Error(), ";") != 1 || strings.Contains(err.Error(), "\n") {
		t.Fatalf("joined errors: %v", err)
	}
	// Port 0 (a free port) may repeat.
	cfg = Defaults()
	cfg.Listen.IMAP = []string{"127.0.0.1:0"}
	cfg.Listen.POP3 = []string{"127.0.0.1:0"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "roost.toml")
	if err := os.WriteFile(p, []byte("[pop3]\ndelete = \"burn\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p+": pop3.delete") {
		t.Fatalf("Load validates: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil {
		t.Fatal("missing file loaded")
	}
	os.WriteFile(p, []byte(designExample), 0o600)
	if cfg, err := Load(p); err != nil || cfg.Hostname != "mail.example.test" {
		t.Fatalf("Load: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(designExample)
	f.Add("[listen]\nimap = [\"127.0.0.1:0\"]\n")
	f.Add("a.b.c = 1\n[x]\n[[y]]\nz = 'q'\n")
	f.Add("[delivery.transport]\n\"a.b\" = \"h:1\"\n")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := Parse([]byte(s), "fuzz.toml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.toml: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		_ = cfg.Validate() // must not panic
		_ = cfg.Listen.All()
	})
}

// durationKeys must name every time.Duration in Config, or an integer
// given for a new one would silently mean nanoseconds.
func TestDurationKeysListed(t *testing.T) {
	var found []string
	var walk func(rt reflect.Type, prefix string)
	walk = func(rt reflect.Type, prefix string) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			switch {
			case f.Type == reflect.TypeOf(time.Duration(0)):
				found = append(found, prefix+name)
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, prefix+name+".")
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	var listed []string
	for _, k := range durationKeys {
		listed = append(listed, strings.Join(k, "."))
	}
	slices.Sort(found)
	slices.Sort(listed)
	if !slices.Equal(found, listed) {
		t.Errorf("time.Duration fields %v, durationKeys %v", found, listed)
	}
	if cfg, err := Parse([]byte("[auth]\nfail_delay = \"2s\"\ncache_ttl = \"5m\"\n"), "f.toml"); err != nil || cfg.Auth.FailDelay != 2*time.Second || cfg.Auth.CacheTTL != 5*time.Minute {
		t.Errorf("duration strings: %+v, %v", cfg, err)
	}
}
