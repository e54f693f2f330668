package imapserver

import "testing"

// A DELETE that fails (here DELETE INBOX, RFC 9051 section 6.3.5) must not
// leave the selected mailbox. Without the fix the client reads NO, believes
// INBOX is still selected, and its next FETCH gets "BAD ... not allowed in
// this state".
func TestFailedDeleteKeepsSelection(t *testing.T) {
	_, a, _ := twoDevices(t, 2)
	mustHave(t, a.cmd("DELETE INBOX"), `^t\d+ NO`)
	mustHave(t, a.cmd("FETCH 1 UID"), `^\* 1 FETCH \(UID 1\)$`, `^t\d+ OK`)
}

// RENAME INBOX moves INBOX's messages to a new mailbox and leaves INBOX in
// place, empty (RFC 9051 section 6.3.6): a session with INBOX selected
// keeps it selected. Without the fix the session took the new name for
// INBOX's, so deleting the new mailbox unselected INBOX and the client's
// next SEARCH got "BAD ... not allowed in this state".
func TestRenameInboxKeepsInboxSelected(t *testing.T) {
	env, a, _ := twoDevices(t, 2)
	lines := append(a.ok("RENAME INBOX Old"), a.ok("NOOP")...)
	mustHave(t, lines, `^\* 2 EXPUNGE$`, `^\* 1 EXPUNGE$`)
	a.ok("DELETE Old")
	env.deliver(t, alice, testMessage(3))
	mustHave(t, a.ok("NOOP"), `^\* 1 EXISTS$`)
	mustHave(t, a.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]"), `Subject: test message 3\r\n`)
}

// After RENAME A B the selected A/x is B/x (RFC 9051 section 6.3.6 renames
// inferiors too). Without the fix the session still called it A/x, so the
// client's DELETE B/x of its own selected mailbox got "* BYE Selected
// mailbox was deleted" and a closed connection instead of a tagged OK.
func TestDeleteSelectedAfterParentRename(t *testing.T) {
	env := newTestEnv(t, Config{})
	a := env.login(t, alice)
	a.ok("CREATE A/x")
	a.ok("SELECT A/x")
	a.ok("RENAME A B")
	lines := a.cmd("DELETE B/x")
	if hasLine(lines, `^\* BYE`) {
		t.Fatalf("connection dropped: %q", lines)
	}
	mustHave(t, lines, `^t\d+ OK`)
	a.ok("NOOP")
	// DELETE of the selected mailbox leaves the selected state.
	mustHave(t, a.cmd("FETCH 1 UID"), `^t\d+ BAD`)
}

// DELETE of a mailbox that only bears the name the selected mailbox had
// before another device renamed it is not a DELETE of the selected
// mailbox. Without the fix the session compared names and unselected its
// mailbox, and the client's next FETCH got "BAD ... not allowed in this
// state".
func TestDeleteOldNameAfterOtherDeviceRename(t *testing.T) {
	env := newTestEnv(t, Config{})
	a := env.login(t, alice)
	a.ok("CREATE Old")
	a.ok("APPEND Old {11+}\r\nSubject: x\r\n")
	a.ok("SELECT Old")
	b := env.login(t, alice)
	b.ok("RENAME Old New")
	b.ok("CREATE Old")
	a.ok("DELETE Old")
	mustHave(t, a.cmd("FETCH 1 UID"), `^\* 1 FETCH \(UID 1\)$`, `^t\d+ OK`)
}

// RENAME INBOX INBOX/old, the classic "archive my inbox", is allowed: it
// moves INBOX's messages to the new mailbox and leaves INBOX and its
// inferiors in place (RFC 9051 section 6.3.6). Without the fix the client
// got "NO [CANNOT] Invalid mailbox name".
func TestRenameInboxToInferior(t *testing.T) {
	env := newTestEnv(t, Config{})
	env.deliver(t, alice, testMessage(1))
	c := env.login(t, alice)
	c.ok("RENAME INBOX INBOX/old")
	mustHave(t, c.ok("STATUS INBOX/old (MESSAGES)"), `MESSAGES 1\)`)
	mustHave(t, c.ok("STATUS INBOX (MESSAGES)"), `MESSAGES 0\)`)
	mustHave(t, c.cmd("RENAME INBOX inbox"), `^t\d+ NO`)
}
