package app

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/roost-mail/roost/internal/config"
	"github.com/roost-mail/roost/internal/mailstore"
)

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.Hostname = "mail.example.test"
	cfg.DataDir = t.TempDir()
	free := []string{"127.0.0.1:0"}
	cfg.Listen = config.Listen{SMTP: free, Submission: free, Submissions: free, IMAP: free, IMAPS: free, POP3: free, POP3S: free, HTTP: free}
	cfg.Auth.Argon2Time, cfg.Auth.Argon2MemoryKiB, cfg.Auth.Argon2Threads = 1, 64, 1
	cfg.Auth.FailDelay = 10 * time.Millisecond
	return cfg
}

// greeting reads the first line a server sends, over TLS when tlsOn.
func greeting(t *testing.T, addr net.Addr, tlsOn bool) string {
	t.Helper()
	var c net.Conn
	var err error
	if tlsOn {
		c, err = tls.Dial("tcp", addr.String(), &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = net.Dial("tcp", addr.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	return line
}

func TestStartServeShutdown(t *testing.T) {
	cfg := testConfig(t)
	a, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pw, err := EnsureDemo(ctx, a.Store, cfg)
	if err != nil || len(pw) < 20 {
		t.Fatalf("demo password %q: %v", pw, err)
	}
	if again, err := EnsureDemo(ctx, a.Store, cfg); err != nil || again != "" {
		t.Fatalf("demo made twice: %q %v", again, err)
	}
	if _, err := a.Auth.Authenticate(ctx, DemoAccount, pw); err != nil {
		t.Fatalf("demo login: %v", err)
	}

	ls, err := a.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 8 {
		t.Fatalf("%d listeners, want 8: %v", len(ls), ls)
	}
	want := map[string]string{
		"smtp": "220 ", "submission": "220 ", "submissions": "220 ",
		"imap": "* OK", "imaps": "* OK", "pop3": "+OK", "pop3s": "+OK",
	}
	for _, l := range ls {
		if l.Name == "http" {
			resp, err := http.Get("http://" + l.Addr.String() + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "ok\n" {
				t.Fatalf("healthz %d %q", resp.StatusCode, body)
			}
			resp, _ = http.Get("http://" + l.Addr.String() + "/metrics")
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), "roost_auth_password_hashes_total") {
				t.Fatal("auth metrics missing")
			}
			continue
		}
		implicit := l.Name == "submissions" || l.Name == "imaps" || l.Name == "pop3s"
		if g := greeting(t, l.Addr, implicit); !strings.HasPrefix(g, want[l.Name]) {
			t.Errorf("%s greeting %q, want %q", l.Name, g, want[l.Name])
		}
	}
	if _, err := a.Start(ctx); err == nil {
		t.Fatal("second Start succeeded")
	}

	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := a.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if c, err := net.DialTimeout("tcp", l.Addr.String(), time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepting after Shutdown", l.Name)
		}
	}
}

func TestDemoOnlyWithoutAccounts(t *testing.T) {
	cfg := testConfig(t)
	a, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	ctx := context.Background()
	// A domain the operator added (even example.test) does not stop the
	// demo account; an account does.
	if err := a.Store.AddDomain(ctx, DemoDomain); err != nil {
		t.Fatal(err)
	}
	if pw, err := EnsureDemo(ctx, a.Store, cfg); err != nil || pw == "" {
		t.Fatalf("demo with a domain but no account: %q %v", pw, err)
	}
	if err := a.Store.DeleteAccount(ctx, DemoAccount); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Store.AddAccount(ctx, "ops@"+DemoDomain, "x"); err != nil {
		t.Fatal(err)
	}
	if pw, err := EnsureDemo(ctx, a.Store, cfg); err != nil || pw != "" {
		t.Fatalf("demo made beside a real account: %q %v", pw, err)
	}
}

func TestStartFailsWholeOnPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := testConfig(t)
	cfg.Listen.POP3 = []string{busy.Addr().String()}
	a, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	if _, err := a.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "listen pop3 on "+busy.Addr().String()) {
		t.Fatalf("Start with a busy port: %v", err)
	}
}

