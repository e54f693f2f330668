package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// openBoot opens dir as a process of the boot named boot would.
func openBoot(t *testing.T, dir, boot string, deferFlags bool) *Store {
	t.Helper()
	// The indexer held: its commits would sync the WAL too, and the test
	// of the checkpointer's sync could not tell which one did.
	s, err := Open(dir, Options{DeferFlagSync: deferFlags, bootID: func() (string, error) { return boot, nil }, holdIndexer: true})
	if err != nil {
		t.Fatalf("Open (boot %s): %v", boot, err)
	}
	return s
}

// markers returns the deferred-sync marker rows: name -> boot hash.
func markers(t *testing.T, s *Store) map[string]int64 {
	t.Helper()
	rows, err := s.rdb.Query(`SELECT name, value FROM counters WHERE name >= ? AND name < ?`, deferredPrefix, deferredPrefix+"\xff")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var n string
		var v int64
		if err := rows.Scan(&n, &v); err != nil {
			t.Fatal(err)
		}
		out[n] = v
	}
	return out
}

// modseqs returns the account's counter, its INBOX's highest modseq and
// every INBOX message's modseq.
func modseqs(t *testing.T, s *Store, acct int64) (account, highest mailstore.ModSeq, msgs []mailstore.ModSeq) {
	t.Helper()
	if err := s.rdb.QueryRow(`SELECT modseq FROM accounts WHERE id = ?`, acct).Scan(&account); err != nil {
		t.Fatal(err)
	}
	in := inbox(t, s, acct)
	highest = in.HighestModSeq
	err := s.Fetch(context.Background(), acct, in.ID, mailstore.UIDSet{{Lo: 1, Hi: 1 << 31}}, 0, 0, func(m *mailstore.Message) error {
		msgs = append(msgs, m.ModSeq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return account, highest, msgs
}

func storeSeen(t *testing.T, s *Store, acct int64, uid mailstore.UID, flag string) {
	t.Helper()
	in := inbox(t, s, acct)
	res, err := s.StoreFlags(context.Background(), acct, mailstore.StoreFlagsRequest{MailboxID: in.ID, UIDs: mailstore.UIDSetOf(uid), Mode: mailstore.FlagsAdd, Flags: []string{flag}})
	if err != nil || len(res.Changed) != 1 {
		t.Fatalf("StoreFlags %s on %d: %+v, %v", flag, uid, res, err)
	}
}

func deliverOne(t *testing.T, s *Store, acct int64, id string) {
	t.Helper()
	_, err := s.Deliver(context.Background(), mailstore.Delivery{Raw: msg(id, id+"@x", "body "+id), Recipients: []mailstore.DeliveryTarget{{AccountID: acct}}})
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
}

// TestDeferredFlagSync: flag changes commit without a sync once the
// process's marker is durable, anything else syncs, the checkpointer
// syncs what was deferred, and a clean Close removes the marker.
func TestDeferredFlagSync(t *testing.T) {
	dir := t.TempDir()
	s := openBoot(t, dir, "boot-a", true)
	a := addAccount(t, s, "a@example.test")
	deliverOne(t, s, a.ID, "m1")
	deliverOne(t, s, a.ID, "m2")
	if n := len(markers(t, s)); n != 0 {
		t.Fatalf("%d markers before any flag change", n)
	}

	// The first flag change syncs and writes the marker.
	storeSeen(t, s, a.ID, 1, `\Seen`)
	if n := s.deferredCommits.Load(); n != 0 {
		t.Fatalf("first flag change: %d deferred commits, want 0 (it carries the marker)", n)
	}
	m := markers(t, s)
	if len(m) != 1 || m[s.dsync.marker] != bootHash("boot-a") {
		t.Fatalf("markers after the first flag change = %v, want %s = %d", m, s.dsync.marker, bootHash("boot-a"))
	}

	// Later ones do not sync; the checkpointer syncs them soon after.
	syncs := s.walSyncs.Load()
	storeSeen(t, s, a.ID, 2, `\Seen`)
	storeSeen(t, s, a.ID, 1, `\Flagged`)
	if n := s.deferredCommits.Load(); n != 2 {
		t.Fatalf("deferred commits = %d, want 2", n)
	}

	deadline := time.Now().Add(10 * time.Second)
	for s.walSyncs.Load() == syncs || s.walUnsynced.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("the WAL was not synced after deferred commits (syncs %d, unsynced %v)", s.walSyncs.Load(), s.walUnsynced.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}

	// A delivery syncs, deferred commits before it with it.
	storeSeen(t, s, a.ID, 2, `\Flagged`)
	deliverOne(t, s, a.ID, "m3")
	if s.walUnsynced.Load() {
		t.Fatal("a delivery left the WAL unsynced")
	}
	before := s.deferredCommits.Load()
	deliverOne(t, s, a.ID, "m4")
	if s.deferredCommits.Load() != before {
		t.Fatal("a delivery committed without a sync")
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The next boot finds no marker: nothing to recover.
	s = openBoot(t, dir, "boot-b", false)
	defer s.Close()
	if m := markers(t, s); len(m) != 0 {
		t.Fatalf("markers after a clean Close = %v", m)
	}
	acct, _, msgs := modseqs(t, s, a.ID)
	if acct >= modseqGap || len(msgs) != 4 {
		t.Fatalf("after a clean Close and a new boot: account modseq %d, %d messages", acct, len(msgs))
	}
}

// TestDeferredSyncRecovery: a marker from an earlier boot moves every
// modseq past any the lost commits could have handed out; one from this
// boot (the process was killed, the kernel kept its writes) does not.
func TestDeferredSyncRecovery(t *testing.T) {
	dir := t.TempDir()
	s := openBoot(t, dir, "boot-a", true)
	a := addAccount(t, s, "a@example.test")
	b := addAccount(t, s, "b@example.test")
	for _, id := range []string{"m1", "m2", "m3"} {
		deliverOne(t, s, a.ID, id)
	}
	deliverOne(t, s, b.ID, "n1")
	storeSeen(t, s, a.ID, 1, `\Seen`)
	storeSeen(t, s, a.ID, 2, `\Seen`)
	accA, _, msgsA := modseqs(t, s, a.ID)
	accB, _, _ := modseqs(t, s, b.ID)
	// What a killed process leaves behind: its marker.
	left := s.dsync.marker
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db := openRaw(t, dir)
	if _, err := db.Exec(`INSERT INTO counters (name, value) VALUES (?, ?)`, left, bootHash("boot-a")); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// Same boot: the writes were not lost; nothing moves.
	s = openBoot(t, dir, "boot-a", false)
	if acc, _, msgs := modseqs(t, s, a.ID); acc != accA || msgs[0] != msgsA[0] {
		t.Fatalf("same boot: account modseq %d -> %d, message 1 %d -> %d", accA, acc, msgsA[0], msgs[0])
	}
	if len(markers(t, s)) != 1 {
		t.Fatal("same boot: the marker went")
	}
	s.Close()

	// A new boot: every modseq moves up by modseqGap, per account, and
	// the operator is told.
	var logged bytes.Buffer
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&logged, nil)), bootID: func() (string, error) { return "boot-b", nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.Contains(logged.String(), "every modseq moved up") {
		t.Errorf("recovery logged %q", logged.String())
	}
	acc, highest, msgs := modseqs(t, s, a.ID)
	if acc != accA+modseqGap || highest != acc {
		t.Fatalf("after a reboot: account modseq %d (was %d), INBOX highest %d", acc, accA, highest)
	}
	for i, m := range msgs {
		if m != acc {
			t.Errorf("message %d modseq %d, want %d (was %d)", i+1, m, acc, msgsA[i])
		}
	}
	if acc, highest, msgs := modseqs(t, s, b.ID); acc != accB+modseqGap || highest != acc || msgs[0] != acc {
		t.Fatalf("account b after a reboot: account %d (was %d), highest %d, message %d", acc, accB, highest, msgs[0])
	}
	if m := markers(t, s); len(m) != 0 {
		t.Fatalf("markers after recovery = %v", m)
	}
	// A client that saw the last change before the power cut learns every
	// message's flags again.
	in := inbox(t, s, a.ID)
	var changed int
	err = s.Fetch(context.Background(), a.ID, in.ID, mailstore.UIDSet{{Lo: 1, Hi: 1 << 31}}, 0, accA, func(*mailstore.Message) error {
		changed++
		return nil
	})
	if err != nil || changed != 3 {
		t.Fatalf("FETCH CHANGEDSINCE %d after recovery: %d messages, %v; want 3", accA, changed, err)
	}
	// New changes go on from the moved counter.
	storeSeen(t, s, a.ID, 3, `\Seen`)
	if acc2, _, _ := modseqs(t, s, a.ID); acc2 != acc+1 {
		t.Fatalf("modseq after recovery and one change = %d, want %d", acc2, acc+1)
	}
}

// TestBatchDefers: one request that must sync makes the whole batch
// sync; flag changes defer only with the option on; bookkeeping always.
func TestBatchDefers(t *testing.T) {
	flag := &writeReq{sync: syncUnlessFlagsDeferred}
	book := &writeReq{sync: syncNever}
	other := &writeReq{}
	on := &Store{dsync: deferredSync{on: true}}
	off := &Store{}
	for _, c := range []struct {
		s                 *Store
		batch             []*writeReq
		deferred, flagsIn bool
	}{
		{on, []*writeReq{flag}, true, true},
		{on, []*writeReq{flag, book}, true, true},
		{on, []*writeReq{book, book}, true, false},
		{on, []*writeReq{flag, other}, false, false},
		{on, []*writeReq{book, other}, false, false},
		{on, []*writeReq{other}, false, false},
		{off, []*writeReq{flag}, false, false},
		{off, []*writeReq{book, flag}, false, false},
		{off, []*writeReq{book}, true, false},
	} {
		d, f := c.s.batchDefers(c.batch)
		if d != c.deferred || f != c.flagsIn {
			t.Errorf("batchDefers(on=%v, %v) = %v, %v; want %v, %v", c.s.dsync.on, c.batch, d, f, c.deferred, c.flagsIn)
		}
	}
}

// TestIndexerClearUnsynced: the indexer's clearing of fts_pending commits
// without a sync in the default mode too, and takes no marker (it takes
// no modseq).
func TestIndexerClearUnsynced(t *testing.T) {
	s, _ := openTest(t)
	a := addAccount(t, s, "a@example.test")
	deliverOne(t, s, a.ID, "m1")
	waitIndexed(t, s)
	if n := s.deferredCommits.Load(); n == 0 {
		t.Fatal("the indexer's clearing was synced")
	}
	if m := markers(t, s); len(m) != 0 {
		t.Fatalf("markers = %v, want none", m)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.walUnsynced.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the clearing was never synced")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMustSync: a request that may go unsynced but finds it must not is
// answered only after the WAL is synced.
func TestMustSync(t *testing.T) {
	s, _ := openTest(t)
	s.ftsOff.Store(true) // no indexer commits in between
	ctx := context.Background()
	write := func(must bool) {
		t.Helper()
		err := s.updateUnsynced(ctx, func(w *wtx) error {
			w.mustSync = must
			_, err := w.exec(`INSERT INTO counters (name, value) VALUES ('test', 1) ON CONFLICT (name) DO UPDATE SET value = value + 1`)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	deferred := s.deferredCommits.Load()
	write(false)
	if s.deferredCommits.Load() != deferred+1 {
		t.Fatal("an unsynced write was synced")
	}
	deferred, syncs := s.deferredCommits.Load(), s.walSyncs.Load()
	write(true)
	if s.deferredCommits.Load() != deferred || s.walSyncs.Load() == syncs || s.walUnsynced.Load() {
		t.Fatalf("a write that must sync: deferred %d -> %d, syncs %d -> %d, unsynced %v",
			deferred, s.deferredCommits.Load(), syncs, s.walSyncs.Load(), s.walUnsynced.Load())
	}
}

func TestDeferredNeedsBootID(t *testing.T) {
	_, err := Open(t.TempDir(), Options{DeferFlagSync: true, bootID: func() (string, error) { return "", errNoBoot }})
	if err == nil {
		t.Fatal("Open with deferred flag sync and no boot id succeeded")
	}
}

var errNoBoot = errors.New("no boot id here")

// A process that cannot read the boot id (the CLI in a sandbox, beside a
// server deferring syncs) must leave the server's live marker alone:
// without it, a later power cut would roll modseqs back unnoticed.
func TestUnknownBootKeepsLiveMarker(t *testing.T) {
	dir := t.TempDir()
	s := openBoot(t, dir, "boot-a", true)
	defer s.Close()
	a := addAccount(t, s, "a@example.test")
	deliverOne(t, s, a.ID, "m1")
	storeSeen(t, s, a.ID, 1, `\Seen`)
	before, _, _ := modseqs(t, s, a.ID)
	if len(markers(t, s)) != 1 {
		t.Fatal("no marker after a deferred flag write")
	}
	cli, err := Open(dir, Options{holdIndexer: true, bootID: func() (string, error) { return "", errNoBoot }})
	if err != nil {
		t.Fatal(err)
	}
	cli.Close()
	if m := markers(t, s); len(m) != 1 {
		t.Errorf("the running server's marker is gone (%v) while it still commits unsynced", m)
	}
	if after, _, _ := modseqs(t, s, a.ID); after != before {
		t.Errorf("account modseq moved %d -> %d under a running server", before, after)
	}
}

// openRaw opens dir's database with no store around it.
func openRaw(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, DBFile)+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// BenchmarkStoreFlags is one client's flag change, the write an IMAP
// client waits for most often, with flag_sync always and deferred.
func BenchmarkStoreFlags(b *testing.B) {
	for _, deferred := range []bool{false, true} {
		b.Run(fmt.Sprintf("deferred=%v", deferred), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{DeferFlagSync: deferred})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			a := addAccount(b, s, "a@example.test")
			for i := range 200 {
				if _, err := s.Deliver(context.Background(), mailstore.Delivery{Raw: msg("s", fmt.Sprint(i), "body"), Recipients: []mailstore.DeliveryTarget{{AccountID: a.ID}}}); err != nil {
					b.Fatal(err)
				}
			}
			in := inbox(b, s, a.ID)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				mode := mailstore.FlagsAdd
				if i/200%2 == 1 {
					mode = mailstore.FlagsRemove
				}
				uid := mailstore.UID(i%200 + 1)
				if _, err := s.StoreFlags(ctx, a.ID, mailstore.StoreFlagsRequest{MailboxID: in.ID, UIDs: mailstore.UIDSetOf(uid), Mode: mode, Flags: []string{`\Seen`}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDeferredPowerCut plays a power cut for real: the WAL is cut where
// the last synced commit ended, so the deferred flag changes after it are
// gone, as the disk would have lost them. Opened after a "reboot", the
// store has the flags as they were synced, every modseq is above any the
// lost changes handed out, and a CONDSTORE client that saw the last lost
// change learns every message's flags again.
func TestDeferredPowerCut(t *testing.T) {
	dir := t.TempDir()
	s := openUncheckpointed(t, dir)
	a := addAccount(t, s, "a@example.test")
	for _, id := range []string{"m1", "m2", "m3"} {
		deliverOne(t, s, a.ID, id)
	}
	storeSeen(t, s, a.ID, 1, `\Seen`) // synced: it carries the marker
	if s.deferredCommits.Load() != 0 || s.walUnsynced.Load() {
		t.Fatal("the first flag change was not synced")
	}
	synced, err := os.Stat(filepath.Join(dir, DBFile+"-wal"))
	if err != nil {
		t.Fatal(err)
	}
	durable, _, _ := modseqs(t, s, a.ID)
	storeSeen(t, s, a.ID, 2, `\Flagged`)
	storeSeen(t, s, a.ID, 3, `\Flagged`)
	if n := s.deferredCommits.Load(); n != 2 || !s.walUnsynced.Load() {
		t.Fatalf("deferred commits %d, unsynced %v; want 2, true", n, s.walUnsynced.Load())
	}
	lost, _, _ := modseqs(t, s, a.ID)
	if lost <= durable {
		t.Fatalf("modseq %d after the deferred changes, %d before", lost, durable)
	}

	s = powerCut(t, s, dir, synced.Size())
	defer s.Close()
	acc, highest, msgs := modseqs(t, s, a.ID)
	if acc != durable+modseqGap || highest != acc {
		t.Fatalf("after the cut: account modseq %d, highest %d; want %d (synced %d, lost up to %d)", acc, highest, durable+modseqGap, durable, lost)
	}
	in := inbox(t, s, a.ID)
	var seen []mailstore.UID
	err = s.Fetch(context.Background(), a.ID, in.ID, mailstore.UIDSet{{Lo: 1, Hi: 1 << 31}}, 0, lost, func(m *mailstore.Message) error {
		if m.ModSeq <= lost {
			t.Errorf("UID %d: modseq %d, not above the lost %d", m.UID, m.ModSeq, lost)
		}
		for _, f := range m.Flags {
			if f == `\Flagged` {
				t.Errorf("UID %d kept a flag change the cut undid: %v", m.UID, m.Flags)
			}
		}
		if m.UID == 1 && len(m.Flags) != 1 {
			t.Errorf("UID 1 lost its synced \\Seen: %v", m.Flags)
		}
		seen = append(seen, m.UID)
		return nil
	})
	if err != nil || len(seen) != 3 || len(msgs) != 3 {
		t.Fatalf("FETCH CHANGEDSINCE %d after the cut: %v, %v (%d messages); want all 3", lost, seen, err, len(msgs))
	}
}

// powerCut closes s and opens what the disk would hold after a power
// cut, with a new boot id: the database file (no checkpoint ran), the
// WAL up to walSize bytes (where the last synced commit ended) and the
// full-text index. No -shm: it lives in memory.
func powerCut(t *testing.T, s *Store, dir string, walSize int64) *Store {
	t.Helper()
	cut := t.TempDir()
	copyFile(t, filepath.Join(dir, DBFile), filepath.Join(cut, DBFile), -1)
	copyFile(t, filepath.Join(dir, DBFile+"-wal"), filepath.Join(cut, DBFile+"-wal"), walSize)
	copyFile(t, filepath.Join(dir, FTSFile), filepath.Join(cut, FTSFile), -1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return openBoot(t, cut, "boot-b", false)
}

// TestDeferredExpungePowerCut: EXPUNGE of \Deleted messages is deferred
// like the flag change it completes, and a power cut that undoes it
// loses no mail: the message is back in its mailbox with its \Deleted
// flag, its bytes readable, a modseq above the lost expunge's, and not
// also in the retention area. POP3's Expunge still syncs.
func TestDeferredExpungePowerCut(t *testing.T) {
	dir := t.TempDir()
	s := openUncheckpointed(t, dir)
	ctx := context.Background()
	a := addAccount(t, s, "a@example.test")
	for _, id := range []string{"m1", "m2", "m3"} {
		deliverOne(t, s, a.ID, id)
	}
	in := inbox(t, s, a.ID)
	if _, _, err := s.Expunge(ctx, a.ID, in.ID, mailstore.UIDSetOf(3)); err != nil {
		t.Fatal(err)
	}
	storeSeen(t, s, a.ID, 1, `\Seen`) // synced: it carries the marker
	storeSeen(t, s, a.ID, 2, `\Deleted`)
	if s.deferredCommits.Load() != 1 {
		t.Fatalf("deferred commits %d before the expunge, want 1 (POP3's Expunge must sync)", s.deferredCommits.Load())
	}
	synced, err := os.Stat(filepath.Join(dir, DBFile+"-wal"))
	if err != nil {
		t.Fatal(err)
	}
	before := s.deferredCommits.Load()
	gone, mod, err := s.ExpungeDeleted(ctx, a.ID, in.ID, mailstore.UIDSet{{Lo: 1, Hi: 10}})
	if err != nil || len(gone) != 1 || gone[0] != 2 {
		t.Fatalf("ExpungeDeleted: %v, %v; want [2]", gone, err)
	}
	if s.deferredCommits.Load() != before+1 || !s.walUnsynced.Load() {
		t.Fatal("ExpungeDeleted was synced in deferred mode")
	}
	if d, err := s.ListDeleted(ctx, a.ID); err != nil || len(d) != 2 {
		t.Fatalf("retention before the cut: %d messages, %v; want 2", len(d), err)
	}

	s = powerCut(t, s, dir, synced.Size())
	defer s.Close()
	in = inbox(t, s, a.ID)
	var uids []mailstore.UID
	err = s.Fetch(ctx, a.ID, in.ID, mailstore.UIDSet{{Lo: 1, Hi: 1 << 31}}, mailstore.FetchIDs, mod, func(m *mailstore.Message) error {
		uids = append(uids, m.UID)
		if m.UID == 2 {
			if len(m.Flags) != 1 || m.Flags[0] != `\Deleted` {
				t.Errorf("UID 2 came back with flags %v, want [\\Deleted]", m.Flags)
			}
			raw, err := s.ReadBlob(ctx, m.BlobID)
			if err != nil || !bytes.Contains(raw, []byte("body m2")) {
				t.Errorf("UID 2's message after the cut: %q, %v", raw, err)
			}
		}
		return nil
	})
	if err != nil || len(uids) != 2 || uids[1] != 2 {
		t.Fatalf("FETCH CHANGEDSINCE %d (the lost expunge) after the cut: %v, %v; want UIDs 1 and 2", mod, uids, err)
	}
	d, err := s.ListDeleted(ctx, a.ID)
	if err != nil || len(d) != 1 {
		t.Fatalf("retention after the cut: %+v, %v; want only POP3's synced expunge", d, err)
	}
}

// TestInlineFlagWrites: with the writer idle, an unsynced flag write runs
// on its caller's goroutine (runInline); the first, which writes the
// marker, a synced one and anything else keep the writer goroutine. The
// checkpointer is held: a RESTART checkpoint takes the gate, and an
// inline attempt then rightly falls back to the writer.
func TestInlineFlagWrites(t *testing.T) {
	for _, deferFlags := range []bool{true, false} {
		s, err := Open(t.TempDir(), Options{DeferFlagSync: deferFlags, bootID: func() (string, error) { return "boot-a", nil }, holdIndexer: true, holdCheckpointer: true})
		if err != nil {
			t.Fatal(err)
		}
		a := addAccount(t, s, "a@example.test")
		deliverOne(t, s, a.ID, "m1")
		deliverOne(t, s, a.ID, "m2")
		storeSeen(t, s, a.ID, 1, `\Seen`)
		storeSeen(t, s, a.ID, 2, `\Seen`)
		storeSeen(t, s, a.ID, 1, `\Flagged`)
		deliverOne(t, s, a.ID, "m3")
		want := int64(0)
		if deferFlags {
			want = 2 // not the first: it carries the marker, synced
		}
		if n := s.inlined.Load(); n != want {
			t.Errorf("deferred=%v: %d flag writes ran inline, want %d", deferFlags, n, want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// openUncheckpointed opens dir deferring flag syncs, with the indexer and
// the checkpointer held: nothing but the writer syncs the WAL, so the
// size it had after a synced commit marks what a power cut keeps.
func openUncheckpointed(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{DeferFlagSync: true, bootID: func() (string, error) { return "boot-a", nil }, holdIndexer: true, holdCheckpointer: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// copyFile copies src to dst, only its first n bytes when n >= 0.
func copyFile(t *testing.T, src, dst string, n int64) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if n >= 0 {
		b = b[:n]
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
