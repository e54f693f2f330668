package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/app"
	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/config"
	"github.com/roost-mail/roost/internal/mailstore"
)

// cli runs one command in-process against the config file cfgPath.
type cli struct {
	t       *testing.T
	cfgPath string
}

func (c cli) run(stdin string, args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	if c.cfgPath != "" {
		args = append(args, "--config", c.cfgPath)
	}
	code = run(&env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

func (c cli) ok(stdin string, args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(stdin, args...)
	if code != 0 {
		c.t.Fatalf("roost %v: exit %d: %s", args, code, errs)
	}
	return out
}

// fails checks a failure: exit code, one line on stderr containing want.
func (c cli) fails(wantCode int, want string, args ...string) {
	c.t.Helper()
	code, _, errs := c.run("", args...)
	if code != wantCode || !strings.Contains(errs, want) || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "roost: ") {
		c.t.Fatalf("roost %v: exit %d stderr %q; want exit %d and one line containing %q", args, code, errs, wantCode, want)
	}
}

func newCLI(t *testing.T) (cli, string) {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := fmt.Sprintf("data_dir = %q\n[auth]\nargon2_time = 1\nargon2_memory_kib = 64\nargon2_threads = 1\n", data)
	p := filepath.Join(dir, "roost.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cli{t: t, cfgPath: p}, data
}

func TestDirectoryCommands(t *testing.T) {
	c, _ := newCLI(t)
	c.fails(1, "domain example.test is not served here; add it first with: roost domain add example.test", "user", "add", "bob@example.test")
	c.ok("", "domain", "add", "example.test")
	c.fails(1, "domain example.test already exists", "domain", "add", "Example.TEST")
	if out := c.ok("", "domain", "list"); out != "example.test\n" {
		t.Fatalf("domain list %q", out)
	}

	out := c.ok("", "user", "add", "Bob@Example.test")
	m := regexp.MustCompile(`^password for bob@example.test: (\S{20,})\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("generated password output %q", out)
	}
	c.ok("typed secret\n", "user", "add", "--password-stdin", "carol@example.test")
	c.fails(1, "bob@example.test already exists", "user", "add", "bob@example.test", "--password-stdin")
	c.fails(1, "empty password on stdin", "user", "add", "dave@example.test", "--password-stdin")
	c.fails(1, `"dave" is not an address`, "user", "add", "dave")
	if out := c.ok("", "user", "list"); out != "bob@example.test\t0 messages\t0 bytes\ncarol@example.test\t0 messages\t0 bytes\n" {
		t.Fatalf("user list %q", out)
	}

	// The passwords work with auth, as the server would check them.
	cfg, err := config.Load(c.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	login := func(user, pw string) error {
		st, err := app.OpenStore(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		p := app.AuthParams(cfg)
		p.FailDelay = 0
		_, err = auth.New(st, p).Authenticate(context.Background(), user, pw)
		return err
	}
	if err := login("bob@example.test", m[1]); err != nil {
		t.Fatalf("generated password: %v", err)
	}
	if err := login("carol@example.test", "typed secret"); err != nil {
		t.Fatalf("stdin password: %v", err)
	}
	c.ok("changed\r\n", "user", "passwd", "carol@example.test", "--password-stdin")
	if login("carol@example.test", "typed secret") == nil || login("carol@example.test", "changed") != nil {
		t.Fatal("passwd did not change the password")
	}

	c.ok("", "alias", "add", "Info@example.test", "bob@example.test")
	c.fails(1, "no account nobody@example.test", "alias", "add", "x@example.test", "nobody@example.test")
	c.fails(1, "domain other.test is not served here", "alias", "add", "x@other.test", "bob@example.test")
	if out := c.ok("", "alias", "list"); out != "info@example.test\tbob@example.test\n" {
		t.Fatalf("alias list %q", out)
	}
	if out := c.ok("", "mailbox", "list", "info@example.test"); !strings.Contains(out, "INBOX\t-\t0 messages\t0 unseen\t0 bytes\n") || !strings.Contains(out, "Sent\t\\Sent\t") {
		t.Fatalf("mailbox list %q", out)
	}
	c.fails(1, "domain example.test still has accounts or aliases", "domain", "del", "example.test")
	c.ok("", "alias", "del", "info@example.test")
	c.fails(1, "no alias info@example.test", "alias", "del", "info@example.test")
	c.ok("", "user", "del", "bob@example.test")
	c.ok("", "user", "del", "carol@example.test")
	c.fails(1, "no account bob@example.test", "user", "del", "bob@example.test")
	c.fails(1, "no account bob@example.test", "mailbox", "list", "bob@example.test")
	c.ok("", "domain", "del", "example.test")
	c.fails(1, "no domain example.test", "domain", "del", "example.test")
}

func TestDeletedCommands(t *testing.T) {
	c, _ := newCLI(t)
	ctx, _, st, acct := bobStore(t, c)
	box, _ := st.GetMailbox(ctx, acct.ID, "Archive")
	raw := "From: Alice <alice@example.test>\r\nSubject: Quarterly\r\n numbers\r\n\r\nhi\r\n"
	res, err := st.Append(ctx, acct.ID, []mailstore.AppendRequest{{MailboxID: box.ID, Raw: []byte(raw)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Expunge(ctx, acct.ID, box.ID, mailstore.UIDSetOf(res[0].UID)); err != nil {
		t.Fatal(err)
	}
	st.Close()

	out := c.ok("", "deleted", "list", "bob@example.test")
	m := regexp.MustCompile(`^(\d+)\tArchive\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\tAlice <alice@example.test>\tQuarterly numbers\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("deleted list %q", out)
	}
	c.fails(2, `"x" is not a message ID`, "deleted", "restore", "bob@example.test", "x")
	c.fails(1, "no such message", "deleted", "restore", "bob@example.test", "999999")
	if out := c.ok("", "deleted", "restore", "bob@example.test", m[1]); !strings.HasPrefix(out, "restored "+m[1]+" to Archive UID ") {
		t.Fatalf("restore output %q", out)
	}
	if out := c.ok("", "deleted", "list", "bob@example.test"); out != "" {
		t.Fatalf("restored message still listed: %q", out)
	}
	if out := c.ok("", "mailbox", "list", "bob@example.test"); !strings.Contains(out, "Archive\t\\Archive\t1 messages") {
		t.Fatalf("message not back in Archive: %q", out)
	}
}

func TestConfigResolution(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("ROOST_CONFIG", "")
	noCfg := cli{t: t}
	if out := noCfg.ok("", "config", "check"); out != "ok: defaults (no roost.toml)\n" {
		t.Fatalf("no file: %q", out)
	}
	os.WriteFile("roost.toml", []byte("[pop3]\ndelete = \"hide\"\n"), 0o600)
	if out := noCfg.ok("", "config", "check"); out != "ok: roost.toml\n" {
		t.Fatalf("./roost.toml: %q", out)
	}
	os.WriteFile("other.toml", []byte("\n[listen]\nimap4 = []\n"), 0o600)
	t.Setenv("ROOST_CONFIG", "other.toml")
	noCfg.fails(1, `other.toml: line 3: unknown key "listen.imap4"`, "config", "check")
	// --config wins over the environment.
	if out := noCfg.ok("", "config", "check", "--config", "roost.toml"); out != "ok: roost.toml\n" {
		t.Fatalf("--config: %q", out)
	}
	// An explicitly named file must exist.
	noCfg.fails(1, "missing.toml", "config", "check", "--config", "missing.toml")
	t.Setenv("ROOST_CONFIG", "missing.toml")
	noCfg.fails(1, "missing.toml", "config", "check")
	t.Setenv("ROOST_CONFIG", "")
	os.WriteFile("roost.toml", []byte("[pop3]\ndelete = \"shred\"\n"), 0o600)
	noCfg.fails(1, "pop3.delete: must be expunge, hide or trash", "config", "check")
	os.WriteFile("roost.toml", []byte("[retention]\ndeleted_days = \"x\"\n"), 0o600)
	noCfg.fails(1, `line 2: key "retention.deleted_days"`, "config", "check")
}

func TestUsage(t *testing.T) {
	c := cli{t: t}
	c.fails(2, `unknown command "frob"`, "frob")
	c.fails(2, "user needs a verb", "user")
	c.fails(2, `unknown command "user frob"`, "user", "frob")
	c.fails(2, "wrong number of arguments", "user", "add")
	c.fails(2, "flag provided but not defined: -bogus", "domain", "list", "--bogus")
	if code, out, _ := c.run("", "help"); code != 0 || !strings.Contains(out, "deleted restore") || !strings.Contains(out, "--config FILE") {
		t.Fatalf("help: %d %q", code, out)
	}
	if code, out, _ := c.run("", "version"); code != 0 || !strings.HasPrefix(out, "roost ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestQueueCommands(t *testing.T) {
	c, _ := newCLI(t)
	ctx, _, st, acct := bobStore(t, c)
	raw := []byte("From: bob@example.test\r\nTo: x@remote.test\r\nSubject: out\r\n\r\nhi\r\n")
	ids, err := st.Enqueue(ctx, raw, []mailstore.QueueEntry{{
		AccountID: acct.ID, From: "bob@example.test", Recipients: []string{"x@remote.test"}, Domain: "remote.test",
		NextAttempt: time.Now().Add(time.Hour), LastError: "451 4.4.1 try\nlater",
	}})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(ids[0], 10)
	out := c.ok("", "queue", "list")
	if !regexp.MustCompile(`^` + id + `\tbob@example.test\tx@remote.test\t0 attempts\t\S+Z\t451 4.4.1 try later\n$`).MatchString(out) {
		t.Fatalf("queue list %q", out)
	}
	if out := c.ok("", "queue", "retry", id); out != "1 entries due now\n" {
		t.Fatalf("queue retry %q", out)
	}
	c.fails(2, `"x" is not a queue entry ID`, "queue", "drop", "x")
	if out := c.ok("", "queue", "drop", id); out != "1 entries dropped\n" {
		t.Fatalf("queue drop %q", out)
	}
	if out := c.ok("", "queue", "list"); out != "" {
		t.Fatalf("dropped entry still listed: %q", out)
	}
	// The drop bounced the message to its local sender.
	if out := c.ok("", "mailbox", "list", "bob@example.test"); !strings.Contains(out, "INBOX\t-\t1 messages") {
		t.Fatalf("no bounce in the sender's INBOX: %q", out)
	}
}

func TestMigrate(t *testing.T) {
	c, data := newCLI(t)
	out := c.ok("", "migrate")
	if !strings.Contains(out, "sqlite store schema is current") {
		t.Fatalf("migrate said %q", out)
	}
	if _, err := os.Stat(filepath.Join(data, "roost.db")); err != nil {
		t.Fatalf("migrate made no store: %v", err)
	}
	c.ok("", "migrate") // a second run finds nothing to do
	c.fails(2, "flag provided but not defined", "migrate", "--bogus")
}

// bobStore adds domain example.test and bob@example.test through the CLI
// and opens the store beside it, for a test to set up what the commands
// under test then see; close it before running them.
func bobStore(t *testing.T, c cli) (context.Context, *config.Config, mailstore.Store, mailstore.Account) {
	t.Helper()
	c.ok("", "domain", "add", "example.test")
	c.ok("pw\n", "user", "add", "bob@example.test", "--password-stdin")
	ctx, cfg, st := openStore(t, c)
	acct, err := st.GetAccount(ctx, "bob@example.test")
	if err != nil {
		t.Fatal(err)
	}
	return ctx, cfg, st, acct
}

// openStore opens the CLI's store the way its commands do; close it
// before running a command that writes.
func openStore(t *testing.T, c cli) (context.Context, *config.Config, mailstore.Store) {
	t.Helper()
	cfg, err := config.Load(c.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := app.OpenStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return ctx, cfg, st
}
