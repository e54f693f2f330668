package storetest

import (
	"slices"
	"strings"
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
)

func testMailboxes(t *testing.T, b Backend) {
	t.Run("CreateWithParents", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		mb, err := s.CreateMailbox(ctx, a.ID, "Work/Projects/Roost", "")
		if err != nil {
			t.Fatalf("CreateMailbox: %v", err)
		}
		if mb.Name != "Work/Projects/Roost" || mb.ID == 0 || mb.UIDValidity == 0 || mb.UIDNext < 1 || mb.AccountID != a.ID {
			t.Errorf("CreateMailbox returned %+v", mb)
		}
		// RFC 9051 section 6.3.4: superior names are created as needed.
		all := f.allMailboxes(a.ID)
		for _, n := range []string{"Work", "Work/Projects", "Work/Projects/Roost"} {
			if _, ok := all[n]; !ok {
				t.Errorf("mailbox %q missing after creating Work/Projects/Roost; have %v", n, keys(all))
			}
		}
		_, err = s.CreateMailbox(ctx, a.ID, "Work/Projects/Roost", "")
		expectErr(t, "CreateMailbox existing", err, mailstore.ErrExists)
		_, err = s.CreateMailbox(ctx, a.ID, "Work", "")
		expectErr(t, "CreateMailbox of an auto-created parent", err, mailstore.ErrExists)
		_, err = s.CreateMailbox(ctx, a.ID, "inbox", "")
		expectErr(t, "CreateMailbox inbox", err, mailstore.ErrExists)
		// Only INBOX is case-insensitive (RFC 9051 section 5.1): "work"
		// is another name than "Work".
		if _, err := s.CreateMailbox(ctx, a.ID, "work", ""); err != nil {
			t.Errorf("CreateMailbox(work) beside Work: %v", err)
		}
		sub, err := s.CreateMailbox(ctx, a.ID, "inBox/Sub", "")
		if err != nil || sub.Name != "INBOX/Sub" {
			t.Errorf("CreateMailbox(inBox/Sub) = %+v, %v; want name INBOX/Sub", sub, err)
		}
		uni, err := s.CreateMailbox(ctx, a.ID, "Entwürfe/日本", "")
		if err != nil || uni.Name != "Entwürfe/日本" {
			t.Errorf("CreateMailbox UTF-8 = %+v, %v", uni, err)
		}
		if got := f.mailbox(a.ID, "Entwürfe/日本"); got.ID != uni.ID {
			t.Errorf("GetMailbox of a UTF-8 name found %+v", got)
		}
		// Survives a restart.
		f.reopen()
		if got := f.mailbox(a.ID, "Work/Projects/Roost"); got.ID != mb.ID || got.UIDValidity != mb.UIDValidity {
			t.Errorf("after reopen: %+v, want %+v", got, mb)
		}
	})

	t.Run("InvalidNames", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		bad := []string{"", "/", "/lead", "trail/", "a//b", "nul\x00x", "tab\tx", "bad\xffutf8", "del\x7f", strings.Repeat("x", 1001)}
		before := f.modseq(a.ID)
		for _, n := range bad {
			_, err := s.CreateMailbox(ctx, a.ID, n, "")
			expectErr(t, "CreateMailbox("+quote(n)+")", err, mailstore.ErrInvalidName)
			expectErr(t, "RenameMailbox(Sent -> "+quote(n)+")", s.RenameMailbox(ctx, a.ID, "Sent", n), mailstore.ErrInvalidName)
		}
		if f.modseq(a.ID) != before {
			t.Errorf("refused creates changed the modseq")
		}
		if len(f.allMailboxes(a.ID)) != len(mailstore.DefaultMailboxes) {
			t.Errorf("refused creates left mailboxes behind: %v", keys(f.allMailboxes(a.ID)))
		}
	})

	t.Run("GetMailbox", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		for _, n := range []string{"inbox", "Inbox", "iNbOx"} {
			got, err := s.GetMailbox(ctx, a.ID, n)
			if err != nil || got.ID != inbox.ID || got.Name != "INBOX" {
				t.Errorf("GetMailbox(%q) = %+v, %v; want INBOX", n, got, err)
			}
		}
		_, err := s.GetMailbox(ctx, a.ID, "sent")
		expectErr(t, "GetMailbox(sent) (only INBOX is case-insensitive)", err, mailstore.ErrNoSuchMailbox)
		_, err = s.GetMailbox(ctx, a.ID, "Nope")
		expectErr(t, "GetMailbox unknown", err, mailstore.ErrNoSuchMailbox)
		got, err := s.GetMailboxByID(ctx, a.ID, inbox.ID)
		if err != nil || got.Name != "INBOX" {
			t.Errorf("GetMailboxByID = %+v, %v", got, err)
		}
		_, err = s.GetMailboxByID(ctx, a.ID, inbox.ID+100000)
		expectErr(t, "GetMailboxByID unknown", err, mailstore.ErrNoSuchMailbox)
	})

	t.Run("RenameWithChildren", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		top := f.create(a.ID, "Top")
		child := f.create(a.ID, "Top/Child")
		grand := f.create(a.ID, "Top/Child/Grand")
		other := f.create(a.ID, "TopSibling") // shares the prefix "Top" but is no child
		uid := f.appendMsg(a.ID, grand.ID, simpleMsg("grand")).UID
		before := f.modseq(a.ID)
		if err := s.RenameMailbox(ctx, a.ID, "Top", "Renamed"); err != nil {
			t.Fatalf("RenameMailbox: %v", err)
		}
		renamedAt := f.modseq(a.ID)
		if renamedAt <= before {
			t.Errorf("rename did not raise the modseq")
		}
		all := f.allMailboxes(a.ID)
		want := map[string]int64{"Renamed": top.ID, "Renamed/Child": child.ID, "Renamed/Child/Grand": grand.ID, "TopSibling": other.ID}
		for n, id := range want {
			if mb, ok := all[n]; !ok || mb.ID != id {
				t.Errorf("after rename, %q = %+v (present %v); want mailbox id %d", n, mb, ok, id)
			}
		}
		// The rename is a change to each mailbox it moves, so their
		// HIGHESTMODSEQ reaches its modseq; the sibling it skipped keeps
		// its own.
		for _, n := range []string{"Renamed", "Renamed/Child", "Renamed/Child/Grand"} {
			if got := all[n].HighestModSeq; got != renamedAt {
				t.Errorf("after rename, %q has HIGHESTMODSEQ %d, want the rename's %d", n, got, renamedAt)
			}
		}
		if got := all["TopSibling"].HighestModSeq; got >= renamedAt {
			t.Errorf("TopSibling, not renamed, has HIGHESTMODSEQ %d, at or past the rename's %d", got, renamedAt)
		}
		for _, n := range []string{"Top", "Top/Child", "Top/Child/Grand"} {
			if _, ok := all[n]; ok {
				t.Errorf("old name %q still listed", n)
			}
		}
		if got := f.uids(a.ID, grand.ID); !slices.Equal(got, []mailstore.UID{uid}) {
			t.Errorf("messages of a renamed child: %v, want [%d]", got, uid)
		}
		// The name renamed away is free again, and a client that cached
		// it must see a new UIDVALIDITY (RFC 9051 section 2.3.1.1).
		again := f.create(a.ID, "Top")
		if again.UIDValidity == top.UIDValidity || again.ID == top.ID {
			t.Errorf("mailbox created under a renamed-away name reuses UIDVALIDITY %d", top.UIDValidity)
		}
		expectErr(t, "RenameMailbox onto an existing name", s.RenameMailbox(ctx, a.ID, "Renamed", "Sent"), mailstore.ErrExists)
		// RFC 9051 section 6.3.6: renaming to a name that already exists
		// is an error, and the source's own name is such a name.
		expectErr(t, "RenameMailbox onto its own name", s.RenameMailbox(ctx, a.ID, "Renamed", "Renamed"), mailstore.ErrExists)
		expectErr(t, "RenameMailbox into its own child", s.RenameMailbox(ctx, a.ID, "Renamed", "Renamed/Sub"), mailstore.ErrInvalidName)
		// INBOX is always there and cannot be replaced: a rename to it is
		// refused as a bad name, not as an existing one.
		expectErr(t, "RenameMailbox to INBOX", s.RenameMailbox(ctx, a.ID, "Renamed", "inbox"), mailstore.ErrInvalidName)
		expectErr(t, "RenameMailbox of an unknown name", s.RenameMailbox(ctx, a.ID, "Nope", "Nope2"), mailstore.ErrNoSuchMailbox)
		// RFC 9051 section 6.3.6: the server SHOULD create superior names
		// a RENAME needs.
		if err := s.RenameMailbox(ctx, a.ID, "TopSibling", "New/Parent/Leaf"); err != nil {
			t.Fatalf("RenameMailbox into new parents: %v", err)
		}
		all = f.allMailboxes(a.ID)
		for _, n := range []string{"New", "New/Parent", "New/Parent/Leaf"} {
			if _, ok := all[n]; !ok {
				t.Errorf("%q missing after rename into new parents", n)
			}
		}
	})

	t.Run("RenameInbox", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		kid := f.create(a.ID, "INBOX/Kid")
		kidUIDs := f.appendN(a.ID, kid.ID, "inbox-kid", 1)
		uids := f.appendN(a.ID, inbox.ID, "inbox-rename", 3)
		blobs := map[string]bool{}
		for _, m := range f.fetch(a.ID, inbox.ID, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}, mailstore.FetchIDs) {
			blobs[m.BlobID] = true
		}
		before := f.modseq(a.ID)
		// INBOX cannot be renamed onto itself: it would move its messages
		// into a mailbox it then is.
		expectErr(t, "RenameMailbox(INBOX -> inbox)", s.RenameMailbox(ctx, a.ID, "INBOX", "inbox"), mailstore.ErrInvalidName)
		if got := f.uids(a.ID, inbox.ID); !slices.Equal(got, uids) {
			t.Errorf("INBOX holds %v after a refused rename, want %v", got, uids)
		}
		if f.modseq(a.ID) != before {
			t.Errorf("a refused rename of INBOX changed the modseq")
		}
		// RFC 9051 section 6.3.6: renaming INBOX moves its messages to a
		// new mailbox, leaves INBOX empty and its inferiors alone. A name
		// below INBOX is thus allowed: RENAME INBOX INBOX/old is the
		// classic "archive my inbox".
		if err := s.RenameMailbox(ctx, a.ID, "inbox", "INBOX/old"); err != nil {
			t.Fatalf("RenameMailbox(INBOX -> INBOX/old): %v", err)
		}
		in2 := f.mailbox(a.ID, "INBOX")
		if st := f.status(a.ID, in2.ID); st.Messages != 0 {
			t.Errorf("INBOX has %d messages after its rename", st.Messages)
		}
		old := f.mailbox(a.ID, "INBOX/old")
		if old.ID == inbox.ID || old.UIDValidity == inbox.UIDValidity || old.UIDValidity == kid.UIDValidity {
			t.Errorf("INBOX/old (id %d, UIDVALIDITY %d) is not a new mailbox beside INBOX (id %d, UIDVALIDITY %d) and INBOX/Kid (UIDVALIDITY %d)",
				old.ID, old.UIDValidity, inbox.ID, inbox.UIDValidity, kid.UIDValidity)
		}
		// The new mailbox stands for INBOX's old contents: it keeps
		// INBOX's subscription, so it stays in LSUB and LIST (SUBSCRIBED).
		if !inbox.Subscribed || old.Subscribed != inbox.Subscribed {
			t.Errorf("INBOX/old subscribed = %v after renaming INBOX (subscribed = %v); want INBOX's subscription, true", old.Subscribed, inbox.Subscribed)
		}
		moved := f.fetch(a.ID, old.ID, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}, mailstore.FetchIDs)
		if len(moved) != 3 {
			t.Fatalf("INBOX/old holds %d messages, want 3", len(moved))
		}
		for _, m := range moved {
			if !blobs[m.BlobID] {
				t.Errorf("INBOX/old holds an unexpected blob %s", m.BlobID)
			}
		}
		all := f.allMailboxes(a.ID)
		if k, ok := all["INBOX/Kid"]; !ok {
			t.Errorf("INBOX/Kid moved away by renaming INBOX")
		} else if k.ID != kid.ID || k.UIDValidity != kid.UIDValidity {
			t.Errorf("INBOX/Kid is %+v after renaming INBOX, was %+v", k, kid)
		} else if got := f.uids(a.ID, kid.ID); !slices.Equal(got, kidUIDs) {
			t.Errorf("INBOX/Kid holds %v after renaming INBOX, want %v", got, kidUIDs)
		}
		for _, n := range []string{"INBOX/old/Kid", "INBOX/old/old"} {
			if _, ok := all[n]; ok {
				t.Errorf("renaming INBOX created %q: its inferiors followed it", n)
			}
		}
		// A second rename of INBOX, to a top-level name, works the same.
		second := f.appendN(a.ID, in2.ID, "inbox-second", 1)
		if err := s.RenameMailbox(ctx, a.ID, "INBOX", "Old Inbox"); err != nil {
			t.Fatalf("RenameMailbox(INBOX -> Old Inbox): %v", err)
		}
		if st := f.status(a.ID, f.mailbox(a.ID, "Old Inbox").ID); st.Messages != 1 {
			t.Errorf("Old Inbox holds %d messages, want 1", st.Messages)
		}
		if st := f.status(a.ID, old.ID); st.Messages != 3 {
			t.Errorf("INBOX/old holds %d messages after a second rename of INBOX, want 3", st.Messages)
		}
		// If INBOX kept its UIDVALIDITY, its old UIDs must not come back
		// (RFC 9051 section 2.3.1.1).
		in3 := f.mailbox(a.ID, "INBOX")
		nu := f.appendMsg(a.ID, in3.ID, simpleMsg("after-inbox-rename")).UID
		if in3.UIDValidity == inbox.UIDValidity && nu <= second[0] {
			t.Errorf("INBOX kept UIDVALIDITY %d yet reused UID %d (old max %d)", in3.UIDValidity, nu, second[0])
		}
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		expectErr(t, "DeleteMailbox(INBOX)", s.DeleteMailbox(ctx, a.ID, "inbox"), mailstore.ErrCannotDelete)
		expectErr(t, "DeleteMailbox unknown", s.DeleteMailbox(ctx, a.ID, "Nope"), mailstore.ErrNoSuchMailbox)
		f.create(a.ID, "P/C")
		expectErr(t, "DeleteMailbox with children", s.DeleteMailbox(ctx, a.ID, "P"), mailstore.ErrHasChildren)
		if err := s.DeleteMailbox(ctx, a.ID, "P/C"); err != nil {
			t.Fatalf("DeleteMailbox(P/C): %v", err)
		}
		if err := s.DeleteMailbox(ctx, a.ID, "P"); err != nil {
			t.Fatalf("DeleteMailbox(P) after its child: %v", err)
		}
		// A name deleted and created again is a new mailbox: its
		// UIDVALIDITY must differ from every earlier one of that name
		// (RFC 9051 section 2.3.1.1), also across a restart.
		seen := map[uint32]bool{}
		for round := range 4 {
			mb := f.create(a.ID, "Cycle")
			if seen[mb.UIDValidity] {
				t.Errorf("round %d: recreated mailbox reuses UIDVALIDITY %d", round, mb.UIDValidity)
			}
			seen[mb.UIDValidity] = true
			f.appendN(a.ID, mb.ID, "cycle", 2)
			if err := s.DeleteMailbox(ctx, a.ID, "Cycle"); err != nil {
				t.Fatalf("DeleteMailbox(Cycle): %v", err)
			}
			_, err := s.GetMailbox(ctx, a.ID, "Cycle")
			expectErr(t, "GetMailbox after delete", err, mailstore.ErrNoSuchMailbox)
			if _, err := s.Status(ctx, a.ID, mb.ID); err == nil {
				t.Errorf("Status of a deleted mailbox succeeded")
			}
			if round == 1 {
				f.reopen()
				s = f.S()
			}
		}
		// The deleted mailboxes' messages went to the retention area.
		del, err := s.ListDeleted(ctx, a.ID)
		if err != nil {
			t.Fatalf("ListDeleted: %v", err)
		}
		n := 0
		for _, d := range del {
			if d.MailboxName == "Cycle" {
				n++
			}
		}
		if n != 8 {
			t.Errorf("ListDeleted shows %d messages from deleted mailbox Cycle, want 8", n)
		}
	})

	t.Run("Subscriptions", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		f.create(a.ID, "News")
		m0 := f.modseq(a.ID)
		if err := s.SetSubscribed(ctx, a.ID, "News", true); err != nil {
			t.Fatalf("SetSubscribed: %v", err)
		}
		if !f.mailbox(a.ID, "News").Subscribed || !f.allMailboxes(a.ID)["News"].Subscribed {
			t.Errorf("News not subscribed after SetSubscribed(true)")
		}
		m1 := f.modseq(a.ID)
		if m1 <= m0 {
			t.Errorf("subscribing did not raise the modseq")
		}
		if err := s.SetSubscribed(ctx, a.ID, "inbox", true); err != nil {
			t.Fatalf("SetSubscribed(inbox): %v", err)
		}
		if !f.mailbox(a.ID, "INBOX").Subscribed {
			t.Errorf("INBOX not subscribed")
		}
		if err := s.SetSubscribed(ctx, a.ID, "News", false); err != nil {
			t.Fatalf("SetSubscribed(false): %v", err)
		}
		if f.mailbox(a.ID, "News").Subscribed {
			t.Errorf("News still subscribed")
		}
		if f.modseq(a.ID) <= m1 {
			t.Errorf("unsubscribing did not raise the modseq")
		}
		f.reopen()
		if !f.mailbox(a.ID, "INBOX").Subscribed || f.mailbox(a.ID, "News").Subscribed {
			t.Errorf("subscriptions lost across restart")
		}
	})
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\x00", `\0`), "\t", `\t`)
}
