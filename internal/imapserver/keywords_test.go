package imapserver

import (
	"regexp"
	"testing"
)

// indexOf is the position of the first line matching re, or -1.
func indexOf(lines []string, re string) int {
	rx := regexp.MustCompile(re)
	for i, l := range lines {
		if rx.MatchString(l) {
			return i
		}
	}
	return -1
}

// TestKeywordsInFlags: SELECT lists the mailbox's keywords in FLAGS and
// PERMANENTFLAGS (EXAMINE: no PERMANENTFLAGS); a new keyword, set by this
// session or another one, is announced before the FETCH that carries it.
func TestKeywordsInFlags(t *testing.T) {
	env := newTestEnv(t, Config{})
	const user = "alice@example.test"
	env.deliver(t, user, testMessage(1))
	env.deliver(t, user, testMessage(2))

	a := env.login(t, user)
	a.ok("SELECT INBOX")
	lines := a.ok(`STORE 1 +FLAGS ($Work)`)
	flags, fetch := indexOf(lines, `^\* FLAGS \(\\Answered \\Flagged \\Deleted \\Seen \\Draft \$Work\)$`), indexOf(lines, `^\* 1 FETCH \(FLAGS \(\$Work\)\)$`)
	perm := indexOf(lines, `^\* OK \[PERMANENTFLAGS \(\\Answered \\Flagged \\Deleted \\Seen \\Draft \$Work \\\*\)\] `)
	if flags < 0 || perm < 0 || fetch < 0 || flags > fetch || perm > fetch {
		t.Fatalf("STORE of a new keyword: FLAGS at %d, PERMANENTFLAGS at %d, FETCH at %d in %q", flags, perm, fetch, lines)
	}
	// Known now: no second announcement.
	if lines := a.ok(`STORE 2 +FLAGS ($work)`); indexOf(lines, `^\* FLAGS `) >= 0 {
		t.Errorf("a known keyword (other case) announced again: %q", lines)
	}

	b := env.login(t, user)
	lines = b.ok("SELECT INBOX")
	mustHave(t, lines, `^\* FLAGS \(\\Answered \\Flagged \\Deleted \\Seen \\Draft \$Work\)$`,
		`^\* OK \[PERMANENTFLAGS \(\\Answered \\Flagged \\Deleted \\Seen \\Draft \$Work \\\*\)\] `)
	b.send("i1 IDLE")
	b.expect(`^\+ `)
	a.ok(`STORE 2 +FLAGS (Later)`)
	b.expect(`^\* FLAGS \(\\Answered \\Flagged \\Deleted \\Seen \\Draft \$Work Later\)$`)
	b.expect(`^\* OK \[PERMANENTFLAGS \(.* Later \\\*\)\] `)
	b.expect(`^\* 2 FETCH \(UID 2 FLAGS \(\$work Later\)\)$`)
	b.send("DONE")
	b.expect(`^i1 OK `)

	c := env.login(t, user)
	lines = c.ok("EXAMINE INBOX")
	mustHave(t, lines, `^\* FLAGS \(\\Answered \\Flagged \\Deleted \\Seen \\Draft \$Work Later\)$`, `^\* OK \[PERMANENTFLAGS \(\)\] `)
}

// RFC 9051 section 9: ATOM-CHAR is CHAR (%x01-7F); RFC 6855 allows UTF-8
// only in quoted strings and literals, and a flag is an atom. A keyword
// with 8-bit bytes is refused with BAD instead of being stored and then
// sent, as a non-ASCII atom, to every client of the mailbox (including
// IMAP4rev1 clients whose parsers reject it).
func TestEightBitKeywordRefused(t *testing.T) {
	_, a, b := twoDevices(t, 1)
	lines := a.cmd("STORE 1 +FLAGS (caf\xc3\xa9)")
	if !hasLine(lines, `^t\d+ BAD`) {
		b.ok("SELECT INBOX")
		t.Fatalf("8-bit keyword accepted: %q; another client then reads %q", lines, b.ok("FETCH 1 FLAGS"))
	}
	mustHave(t, a.cmd("STORE 1 +FLAGS caf\xc3\xa9"), `^t\d+ BAD`)
	mustHave(t, a.cmd("STORE 1 +FLAGS (ok\x7f)"), `^t\d+ BAD`)
	mustHave(t, a.cmd("APPEND INBOX (caf\xc3\xa9) {5+}\r\nhello"), `^t\d+ BAD`)
	// Nothing was stored: the mailbox has only its first message, unflagged.
	mustHave(t, a.ok("FETCH 1:* FLAGS"), `^\* 1 FETCH \(FLAGS \(\)\)$`)
}
