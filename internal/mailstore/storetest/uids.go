package storetest

import (
	"slices"
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
)

// RFC 9051 section 2.3.1.1: UIDs strictly ascend within a mailbox and are
// never reused while UIDVALIDITY stays; UIDNEXT predicts the next one.
func testUIDs(t *testing.T, b Backend) {
	t.Run("AscendingNeverReused", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		validity := inbox.UIDValidity
		var all []mailstore.UID
		next := func(tag string) mailstore.UID {
			t.Helper()
			mb := f.mailbox(a.ID, "INBOX")
			r := f.appendMsg(a.ID, inbox.ID, simpleMsg(tag))
			if r.UID != mb.UIDNext {
				t.Errorf("%s: UIDNEXT was %d, the append got UID %d", tag, mb.UIDNext, r.UID)
			}
			if r.UIDValidity != validity || r.MailboxID != inbox.ID {
				t.Errorf("%s: AppendResult %+v; want UIDVALIDITY %d, mailbox %d", tag, r, validity, inbox.ID)
			}
			if len(all) > 0 && r.UID <= all[len(all)-1] {
				t.Errorf("%s: UID %d not above the previous %d", tag, r.UID, all[len(all)-1])
			}
			if got := f.mailbox(a.ID, "INBOX").UIDNext; got <= r.UID {
				t.Errorf("%s: UIDNEXT %d after assigning %d", tag, got, r.UID)
			}
			all = append(all, r.UID)
			return r.UID
		}
		for i := range 3 {
			next("u" + string(rune('a'+i)))
		}
		if all[0] < 1 {
			t.Errorf("UID 0 assigned")
		}
		// Expunging the highest UID must not let it come back.
		f.expunge(a.ID, inbox.ID, all[2])
		next("after-expunge-top")
		// Nor across a restart.
		top := next("before-restart")
		f.expunge(a.ID, inbox.ID, top)
		f.reopen()
		if mb := f.mailbox(a.ID, "INBOX"); mb.UIDValidity != validity {
			t.Errorf("UIDVALIDITY changed across restart: %d -> %d", validity, mb.UIDValidity)
		}
		next("after-restart")
		// Nor after the whole mailbox was emptied and the store restarted.
		f.expunge(a.ID, inbox.ID, f.uids(a.ID, inbox.ID)...)
		f.reopen()
		next("after-empty-restart")
		// Copies and moves take fresh UIDs above UIDNEXT too.
		other := f.create(a.ID, "Other")
		src := f.appendN(a.ID, other.ID, "cm", 2)
		mb := f.mailbox(a.ID, "INBOX")
		cr, err := f.S().Copy(f.ctx, a.ID, other.ID, mailstore.UIDSetOf(src[0]), inbox.ID)
		if err != nil || len(cr.DstUIDs) != 1 || cr.DstUIDs[0] < mb.UIDNext || cr.UIDValidity != validity {
			t.Errorf("Copy = %+v, %v; want one UID >= %d, UIDVALIDITY %d", cr, err, mb.UIDNext, validity)
		}
		mr, err := f.S().Move(f.ctx, a.ID, other.ID, mailstore.UIDSetOf(src[1]), inbox.ID)
		if err != nil || len(mr.DstUIDs) != 1 || len(cr.DstUIDs) == 1 && mr.DstUIDs[0] <= cr.DstUIDs[0] {
			t.Errorf("Move = %+v, %v; want one UID above the copy's", mr, err)
		}
		got := f.uids(a.ID, inbox.ID)
		if !slices.IsSorted(got) {
			t.Errorf("UIDs not ascending: %v", got)
		}
	})

	t.Run("MultiAppendOrder", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		var reqs []mailstore.AppendRequest
		for i := range 5 {
			reqs = append(reqs, mailstore.AppendRequest{MailboxID: inbox.ID, Raw: simpleMsg("multi-" + string(rune('a'+i)))})
		}
		res, err := f.S().Append(f.ctx, a.ID, reqs)
		if err != nil || len(res) != 5 {
			t.Fatalf("Append of 5 = %d results, %v", len(res), err)
		}
		// RFC 4315 APPENDUID: UIDs in the order of the messages.
		for i := 1; i < len(res); i++ {
			if res[i].UID <= res[i-1].UID {
				t.Errorf("MULTIAPPEND UIDs not ascending in request order: %+v", res)
			}
		}
		for i, r := range res {
			m := f.fetchOne(a.ID, inbox.ID, r.UID, mailstore.FetchIDs)
			if m.BlobID != blobID(reqs[i].Raw) {
				t.Errorf("result %d (UID %d) holds another message", i, r.UID)
			}
		}
	})
}

