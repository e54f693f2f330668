package imapserver

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Several devices of one account over real sockets: A idles while B acts
// and mail arrives; every change reaches A at once (reads have deadlines,
// nothing sleeps); a device connecting later sees the result.
func TestSeveralDevicesIdle(t *testing.T) {
	env := newTestEnv(t, Config{})
	const user = "alice@example.test"
	for i := 1; i <= 3; i++ {
		env.deliver(t, user, testMessage(i))
	}
	a := env.login(t, user)
	a.ok("SELECT INBOX")
	a.send("i1 IDLE")
	a.expect(`^\+ `)

	b := env.login(t, user)
	b.ok("SELECT INBOX")

	b.ok(`STORE 1 +FLAGS (\Flagged)`)
	a.expect(`^\* 1 FETCH \(UID 1 FLAGS \(\\Flagged\)\)$`)

	b.ok("CREATE Work")
	b.ok("MOVE 2 Work")
	a.expect(`^\* 2 EXPUNGE$`)

	env.deliver(t, user, testMessage(4))
	a.expect(`^\* 3 EXISTS$`)

	b.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	a.expect(`^\* 1 FETCH \(UID 1 FLAGS \(\\Deleted \\Flagged\)\)$`)
	b.ok("EXPUNGE")
	a.expect(`^\* 1 EXPUNGE$`)

	b.ok("APPEND INBOX {11+}\r\nSubject: x\r\n")
	a.expect(`^\* 3 EXISTS$`)

	a.send("DONE")
	a.expect(`^i1 OK IDLE completed$`)
	lines := a.ok("FETCH 1:* (UID FLAGS)")
	mustHave(t, lines, `^\* 1 FETCH \(UID 3 FLAGS \(\)\)$`, `^\* 2 FETCH \(UID 4 FLAGS \(\)\)$`, `^\* 3 FETCH \(UID 5 FLAGS \(\)\)$`)

	// A device that logs in afterwards sees the same state.
	c := env.login(t, user)
	lines = c.ok("SELECT INBOX")
	mustHave(t, lines, `^\* 3 EXISTS$`)
	lines = c.ok("STATUS Work (MESSAGES)")
	mustHave(t, lines, `^\* STATUS "Work" \(MESSAGES 1\)$`)
	lines = c.ok("UID FETCH 1:* FLAGS")
	if hasLine(lines, `UID [12] `) {
		t.Fatalf("expunged messages still visible: %q", lines)
	}
}

// RFC 9051 section 7.5.1: no EXPUNGE during FETCH, STORE or SEARCH; the
// sequence numbers stay consistent until a command that allows it.
func TestExpungeDeferred(t *testing.T) {
	_, a, b := twoDevices(t, 3)
	b.ok("SELECT INBOX")
	b.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	b.ok("EXPUNGE")

	for _, cmd := range []string{"FETCH 1:* UID", "STORE 3 +FLAGS.SILENT (\\Seen)", "SEARCH ALL"} {
		lines := a.ok(cmd)
		if hasLine(lines, `EXPUNGE`) {
			t.Fatalf("%s: EXPUNGE sent: %q", cmd, lines)
		}
	}
	// The FETCH above still numbered UID 3 as 3.
	lines := a.ok("FETCH 3 UID")
	mustHave(t, lines, `^\* 3 FETCH \(UID 3\)$`)
	lines = a.ok("NOOP")
	mustHave(t, lines, `^\* 1 EXPUNGE$`)
	lines = a.ok("FETCH 2 UID")
	mustHave(t, lines, `^\* 2 FETCH \(UID 3\)$`)

	// A UID command may announce expunges (after its own data, which
	// still uses the old numbers).
	b.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	b.ok("EXPUNGE")
	lines = a.ok("UID FETCH 1:* UID")
	mustHave(t, lines, `^\* 2 FETCH \(UID 3\)$`, `^\* 1 EXPUNGE$`)
}

