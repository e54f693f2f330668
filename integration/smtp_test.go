package integration

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// SMTP against the real binary: two roost processes on loopback, A serving
// a.test and B serving b.test, with A's transport map routing b.test to
// B's MX. swaks is the independent sender; go-imap's imapclient observes
// the mailboxes. Helpers carry an smtp prefix: the package is shared with
// other protocols' tests.

const (
	// smtpWait bounds waits for mail that crosses the queue without a
	// retry in between (a hang guard, not a performance assertion).
	smtpWait = 60 * time.Second
	// smtpRetryWait bounds the wait after `roost queue retry`. The CLI
	// is another process: the running server's worker must be woken
	// through the store (mailstore.QueueWatchID; SQLite's poller looks
	// once a second), so the deadline sits well below the worker's idle
	// cap (one minute, queue.Config.MaxIdle), which alone would not meet
	// it. A deadline, not a performance assertion.
	smtpRetryWait = 20 * time.Second
)

// smtpAddUsers adds domain and the given local parts (password
// imapPassword, so that imapLoginClient works) through r's CLI.
func smtpAddUsers(t *testing.T, r *Roost, domain string, locals ...string) {
	t.Helper()
	if code, _, errs := r.CLI(t, "", "domain", "add", domain); code != 0 {
		t.Fatalf("domain add %s: %s", domain, errs)
	}
	for _, l := range locals {
		if code, _, errs := r.CLI(t, imapPassword+"\n", "user", "add", l+"@"+domain, "--password-stdin"); code != 0 {
			t.Fatalf("user add %s@%s: %s", l, domain, errs)
		}
	}
}

// smtpStartPair starts B (bob@b.test) and then A (alice@a.test,
// carol@a.test) with b.test routed to B's MX listener.
func smtpStartPair(t *testing.T) (a, b *Roost) {
	t.Helper()
	bin := BuildRoost(t)
	b = StartRoost(t, bin, "")
	smtpAddUsers(t, b, "b.test", "bob")
	a = StartRoost(t, bin, fmt.Sprintf("[delivery.transport]\n\"b.test\" = %q\n", b.Addr["smtp"]))
	smtpAddUsers(t, a, "a.test", "alice", "carol")
	return a, b
}

// smtpSwaks runs swaks against addr with args and returns its exit code
// and output (0: accepted, 24: every recipient refused).
func smtpSwaks(t *testing.T, swaks, addr string, args ...string) (int, string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	full := append([]string{"120", swaks, "--server", host, "--port", port, "--helo", "client.example.net", "--timeout", "30"}, args...)
	out, err := exec.Command("timeout", full...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatalf("swaks: %v", err)
	}
	return 0, string(out)
}

