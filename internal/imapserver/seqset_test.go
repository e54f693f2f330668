package imapserver

import "testing"

// 4294967295 is a valid nz-number, not "*" (RFC 9051 section 9). A client
// naming that UID must get nothing (section 6.4.9: UIDs that do not exist
// are ignored), and that sequence number on a 3-message mailbox is BAD;
// neither may act on the last message, which for UID STORE or UID MOVE
// would change or move the newest mail.
func TestMaxNumberIsNotStar(t *testing.T) {
	_, a, _ := twoDevices(t, 3)
	lines := a.ok("UID FETCH 4294967295 UID")
	if hasLine(lines, `FETCH \(`) {
		t.Errorf("UID FETCH 4294967295 returned a message: %q", lines)
	}
	mustHave(t, a.cmd("FETCH 4294967295 UID"), `^t\d+ BAD`)
	mustHave(t, a.cmd("FETCH 2:4294967295 UID"), `^t\d+ BAD`)
	lines = a.ok(`UID STORE 4294967295 +FLAGS (\Flagged)`)
	if hasLine(lines, `FETCH`) {
		t.Errorf("UID STORE 4294967295 changed a message: %q", lines)
	}
	lines = a.ok("UID SEARCH UID 4294967295")
	mustHave(t, lines, `^\* SEARCH$`)
	lines = a.ok("UID MOVE 4294967295 Trash")
	if hasLine(lines, `EXPUNGE`) {
		t.Errorf("UID MOVE 4294967295 moved a message: %q", lines)
	}
	lines = a.ok("UID EXPUNGE 4294967295")
	if hasLine(lines, `EXPUNGE$`) {
		t.Errorf("UID EXPUNGE 4294967295 expunged: %q", lines)
	}
	mustHave(t, a.ok("FETCH 3 UID"), `^\* 3 FETCH \(UID 3\)$`)
}

// "*" still means the highest number in every position it may take.
func TestStarInSequenceSets(t *testing.T) {
	_, a, _ := twoDevices(t, 3)
	mustHave(t, a.ok("FETCH * UID"), `^\* 3 FETCH \(UID 3\)$`)
	lines := a.ok("FETCH *:2 UID")
	mustHave(t, lines, `^\* 2 FETCH \(UID 2\)$`, `^\* 3 FETCH \(UID 3\)$`)
	if hasLine(lines, `^\* 1 FETCH`) {
		t.Errorf("*:2 included 1: %q", lines)
	}
	mustHave(t, a.ok("UID FETCH 2:* UID"), `^\* 2 FETCH \(UID 2\)$`, `^\* 3 FETCH \(UID 3\)$`)
	// RFC 9051 section 6.4.9: "n:*" with n above the highest UID is the
	// highest UID.
	mustHave(t, a.ok("UID FETCH 9:* UID"), `^\* 3 FETCH \(UID 3\)$`)
	mustHave(t, a.ok("UID FETCH *:9 UID"), `^\* 3 FETCH \(UID 3\)$`)
	mustHave(t, a.ok("SEARCH *"), `^\* SEARCH 3$`)
	mustHave(t, a.ok("SEARCH 2:*"), `^\* SEARCH 2 3$`)
	mustHave(t, a.ok("UID SEARCH UID *:2"), `^\* SEARCH 2 3$`)
	mustHave(t, a.ok("SEARCH NOT 1:*"), `^\* SEARCH$`)
	mustHave(t, a.cmd("FETCH 4 UID"), `^t\d+ BAD`)
}