// The selected mailbox deleted by another device: BYE, not confusion.
func TestSelectedMailboxDeleted(t *testing.T) {
	env := newTestEnv(t, Config{})
	const user = "alice@example.test"
	a := env.login(t, user)
	a.ok("CREATE Gone")
	a.ok("SELECT Gone")
	b := env.login(t, user)
	b.ok("DELETE Gone")
	a.send("n1 NOOP")
	a.expect(`^\* BYE `)
}

// QRESYNC (RFC 7162 section 3.2.5): a device that comes back learns what
// vanished and which flags changed, from the tombstones and modseqs.
func TestQresyncAfterChanges(t *testing.T) {
	env := newTestEnv(t, Config{})
	const user = "alice@example.test"
	for i := 1; i <= 3; i++ {
		env.deliver(t, user, testMessage(i))
	}
	a := env.login(t, user)
	a.ok("ENABLE QRESYNC")
	lines := a.ok("SELECT INBOX")
	validity := submatch(t, lines, `UIDVALIDITY (\d+)`)
	modseq := submatch(t, lines, `HIGHESTMODSEQ (\d+)`)
	a.ok("LOGOUT")

	b := env.login(t, user)
	b.ok("SELECT INBOX")
	b.ok(`STORE 1 +FLAGS (\Answered)`)
	b.ok(`STORE 2 +FLAGS (\Deleted)`)
	b.ok("EXPUNGE")
	env.deliver(t, user, testMessage(4))

	a2 := env.login(t, user)
	a2.ok("ENABLE QRESYNC")
	lines = a2.ok("SELECT INBOX (QRESYNC (" + validity + " " + modseq + " 1:3))")
	mustHave(t, lines,
		`^\* 3 EXISTS$`,
		`^\* VANISHED \(EARLIER\) 2$`,
		`^\* 1 FETCH \(UID 1 FLAGS \(\\Answered\) MODSEQ \(\d+\)\)$`,
		`^\* 3 FETCH \(UID 4 FLAGS \(\) MODSEQ \(\d+\)\)$`,
	)
	if hasLine(lines, `UID 3 `) {
		t.Fatalf("unchanged message reported: %q", lines)
	}
	// Wrong UIDVALIDITY: a plain SELECT, no VANISHED.
	lines = a2.ok("SELECT INBOX (QRESYNC (1 " + modseq + "))")
	if hasLine(lines, "VANISHED") {
		t.Fatalf("VANISHED with a wrong UIDVALIDITY: %q", lines)
	}
	// Once QRESYNC is on, expunges are VANISHED.
	b.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	b.ok("EXPUNGE")
	lines = a2.ok("NOOP")
	mustHave(t, lines, `^\* VANISHED 1$`)
}

