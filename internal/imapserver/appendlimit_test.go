package imapserver

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

const alice = "alice@example.test"

// sizedMessage is a message of exactly n bytes (n >= 20).
func sizedMessage(n int) string {
	head := "Subject: sized\r\n\r\n"
	return head + strings.Repeat("x", n-len(head))
}

func setQuota(t *testing.T, env *testEnv, user string, bytes, messages int64) {
	t.Helper()
	if err := env.store.SetQuota(context.Background(), user, bytes, messages); err != nil {
		t.Fatalf("SetQuota: %v", err)
	}
}

// statusLimit asks STATUS (APPENDLIMIT) of a mailbox and returns the
// value as sent.
func statusLimit(t *testing.T, c *rawClient, mailbox string) string {
	t.Helper()
	lines := c.ok("STATUS " + mailbox + " (APPENDLIMIT)")
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, `* STATUS "`+mailbox+`" (APPENDLIMIT `); ok {
			return strings.TrimSuffix(v, ")")
		}
	}
	t.Fatalf("no STATUS response in %q", lines)
	return ""
}

// RFC 7889 sections 2, 3.1 and 3.2: the capability form and the
// per-mailbox value, without and with a quota, re-read while logged in.
func TestAppendLimitStatus(t *testing.T) {
	env := newTestEnv(t, Config{AppendLimit: 1000})

	// No quota: one limit for all mailboxes, in the capability too.
	c := env.dial(t)
	mustHave(t, c.cmd("CAPABILITY"), `^\* CAPABILITY .* APPENDLIMIT=1000( |$)`)
	mustHave(t, c.cmd("LOGIN "+quote(alice)+" "+quote(testPassword)), `^t\d+ OK \[CAPABILITY .* APPENDLIMIT=1000[ \]]`)
	if got := statusLimit(t, c, "INBOX"); got != "1000" {
		t.Fatalf("STATUS APPENDLIMIT without quota = %s, want 1000", got)
	}

	// A quota set during the session lowers the limit to what is left,
	// and the capability turns to the bare form (limits per mailbox).
	setQuota(t, env, alice, 600, 0)
	if got := statusLimit(t, c, "INBOX"); got != "600" {
		t.Fatalf("STATUS APPENDLIMIT with 600-byte quota = %s, want 600", got)
	}
	caps := c.cmd("CAPABILITY")
	mustHave(t, caps, `^\* CAPABILITY .* APPENDLIMIT( |$)`)
	if hasLine(caps, `APPENDLIMIT=`) {
		t.Fatalf("APPENDLIMIT=n advertised with a per-account limit: %q", caps)
	}

	// Usage lowers it further, in every mailbox (STATUS and LIST-STATUS).
	env.deliver(t, alice, sizedMessage(250))
	if got := statusLimit(t, c, "Sent"); got != "350" {
		t.Fatalf("STATUS APPENDLIMIT after 250 bytes used = %s, want 350", got)
	}
	lines := c.ok(`LIST "" "*" RETURN (STATUS (MESSAGES APPENDLIMIT))`)
	boxes, statuses := 0, 0
	for _, l := range lines {
		if strings.HasPrefix(l, "* LIST ") {
			boxes++
		}
		if strings.HasPrefix(l, "* STATUS ") {
			statuses++
			if !strings.HasSuffix(l, " APPENDLIMIT 350)") {
				t.Fatalf("LIST-STATUS line %q, want APPENDLIMIT 350", l)
			}
		}
	}
	if boxes < 2 || statuses != boxes {
		t.Fatalf("LIST-STATUS: %d mailboxes, %d STATUS lines:\n%s", boxes, statuses, strings.Join(lines, "\n"))
	}

	// A quota with more room than the configured limit: the configured
	// limit holds, the capability stays bare (it moves with usage).
	setQuota(t, env, alice, 1<<20, 0)
	if got := statusLimit(t, c, "INBOX"); got != "1000" {
		t.Fatalf("STATUS APPENDLIMIT with large quota = %s, want 1000", got)
	}

	// A quota lowered below the usage gives 0 ("no APPEND can
	// succeed"), never a negative number.
	setQuota(t, env, alice, 100, 0)
	if got := statusLimit(t, c, "INBOX"); got != "0" {
		t.Fatalf("STATUS APPENDLIMIT over quota = %s, want 0", got)
	}

	// A fresh login of an account with a quota sees the bare form in
	// the LOGIN reply; the greeting before login keeps the server-wide one.
	c2 := env.dial(t)
	mustHave(t, c2.cmd("CAPABILITY"), `APPENDLIMIT=1000`)
	mustHave(t, c2.cmd("LOGIN "+quote(alice)+" "+quote(testPassword)), `^t\d+ OK \[CAPABILITY .* APPENDLIMIT[ \]]`)

	// Another account without a quota keeps APPENDLIMIT=n.
	c3 := env.dial(t)
	mustHave(t, c3.cmd("LOGIN "+quote("bob@example.test")+" "+quote(testPassword)), `APPENDLIMIT=1000[ \]]`)
	if got := statusLimit(t, c3, "INBOX"); got != "1000" {
		t.Fatalf("bob STATUS APPENDLIMIT = %s, want 1000", got)
	}
}

