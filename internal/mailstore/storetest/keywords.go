package storetest

import (
	"slices"
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
)

// testKeywords: MailboxKeywords lists the keywords in use in one mailbox,
// one spelling each, without system flags, and follows STORE, EXPUNGE
// and the mailbox it asks about.
func testKeywords(t *testing.T, b Backend) {
	f := newFixture(t, b)
	s, ctx := f.S(), f.ctx
	a := f.account("kw@example.test")
	inbox := f.mailbox(a.ID, "INBOX")
	other := f.create(a.ID, "Other")
	kws := func(mbox int64) []string {
		t.Helper()
		got, err := s.MailboxKeywords(ctx, a.ID, mbox)
		if err != nil {
			t.Fatalf("MailboxKeywords: %v", err)
		}
		return got
	}
	if got := kws(inbox.ID); len(got) != 0 {
		t.Fatalf("empty mailbox: %v", got)
	}
	u1 := f.appendMsg(a.ID, inbox.ID, msgSpec{Subject: "one"}.bytes(), mailstore.FlagSeen, "$Label1").UID
	u2 := f.appendMsg(a.ID, inbox.ID, msgSpec{Subject: "two"}.bytes(), "$label1", "Work", mailstore.FlagFlagged).UID
	f.appendMsg(a.ID, inbox.ID, msgSpec{Subject: "three"}.bytes(), mailstore.FlagDraft)
	f.appendMsg(a.ID, other.ID, msgSpec{Subject: "elsewhere"}.bytes(), "$Elsewhere")
	if got, want := kws(inbox.ID), []string{"$Label1", "Work"}; !slices.Equal(got, want) {
		t.Errorf("keywords = %v, want %v (one spelling of $Label1, no system flags, not Other's)", got, want)
	}
	f.storeFlags(a.ID, inbox.ID, mailstore.FlagsAdd, []string{"Later"}, u1)
	f.storeFlags(a.ID, inbox.ID, mailstore.FlagsRemove, []string{"work"}, u2)
	if got, want := kws(inbox.ID), []string{"$Label1", "Later"}; !slices.Equal(got, want) {
		t.Errorf("after STORE: %v, want %v", got, want)
	}
	f.expunge(a.ID, inbox.ID, u1)
	if got, want := kws(inbox.ID), []string{"$label1"}; !slices.Equal(got, want) {
		t.Errorf("after EXPUNGE: %v, want %v", got, want)
	}
	if got, want := kws(other.ID), []string{"$Elsewhere"}; !slices.Equal(got, want) {
		t.Errorf("Other: %v, want %v", got, want)
	}
	_, err := s.MailboxKeywords(ctx, a.ID, other.ID+1000)
	expectErr(t, "MailboxKeywords of no mailbox", err, mailstore.ErrNoSuchMailbox)
	b2 := f.account("kw2@example.test")
	_, err = s.MailboxKeywords(ctx, b2.ID, inbox.ID)
	expectErr(t, "MailboxKeywords of another account's mailbox", err, mailstore.ErrNoSuchMailbox)
}

// testSelectMailbox: SelectMailbox gives, from one snapshot, what
// UIDs, MailboxKeywords and GetMailbox give separately, and the first
// UID without \Seen wherever it is.
func testSelectMailbox(t *testing.T, b Backend) {
	f := newFixture(t, b)
	s, ctx := f.S(), f.ctx
	a := f.account("sel@example.test")
	inbox := f.mailbox(a.ID, "INBOX")
	view := func() mailstore.MailboxView {
		t.Helper()
		v, err := s.SelectMailbox(ctx, a.ID, "inbox") // INBOX in any case
		if err != nil {
			t.Fatalf("SelectMailbox: %v", err)
		}
		uids, mod, err := s.UIDs(ctx, a.ID, inbox.ID)
		if err != nil {
			t.Fatalf("UIDs: %v", err)
		}
		kws, err := s.MailboxKeywords(ctx, a.ID, inbox.ID)
		if err != nil {
			t.Fatalf("MailboxKeywords: %v", err)
		}
		mb := f.mailbox(a.ID, "INBOX")
		if v.Mailbox != mb || !slices.Equal(v.UIDs, uids) || v.ModSeq != mod || !slices.Equal(v.Keywords, kws) {
			t.Fatalf("SelectMailbox = %+v; separately: %+v, UIDs %v, modseq %d, keywords %v", v, mb, uids, mod, kws)
		}
		return v
	}
	if v := view(); len(v.UIDs) != 0 || v.FirstUnseen != 0 {
		t.Fatalf("empty INBOX: %+v", v)
	}
	var u []mailstore.UID
	for i, flags := range [][]string{{mailstore.FlagSeen}, {"Work"}, {mailstore.FlagSeen, "$Later"}, {}} {
		u = append(u, f.appendMsg(a.ID, inbox.ID, msgSpec{Subject: string(rune('a' + i))}.bytes(), flags...).UID)
	}
	if v := view(); v.FirstUnseen != u[1] || !slices.Equal(v.Keywords, []string{"$Later", "Work"}) {
		t.Fatalf("first unseen %d (want %d), keywords %v", v.FirstUnseen, u[1], v.Keywords)
	}
	f.storeFlags(a.ID, inbox.ID, mailstore.FlagsAdd, []string{mailstore.FlagSeen}, u[1])
	if v := view(); v.FirstUnseen != u[3] {
		t.Fatalf("first unseen %d, want the last message's %d", v.FirstUnseen, u[3])
	}
	f.expunge(a.ID, inbox.ID, u[3])
	if v := view(); v.FirstUnseen != 0 || len(v.UIDs) != 3 {
		t.Fatalf("every message seen: %+v", v)
	}
	_, err := s.SelectMailbox(ctx, a.ID, "Nowhere")
	expectErr(t, "SelectMailbox of no mailbox", err, mailstore.ErrNoSuchMailbox)
	other := f.account("sel2@example.test")
	f.create(other.ID, "Private")
	_, err = s.SelectMailbox(ctx, a.ID, "Private")
	expectErr(t, "SelectMailbox of another account's mailbox", err, mailstore.ErrNoSuchMailbox)
}