// RFC 7162: every change of an account raises its modseq; a mailbox's
// HIGHESTMODSEQ is the largest modseq of its changes.
func testModSeq(t *testing.T, b Backend) {
	t.Run("EveryChangeRaises", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		prev := f.modseq(a.ID)
		step := func(what string, reported mailstore.ModSeq) {
			t.Helper()
			cur := f.modseq(a.ID)
			if cur <= prev {
				t.Errorf("%s: modseq %d not above %d", what, cur, prev)
			}
			if reported != 0 && reported != cur {
				t.Errorf("%s: reported modseq %d, account is at %d", what, reported, cur)
			}
			prev = cur
		}
		r := f.appendMsg(a.ID, inbox.ID, simpleMsg("ms1"))
		step("Append", r.ModSeq)
		if m := f.fetchOne(a.ID, inbox.ID, r.UID, 0); m.ModSeq != r.ModSeq {
			t.Errorf("appended message modseq %d, AppendResult says %d", m.ModSeq, r.ModSeq)
		}
		dr, err := s.Deliver(ctx, mailstore.Delivery{Raw: simpleMsg("ms2"), Recipients: []mailstore.DeliveryTarget{{AccountID: a.ID}}})
		if err != nil || len(dr) != 1 {
			t.Fatalf("Deliver: %v", err)
		}
		step("Deliver", dr[0].ModSeq)
		sr := f.storeFlags(a.ID, inbox.ID, mailstore.FlagsAdd, []string{mailstore.FlagSeen}, r.UID)
		step("StoreFlags", sr.ModSeq)
		if len(sr.Changed) != 1 || sr.Changed[0].UID != r.UID || sr.Changed[0].ModSeq != sr.ModSeq || !slices.Equal(sr.Changed[0].Flags, []string{mailstore.FlagSeen}) {
			t.Errorf("StoreFlags result %+v", sr)
		}
		sr = f.storeFlags(a.ID, inbox.ID, mailstore.FlagsAdd, []string{"$Work"}, r.UID)
		step("StoreFlags keyword", sr.ModSeq)
		box := f.create(a.ID, "Box")
		step("CreateMailbox", 0)
		cr, err := s.Copy(ctx, a.ID, inbox.ID, mailstore.UIDSetOf(r.UID), box.ID)
		if err != nil {
			t.Fatal(err)
		}
		step("Copy", cr.ModSeq)
		mr, err := s.Move(ctx, a.ID, inbox.ID, mailstore.UIDSetOf(dr[0].UID), box.ID)
		if err != nil {
			t.Fatal(err)
		}
		step("Move", mr.ModSeq)
		em := f.expunge(a.ID, box.ID, cr.DstUIDs...)
		step("Expunge", em)
		if err := s.RenameMailbox(ctx, a.ID, "Box", "Box2"); err != nil {
			t.Fatal(err)
		}
		step("RenameMailbox", 0)
		if err := s.SetSubscribed(ctx, a.ID, "Box2", true); err != nil {
			t.Fatal(err)
		}
		step("SetSubscribed", 0)
		if err := s.DeleteMailbox(ctx, a.ID, "Box2"); err != nil {
			t.Fatal(err)
		}
		step("DeleteMailbox", 0)
		del, err := s.ListDeleted(ctx, a.ID)
		if err != nil || len(del) == 0 {
			t.Fatalf("ListDeleted = %v, %v", del, err)
		}
		if _, err := s.RestoreDeleted(ctx, a.ID, []int64{del[0].ID}); err != nil {
			t.Fatal(err)
		}
		step("RestoreDeleted", 0)
		// Modseqs survive a restart and keep rising after it.
		f.reopen()
		if got := f.modseq(a.ID); got != prev {
			t.Errorf("modseq %d after restart, was %d", got, prev)
		}
		f.appendMsg(a.ID, inbox.ID, simpleMsg("ms3"))
		step("Append after restart", 0)
	})

	t.Run("MailboxHighest", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		other := f.create(a.ID, "Other")
		u := f.appendMsg(a.ID, inbox.ID, simpleMsg("h1")).UID
		if got, want := f.mailbox(a.ID, "INBOX").HighestModSeq, f.modseq(a.ID); got != want {
			t.Errorf("INBOX HIGHESTMODSEQ %d after its append, account at %d", got, want)
		}
		otherBefore := f.mailbox(a.ID, "Other").HighestModSeq
		sr := f.storeFlags(a.ID, inbox.ID, mailstore.FlagsAdd, []string{mailstore.FlagFlagged}, u)
		if got := f.mailbox(a.ID, "INBOX").HighestModSeq; got != sr.ModSeq {
			t.Errorf("INBOX HIGHESTMODSEQ %d after STORE at %d", got, sr.ModSeq)
		}
		if got := f.mailbox(a.ID, "Other").HighestModSeq; got != otherBefore {
			t.Errorf("Other's HIGHESTMODSEQ moved %d -> %d by a change in INBOX", otherBefore, got)
		}
		// RFC 7162 section 3.2.10: an expunge raises HIGHESTMODSEQ.
		em := f.expunge(a.ID, inbox.ID, u)
		if got := f.mailbox(a.ID, "INBOX").HighestModSeq; got != em {
			t.Errorf("INBOX HIGHESTMODSEQ %d after EXPUNGE at %d", got, em)
		}
		st := f.status(a.ID, inbox.ID)
		if st.HighestModSeq != em {
			t.Errorf("Status HIGHESTMODSEQ %d, want %d", st.HighestModSeq, em)
		}
		_, snap, err := f.S().UIDs(f.ctx, a.ID, inbox.ID)
		if err != nil || snap < em || snap > f.modseq(a.ID) {
			t.Errorf("UIDs snapshot modseq %d, %v; want between %d and the account's %d", snap, err, em, f.modseq(a.ID))
		}
		f.appendMsg(a.ID, other.ID, simpleMsg("h2"))
	})

	t.Run("NoOpStore", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		u := f.appendMsg(a.ID, inbox.ID, simpleMsg("noop"), mailstore.FlagSeen, "$Label").UID
		before := f.modseq(a.ID)
		msBefore := f.fetchOne(a.ID, inbox.ID, u, 0).ModSeq
		// Flags are case-insensitive: re-adding them in another case
		// changes nothing, so nothing may be reported or raised
		// (RFC 7162 section 3.1: the modseq changes when metadata does).
		for _, c := range []struct {
			mode  mailstore.StoreFlagsMode
			flags []string
		}{
			{mailstore.FlagsAdd, []string{`\SEEN`}},
			{mailstore.FlagsAdd, []string{"$label"}},
			{mailstore.FlagsRemove, []string{mailstore.FlagDeleted}},
			{mailstore.FlagsReplace, []string{"$Label", `\seen`}},
		} {
			sr := f.storeFlags(a.ID, inbox.ID, c.mode, c.flags, u)
			if len(sr.Changed) != 0 || sr.ModSeq != 0 {
				t.Errorf("no-op STORE %v %v reported %+v", c.mode, c.flags, sr)
			}
		}
		if got := f.modseq(a.ID); got != before {
			t.Errorf("no-op STOREs raised the modseq %d -> %d", before, got)
		}
		if m := f.fetchOne(a.ID, inbox.ID, u, 0); m.ModSeq != msBefore || !slices.Equal(m.Flags, []string{"$Label", mailstore.FlagSeen}) {
			t.Errorf("after no-op STOREs: modseq %d (was %d), flags %v", m.ModSeq, msBefore, m.Flags)
		}
		// \Recent is never stored (RFC 9051 section 2.3.2).
		sr := f.storeFlags(a.ID, inbox.ID, mailstore.FlagsAdd, []string{`\Recent`}, u)
		if len(sr.Changed) != 0 {
			t.Errorf(`STORE +FLAGS \Recent changed %+v`, sr.Changed)
		}
	})

	t.Run("StoreUnchanged", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		uids := f.appendN(a.ID, inbox.ID, "unch", 3)
		f.storeFlags(a.ID, inbox.ID, mailstore.FlagsAdd, []string{mailstore.FlagSeen}, uids[1])
		before := f.fetchOne(a.ID, inbox.ID, uids[1], 0).ModSeq
		top := f.modseq(a.ID)
		// Setting \Seen again on uids[1] changes nothing: it is reported
		// as unchanged, with its flags and modseq, and takes no modseq.
		r, err := f.S().StoreFlags(f.ctx, a.ID, mailstore.StoreFlagsRequest{
			MailboxID: inbox.ID, UIDs: mailstore.UIDSetOf(uids[1]), Mode: mailstore.FlagsAdd, Flags: []string{mailstore.FlagSeen},
		})
		if err != nil || len(r.Changed) != 0 || r.ModSeq != 0 || len(r.Unchanged) != 1 {
			t.Fatalf("STORE of flags already set: %+v, %v", r, err)
		}
		if u := r.Unchanged[0]; u.UID != uids[1] || u.ModSeq != before || !slices.Equal(u.Flags, []string{mailstore.FlagSeen}) {
			t.Errorf("Unchanged = %+v, want uid %d modseq %d [\\Seen]", u, uids[1], before)
		}
		if f.modseq(a.ID) != top {
			t.Errorf("a STORE that changed nothing moved the account modseq %d -> %d", top, f.modseq(a.ID))
		}
		// A mixed set: the changed ones in Changed, the rest in Unchanged.
		r, err = f.S().StoreFlags(f.ctx, a.ID, mailstore.StoreFlagsRequest{
			MailboxID: inbox.ID, UIDs: mailstore.UIDSetOf(uids...), Mode: mailstore.FlagsAdd, Flags: []string{mailstore.FlagSeen},
		})
		if err != nil || len(r.Changed) != 2 || len(r.Unchanged) != 1 || r.Unchanged[0].UID != uids[1] {
			t.Fatalf("STORE on a mixed set: %+v, %v", r, err)
		}
	})

	t.Run("UnchangedSince", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		uids := f.appendN(a.ID, inbox.ID, "ucs", 3)
		base := f.modseq(a.ID)
		// uids[1] changes after base; the client's STORE UNCHANGEDSINCE
		// base must skip it (RFC 7162 section 3.1.3) and still apply to
		// the others, whose modseq equals or is below base.
		f.storeFlags(a.ID, inbox.ID, mailstore.FlagsAdd, []string{"$Other"}, uids[1])
		r, err := f.S().StoreFlags(f.ctx, a.ID, mailstore.StoreFlagsRequest{
			MailboxID: inbox.ID, UIDs: mailstore.UIDSetOf(uids...), Mode: mailstore.FlagsAdd,
			Flags: []string{mailstore.FlagSeen}, UnchangedSince: base,
		})
		if err != nil {
			t.Fatalf("StoreFlags UNCHANGEDSINCE: %v", err)
		}
		var changed []mailstore.UID
		for _, m := range r.Changed {
			changed = append(changed, m.UID)
		}
		slices.Sort(changed)
		if !slices.Equal(changed, []mailstore.UID{uids[0], uids[2]}) {
			t.Errorf("Changed = %v, want %v", changed, []mailstore.UID{uids[0], uids[2]})
		}
		if !slices.Equal(r.Modified.Normalize(), mailstore.UIDSetOf(uids[1])) {
			t.Errorf("Modified = %v, want %d", r.Modified, uids[1])
		}
		if fl := f.fetchOne(a.ID, inbox.ID, uids[1], 0).Flags; !slices.Equal(fl, []string{"$Other"}) {
			t.Errorf("the refused message's flags became %v", fl)
		}
		// RFC 7162 section 3.1.3: only a modseq greater than
		// UNCHANGEDSINCE fails the test; an equal one passes.
		cur := f.fetchOne(a.ID, inbox.ID, uids[1], 0).ModSeq
		r, err = f.S().StoreFlags(f.ctx, a.ID, mailstore.StoreFlagsRequest{
			MailboxID: inbox.ID, UIDs: mailstore.UIDSetOf(uids[1]), Mode: mailstore.FlagsAdd,
			Flags: []string{mailstore.FlagFlagged}, UnchangedSince: cur,
		})
		if err != nil || len(r.Changed) != 1 || len(r.Modified) != 0 {
			t.Errorf("UNCHANGEDSINCE equal to the message's modseq: %+v, %v", r, err)
		}
		// CHANGEDSINCE on Fetch keeps only messages changed after it.
		after := f.modseq(a.ID)
		f.storeFlags(a.ID, inbox.ID, mailstore.FlagsAdd, []string{mailstore.FlagAnswered}, uids[2])
		var got []mailstore.UID
		err = f.S().Fetch(f.ctx, a.ID, inbox.ID, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}, 0, after, func(m *mailstore.Message) error {
			got = append(got, m.UID)
			return nil
		})
		if err != nil || !slices.Equal(got, []mailstore.UID{uids[2]}) {
			t.Errorf("Fetch CHANGEDSINCE %d = %v, %v; want [%d]", after, got, err, uids[2])
		}
	})
}

