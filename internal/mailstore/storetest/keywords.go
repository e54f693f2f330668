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