// RFC 7889 section 4: a message over the limit gets NO [TOOBIG], before its
// data is sent when the literal is synchronizing; nothing is stored and the
// session goes on.
func TestAppendOverLimit(t *testing.T) {
	env := newTestEnv(t, Config{AppendLimit: 1000})
	c := env.login(t, alice)
	setQuota(t, env, alice, 600, 0)

	// Synchronizing literal over the quota's limit: refused at once,
	// without the "+" continuation.
	lines := c.cmd("APPEND INBOX {700}")
	mustHave(t, lines, `^t\d+ NO \[TOOBIG\] Message larger than the space left in your quota$`)
	if hasLine(lines, `^\+`) {
		t.Fatalf("continuation sent for an over-limit literal: %q", lines)
	}

	// Non-synchronizing: the data is read and dropped, then NO.
	msg := sizedMessage(700)
	mustHave(t, c.cmd("APPEND INBOX {700+}\r\n"+msg), `^t\d+ NO \[TOOBIG\]`)

	// Over the configured limit itself (no quota involved in the text).
	setQuota(t, env, alice, 0, 0)
	mustHave(t, c.cmd("APPEND INBOX {1001}"), `^t\d+ NO \[TOOBIG\] Message too big$`)
	setQuota(t, env, alice, 600, 0)

	// MULTIAPPEND with the second message over the limit: all or none
	// (RFC 3502 section 6.3.11).
	small := sizedMessage(100)
	mustHave(t, c.cmd(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s {700+}\r\n%s", len(small), small, msg)), `^t\d+ NO \[TOOBIG\]`)

	// The session is intact and nothing was stored.
	c.ok("NOOP")
	mustHave(t, c.ok("STATUS INBOX (MESSAGES SIZE)"), `^\* STATUS "INBOX" \(MESSAGES 0 SIZE 0\)$`)

	// Exactly the space left fits; then the limit is 0 and a 1-byte
	// synchronizing literal is refused before it is sent.
	exact := sizedMessage(600)
	mustHave(t, c.cmd("APPEND INBOX {600+}\r\n"+exact), `^t\d+ OK \[APPENDUID \d+ 1\]`)
	if got := statusLimit(t, c, "INBOX"); got != "0" {
		t.Fatalf("APPENDLIMIT after filling the quota = %s, want 0", got)
	}
	mustHave(t, c.cmd("APPEND INBOX {1}"), `^t\d+ NO \[TOOBIG\]`)
	mustHave(t, c.ok("STATUS INBOX (MESSAGES)"), `^\* STATUS "INBOX" \(MESSAGES 1\)$`)
}

// RFC 9208 section 4.3.1: an APPEND (or COPY) that fits the per-message
// limit but would take the account over its quota gets NO [OVERQUOTA], and
// stores nothing.
func TestAppendOverQuota(t *testing.T) {
	env := newTestEnv(t, Config{AppendLimit: 1000})
	c := env.login(t, alice)
	setQuota(t, env, alice, 600, 0)

	// Two messages that each fit but not together (MULTIAPPEND, RFC 3502:
	// all or none).
	m := sizedMessage(400)
	mustHave(t, c.cmd(fmt.Sprintf("APPEND INBOX {400+}\r\n%s {400+}\r\n%s", m, m)), `^t\d+ NO \[OVERQUOTA\] Quota exceeded$`)
	mustHave(t, c.ok("STATUS INBOX (MESSAGES)"), `^\* STATUS "INBOX" \(MESSAGES 0\)$`)

	// A message-count quota: the second message is over it.
	setQuota(t, env, alice, 0, 1)
	mustHave(t, c.cmd("APPEND INBOX {400+}\r\n"+m), `^t\d+ OK \[APPENDUID \d+ 1\]`)
	mustHave(t, c.cmd("APPEND INBOX {400+}\r\n"+m), `^t\d+ NO \[OVERQUOTA\]`)

	// COPY goes through the same mapping.
	c.ok("SELECT INBOX")
	mustHave(t, c.cmd("COPY 1 Sent"), `^t\d+ NO \[OVERQUOTA\]`)

	// The session survives; still one message in all.
	c.ok("NOOP")
	mustHave(t, c.ok("STATUS Sent (MESSAGES)"), `^\* STATUS "Sent" \(MESSAGES 0\)$`)
	mustHave(t, c.ok("STATUS INBOX (MESSAGES)"), `^\* STATUS "INBOX" \(MESSAGES 1\)$`)
}