func submatch(t *testing.T, lines []string, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	for _, l := range lines {
		if m := rx.FindStringSubmatch(l); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no %q in %s", re, strings.Join(lines, "\n"))
	return ""
}

// A session's own APPEND or COPY into its selected mailbox is announced
// with EXISTS before the tagged reply (RFC 9051 section 6.3.12).
func TestOwnAppendAndCopyExists(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.login(t, "alice@example.test")
	c.ok("SELECT INBOX")
	lines := c.ok("APPEND INBOX {11+}\r\nSubject: x\r\n")
	mustHave(t, lines, `^\* 1 EXISTS$`, `APPENDUID \d+ 1\]`)
	lines = c.ok("COPY 1 INBOX")
	mustHave(t, lines, `^\* 2 EXISTS$`, `COPYUID \d+ 1 2\]`)
	// RFC 6855 section 4: APPEND with the UTF8 data extension.
	lines = c.ok("APPEND INBOX UTF8 (~{16+}\r\nSubject: caf\xc3\xa9\r\n)")
	mustHave(t, lines, `^\* 3 EXISTS$`)
	lines = c.ok("FETCH 3 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
	mustHave(t, lines, "Subject: caf\xc3\xa9")
}

// The selected mailbox renamed by another device: the session follows it
// (it is the same mailbox, same UIDVALIDITY) and keeps seeing changes.
func TestSelectedMailboxRenamed(t *testing.T) {
	env := newTestEnv(t, Config{})
	const user = "alice@example.test"
	a := env.login(t, user)
	a.ok("CREATE Old")
	a.ok("SELECT Old")
	b := env.login(t, user)
	b.ok("RENAME Old New")
	b.ok("APPEND New {11+}\r\nSubject: x\r\n")
	lines := a.ok("NOOP")
	mustHave(t, lines, `^\* 1 EXISTS$`)
	lines = a.ok("FETCH 1 BODY.PEEK[HEADER]")
	mustHave(t, lines, `Subject: x`)
	mustHave(t, a.cmd("STATUS Old (MESSAGES)"), `NO \[NONEXISTENT\]`)
}

// EXPUNGE removes the \Deleted messages the session knows, found by the
// store: one another device appended with \Deleted meanwhile is either
// announced (EXISTS) before its EXPUNGE or left in place, never expunged
// by a number the client was not given. UID EXPUNGE keeps to its set.
func TestExpungeKnownOnly(t *testing.T) {
	env, a, b := twoDevices(t, 3)
	count := 3
	left := 3 // messages in the mailbox as a sees it after EXPUNGE
	lines := a.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	// After a's last look at the mailbox, before its EXPUNGE.
	b.ok("APPEND INBOX (\\Deleted) {11+}\r\nSubject: x\r\n")
	for _, l := range append(lines, a.ok("EXPUNGE")...) {
		var n int
		switch {
		case scan(l, "* %d EXISTS", &n):
			count, left = n, n
		case scan(l, "* %d EXPUNGE", &n):
			if n < 1 || n > count {
				t.Fatalf("EXPUNGE of message %d when %d exist: %q", n, count, l)
			}
			count--
			left--
		}
	}
	c := env.login(t, alice)
	mustHave(t, c.ok("SELECT INBOX"), `^\* `+strconv.Itoa(left)+` EXISTS$`)

	// UID EXPUNGE of UID 3 leaves the other \Deleted message.
	a.ok(`UID STORE 2:3 +FLAGS.SILENT (\Deleted)`)
	lines = a.ok("UID EXPUNGE 3")
	if got := countLines(lines, ` EXPUNGE$`); got != 1 {
		t.Fatalf("UID EXPUNGE 3 expunged %d messages: %q", got, lines)
	}
	mustHave(t, a.ok("UID FETCH 2 FLAGS"), `UID 2 FLAGS \(\\Deleted\)`)
}

func scan(line, format string, n *int) bool {
	_, err := fmt.Sscanf(line, format, n)
	return err == nil
}

func countLines(lines []string, pattern string) int {
	re := regexp.MustCompile(pattern)
	n := 0
	for _, l := range lines {
		if re.MatchString(l) {
			n++
		}
	}
	return n
}

// Two messages arrive while A sits selected and quiet, and another device
// flags the older one before A's next command. The feed reports that
// message once, at its newer modseq, after the younger one. Without the
// fix A's client is told "* 2 EXISTS" for three messages and the older
// new message has no sequence number until A selects INBOX again.
func TestNewMessageChangedBeforeReadNotLost(t *testing.T) {
	env, a, b := twoDevices(t, 1)
	x := env.deliver(t, alice, testMessage(2))
	y := env.deliver(t, alice, testMessage(3))
	b.ok("SELECT INBOX")
	b.ok(`UID STORE ` + strconv.FormatUint(uint64(x.UID), 10) + ` +FLAGS (\Flagged)`)
	lines := a.ok("NOOP")
	mustHave(t, lines, `^\* 3 EXISTS$`)
	if hasLine(lines, ` FETCH `) {
		// The flags of a message first announced by this EXISTS are the
		// client's to fetch: a FETCH before it would name a number the
		// client does not have yet.
		t.Fatalf("FETCH for a message not yet announced: %q", lines)
	}
	lines = a.ok("FETCH 1:* (UID FLAGS)")
	mustHave(t, lines,
		`^\* 2 FETCH \(UID `+strconv.FormatUint(uint64(x.UID), 10)+` FLAGS \(\\Flagged\)\)$`,
		`^\* 3 FETCH \(UID `+strconv.FormatUint(uint64(y.UID), 10)+` FLAGS \(\)\)$`)
}
