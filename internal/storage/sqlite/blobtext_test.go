package sqlite

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// textCounts reports the full-text index's entries and their text rows,
// indexed (fts.blob_fts) or waiting (fts_pending), once the indexer has
// caught up: while it works an entry may briefly be in both.
func textCounts(t testing.TB, s *Store) (entries, rows int) {
	t.Helper()
	waitIndexed(t, s)
	if err := s.rdb.QueryRow(`SELECT (SELECT count(*) FROM blobs WHERE text_id IS NOT NULL), (SELECT count(*) FROM fts.blob_fts) + (SELECT count(*) FROM fts_pending)`).Scan(&entries, &rows); err != nil {
		t.Fatal(err)
	}
	return entries, rows
}

// checkText checks the per-blob index's invariants: every message row
// names the entry of its own blob, no two blobs share an entry, every
// entry has exactly one text row (indexed or pending), and no text row is
// left without an entry.
func checkText(t testing.TB, s *Store) {
	t.Helper()
	waitIndexed(t, s)
	for _, c := range []struct{ what, query string }{
		{"message rows without their blob's entry", `SELECT count(*) FROM messages m
			WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.text_id = m.text_id AND b.id = m.blob_id)`},
		{"entries sharing an id", `SELECT count(*) FROM (SELECT text_id FROM blobs WHERE text_id IS NOT NULL GROUP BY text_id HAVING count(*) > 1)`},
		{"entries without a text row", `SELECT count(*) FROM blobs b WHERE b.text_id IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM fts.blob_fts f WHERE f.rowid = b.text_id)
			AND NOT EXISTS (SELECT 1 FROM fts_pending p WHERE p.id = b.text_id)`},
		{"entries both indexed and pending", `SELECT count(*) FROM fts_pending p JOIN fts.blob_fts f ON f.rowid = p.id`},
		{"FTS rows without an entry", `SELECT count(*) FROM fts.blob_fts f WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.text_id = f.rowid)`},
		{"dropped ids still listed", `SELECT count(*) FROM fts_dropped`},
		{"pending rows without an entry", `SELECT count(*) FROM fts_pending p WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.text_id = p.id)`},
	} {
		var n int
		if err := s.rdb.QueryRow(c.query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if n != 0 {
			t.Errorf("%d %s", n, c.what)
		}
	}
}

// searchUIDs runs one search key and fails the test on error.
func searchUIDs(t testing.TB, s *Store, acct, mbox int64, k *mailstore.SearchKey) []mailstore.UID {
	t.Helper()
	got, err := s.Search(context.Background(), acct, mbox, k)
	if err != nil {
		t.Fatalf("Search(%+v): %v", k, err)
	}
	return got
}

// textKeys are searches that use the index in each of its ways: a trigram
// MATCH on the body, a short needle tested on the stored text, a header
// field without a column of its own.
var textKeys = []*mailstore.SearchKey{
	{Op: mailstore.SearchBody, Value: "PINEAPPLE"},
	{Op: mailstore.SearchText, Value: "zq"},
	{Op: mailstore.SearchHeader, Name: "X-Tag", Value: "fanout"},
}

func fanoutMessage() []byte {
	return []byte("From: a@example.org\r\nTo: list@example.test\r\nX-Tag: Fanout\r\nSubject: team\r\nMessage-ID: <fan@x>\r\n\r\nThe pineapple zq arrives.\r\n")
}

// TestTextPerBlob follows one blob's index entry through delivery to
// several recipients, copy, move, expunge, restore and purge.
func TestTextPerBlob(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	var accts []mailstore.Account
	var targets []mailstore.DeliveryTarget
	for _, name := range []string{"t1@example.test", "t2@example.test", "t3@example.test"} {
		a := addAccount(t, s, name)
		accts = append(accts, a)
		targets = append(targets, mailstore.DeliveryTarget{AccountID: a.ID})
	}
	if _, err := s.Deliver(ctx, mailstore.Delivery{Raw: fanoutMessage(), Recipients: targets}); err != nil {
		t.Fatal(err)
	}
	// A message the index must not confuse with the first.
	other := accts[0]
	otherIn := inbox(t, s, other.ID)
	if _, err := s.Append(ctx, other.ID, []mailstore.AppendRequest{{MailboxID: otherIn.ID, Raw: msg("else", "else@x", "banana")}}); err != nil {
		t.Fatal(err)
	}
	if e, r := textCounts(t, s); e != 2 || r != 2 {
		t.Fatalf("after delivery to 3: %d entries, %d FTS rows; want one per blob (2)", e, r)
	}
	for _, a := range accts {
		in := inbox(t, s, a.ID)
		for _, k := range textKeys {
			if got := searchUIDs(t, s, a.ID, in.ID, k); !slices.Equal(got, []mailstore.UID{1}) {
				t.Errorf("%s: search %+v = %v, want [1]", a.Name, k, got)
			}
		}
	}
	checkText(t, s)

	// Copy and move share the entry.
	a := accts[1]
	in := inbox(t, s, a.ID)
	arch, err := s.GetMailbox(ctx, a.ID, "Archive")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Copy(ctx, a.ID, in.ID, mailstore.UIDSetOf(1), arch.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Move(ctx, a.ID, arch.ID, mailstore.UIDSetOf(1), in.ID); err != nil {
		t.Fatal(err)
	}
	if e, r := textCounts(t, s); e != 2 || r != 2 {
		t.Fatalf("after copy and move: %d entries, %d FTS rows", e, r)
	}
	for _, k := range textKeys {
		if got := searchUIDs(t, s, a.ID, in.ID, k); !slices.Equal(got, []mailstore.UID{1, 2}) {
			t.Errorf("search %+v after copy = %v, want [1 2]", k, got)
		}
		// NOT over the index keeps its meaning.
		not := &mailstore.SearchKey{Op: mailstore.SearchNot, Children: []*mailstore.SearchKey{k}}
		if got := searchUIDs(t, s, other.ID, otherIn.ID, not); !slices.Equal(got, []mailstore.UID{2}) {
			t.Errorf("search NOT %+v = %v, want [2]", k, got)
		}
	}
	checkText(t, s)

	// Expunged everywhere, the blob is retained and so is its entry; a
	// restored message is found again.
	for _, a := range accts {
		in := inbox(t, s, a.ID)
		if _, _, err := s.Expunge(ctx, a.ID, in.ID, allUIDs); err != nil {
			t.Fatal(err)
		}
	}
	if e, _ := textCounts(t, s); e != 2 {
		t.Fatalf("after expunge: %d entries, want 2 (blobs retained)", e)
	}
	del, err := s.ListDeleted(ctx, a.ID)
	if err != nil || len(del) != 2 {
		t.Fatalf("ListDeleted = %d, %v", len(del), err)
	}
	res, err := s.RestoreDeleted(ctx, a.ID, []int64{del[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range textKeys {
		if got := searchUIDs(t, s, a.ID, in.ID, k); !slices.Equal(got, []mailstore.UID{res[0].UID}) {
			t.Errorf("search %+v after restore = %v, want [%d]", k, got, res[0].UID)
		}
	}
	checkText(t, s)

	// Purged, the last references go and the entries with them.
	if _, _, err := s.Expunge(ctx, a.ID, in.ID, allUIDs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Purge(ctx, time.Now().Add(time.Hour), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if e, r := textCounts(t, s); e != 0 || r != 0 {
		t.Fatalf("after purge: %d entries, %d FTS rows; want none", e, r)
	}
	checkText(t, s)
}

// TestTextQueueAndAccountDelete: a blob the queue holds is not indexed
// until a message row uses it; deleting an account drops the entries of
// blobs only it held.
func TestTextQueueAndAccountDelete(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	a := addAccount(t, s, "q@example.test")
	b := addAccount(t, s, "keep@example.test")
	raw := fanoutMessage()
	ids, err := s.Enqueue(ctx, raw, []mailstore.QueueEntry{{From: "a@example.org", Recipients: []string{"x@remote.test"}, Domain: "remote.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := textCounts(t, s); e != 0 {
		t.Fatalf("queued blob indexed: %d entries", e)
	}
	if _, err := s.Deliver(ctx, mailstore.Delivery{Raw: raw, Recipients: []mailstore.DeliveryTarget{{AccountID: a.ID}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deliver(ctx, mailstore.Delivery{Raw: msg("kept", "kept@x", "pineapple"), Recipients: []mailstore.DeliveryTarget{{AccountID: b.ID}}}); err != nil {
		t.Fatal(err)
	}
	if e, r := textCounts(t, s); e != 2 || r != 2 {
		t.Fatalf("after delivery: %d entries, %d FTS rows; want 2", e, r)
	}
	if err := s.DeleteQueueEntry(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if got := searchUIDs(t, s, a.ID, inbox(t, s, a.ID).ID, textKeys[0]); len(got) != 1 {
		t.Fatalf("search after the queue let go = %v", got)
	}
	if err := s.DeleteAccount(ctx, a.Name); err != nil {
		t.Fatal(err)
	}
	if e, r := textCounts(t, s); e != 1 || r != 1 {
		t.Fatalf("after account delete: %d entries, %d FTS rows; want 1", e, r)
	}
	if got := searchUIDs(t, s, b.ID, inbox(t, s, b.ID).ID, textKeys[0]); len(got) != 1 {
		t.Fatalf("other account's search after delete = %v", got)
	}
	checkText(t, s)
}

// TestTextBatchRollback lines up, in one batch, a delivery that makes a
// blob's entry and then fails (over quota) and a delivery of the same
// blob that succeeds: the failed one's entry must vanish with it and the
// second must make its own.
func TestTextBatchRollback(t *testing.T) {
	for _, failFirst := range []bool{true, false} {
		ctx := context.Background()
		s, _ := openTest(t)
		full := addAccount(t, s, "full@example.test")
		ok := addAccount(t, s, "ok@example.test")
		if err := s.SetQuota(ctx, full.Name, 1, 0); err != nil {
			t.Fatal(err)
		}
		raw := fanoutMessage()
		release := holdWriter(t, s)
		var wg sync.WaitGroup
		var failErr, okErr error
		deliver := func(acct int64, err *error) {
			wg.Go(func() {
				_, *err = s.Deliver(ctx, mailstore.Delivery{Raw: raw, Recipients: []mailstore.DeliveryTarget{{AccountID: acct}}})
			})
		}
		// Blocked senders on a channel are served in order: waiting for
		// each to queue fixes the order inside the batch.
		if failFirst {
			deliver(full.ID, &failErr)
			waitPending(t, s, 1)
			deliver(ok.ID, &okErr)
		} else {
			deliver(ok.ID, &okErr)
			waitPending(t, s, 1)
			deliver(full.ID, &failErr)
		}
		waitPending(t, s, 2)
		release()
		wg.Wait()
		if !errors.Is(failErr, mailstore.ErrOverQuota) || okErr != nil {
			t.Fatalf("failFirst=%v: deliveries = %v, %v", failFirst, failErr, okErr)
		}
		if e, r := textCounts(t, s); e != 1 || r != 1 {
			t.Fatalf("failFirst=%v: %d entries, %d FTS rows; want 1", failFirst, e, r)
		}
		if got := searchUIDs(t, s, ok.ID, inbox(t, s, ok.ID).ID, textKeys[0]); len(got) != 1 {
			t.Fatalf("failFirst=%v: search = %v", failFirst, got)
		}
		checkText(t, s)
	}
}

// TestLineSize: Fetch with FetchSize returns the POP3 size stored at
// delivery, on every path that makes a message row.
func TestLineSize(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	a := addAccount(t, s, "ls@example.test")
	in := inbox(t, s, a.ID)
	raws := [][]byte{
		[]byte("Subject: crlf\r\n\r\nbody\r\n"),
		[]byte("Subject: bare\n\nbody\nmore"), // bare LFs, no final line end
		[]byte("Subject: mixed\r\n\nbody\r\n.\n"),
	}
	for _, raw := range raws {
		if _, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: raw}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Deliver(ctx, mailstore.Delivery{Raw: raws[1], Recipients: []mailstore.DeliveryTarget{{AccountID: a.ID}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Copy(ctx, a.ID, in.ID, mailstore.UIDSetOf(2), in.ID); err != nil {
		t.Fatal(err)
	}
	want := map[mailstore.UID][]byte{1: raws[0], 2: raws[1], 3: raws[2], 4: raws[1], 5: raws[1]}
	seen := 0
	err := s.Fetch(ctx, a.ID, in.ID, allUIDs, mailstore.FetchSize, 0, func(m *mailstore.Message) error {
		raw := want[m.UID]
		seen++
		if m.Size != int64(len(raw)) || m.LineSize != mailstore.LineSize(raw) {
			t.Errorf("uid %d: Size %d LineSize %d, want %d %d", m.UID, m.Size, m.LineSize, len(raw), mailstore.LineSize(raw))
		}
		return nil
	})
	if err != nil || seen != len(want) {
		t.Fatalf("Fetch: %d rows, %v", seen, err)
	}
	// Not asked for, not read.
	err = s.Fetch(ctx, a.ID, in.ID, allUIDs, mailstore.FetchIDs, 0, func(m *mailstore.Message) error {
		if m.LineSize != 0 || m.Size != 0 {
			t.Errorf("uid %d: sizes read without FetchSize", m.UID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
