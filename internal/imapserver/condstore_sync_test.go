package imapserver

import (
	"testing"
)

// RFC 7162 section 3.1 (with erratum 1807): once CONDSTORE is enabled, the
// untagged FETCH a STORE causes, and the one a FETCH that sets \Seen
// causes, carry UID and MODSEQ. Without them a CONDSTORE client (not
// QRESYNC) that keys its cache by UID or tracks modseqs cannot file the
// flag update it sees: "* 1 FETCH (FLAGS (\Flagged) MODSEQ (4))".
func TestCondstoreFlagFetchCarriesUIDAndModseq(t *testing.T) {
	_, a, _ := twoDevices(t, 3)
	a.ok("ENABLE CONDSTORE")
	lines := a.ok(`STORE 1 +FLAGS (\Flagged)`)
	mustHave(t, lines, `^\* 1 FETCH \(UID 1 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$`)
	lines = a.ok(`STORE 1 +FLAGS.SILENT (\Answered)`)
	mustHave(t, lines, `^\* 1 FETCH \(UID 1 MODSEQ \(\d+\)\)$`)
	lines = a.ok(`UID FETCH 2 BODY[]`)
	mustHave(t, lines, `^\* 2 FETCH \(UID 2 FLAGS \(\\Seen\) MODSEQ \(\d+\) BODY\[\] `)
	// A sequence-number FETCH that sets \Seen names the UID too, once.
	lines = a.ok(`FETCH 3 (UID BODY[])`)
	mustHave(t, lines, `^\* 3 FETCH \(UID 3 FLAGS \(\\Seen\) MODSEQ \(\d+\) BODY\[\] `)
	// Without \Seen newly set, FETCH answers only what was asked.
	lines = a.ok(`FETCH 3 (BODY[])`)
	mustHave(t, lines, `^\* 3 FETCH \(BODY\[\] `)
}
