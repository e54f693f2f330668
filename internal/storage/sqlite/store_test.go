package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

func openTest(t testing.TB) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

// writerQueryRow runs a one-row query on the writer's connection, as a
// write of its own: the writer goroutine holds that connection while the
// store is open (heldconn.go).
func writerQueryRow(s *Store, query string, dest ...any) error {
	return s.update(context.Background(), func(w *wtx) error {
		return w.queryRow(query).Scan(dest...)
	})
}

// writerSchemaVersion is schemaVersion on the writer's connection.
func writerSchemaVersion(s *Store) (int, error) {
	var v int
	err := writerQueryRow(s, `PRAGMA user_version`, &v)
	return v, err
}

func addAccount(t testing.TB, s *Store, name string) mailstore.Account {
	t.Helper()
	ctx := context.Background()
	_, domain, _ := cut(name)
	if err := s.AddDomain(ctx, domain); err != nil && !errors.Is(err, mailstore.ErrExists) {
		t.Fatalf("AddDomain: %v", err)
	}
	a, err := s.AddAccount(ctx, name, "hash")
	if err != nil {
		t.Fatalf("AddAccount: %v", err)
	}
	return a
}

func cut(addr string) (string, string, bool) {
	for i := range addr {
		if addr[i] == '@' {
			return addr[:i], addr[i+1:], true
		}
	}
	return addr, "", false
}

func msg(subject, msgid, body string) []byte {
	return fmt.Appendf(nil, "From: a@example.org\r\nTo: b@example.test\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\n%s\r\n", subject, msgid, body)
}

