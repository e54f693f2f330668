package imapserver

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/storage/sqlite"
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

// RFC 7162 section 3.2.6: UID FETCH (CHANGEDSINCE m VANISHED) reports
// every UID of the set expunged after m. Once retention has purged the
// tombstones (the mailbox's VanishedFloor rose above m), only the UIDs
// missing from the mailbox can stand for them, as SELECT QRESYNC does.
// Before, a device resyncing an already selected mailbox this way got no
// VANISHED, and the expunged messages stayed on it for good.
func TestFetchVanishedBelowFloor(t *testing.T) {
	env := newTestEnv(t, Config{})
	for i := 1; i <= 4; i++ {
		env.deliver(t, alice, testMessage(i))
	}
	a := env.login(t, alice)
	a.ok("ENABLE QRESYNC")
	modseq := submatch(t, a.ok("SELECT INBOX"), `HIGHESTMODSEQ (\d+)`)
	a.ok(`STORE 1,3 +FLAGS.SILENT (\Deleted)`)
	a.ok("EXPUNGE")
	a.ok("LOGOUT")
	b := env.login(t, alice)
	b.ok("ENABLE QRESYNC")
	b.ok("SELECT INBOX")
	// The purge comes after b selected: the floor b saw then is stale.
	if _, err := env.store.Purge(context.Background(), time.Now().Add(time.Hour), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	lines := b.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE " + modseq + " VANISHED)")
	mustHave(t, lines, `^\* VANISHED \(EARLIER\) 1,3$`)
	lines = b.ok("UID FETCH 2:* (FLAGS) (CHANGEDSINCE " + modseq + " VANISHED)")
	mustHave(t, lines, `^\* VANISHED \(EARLIER\) 3$`)
	// Above the highest UID the mailbox gave out, nothing ever vanished.
	lines = b.ok("UID FETCH 5:* (FLAGS) (CHANGEDSINCE " + modseq + " VANISHED)")
	if hasLine(lines, "VANISHED") {
		t.Fatalf("VANISHED for UIDs never used: %q", lines)
	}
}

// missingUIDs stands for every expunge the tombstones no longer hold, so it
// must neither skip a gap nor report a UID the session has; it walks ranges
// up to "*" = 2^32-1 without listing them.
func TestMissingUIDs(t *testing.T) {
	top := mailstore.MaxUID
	r := func(lo, hi mailstore.UID) mailstore.UIDRange { return mailstore.UIDRange{Lo: lo, Hi: hi} }
	for _, tc := range []struct {
		set  mailstore.UIDSet
		uids []mailstore.UID
		hi   mailstore.UID
		want string
	}{
		{mailstore.UIDSet{r(1, top)}, nil, 0, ""},
		{mailstore.UIDSet{r(1, top)}, nil, 5, "1:5"},
		{mailstore.UIDSet{r(1, top)}, []mailstore.UID{2, 4}, 4, "1,3"},
		{mailstore.UIDSet{r(1, top)}, []mailstore.UID{1, 2, 3}, 3, ""},
		{mailstore.UIDSet{r(2, 3), r(6, 9)}, []mailstore.UID{3, 7}, 8, "2,6,8"},
		{mailstore.UIDSet{r(1, top)}, []mailstore.UID{1_500_000}, 1_500_001, "1:1499999,1500001"},
		{mailstore.UIDSet{r(top-2, top)}, []mailstore.UID{top}, top, "4294967293:4294967294"},
		{mailstore.UIDSet{r(top-2, top)}, []mailstore.UID{top - 1}, top, "4294967293,*"},
		{mailstore.UIDSet{r(0, 2)}, nil, 10, "1:2"},
	} {
		if got := missingUIDs(tc.set, tc.uids, tc.hi).String(); got != tc.want {
			t.Errorf("missingUIDs(%v, %v, %d) = %q, want %q", tc.set, tc.uids, tc.hi, got, tc.want)
		}
	}
}

