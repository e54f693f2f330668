package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// waitIndexed waits until the indexer has nothing left to do (unless the
// test turned it off): no pending text, no dropped id.
func waitIndexed(t testing.TB, s *Store) {
	t.Helper()
	if s.ftsOff.Load() {
		return
	}
	s.kickIndexer()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := s.rdb.QueryRow(`SELECT (SELECT count(*) FROM fts_pending) + (SELECT count(*) FROM fts_dropped)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pending texts and dropped ids after 10s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pendingCount counts the text rows waiting for the indexer.
func pendingCount(t testing.TB, s *Store) int {
	t.Helper()
	var n int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM fts_pending`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTextSearchPendingThenIndexed: a message's text is searchable the
// moment its delivery returns, whether or not the indexer has run, and
// the indexer then moves it into blob_fts with the same search results.
func TestTextSearchPendingThenIndexed(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	s.ftsOff.Store(true)
	a := addAccount(t, s, "p1@example.test")
	in := inbox(t, s, a.ID)
	if _, err := s.Deliver(ctx, mailstore.Delivery{Raw: fanoutMessage(), Recipients: []mailstore.DeliveryTarget{{AccountID: a.ID}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: msg("else", "else@x", "banana")}}); err != nil {
		t.Fatal(err)
	}
	if n := pendingCount(t, s); n != 2 {
		t.Fatalf("%d pending texts with the indexer off, want 2", n)
	}
	check := func(when string) {
		t.Helper()
		for _, k := range textKeys {
			if got := searchUIDs(t, s, a.ID, in.ID, k); !slices.Equal(got, []mailstore.UID{1}) {
				t.Errorf("%s: search %+v = %v, want [1]", when, k, got)
			}
			not := &mailstore.SearchKey{Op: mailstore.SearchNot, Children: []*mailstore.SearchKey{k}}
			if got := searchUIDs(t, s, a.ID, in.ID, not); !slices.Equal(got, []mailstore.UID{2}) {
				t.Errorf("%s: search NOT %+v = %v, want [2]", when, k, got)
			}
		}
		if got := searchUIDs(t, s, a.ID, in.ID, &mailstore.SearchKey{Op: mailstore.SearchBody, Value: "banana"}); !slices.Equal(got, []mailstore.UID{2}) {
			t.Errorf("%s: BODY banana = %v, want [2]", when, got)
		}
		checkText(t, s)
	}
	check("pending")

	// Expunging and purging a pending text drops it from fts_pending.
	if _, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: msg("gone", "gone@x", "kumquat")}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Expunge(ctx, a.ID, in.ID, mailstore.UIDSetOf(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Purge(ctx, time.Now().Add(time.Hour), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n := pendingCount(t, s); n != 2 {
		t.Fatalf("%d pending texts after purging one, want 2", n)
	}
	check("pending, after a purge")

	// Turned on, the indexer moves the text into the index file.
	s.ftsOff.Store(false)
	waitIndexed(t, s)
	var indexed int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM fts.blob_fts`).Scan(&indexed); err != nil || indexed != 2 {
		t.Fatalf("%d rows in the index file, %v; want 2", indexed, err)
	}
	if e, r := textCounts(t, s); e != 2 || r != 2 {
		t.Fatalf("after indexing: %d entries, %d text rows; want 2, 2", e, r)
	}
	check("indexed")
}

// TestTextIndexChunks: indexChunk takes the oldest entries first, a
// chunk at a time, and removes an indexed entry that was dropped since.
func TestTextIndexChunks(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	s.ftsOff.Store(true)
	a := addAccount(t, s, "p2@example.test")
	in := inbox(t, s, a.ID)
	var reqs []mailstore.AppendRequest
	for i := range 5 {
		reqs = append(reqs, mailstore.AppendRequest{MailboxID: in.ID, Raw: msg("chunk", "c@x", "word"+string(rune('a'+i))+"xyz")})
	}
	if _, err := s.Append(ctx, a.ID, reqs); err != nil {
		t.Fatal(err)
	}
	// The indexer goroutine is off; calling indexChunk from here stands
	// in for it.
	n, err := s.indexChunk(3)
	if err != nil || n != 3 || pendingCount(t, s) != 2 {
		t.Fatalf("indexChunk(3) = %d, %v with %d pending; want 3, nil, 2", n, err, pendingCount(t, s))
	}
	var oldestPending int64
	if err := s.rdb.QueryRow(`SELECT min(p.id) > (SELECT max(rowid) FROM fts.blob_fts) FROM fts_pending p`).Scan(&oldestPending); err != nil || oldestPending != 1 {
		t.Fatalf("indexed entries are not the oldest: %v, %v", oldestPending, err)
	}
	for i := range 5 {
		k := &mailstore.SearchKey{Op: mailstore.SearchBody, Value: "word" + string(rune('a'+i)) + "xyz"}
		if got := searchUIDs(t, s, a.ID, in.ID, k); !slices.Equal(got, []mailstore.UID{mailstore.UID(i + 1)}) {
			t.Errorf("search %q = %v, want [%d]", k.Value, got, i+1)
		}
	}
	// Expunge and purge an indexed message: its entry is listed as
	// dropped, and the next chunk takes it out of the index file.
	if _, _, err := s.Expunge(ctx, a.ID, in.ID, mailstore.UIDSetOf(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Purge(ctx, time.Now().Add(time.Hour), time.Time{}); err != nil {
		t.Fatal(err)
	}
	var dropped int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM fts_dropped`).Scan(&dropped); err != nil || dropped != 1 {
		t.Fatalf("%d dropped ids, %v; want 1", dropped, err)
	}
	if n, err := s.indexChunk(10); err != nil || n != 2 {
		t.Fatalf("indexChunk(10) = %d, %v; want 2", n, err)
	}
	s.ftsOff.Store(false)
	checkText(t, s)
	if e, r := textCounts(t, s); e != 4 || r != 4 {
		t.Fatalf("after the purge: %d entries, %d text rows; want 4, 4", e, r)
	}
}

// TestTextRebuildLostIndex: with the index file gone, Open plans a
// rebuild and the indexer re-extracts the text from the blobs, so text
// searches find every message again.
func TestTextRebuildLostIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := addAccount(t, s, "rb@example.test")
	in := inbox(t, s, a.ID)
	words := []string{"quincefruit", "medlarfruit", "sloeberry"}
	for _, w := range words {
		if _, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: msg(w, w+"@x", "a "+w+" here")}}); err != nil {
			t.Fatal(err)
		}
	}
	waitIndexed(t, s)
	var planned int
	if err := s.fdb.QueryRow(`SELECT count(*) FROM fts_state`).Scan(&planned); err != nil || planned != 0 {
		t.Fatalf("a store with its index planned a rebuild: %d, %v", planned, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(filepath.Join(dir, FTSFile+suffix)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left, rows int
		if err := s.fdb.QueryRow(`SELECT (SELECT count(*) FROM fts_state), (SELECT count(*) FROM blob_fts)`).Scan(&left, &rows); err != nil {
			t.Fatal(err)
		}
		if left == 0 && rows == len(words) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rebuild not done after 10s: plan rows %d, index rows %d", left, rows)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, w := range words {
		k := &mailstore.SearchKey{Op: mailstore.SearchBody, Value: w}
		if got := searchUIDs(t, s, a.ID, in.ID, k); !slices.Equal(got, []mailstore.UID{mailstore.UID(i + 1)}) {
			t.Errorf("after the rebuild, BODY %s = %v, want [%d]", w, got, i+1)
		}
	}
	checkText(t, s)
}

// TestPendingTextSources: text waiting for the indexer is found in memory,
// in an fts_pending row that holds it (written before pendingtext.go), or
// extracted from the blob when neither has it (after a restart); searches
// and the indexer use all three, and the indexer empties the memory.
func TestPendingTextSources(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	s.ftsOff.Store(true)
	a := addAccount(t, s, "src@example.test")
	in := inbox(t, s, a.ID)
	var reqs []mailstore.AppendRequest
	for _, w := range []string{"inmemory", "fromblob", "rowtext"} {
		reqs = append(reqs, mailstore.AppendRequest{MailboxID: in.ID, Raw: msg("src "+w, w+"@x", "word "+w)})
	}
	res, err := s.Append(ctx, a.ID, reqs)
	if err != nil {
		t.Fatal(err)
	}
	var rows []int64
	r, err := s.rdb.Query(`SELECT m.text_id FROM messages m WHERE m.mailbox_id = ? ORDER BY m.uid`, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var id int64
		if err := r.Scan(&id); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, id)
	}
	r.Close()
	if len(rows) != 3 {
		t.Fatalf("%d messages, want 3", len(rows))
	}
	for _, id := range rows {
		if _, ok := s.ptexts.get(id); !ok {
			t.Fatalf("entry %d: no text in memory after its delivery", id)
		}
	}
	var stored int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM fts_pending WHERE header <> '' OR body <> ''`).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("%d fts_pending rows hold text (%v); want none", stored, err)
	}
	// As after a restart for the second; the third as an older version
	// wrote it, with its text in the row ("zebra" is not in the blob).
	s.ptexts.drop(rows[1], rows[2])
	if err := s.update(ctx, func(w *wtx) error {
		_, err := w.exec(`UPDATE fts_pending SET header = 'Subject: src rowtext', body = 'word rowtext zebra' WHERE id = ?`, rows[2])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for i, w := range []string{"inmemory", "fromblob", "rowtext", "zebra"} {
			want := res[min(i, 2)].UID
			for _, k := range []*mailstore.SearchKey{
				{Op: mailstore.SearchBody, Value: w},
				{Op: mailstore.SearchText, Value: w},
			} {
				if got := searchUIDs(t, s, a.ID, in.ID, k); !slices.Equal(got, []mailstore.UID{want}) {
					t.Errorf("%s: search %+v = %v, want [%d]", when, k, got, want)
				}
			}
		}
		k := &mailstore.SearchKey{Op: mailstore.SearchHeader, Name: "Subject", Value: "fromblob"}
		if got := searchUIDs(t, s, a.ID, in.ID, k); !slices.Equal(got, []mailstore.UID{res[1].UID}) {
			t.Errorf("%s: HEADER Subject fromblob = %v, want [%d]", when, got, res[1].UID)
		}
	}
	check("pending")
	s.ftsOff.Store(false)
	s.kickIndexer()
	waitIndexed(t, s)
	check("indexed")
	// The indexer forgets the texts just after the commit that clears
	// fts_pending, which waitIndexed watches: give it a moment.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.ptexts.mu.Lock()
		n, b := len(s.ptexts.m), s.ptexts.bytes
		s.ptexts.mu.Unlock()
		if n == 0 && b == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after indexing, %d texts (%d bytes) still in memory", n, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
