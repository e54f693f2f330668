package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

func testRetention(t *testing.T, b Backend) {
	t.Run("ListRestore", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		bob := f.account("bob@example.test")
		work := f.create(a.ID, "Work")
		raw := msgSpec{From: "Boss <boss@example.org>", Subject: "Budget 2025", MessageID: "ret-1@example.org"}.bytes()
		idate := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
		res, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: work.ID, Raw: raw, Flags: []string{mailstore.FlagSeen}, InternalDate: idate}})
		if err != nil {
			t.Fatal(err)
		}
		u := res[0].UID
		keep := f.appendMsg(a.ID, work.ID, simpleMsg("kept")).UID
		before := time.Now().Add(-2 * time.Second)
		f.expunge(a.ID, work.ID, u)
		after := time.Now().Add(2 * time.Second)

		del, err := s.ListDeleted(ctx, a.ID)
		if err != nil {
			t.Fatalf("ListDeleted: %v", err)
		}
		if len(del) != 1 {
			t.Fatalf("ListDeleted = %d entries, want 1", len(del))
		}
		d := del[0]
		p := mailstore.Prepare(raw).Parsed.SearchHeaders
		if d.MailboxName != "Work" || d.MailboxID != work.ID || d.UID != u || d.AccountID != a.ID ||
			d.Size != int64(len(raw)) || d.BlobID != blobID(raw) || !d.InternalDate.Equal(idate) ||
			!slices.Equal(d.Flags, []string{mailstore.FlagSeen}) {
			t.Errorf("DeletedMessage = %+v", d)
		}
		if d.From != p.From || d.Subject != p.Subject || p.Subject == "" {
			t.Errorf("DeletedMessage From %q Subject %q; the parser says %q %q", d.From, d.Subject, p.From, p.Subject)
		}
		if d.ExpungedAt.Before(before) || d.ExpungedAt.After(after) {
			t.Errorf("ExpungedAt %v not between %v and %v", d.ExpungedAt, before, after)
		}
		if other, _ := s.ListDeleted(ctx, bob.ID); len(other) != 0 {
			t.Errorf("bob sees alice's deleted mail: %+v", other)
		}
		// Another account cannot restore it.
		if _, err := s.RestoreDeleted(ctx, bob.ID, []int64{d.ID}); err == nil {
			t.Errorf("RestoreDeleted by another account succeeded")
		}
		if n := f.status(bob.ID, f.mailbox(bob.ID, "INBOX").ID).Messages; n != 0 {
			t.Errorf("bob's INBOX got %d messages", n)
		}

		// Restored under a new UID into the mailbox it left.
		rr, err := s.RestoreDeleted(ctx, a.ID, []int64{d.ID})
		if err != nil || len(rr) != 1 {
			t.Fatalf("RestoreDeleted = %+v, %v", rr, err)
		}
		if rr[0].MailboxID != work.ID || rr[0].UID <= keep || rr[0].UIDValidity != work.UIDValidity {
			t.Errorf("restored to %+v; want Work with a UID above %d", rr[0], keep)
		}
		m := f.fetchOne(a.ID, work.ID, rr[0].UID, mailstore.FetchIDs|mailstore.FetchInternalDate)
		if m.BlobID != blobID(raw) || !m.InternalDate.Equal(idate) || !slices.Equal(m.Flags, []string{mailstore.FlagSeen}) {
			t.Errorf("restored message %+v", m)
		}
		if got, err := s.ReadBlob(ctx, m.BlobID); err != nil || !bytes.Equal(got, raw) {
			t.Errorf("restored blob differs: %v", err)
		}
		if del, _ := s.ListDeleted(ctx, a.ID); len(del) != 0 {
			t.Errorf("restored message still listed as deleted: %+v", del)
		}

		// Messages of a deleted mailbox come back into INBOX.
		gone := f.create(a.ID, "Gone")
		graw := simpleMsg("from-gone")
		f.appendMsg(a.ID, gone.ID, graw)
		if err := s.DeleteMailbox(ctx, a.ID, "Gone"); err != nil {
			t.Fatal(err)
		}
		del, _ = s.ListDeleted(ctx, a.ID)
		if len(del) != 1 || del[0].MailboxName != "Gone" || del[0].BlobID != blobID(graw) {
			t.Fatalf("ListDeleted after DeleteMailbox = %+v", del)
		}
		rr, err = s.RestoreDeleted(ctx, a.ID, []int64{del[0].ID})
		inbox := f.mailbox(a.ID, "INBOX")
		if err != nil || len(rr) != 1 || rr[0].MailboxID != inbox.ID {
			t.Fatalf("restore from a deleted mailbox = %+v, %v; want INBOX %d", rr, err, inbox.ID)
		}
		if m := f.fetchOne(a.ID, inbox.ID, rr[0].UID, mailstore.FetchIDs); m.BlobID != blobID(graw) {
			t.Errorf("INBOX got another message")
		}
	})

	// IMAP clients delete with \Deleted and EXPUNGE, so that is how most
	// retained mail was flagged; restored with \Deleted still set, the
	// next EXPUNGE or CLOSE of any client would undo the restore.
	t.Run("RestoreClearsDeleted", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		u := f.appendMsg(a.ID, inbox.ID, simpleMsg("imap-deleted"), mailstore.FlagSeen, mailstore.FlagDeleted).UID
		if gone, _, err := s.ExpungeDeleted(ctx, a.ID, inbox.ID, mailstore.UIDSetOf(u)); err != nil || len(gone) != 1 {
			t.Fatalf("ExpungeDeleted = %v, %v", gone, err)
		}
		del, err := s.ListDeleted(ctx, a.ID)
		if err != nil || len(del) != 1 {
			t.Fatalf("ListDeleted = %+v, %v", del, err)
		}
		// An ID given twice restores the message once.
		rr, err := s.RestoreDeleted(ctx, a.ID, []int64{del[0].ID, del[0].ID})
		if err != nil || len(rr) != 1 {
			t.Fatalf("RestoreDeleted with a repeated ID = %+v, %v; want one result", rr, err)
		}
		if n := f.status(a.ID, inbox.ID).Messages; n != 1 {
			t.Errorf("INBOX has %d messages after restoring one", n)
		}
		m := f.fetchOne(a.ID, inbox.ID, rr[0].UID, mailstore.FetchIDs)
		if !slices.Equal(m.Flags, []string{mailstore.FlagSeen}) {
			t.Errorf("restored flags %v; want [\\Seen]", m.Flags)
		}
		gone, _, err := s.ExpungeDeleted(ctx, a.ID, inbox.ID, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}})
		if err != nil || len(gone) != 0 {
			t.Errorf("ExpungeDeleted after the restore removed %v, %v", gone, err)
		}
		if u := f.uids(a.ID, inbox.ID); !slices.Equal(u, []mailstore.UID{rr[0].UID}) {
			t.Errorf("INBOX after ExpungeDeleted = %v; want the restored UID %d", u, rr[0].UID)
		}
	})

	t.Run("Purge", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		raws := [][]byte{simpleMsg("purge-1"), simpleMsg("purge-2")}
		var uids []mailstore.UID
		for _, r := range raws {
			uids = append(uids, f.appendMsg(a.ID, inbox.ID, r).UID)
		}
		m0 := f.modseq(a.ID)
		em := f.expunge(a.ID, inbox.ID, uids...)
		if f.mailbox(a.ID, "INBOX").VanishedFloor >= em {
			t.Errorf("VanishedFloor already at the expunge's modseq before any purge")
		}
		// A cutoff in the past keeps everything.
		past := time.Now().Add(-time.Hour)
		if n, err := s.Purge(ctx, past, past); err != nil || n != 0 {
			t.Errorf("Purge(past) = %d, %v; want 0", n, err)
		}
		if del, _ := s.ListDeleted(ctx, a.ID); len(del) != 2 {
			t.Errorf("ListDeleted after Purge(past) = %d entries", len(del))
		}
		if v, _ := s.Vanished(ctx, a.ID, inbox.ID, m0); len(v) != 2 {
			t.Errorf("tombstones lost by Purge(past): %v", v)
		}
		// Deleted mail older than the cutoff goes, with its blobs; the
		// tombstone cutoff is separate.
		future := time.Now().Add(time.Hour)
		n, err := s.Purge(ctx, future, past)
		if err != nil || n < 2 {
			t.Errorf("Purge(future) = %d, %v; want >= 2", n, err)
		}
		if del, _ := s.ListDeleted(ctx, a.ID); len(del) != 0 {
			t.Errorf("ListDeleted after Purge = %+v", del)
		}
		for _, r := range raws {
			if _, err := s.ReadBlob(ctx, blobID(r)); err == nil {
				t.Errorf("blob survives Purge")
			}
		}
		if v, _ := s.Vanished(ctx, a.ID, inbox.ID, m0); len(v) != 2 {
			t.Errorf("tombstones dropped with a past tombstone cutoff: %v", v)
		}
		// Dropping tombstones raises VanishedFloor so QRESYNC knows the
		// history below it is incomplete.
		if _, err := s.Purge(ctx, future, future); err != nil {
			t.Fatal(err)
		}
		if fl := f.mailbox(a.ID, "INBOX").VanishedFloor; fl < em {
			t.Errorf("VanishedFloor %d after purging tombstones up to modseq %d", fl, em)
		}
		// Live mail is untouched by Purge.
		live := simpleMsg("live")
		lu := f.appendMsg(a.ID, inbox.ID, live).UID
		if _, err := s.Purge(ctx, future, future); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ReadBlob(ctx, blobID(live)); err != nil || !bytes.Equal(got, live) {
			t.Errorf("Purge removed a live blob: %v", err)
		}
		if u := f.uids(a.ID, inbox.ID); !slices.Equal(u, []mailstore.UID{lu}) {
			t.Errorf("INBOX after purges = %v", u)
		}
		if lu <= uids[1] {
			t.Errorf("UID %d reused after purge (old max %d)", lu, uids[1])
		}
	})
}

