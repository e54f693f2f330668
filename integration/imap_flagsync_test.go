package integration

import (
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestDeferredFlagSyncSurvivesKill runs the real binary with
// store.flag_sync = "deferred", changes flags over IMAP and kills the
// server at once with SIGKILL, before the checkpointer's sync: the
// changes were written, only not synced, so the restarted server has
// every one of them, and as the machine did not restart it keeps the
// modseqs it handed out (a CONDSTORE client goes on from where it was).
func TestDeferredFlagSyncSurvivesKill(t *testing.T) {
	r := StartRoost(t, BuildRoost(t), "[store]\nflag_sync = \"deferred\"\n")
	if code, _, errs := r.CLI(t, "", "domain", "add", "example.org"); code != 0 {
		t.Fatalf("domain add: %s", errs)
	}
	user := "flags@example.org"
	if code, _, errs := r.CLI(t, imapPassword+"\n", "user", "add", user, "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errs)
	}
	c := imapLoginClient(t, r, user, nil)
	var uids []imap.UID
	for _, s := range []string{"one", "two", "three"} {
		uids = append(uids, imapAppend(t, c, "INBOX", imapTestMessage(s, "body "+s)))
	}
	// CONDSTORE on: STORE's FETCH answers carry the MODSEQ.
	if _, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	want := map[imap.UID][]imap.Flag{
		uids[0]: {imap.FlagSeen},
		uids[1]: {imap.FlagSeen, imap.FlagFlagged},
		uids[2]: {"$Work"},
	}
	var highest uint64
	for _, uid := range uids {
		st := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: false, Flags: want[uid]}, nil)
		msgs, err := st.Collect()
		if err != nil {
			t.Fatalf("STORE %d: %v", uid, err)
		}
		for _, m := range msgs {
			highest = max(highest, m.ModSeq)
		}
	}
	r.Kill(t)
	r.Restart(t)

	c = imapLoginClient(t, r, user, nil)
	got := map[imap.UID]imapMessage{}
	for _, m := range imapMailbox(t, c, "INBOX") {
		got[m.UID] = m
	}
	for uid, flags := range want {
		for _, f := range flags {
			if !got[uid].has(f) {
				t.Errorf("after kill -9 and restart, UID %d has %v, want %v among them", uid, got[uid].Flags, f)
			}
		}
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if highest == 0 || sel.HighestModSeq < highest || sel.HighestModSeq >= 1<<32 {
		t.Errorf("HIGHESTMODSEQ after the restart %d; the last STORE reported %d (no reboot: no move past 2^32)", sel.HighestModSeq, highest)
	}
}