// smtpSubmit submits raw from user through r's submission listener with
// AUTH PLAIN (plain text is allowed on loopback) and requires success.
func smtpSubmit(t *testing.T, swaks string, r *Roost, user string, rcpts []string, raw []byte) {
	t.Helper()
	// swaks ends DATA with CRLF "." CRLF after the file's content, so the
	// file leaves out raw's final CRLF for the server to get raw exactly.
	file := filepath.Join(t.TempDir(), "message.eml")
	if err := os.WriteFile(file, bytes.TrimSuffix(raw, []byte("\r\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := smtpSwaks(t, swaks, r.Addr["submission"], "--auth", "PLAIN", "--auth-user", user,
		"--auth-password", imapPassword, "--from", user, "--to", strings.Join(rcpts, ","), "--data", file)
	if code != 0 {
		t.Fatalf("swaks submission from %s to %v: exit %d\n%s", user, rcpts, code, out)
	}
}

// smtpMessage is a small message with the given Message-ID (without
// angle brackets).
func smtpMessage(from, to, subject, msgID string) []byte {
	return []byte(fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: Wed, 25 Nov 2026 12:00:00 +0000\r\n"+
		"Message-ID: <%s>\r\n\r\nBody of %s.\r\n", from, to, subject, msgID, subject))
}

// smtpHasMessageID reports whether raw's header carries Message-ID <id>.
func smtpHasMessageID(raw []byte, id string) bool {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	re := regexp.MustCompile(`(?im)^message-id:\s*<` + regexp.QuoteMeta(id) + `>\s*$`)
	return re.Match(head)
}

// smtpWithID returns the messages of msgs whose Message-ID is id.
func smtpWithID(msgs []imapMessage, id string) []imapMessage {
	var out []imapMessage
	for _, m := range msgs {
		if smtpHasMessageID(m.Body, id) {
			out = append(out, m)
		}
	}
	return out
}

// smtpAwait polls user's mailbox on r until match holds for a message, and
// returns it; it fails after wait with what the mailbox held. Each poll
// logs in afresh so that a server restart between polls does no harm.
func smtpAwait(t *testing.T, r *Roost, user, mailbox, what string, wait time.Duration, match func(imapMessage) bool) imapMessage {
	t.Helper()
	var last []imapMessage
	for deadline := time.Now().Add(wait); ; time.Sleep(500 * time.Millisecond) {
		c := imapLoginClient(t, r, user, nil)
		last = imapMailbox(t, c, mailbox)
		c.Logout().Wait()
		c.Close()
		for _, m := range last {
			if match(m) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not in %s's %s after %v; it holds %v", what, user, mailbox, wait, last)
		}
	}
}

// smtpQueueList runs `roost queue list` on r and returns its lines.
func smtpQueueList(t *testing.T, r *Roost) []string {
	t.Helper()
	code, out, errs := r.CLI(t, "", "queue", "list")
	if code != 0 {
		t.Fatalf("queue list: exit %d: %s", code, errs)
	}
	if out == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

// smtpQueueLine is one line of `roost queue list`: ID, sender,
// recipients, "N attempts", next attempt (RFC 3339), last error.
var smtpQueueLine = regexp.MustCompile(`^(\d+)\t(\S+)\t(\S+)\t(\d+) attempts\t(\S+)\t(.*)$`)

// smtpAwaitQueued polls `roost queue list` until the single entry shows at
// least one failed attempt, and returns its fields (ID first).
func smtpAwaitQueued(t *testing.T, r *Roost, from, rcpt string) []string {
	t.Helper()
	var lines []string
	for deadline := time.Now().Add(smtpWait); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		lines = smtpQueueList(t, r)
		if len(lines) == 1 {
			if f := smtpQueueLine.FindStringSubmatch(lines[0]); f != nil && f[4] != "0" && f[6] != "" {
				if f[2] != from || f[3] != rcpt {
					t.Fatalf("queue entry %q: want sender %s and recipient %s", lines[0], from, rcpt)
				}
				if _, err := time.Parse(time.RFC3339, f[5]); err != nil {
					t.Fatalf("queue entry %q: next attempt: %v", lines[0], err)
				}
				return f[1:]
			}
		}
	}
	t.Fatalf("queue list never showed one entry with a failed attempt; last: %q", lines)
	return nil
}

// smtpRelaunch starts a stopped server again on its own config and data
// dir (same listeners), waiting until /healthz answers.
func smtpRelaunch(t *testing.T, old *Roost) *Roost {
	t.Helper()
	select {
	case <-old.exited:
	default:
		t.Fatal("smtpRelaunch: the old process still runs")
	}
	r := &Roost{Bin: old.Bin, Dir: old.Dir, Config: old.Config, Addr: old.Addr, DemoPassword: old.DemoPassword}
	r.cmd = exec.Command(r.Bin, "serve", "--config", r.Config)
	r.cmd.Dir = r.Dir
	r.cmd.Stdout = io.Discard
	r.stderr = &syncBuffer{}
	r.cmd.Stderr = r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.exited = make(chan struct{})
	go func() { r.err = r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() { r.Stop(t) })
	r.waitHealthy(t)
	return r
}

func TestSMTPReceiveSubmitForward(t *testing.T) {
	swaks := imapTool(t, "swaks", "swaks")
	a, b := smtpStartPair(t)

	// Inbound over A's MX: stored in carol's INBOX by the time of the 250.
	code, out := smtpSwaks(t, swaks, a.Addr["smtp"], "--from", "sender@example.net", "--to", "carol@a.test",
		"--header", "Subject: inbound over MX", "--header", "Message-Id: <mx-1@example.net>", "--body", "hello carol")
	if code != 0 {
		t.Fatalf("swaks to carol over MX: exit %d\n%s", code, out)
	}
	c := imapLoginClient(t, a, "carol@a.test", nil)
	if got := smtpWithID(imapMailbox(t, c, "INBOX"), "mx-1@example.net"); len(got) != 1 || !strings.Contains(string(got[0].Body), "Subject: inbound over MX\r\n") {
		t.Fatalf("carol's INBOX after MX delivery: %v", got)
	}

	// RFC 5321 section 3.3: an unknown local user is refused at RCPT;
	// swaks exits 24 when no recipient is accepted.
	if code, out := smtpSwaks(t, swaks, a.Addr["smtp"], "--from", "sender@example.net", "--to", "nobody@a.test"); code != 24 || !strings.Contains(out, "<** 550 5.1.1 ") {
		t.Fatalf("swaks to an unknown user: exit %d, want 24 after 550 5.1.1\n%s", code, out)
	}

	// Submission to a local and a remote recipient.
	const id = "submitted-1@a.test"
	raw := smtpMessage("alice@a.test", "carol@a.test", "submitted to two", id)
	smtpSubmit(t, swaks, a, "alice@a.test", []string{"carol@a.test", "bob@b.test"}, raw)
	if got := smtpWithID(imapMailbox(t, c, "INBOX"), id); len(got) != 1 {
		t.Fatalf("carol's INBOX right after submission: %d copies of %s", len(got), id)
	}
	smtpAwait(t, b, "bob@b.test", "INBOX", "the submitted message", smtpWait, func(m imapMessage) bool {
		return smtpHasMessageID(m.Body, id) && bytes.HasSuffix(m.Body, []byte("\r\nBody of submitted to two.\r\n"))
	})

	// DESIGN section 4: one copy in Sent, \Seen; the client's own APPEND
	// of the same message finds it instead of storing a second one.
	ac := imapLoginClient(t, a, "alice@a.test", nil)
	sent := imapMailbox(t, ac, "Sent")
	if len(sent) != 1 || !smtpHasMessageID(sent[0].Body, id) || !sent[0].has(imap.FlagSeen) {
		t.Fatalf("alice's Sent after submission: %v", sent)
	}
	if uid := imapAppend(t, ac, "Sent", raw, imap.FlagSeen); uid != sent[0].UID {
		t.Errorf("APPEND of the filed message into Sent: APPENDUID %d, want the existing UID %d", uid, sent[0].UID)
	}
	if again := imapMailbox(t, ac, "Sent"); len(again) != 1 {
		t.Errorf("Sent after the client's APPEND holds %d messages, want 1: %v", len(again), again)
	}

	// A permanent failure at B (no such user) comes back to alice as a
	// DSN (RFC 3464, in RFC 6522's multipart/report).
	smtpSubmit(t, swaks, a, "alice@a.test", []string{"nosuchuser@b.test"},
		smtpMessage("alice@a.test", "nosuchuser@b.test", "to nobody", "bounce-1@a.test"))
	dsn := smtpAwait(t, a, "alice@a.test", "INBOX", "the DSN for nosuchuser@b.test", smtpWait, func(m imapMessage) bool {
		return regexp.MustCompile(`(?i)content-type:\s*multipart/report;\s*report-type="?delivery-status`).Match(m.Body)
	})
	// RFC 3464 section 2.3: per-recipient fields; the address type may be
	// followed by white space.
	for _, want := range []string{`(?m)^Content-Type: message/delivery-status\r$`, `(?m)^Final-Recipient: rfc822; ?nosuchuser@b\.test\r$`,
		`(?m)^Action: failed\r$`, `(?m)^Status: 5\.1\.1\r$`, `(?m)^Diagnostic-Code: smtp; ?550 `, `(?m)^Message-ID: <bounce-1@a\.test>\r$`} {
		if !regexp.MustCompile(want).Match(dsn.Body) {
			t.Errorf("DSN lacks %s:\n%s", want, dsn.Body)
		}
	}
	if lines := smtpQueueList(t, a); len(lines) != 0 {
		t.Errorf("queue after delivery and bounce: %q, want empty", lines)
	}
}

// TestSMTPQueueRetryAndRestart: mail for a peer that is down waits in A's
// queue, survives a restart of A, and goes out after `roost queue retry`
// once the peer is back.
func TestSMTPQueueRetryAndRestart(t *testing.T) {
	swaks := imapTool(t, "swaks", "swaks")
	a, b := smtpStartPair(t)
	if err := b.Stop(t); err != nil {
		t.Fatalf("stop B: %v\n%s", err, b.Stderr())
	}

	const id = "while-down-1@a.test"
	smtpSubmit(t, swaks, a, "alice@a.test", []string{"bob@b.test"}, smtpMessage("alice@a.test", "bob@b.test", "while B is down", id))
	entry := smtpAwaitQueued(t, a, "alice@a.test", "bob@b.test")
	t.Logf("queued: %q", entry)

	// SIGTERM and start again: the entry is still there.
	if err := a.Stop(t); err != nil {
		t.Fatalf("stop A: %v\n%s", err, a.Stderr())
	}
	a = smtpRelaunch(t, a)
	if again := smtpAwaitQueued(t, a, "alice@a.test", "bob@b.test"); again[0] != entry[0] {
		t.Fatalf("after restart the queue holds entry %q, want ID %s", again, entry[0])
	}

	b = smtpRelaunch(t, b)
	code, out, errs := a.CLI(t, "", "queue", "retry")
	if code != 0 || out != "1 entries due now\n" {
		t.Fatalf("queue retry: exit %d, %q %s", code, out, errs)
	}
	start := time.Now()
	smtpAwait(t, b, "bob@b.test", "INBOX", "the queued message after retry", smtpRetryWait, func(m imapMessage) bool {
		return smtpHasMessageID(m.Body, id)
	})
	// Not a figure to assert (performance is for benchmarks): how long
	// the running worker took to act on a retry made by another process.
	t.Logf("delivered %v after `roost queue retry`", time.Since(start).Round(100*time.Millisecond))
	for deadline := time.Now().Add(smtpWait); len(smtpQueueList(t, a)) != 0; time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("queue not empty after delivery: %q", smtpQueueList(t, a))
		}
	}
	c := imapLoginClient(t, b, "bob@b.test", nil)
	if got := smtpWithID(imapMailbox(t, c, "INBOX"), id); len(got) != 1 {
		t.Fatalf("bob's INBOX holds %d copies of %s, want 1", len(got), id)
	}
}