func inbox(t testing.TB, s *Store, acct int64) mailstore.Mailbox {
	t.Helper()
	mb, err := s.GetMailbox(context.Background(), acct, "inbox")
	if err != nil {
		t.Fatalf("GetMailbox INBOX: %v", err)
	}
	return mb
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	a := addAccount(t, s, "Alice@Example.Test")
	if a.Name != "alice@example.test" || a.Domain != "example.test" {
		t.Fatalf("account = %+v", a)
	}
	boxes, err := s.ListMailboxes(ctx, a.ID)
	if err != nil || len(boxes) != len(mailstore.DefaultMailboxes) {
		t.Fatalf("ListMailboxes = %v, %v", boxes, err)
	}
	in := inbox(t, s, a.ID)
	w := s.Watch(a.ID)
	defer w.Close()

	raw := msg("Hello", "m1@x", "first body")
	res, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: raw, Flags: []string{`\seen`, "$Label"}}})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if res[0].UID != 1 || res[0].UIDValidity != in.UIDValidity || res[0].ModSeq == 0 {
		t.Fatalf("Append result %+v", res[0])
	}
	select {
	case <-w.C:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake-up after Append")
	}
	d, err := s.Deliver(ctx, mailstore.Delivery{Raw: msg("Second", "m2@x", "second body"), Recipients: []mailstore.DeliveryTarget{{AccountID: a.ID}}})
	if err != nil || d[0].UID != 2 || d[0].ModSeq <= res[0].ModSeq {
		t.Fatalf("Deliver = %+v, %v", d, err)
	}

	uids, hm, err := s.UIDs(ctx, a.ID, in.ID)
	if err != nil || !slices.Equal(uids, []mailstore.UID{1, 2}) || hm != d[0].ModSeq {
		t.Fatalf("UIDs = %v %d %v", uids, hm, err)
	}
	var got []*mailstore.Message
	err = s.Fetch(ctx, a.ID, in.ID, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}, mailstore.FetchAll, 0, func(m *mailstore.Message) error {
		got = append(got, m)
		return nil
	})
	if err != nil || len(got) != 2 {
		t.Fatalf("Fetch = %d, %v", len(got), err)
	}
	if !slices.Equal(got[0].Flags, []string{"$Label", `\Seen`}) || got[0].Size != int64(len(raw)) || got[0].Body == nil || got[0].BlobID == "" {
		t.Fatalf("Fetch[0] = %+v", got[0])
	}
	b, err := s.ReadBlob(ctx, got[0].BlobID)
	if err != nil || string(b) != string(raw) {
		t.Fatalf("ReadBlob = %q, %v", b, err)
	}

	st, err := s.Status(ctx, a.ID, in.ID)
	if err != nil || st.Messages != 2 || st.Unseen != 1 || st.UIDNext != 3 || st.Size != int64(len(raw))+got[1].Size {
		t.Fatalf("Status = %+v, %v", st, err)
	}

	before, _ := s.HighestModSeq(ctx, a.ID)
	fr, err := s.StoreFlags(ctx, a.ID, mailstore.StoreFlagsRequest{MailboxID: in.ID, UIDs: mailstore.UIDSetOf(1, 2), Mode: mailstore.FlagsAdd, Flags: []string{`\Seen`}})
	if err != nil || len(fr.Changed) != 1 || fr.Changed[0].UID != 2 || fr.ModSeq != before+1 {
		t.Fatalf("StoreFlags = %+v, %v", fr, err)
	}
	// A no-op change raises nothing.
	fr2, err := s.StoreFlags(ctx, a.ID, mailstore.StoreFlagsRequest{MailboxID: in.ID, UIDs: mailstore.UIDSetOf(1, 2), Mode: mailstore.FlagsAdd, Flags: []string{`\Seen`}})
	if err != nil || len(fr2.Changed) != 0 || fr2.ModSeq != 0 {
		t.Fatalf("no-op StoreFlags = %+v, %v", fr2, err)
	}
	// UNCHANGEDSINCE below message 2's modseq refuses it.
	fr3, err := s.StoreFlags(ctx, a.ID, mailstore.StoreFlagsRequest{MailboxID: in.ID, UIDs: mailstore.UIDSetOf(1, 2), Mode: mailstore.FlagsAdd, Flags: []string{`\Flagged`}, UnchangedSince: before})
	if err != nil || len(fr3.Changed) != 1 || fr3.Changed[0].UID != 1 || !fr3.Modified.Contains(2) {
		t.Fatalf("UNCHANGEDSINCE StoreFlags = %+v, %v", fr3, err)
	}

	gone, em, err := s.Expunge(ctx, a.ID, in.ID, mailstore.UIDSetOf(1))
	if err != nil || !slices.Equal(gone, []mailstore.UID{1}) || em <= fr3.ModSeq {
		t.Fatalf("Expunge = %v %d %v", gone, em, err)
	}
	van, err := s.Vanished(ctx, a.ID, in.ID, before)
	if err != nil || !slices.Equal(van, []mailstore.UID{1}) {
		t.Fatalf("Vanished = %v, %v", van, err)
	}
	ch, err := s.Changes(ctx, a.ID, before, 0)
	if err != nil {
		t.Fatal(err)
	}
	// StoreFlags on 2 (later overwritten: reported once, current state),
	// then the expunge of 1.
	want := []mailstore.Change{
		{Kind: mailstore.ChangeMessage, ModSeq: fr.ModSeq, MailboxID: in.ID, UID: 2, Flags: []string{`\Seen`}},
		{Kind: mailstore.ChangeExpunge, ModSeq: em, MailboxID: in.ID, UID: 1},
	}
	if fmt.Sprint(ch) != fmt.Sprint(want) {
		t.Fatalf("Changes =\n%v\nwant\n%v", ch, want)
	}
	del, err := s.ListDeleted(ctx, a.ID)
	if err != nil || len(del) != 1 || del[0].UID != 1 || del[0].MailboxName != "INBOX" {
		t.Fatalf("ListDeleted = %+v, %v", del, err)
	}
	rr, err := s.RestoreDeleted(ctx, a.ID, []int64{del[0].ID})
	if err != nil || rr[0].UID != 3 || rr[0].MailboxID != in.ID {
		t.Fatalf("RestoreDeleted = %+v, %v", rr, err)
	}
	acct, _ := s.GetAccountByID(ctx, a.ID)
	if acct.UsedMessages != 2 {
		t.Fatalf("UsedMessages = %d, want 2", acct.UsedMessages)
	}
	checkCounts(t, s)
}