func TestPurgeUnderLease(t *testing.T) {
	cfg := testConfig(t)
	a, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	ctx := context.Background()
	if _, err := EnsureDemo(ctx, a.Store, cfg); err != nil {
		t.Fatal(err)
	}
	acct, _ := a.Store.GetAccount(ctx, DemoAccount)
	inbox, _ := a.Store.GetMailbox(ctx, acct.ID, "INBOX")
	res, err := a.Store.Append(ctx, acct.ID, []mailstore.AppendRequest{{MailboxID: inbox.ID, Raw: []byte("From: a@example.test\r\nSubject: old\r\n\r\nbody\r\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Store.Expunge(ctx, acct.ID, inbox.ID, mailstore.UIDSetOf(res[0].UID)); err != nil {
		t.Fatal(err)
	}
	if del, _ := a.Store.ListDeleted(ctx, acct.ID); len(del) != 1 {
		t.Fatalf("deleted list %v", del)
	}
	// Within the window nothing goes; the lease is ours.
	if !a.purgeOnce(ctx, time.Now()) {
		t.Fatal("first purge did not run")
	}
	if del, _ := a.Store.ListDeleted(ctx, acct.ID); len(del) != 1 {
		t.Fatal("message purged inside the retention window")
	}
	// Another node sharing the store skips while the lease holds.
	other := &App{cfg: a.cfg, log: a.log, nodeID: "other-node", Store: a.Store}
	if other.purgeOnce(ctx, time.Now()) {
		t.Fatal("second node purged while the lease was held")
	}
	// Past the window (and the lease), the message goes.
	later := time.Now().Add(time.Duration(cfg.Retention.DeletedDays+1) * 24 * time.Hour)
	if !a.purgeOnce(ctx, later) {
		t.Fatal("purge after the window did not run")
	}
	if del, _ := a.Store.ListDeleted(ctx, acct.ID); len(del) != 0 {
		t.Fatalf("message kept after the retention window: %v", del)
	}
}

// A listener that stops on its own (not by Shutdown) leaves a server that
// can no longer do all it was configured for: Failed says so, with the
// listener's name, and /healthz answers 503, so that serve exits for a
// supervisor to restart it instead of running on half-deaf.
func TestListenerStoppingFailsTheApp(t *testing.T) {
	cfg := testConfig(t)
	a, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ls, err := a.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(ctx)
	var httpAddr string
	for _, l := range ls {
		if l.Name == "http" {
			httpAddr = l.Addr.String()
		}
	}
	if a.Failure() != nil {
		t.Fatalf("failed before anything stopped: %v", a.Failure())
	}
	a.mu.Lock()
	for i, l := range ls {
		if l.Name == "pop3" {
			a.listeners[i].Close()
		}
	}
	a.mu.Unlock()
	select {
	case <-a.Failed():
	case <-time.After(5 * time.Second):
		t.Fatal("Failed not closed after the pop3 listener stopped")
	}
	if err := a.Failure(); err == nil || !strings.Contains(err.Error(), "pop3") {
		t.Fatalf("Failure() = %v, want the pop3 listener named", err)
	}
	resp, err := http.Get("http://" + httpAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("healthz %d after a listener stopped, want 503", resp.StatusCode)
	}
}

// A message just under limits.max_message_bytes is accepted by the MX
// (SIZE allows it) and must then be stored, although the server prepends
// a Received: field that takes it over the configured number: refusing it
// at that point would be a permanent failure for mail SIZE accepted.
func TestMessageAtSizeLimitStoredWithTrace(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxMessageBytes = 4096
	a, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := EnsureDemo(ctx, a.Store, cfg); err != nil {
		t.Fatal(err)
	}
	ls, err := a.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(ctx)
	var smtpAddr string
	for _, l := range ls {
		if l.Name == "smtp" {
			smtpAddr = l.Addr.String()
		}
	}
	msg := "From: s@remote.test\r\nTo: " + DemoAccount + "\r\nSubject: big\r\n\r\n"
	for len(msg) < 4000 {
		msg += strings.Repeat("x", 70) + "\r\n"
	}
	c, err := smtp.Dial(smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail("s@remote.test", []string{DemoAccount}, strings.NewReader(msg)); err != nil {
		t.Fatalf("a %d-byte message under the 4096-byte limit: %v", len(msg), err)
	}
	acct, err := a.Store.GetAccount(ctx, DemoAccount)
	if err != nil {
		t.Fatal(err)
	}
	if acct.UsedMessages != 1 {
		t.Fatalf("demo has %d messages, want the one accepted", acct.UsedMessages)
	}
}