// POP3 hidden views (a POP3 DELE hides a message from that view only).
func testPOP(t *testing.T, b Backend) {
	f := newFixture(t, b)
	s, ctx := f.S(), f.ctx
	a := f.account("alice@example.test")
	inbox := f.mailbox(a.ID, "INBOX")
	u := f.appendN(a.ID, inbox.ID, "pop", 4)
	hidden := func(view string) []mailstore.UID {
		t.Helper()
		h, err := s.PopHidden(ctx, a.ID, inbox.ID, view)
		if err != nil {
			t.Fatalf("PopHidden(%q): %v", view, err)
		}
		return sortedUIDs(h)
	}
	if h := hidden(""); len(h) != 0 {
		t.Errorf("fresh PopHidden = %v", h)
	}
	ms0 := f.modseq(a.ID)
	mb0 := f.mailbox(a.ID, "INBOX").HighestModSeq
	before := map[mailstore.UID]mailstore.ModSeq{}
	for _, m := range f.fetch(a.ID, inbox.ID, mailstore.UIDSetOf(u...), 0) {
		before[m.UID] = m.ModSeq
	}
	if err := s.PopHide(ctx, a.ID, inbox.ID, "", []mailstore.UID{u[0], u[2]}); err != nil {
		t.Fatalf("PopHide: %v", err)
	}
	if err := s.PopHide(ctx, a.ID, inbox.ID, "phone", []mailstore.UID{u[3]}); err != nil {
		t.Fatalf("PopHide(phone): %v", err)
	}
	if err := s.PopHide(ctx, a.ID, inbox.ID, "", []mailstore.UID{u[0]}); err != nil {
		t.Fatalf("PopHide again: %v", err)
	}
	if got := hidden(""); !slices.Equal(got, []mailstore.UID{u[0], u[2]}) {
		t.Errorf("PopHidden(\"\") = %v", got)
	}
	if got := hidden("phone"); !slices.Equal(got, []mailstore.UID{u[3]}) {
		t.Errorf("PopHidden(phone) = %v", got)
	}
	if got := hidden("laptop"); len(got) != 0 {
		t.Errorf("PopHidden(laptop) = %v", got)
	}
	// IMAP sees nothing of it.
	if got := f.uids(a.ID, inbox.ID); !slices.Equal(got, u) {
		t.Errorf("IMAP UIDs after PopHide = %v", got)
	}
	for _, m := range f.fetch(a.ID, inbox.ID, mailstore.UIDSetOf(u...), 0) {
		if m.ModSeq != before[m.UID] || len(m.Flags) != 0 {
			t.Errorf("PopHide changed UID %d: modseq %d -> %d, flags %v", m.UID, before[m.UID], m.ModSeq, m.Flags)
		}
	}
	if got := f.mailbox(a.ID, "INBOX").HighestModSeq; got != mb0 {
		t.Errorf("PopHide raised INBOX HIGHESTMODSEQ %d -> %d", mb0, got)
	}
	if cs := f.changes(a.ID, ms0, 0); len(cs) != 0 {
		t.Errorf("PopHide shows in the IMAP change feed: %v", cs)
	}
	f.reopen()
	s = f.S()
	if got := hidden(""); !slices.Equal(got, []mailstore.UID{u[0], u[2]}) {
		t.Errorf("PopHidden after restart = %v", got)
	}
	// The other account's view is its own.
	bob := f.account("bob@example.test")
	if h, err := s.PopHidden(ctx, bob.ID, f.mailbox(bob.ID, "INBOX").ID, ""); err != nil || len(h) != 0 {
		t.Errorf("bob's PopHidden = %v, %v", h, err)
	}
}