func TestMailboxes(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	a := addAccount(t, s, "bob@example.test")
	mb, err := s.CreateMailbox(ctx, a.ID, "Work/Projects/X", "")
	if err != nil {
		t.Fatalf("CreateMailbox: %v", err)
	}
	for _, n := range []string{"Work", "Work/Projects"} {
		if _, err := s.GetMailbox(ctx, a.ID, n); err != nil {
			t.Fatalf("parent %s: %v", n, err)
		}
	}
	if _, err := s.CreateMailbox(ctx, a.ID, "Work", ""); !errors.Is(err, mailstore.ErrExists) {
		t.Fatalf("re-create = %v", err)
	}
	if err := s.DeleteMailbox(ctx, a.ID, "Work"); !errors.Is(err, mailstore.ErrHasChildren) {
		t.Fatalf("delete with children = %v", err)
	}
	if err := s.DeleteMailbox(ctx, a.ID, "INBOX"); !errors.Is(err, mailstore.ErrCannotDelete) {
		t.Fatalf("delete INBOX = %v", err)
	}
	if err := s.RenameMailbox(ctx, a.ID, "Work", "Job"); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	x, err := s.GetMailbox(ctx, a.ID, "Job/Projects/X")
	if err != nil || x.ID != mb.ID || x.UIDValidity != mb.UIDValidity {
		t.Fatalf("renamed child = %+v, %v", x, err)
	}
	if err := s.DeleteMailbox(ctx, a.ID, "Job/Projects/X"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	again, err := s.CreateMailbox(ctx, a.ID, "Job/Projects/X", "")
	if err != nil || again.UIDValidity == mb.UIDValidity || again.ID == mb.ID {
		t.Fatalf("recreated = %+v (old %+v), %v", again, mb, err)
	}

	// RFC 9051 section 6.3.6: renaming INBOX moves its messages.
	in := inbox(t, s, a.ID)
	if _, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: msg("a", "a@x", "a")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameMailbox(ctx, a.ID, "INBOX", "Old"); err != nil {
		t.Fatalf("rename INBOX: %v", err)
	}
	old, err := s.GetMailbox(ctx, a.ID, "Old")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Status(ctx, a.ID, old.ID); st.Messages != 1 {
		t.Fatalf("Old has %d messages", st.Messages)
	}
	if st, _ := s.Status(ctx, a.ID, in.ID); st.Messages != 0 {
		t.Fatalf("INBOX has %d messages", st.Messages)
	}
	checkCounts(t, s)
}

func TestSentDedupAndQuota(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	a := addAccount(t, s, "carol@example.test")
	sent, err := s.MailboxBySpecialUse(ctx, a.ID, mailstore.SpecialSent)
	if err != nil {
		t.Fatal(err)
	}
	raw := msg("s", "sent1@x", "b")
	r1, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: sent.ID, Raw: raw}})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: sent.ID, Raw: raw}})
	if err != nil || !r2[0].Existing || r2[0].UID != r1[0].UID {
		t.Fatalf("dup append = %+v, %v", r2, err)
	}
	if err := s.SetQuota(ctx, a.Name, 0, 2); err != nil {
		t.Fatal(err)
	}
	in := inbox(t, s, a.ID)
	// MULTIAPPEND of two would make three: none is stored.
	_, err = s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: msg("1", "q1@x", "")}, {MailboxID: in.ID, Raw: msg("2", "q2@x", "")}})
	if !errors.Is(err, mailstore.ErrOverQuota) {
		t.Fatalf("over quota = %v", err)
	}
	if st, _ := s.Status(ctx, a.ID, in.ID); st.Messages != 0 || st.UIDNext != 1 {
		t.Fatalf("after refused MULTIAPPEND: %+v", st)
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := addAccount(t, s, "dave@example.test")
	in := inbox(t, s, a.ID)
	for i := range 3 {
		if _, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: msg("x", fmt.Sprint(i, "@x"), "")}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Expunge(ctx, a.ID, in.ID, mailstore.UIDSetOf(3)); err != nil {
		t.Fatal(err)
	}
	ms1, _ := s.HighestModSeq(ctx, a.ID)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccount(ctx, a.Name); !errors.Is(err, mailstore.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if v, err := writerSchemaVersion(s2); err != nil || v < 1 {
		t.Fatalf("schema version %d, %v", v, err)
	}
	ms2, _ := s2.HighestModSeq(ctx, a.ID)
	if ms2 != ms1 {
		t.Fatalf("modseq after reopen %d, want %d", ms2, ms1)
	}
	// UID 3 was expunged: the next is 4, never a reused 3.
	r, err := s2.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: msg("y", "y@x", "")}})
	if err != nil || r[0].UID != 4 || r[0].ModSeq <= ms1 {
		t.Fatalf("append after reopen = %+v, %v", r, err)
	}
}

// TestLargeUIDSets covers sets with more ranges than one SQL condition
// holds: they are narrowed by bounds and filtered exactly.
func TestLargeUIDSets(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	a := addAccount(t, s, "large@example.test")
	in := inbox(t, s, a.ID)
	var reqs []mailstore.AppendRequest
	for i := range 300 {
		reqs = append(reqs, mailstore.AppendRequest{MailboxID: in.ID, Raw: msg("l", fmt.Sprint(i, "@x"), "")})
	}
	if _, err := s.Append(ctx, a.ID, reqs); err != nil {
		t.Fatal(err)
	}
	var odd []mailstore.UID
	for u := mailstore.UID(1); u <= 300; u += 2 {
		odd = append(odd, u)
	}
	set := mailstore.UIDSetOf(odd...)
	if len(set) <= maxRangeTerms {
		t.Fatalf("set of %d ranges does not exercise the large path", len(set))
	}
	var got []mailstore.UID
	if err := s.Fetch(ctx, a.ID, in.ID, set, 0, 0, func(m *mailstore.Message) error {
		got = append(got, m.UID)
		return nil
	}); err != nil || !slices.Equal(got, odd) {
		t.Fatalf("Fetch = %d UIDs, %v", len(got), err)
	}
	fr, err := s.StoreFlags(ctx, a.ID, mailstore.StoreFlagsRequest{MailboxID: in.ID, UIDs: set, Mode: mailstore.FlagsAdd, Flags: []string{`\Deleted`}})
	if err != nil || len(fr.Changed) != len(odd) {
		t.Fatalf("StoreFlags changed %d, %v", len(fr.Changed), err)
	}
	gone, _, err := s.Expunge(ctx, a.ID, in.ID, set)
	if err != nil || !slices.Equal(gone, odd) {
		t.Fatalf("Expunge = %d UIDs, %v", len(gone), err)
	}
	st, _ := s.Status(ctx, a.ID, in.ID)
	if st.Messages != 150 || st.Deleted != 0 {
		t.Fatalf("Status = %+v", st)
	}
	checkCounts(t, s)
}

