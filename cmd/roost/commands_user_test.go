package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/roost-mail/roost/internal/app"
	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/config"
)

// A password piped in with --password-stdin used to be cut to its first
// 4096 bytes without a word, so the account was made but the password the
// operator meant never logged in. Now an over-long line is refused and
// nothing is changed; 4096 bytes, with or without a newline, still work.
func TestPasswordStdinTooLong(t *testing.T) {
	c, _ := newCLI(t)
	c.ok("", "domain", "add", "example.test")
	long := strings.Repeat("p", 5000)
	max := strings.Repeat("q", 4096)

	code, _, errs := c.run(long+"\n", "user", "add", "bob@example.test", "--password-stdin")
	if code != 1 || errs != "roost: password longer than 4096 bytes\n" {
		t.Fatalf("user add with a 5000-byte password: exit %d %q", code, errs)
	}
	if out := c.ok("", "user", "list"); out != "" {
		t.Fatalf("the refused user add made an account: %q", out)
	}
	// Exactly one byte too many, with no newline at all.
	code, _, errs = c.run(max+"x", "user", "add", "bob@example.test", "--password-stdin")
	if code != 1 || !strings.Contains(errs, "password longer than 4096 bytes") {
		t.Fatalf("user add with a 4097-byte password: exit %d %q", code, errs)
	}

	c.ok(max+"\r\n", "user", "add", "bob@example.test", "--password-stdin")
	code, _, errs = c.run(long, "user", "passwd", "bob@example.test", "--password-stdin")
	if code != 1 || errs != "roost: password longer than 4096 bytes\n" {
		t.Fatalf("user passwd with a 5000-byte password: exit %d %q", code, errs)
	}

	cfg, _ := config.Load(c.cfgPath)
	ctx := context.Background()
	st, err := app.OpenStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := app.AuthParams(cfg)
	p.FailDelay = 0
	a := auth.New(st, p)
	if _, err := a.Authenticate(ctx, "bob@example.test", max); err != nil {
		t.Errorf("the 4096-byte password does not log in (or the refused passwd changed it): %v", err)
	}
	if _, err := a.Authenticate(ctx, "bob@example.test", long[:4096]); err == nil {
		t.Errorf("the truncated 5000-byte password logs in")
	}
	c.ok(max, "user", "passwd", "bob@example.test", "--password-stdin")
}