// testAppendByName: an append request may name its mailbox instead of
// giving its id. Several requests for one mailbox in one call, named in
// any case or by id, get distinct ascending UIDs; an unknown name fails
// the whole call with ErrNoSuchMailbox and stores nothing.
func testAppendByName(t *testing.T, b Backend) {
	f := newFixture(t, b)
	s, ctx := f.S(), f.ctx
	a := f.account("byname@example.test")
	inbox := f.mailbox(a.ID, "INBOX")
	work := f.create(a.ID, "Work")
	res, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{
		{MailboxName: "inbox", Raw: simpleMsg("n1")},
		{MailboxID: inbox.ID, Raw: simpleMsg("n2")},
		{MailboxName: "Inbox", Raw: simpleMsg("n3")},
		{MailboxName: "Work", Raw: simpleMsg("n4")},
	})
	if err != nil {
		t.Fatalf("Append by name: %v", err)
	}
	for i, want := range []int64{inbox.ID, inbox.ID, inbox.ID, work.ID} {
		if res[i].MailboxID != want {
			t.Fatalf("result %d in mailbox %d, want %d", i, res[i].MailboxID, want)
		}
	}
	if !(res[0].UID < res[1].UID && res[1].UID < res[2].UID) || res[0].UIDValidity != inbox.UIDValidity || res[3].UIDValidity != work.UIDValidity {
		t.Fatalf("results %+v: want ascending INBOX UIDs and each mailbox's UIDVALIDITY", res)
	}
	if got := f.uids(a.ID, inbox.ID); !slices.Equal(got, []mailstore.UID{res[0].UID, res[1].UID, res[2].UID}) {
		t.Fatalf("INBOX holds %v", got)
	}
	_, err = s.Append(ctx, a.ID, []mailstore.AppendRequest{
		{MailboxName: "INBOX", Raw: simpleMsg("n5")},
		{MailboxName: "Nowhere", Raw: simpleMsg("n6")},
	})
	expectErr(t, "Append to a missing mailbox by name", err, mailstore.ErrNoSuchMailbox)
	if got := f.uids(a.ID, inbox.ID); len(got) != 3 {
		t.Fatalf("a failed append left INBOX with %v", got)
	}
	other := f.account("byname2@example.test")
	f.create(other.ID, "Theirs")
	_, err = s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxName: "Theirs", Raw: simpleMsg("n7")}})
	expectErr(t, "Append by name to another account's mailbox", err, mailstore.ErrNoSuchMailbox)
}