// RFC 7162 section 3.2.5.2: SELECT (QRESYNC (v m known-uids)) reports every
// expunged UID among the known ones. known-uids was expanded into a list
// cut at 1,000,000 entries, so in a long-lived mailbox whose UIDs had
// passed that, a device resyncing with "1:*" never heard of expunges
// above the cut, while the same SELECT without known-uids reported them.
func TestQresyncKnownUIDsAboveMillion(t *testing.T) {
	dir := t.TempDir()
	env := newTestEnvDir(t, dir, Config{}, sqlite.Options{})
	env.deliver(t, alice, testMessage(1))
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE mailboxes SET uidnext = 1500000 WHERE name = 'INBOX'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	env.deliver(t, alice, testMessage(2)) // UID 1500000
	env.deliver(t, alice, testMessage(3)) // UID 1500001
	env.deliver(t, alice, testMessage(4)) // UID 1500002
	a := env.login(t, alice)
	a.ok("ENABLE QRESYNC")
	lines := a.ok("SELECT INBOX")
	validity := submatch(t, lines, `UIDVALIDITY (\d+)`)
	modseq := submatch(t, lines, `HIGHESTMODSEQ (\d+)`)
	a.ok(`UID STORE 1500000,1500002 +FLAGS.SILENT (\Deleted)`)
	a.ok("EXPUNGE")
	a.ok("LOGOUT")
	b := env.login(t, alice)
	b.ok("ENABLE QRESYNC")
	lines = b.ok("SELECT INBOX (QRESYNC (" + validity + " " + modseq + " 1:*))")
	// "*" is the highest UID left (1500001), so 1500002 is not known.
	mustHave(t, lines, `^\* VANISHED \(EARLIER\) 1500000$`)
	lines = b.ok("SELECT INBOX (QRESYNC (" + validity + " " + modseq + " 1500001:1500002))")
	mustHave(t, lines, `^\* VANISHED \(EARLIER\) 1500002$`)

	// Below the floor every known UID not in the mailbox is reported.
	if _, err := env.store.Purge(context.Background(), time.Now().Add(time.Hour), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	lines = b.ok("SELECT INBOX (QRESYNC (" + validity + " " + modseq + " 1,1499990:4000000000))")
	mustHave(t, lines, `^\* VANISHED \(EARLIER\) 1499990:1500000,1500002$`)
	lines = b.ok("SELECT INBOX (QRESYNC (" + validity + " " + modseq + "))")
	mustHave(t, lines, `^\* VANISHED \(EARLIER\) 2:1500000,1500002$`)
}

// RFC 7162 section 3.2 (after the rules for delaying EXPUNGE; example in
// section 6): while a VANISHED is held back (RFC 9051 section 7.5.1: none
// during FETCH, STORE or SEARCH by sequence number), a MODSEQ sent above
// the expunge's modseq must come with a HIGHESTMODSEQ response code below
// it. What a user saw: device B expunges X and flags Y; device A's FETCH
// shows Y's MODSEQ 7 but no VANISHED for X (modseq 6). If A drops the
// connection then and resyncs from 7, X stays on device A for good.
func TestModseqPastHeldBackVanishedLowersHighestModseq(t *testing.T) {
	env, a, b := twoDevices(t, 3)
	a.ok("ENABLE QRESYNC")
	validity := submatch(t, a.ok("SELECT INBOX"), `UIDVALIDITY (\d+)`)
	b.ok("ENABLE QRESYNC")
	b.ok("SELECT INBOX")
	b.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	e, _ := strconv.Atoi(submatch(t, b.ok("EXPUNGE"), `HIGHESTMODSEQ (\d+)`))
	b.ok(`STORE 2 +FLAGS.SILENT (\Flagged)`)

	lines := a.ok("FETCH 2 (FLAGS)")
	if hasLine(lines, "VANISHED") {
		t.Fatalf("VANISHED during FETCH: %q", lines)
	}
	seen := 0 // A's sync point: the highest MODSEQ seen ...
	for _, l := range lines {
		if s := regexp.MustCompile(`MODSEQ \((\d+)\)`).FindStringSubmatch(l); s != nil {
			m, _ := strconv.Atoi(s[1])
			seen = max(seen, m)
		}
	}
	if seen < e {
		t.Fatalf("want a MODSEQ above the held-back expunge's %d: %q", e, lines)
	}
	// ... unless a HIGHESTMODSEQ response code lowers it below e.
	mustHave(t, lines[len(lines)-2:], `^\* OK \[HIGHESTMODSEQ \d+\] `)
	lowered, _ := strconv.Atoi(submatch(t, lines, `^\* OK \[HIGHESTMODSEQ (\d+)\]`))
	if lowered >= e {
		t.Fatalf("HIGHESTMODSEQ %d is not below the held-back expunge's %d", lowered, e)
	}
	// The connection drops before the next NOOP; the device resyncs.
	a.c.Close()
	c := env.login(t, alice)
	c.ok("ENABLE QRESYNC")
	lines = c.ok(fmt.Sprintf("SELECT INBOX (QRESYNC (%s %d))", validity, lowered))
	mustHave(t, lines, `^\* VANISHED \(EARLIER\) 1$`)

	// Once the expunge is announced, a MODSEQ needs no such code.
	b.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	b.ok("EXPUNGE")
	lines = c.ok("NOOP")
	mustHave(t, lines, `^\* VANISHED 2$`)
	lines = c.ok(`STORE 1 +FLAGS.SILENT (\Answered)`)
	if hasLine(lines, `^\* OK \[HIGHESTMODSEQ`) {
		t.Fatalf("HIGHESTMODSEQ with no expunge held back: %q", lines)
	}
}