func TestPurge(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	a := addAccount(t, s, "purge@example.test")
	in := inbox(t, s, a.ID)
	res, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{
		{MailboxID: in.ID, Raw: msg("p1", "p1@x", "")},
		{MailboxID: in.ID, Raw: msg("p2", "p2@x", "")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PopHide(ctx, a.ID, in.ID, "", []mailstore.UID{1, 2}); err != nil {
		t.Fatal(err)
	}
	var blob string
	s.Fetch(ctx, a.ID, in.ID, mailstore.UIDSetOf(1), mailstore.FetchIDs, 0, func(m *mailstore.Message) error { blob = m.BlobID; return nil })
	_, em, err := s.Expunge(ctx, a.ID, in.ID, mailstore.UIDSetOf(1))
	if err != nil {
		t.Fatal(err)
	}
	// Still retained: the blob is readable.
	if _, err := s.ReadBlob(ctx, blob); err != nil {
		t.Fatalf("retained blob: %v", err)
	}
	n, err := s.Purge(ctx, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	if _, err := s.ReadBlob(ctx, blob); !errors.Is(err, mailstore.ErrNoSuchMessage) {
		t.Fatalf("purged blob: %v", err)
	}
	mb, _ := s.GetMailboxByID(ctx, a.ID, in.ID)
	if mb.VanishedFloor != em {
		t.Fatalf("VanishedFloor = %d, want %d", mb.VanishedFloor, em)
	}
	if v, _ := s.Vanished(ctx, a.ID, in.ID, 0); len(v) != 0 {
		t.Fatalf("tombstones left: %v", v)
	}
	hidden, err := s.PopHidden(ctx, a.ID, in.ID, "")
	if err != nil || !slices.Equal(hidden, []mailstore.UID{res[1].UID}) {
		t.Fatalf("PopHidden after purge = %v, %v", hidden, err)
	}
}

// TestPragmas pins the durability settings DESIGN section 3 relies on.
func TestPragmas(t *testing.T) {
	s, _ := openTest(t)
	for _, c := range []struct {
		db   string
		name string
		want string
	}{
		{"writer", "journal_mode", "wal"},
		{"writer", "synchronous", "2"}, // FULL
		{"writer", "foreign_keys", "1"},
		{"writer", "busy_timeout", "10000"},
		{"writer", "temp_store", "2"},         // MEMORY: savepoint sub-journals
		{"writer", "wal_autocheckpoint", "0"}, // checkpoint.go
		{"checkpointer", "synchronous", "2"},

		{"reader", "query_only", "1"},
		{"reader", "busy_timeout", "10000"},
	} {
		var got string
		var err error
		if c.db == "writer" {
			err = writerQueryRow(s, "PRAGMA "+c.name, &got)
		} else {
			db := map[string]*sql.DB{"reader": s.rdb, "checkpointer": s.cdb}[c.db]
			err = db.QueryRow("PRAGMA " + c.name).Scan(&got)
		}
		if err != nil || got != c.want {
			t.Errorf("%s PRAGMA %s = %q, %v; want %q", c.db, c.name, got, err, c.want)
		}
	}
	if _, err := s.rdb.Exec(`DELETE FROM domains`); err == nil {
		t.Error("reader connection accepted a write")
	}
}

// TestReadEndedContext: reads no longer watch their context while they
// run (readCtx), but one whose context has already ended does not start.
func TestReadEndedContext(t *testing.T) {
	s, _ := openTest(t)
	a := addAccount(t, s, "ctx@example.test")
	in := inbox(t, s, a.ID)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Search(ctx, a.ID, in.ID, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Search with an ended context: %v, want context.Canceled", err)
	}
	if _, err := s.GetMailbox(ctx, a.ID, "INBOX"); !errors.Is(err, context.Canceled) {
		t.Errorf("GetMailbox with an ended context: %v, want context.Canceled", err)
	}
	if _, err := s.Search(context.Background(), a.ID, in.ID, nil); err != nil {
		t.Errorf("Search: %v", err)
	}
}
