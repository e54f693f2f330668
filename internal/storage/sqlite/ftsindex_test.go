package sqlite

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// pendingTexts counts the text rows waiting for the indexer.
func pendingTexts(t testing.TB, s *Store) int {
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
	if n := pendingTexts(t, s); n != 2 {
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
	if n := pendingTexts(t, s); n != 2 {
		t.Fatalf("%d pending texts after purging one, want 2", n)
	}
	check("pending, after a purge")

	// The indexer runs when the writer is idle: wake it with a write.
	s.ftsOff.Store(false)
	if _, err := s.CreateMailbox(ctx, a.ID, "Poke", ""); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pendingTexts(t, s) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d texts still pending after 10s of an idle writer", pendingTexts(t, s))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if e, r := textCounts(t, s); e != 2 || r != 2 {
		t.Fatalf("after indexing: %d entries, %d text rows; want 2, 2", e, r)
	}
	check("indexed")
}

// TestTextIndexChunks: indexText takes the oldest entries first, a chunk
// at a time, and the backlog counter follows.
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
	if w := s.ftsWaiting.Load(); w != 5 {
		t.Fatalf("backlog %d after 5 new texts, want 5", w)
	}
	// The writer's own indexing is off; move three entries in a request
	// of its batch (moveText is what indexText runs in its transaction).
	var moved int64
	if err := s.update(ctx, func(w *wtx) (err error) {
		moved, err = moveText(w, 3)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if moved != 3 || pendingTexts(t, s) != 2 {
		t.Fatalf("moved %d, %d pending; want 3, 2", moved, pendingTexts(t, s))
	}
	var oldestPending int64
	if err := s.rdb.QueryRow(`SELECT min(p.id) > (SELECT max(rowid) FROM blob_fts) FROM fts_pending p`).Scan(&oldestPending); err != nil || oldestPending != 1 {
		t.Fatalf("indexed entries are not the oldest: %v, %v", oldestPending, err)
	}
	for i := range 5 {
		k := &mailstore.SearchKey{Op: mailstore.SearchBody, Value: "word" + string(rune('a'+i)) + "xyz"}
		if got := searchUIDs(t, s, a.ID, in.ID, k); !slices.Equal(got, []mailstore.UID{mailstore.UID(i + 1)}) {
			t.Errorf("search %q = %v, want [%d]", k.Value, got, i+1)
		}
	}
	checkText(t, s)
}
