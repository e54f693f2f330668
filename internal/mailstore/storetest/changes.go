package storetest

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

type msgKey struct {
	mbox int64
	uid  mailstore.UID
}

func (f *fixture) changes(acct int64, since mailstore.ModSeq, limit int) []mailstore.Change {
	f.t.Helper()
	cs, err := f.S().Changes(f.ctx, acct, since, limit)
	if err != nil {
		f.t.Fatalf("Changes(%d, %d): %v", since, limit, err)
	}
	return cs
}

func fmtChange(c mailstore.Change) string {
	return fmt.Sprintf("{kind %d modseq %d mbox %d uid %d flags %v created %v deleted %v}", c.Kind, c.ModSeq, c.MailboxID, c.UID, c.Flags, c.Created, c.Deleted)
}

func testChanges(t *testing.T, b Backend) {
	t.Run("Feed", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		bob := f.account("bob@example.test")
		m0 := f.modseq(a.ID)

		box := f.create(a.ID, "Feed")
		res, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{
			{MailboxID: box.ID, Raw: simpleMsg("feed-1")},
			{MailboxID: box.ID, Raw: simpleMsg("feed-2")},
			{MailboxID: box.ID, Raw: simpleMsg("feed-3"), Flags: []string{"$Keep"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		u1, u2, u3 := res[0].UID, res[1].UID, res[2].UID
		afterAppend := f.modseq(a.ID)
		f.storeFlags(a.ID, box.ID, mailstore.FlagsAdd, []string{mailstore.FlagSeen}, u1)
		f.expunge(a.ID, box.ID, u2)
		gone := f.create(a.ID, "Gone")
		if err := s.DeleteMailbox(ctx, a.ID, "Gone"); err != nil {
			t.Fatal(err)
		}
		if err := s.RenameMailbox(ctx, a.ID, "Feed", "Feed2"); err != nil {
			t.Fatal(err)
		}
		// Bob's activity is none of alice's feed.
		f.appendMsg(bob.ID, f.mailbox(bob.ID, "INBOX").ID, simpleMsg("bob-feed"))
		top := f.modseq(a.ID)

		all := f.changes(a.ID, m0, 0)
		checkOrdered(t, all, m0, top)
		msgs := map[msgKey]mailstore.Change{}
		var expunged []msgKey
		lastMailbox := map[int64]mailstore.Change{}
		for _, c := range all {
			k := msgKey{c.MailboxID, c.UID}
			switch c.Kind {
			case mailstore.ChangeMessage:
				if _, dup := msgs[k]; dup {
					t.Errorf("message %v reported twice (changes are reported once, with their current state)", k)
				}
				msgs[k] = c
			case mailstore.ChangeExpunge:
				expunged = append(expunged, k)
			case mailstore.ChangeMailbox:
				lastMailbox[c.MailboxID] = c
			default:
				t.Errorf("unknown change kind %s", fmtChange(c))
			}
		}
		cur1 := f.fetchOne(a.ID, box.ID, u1, 0)
		cur3 := f.fetchOne(a.ID, box.ID, u3, 0)
		want := map[msgKey]mailstore.Change{
			{box.ID, u1}: {Kind: mailstore.ChangeMessage, ModSeq: cur1.ModSeq, MailboxID: box.ID, UID: u1, Flags: []string{mailstore.FlagSeen}, Created: true},
			{box.ID, u3}: {Kind: mailstore.ChangeMessage, ModSeq: cur3.ModSeq, MailboxID: box.ID, UID: u3, Flags: []string{"$Keep"}, Created: true},
		}
		if len(msgs) != len(want) {
			t.Errorf("message changes: %d, want %d (%v)", len(msgs), len(want), all)
		}
		for k, w := range want {
			g, ok := msgs[k]
			if !ok || g.ModSeq != w.ModSeq || !slices.Equal(g.Flags, w.Flags) || !g.Created {
				t.Errorf("change for %v = %s (present %v), want %s", k, fmtChange(g), ok, fmtChange(w))
			}
		}
		if !slices.Equal(expunged, []msgKey{{box.ID, u2}}) {
			t.Errorf("expunge changes %v, want exactly [{%d %d}]", expunged, box.ID, u2)
		}
		if c, ok := lastMailbox[box.ID]; !ok || c.Deleted {
			t.Errorf("no live mailbox change for the created+renamed mailbox: %s", fmtChange(c))
		}
		if c, ok := lastMailbox[gone.ID]; !ok || !c.Deleted {
			t.Errorf("deleted mailbox: last change %s (present %v), want Deleted", fmtChange(c), ok)
		}

		// From after the append: u1 is a flag change of an older row
		// (Created false); u3 did not change.
		later := f.changes(a.ID, afterAppend, 0)
		checkOrdered(t, later, afterAppend, top)
		var sawU1 bool
		for _, c := range later {
			if c.Kind != mailstore.ChangeMessage {
				continue
			}
			switch c.UID {
			case u1:
				sawU1 = true
				if c.Created || !slices.Equal(c.Flags, []string{mailstore.FlagSeen}) {
					t.Errorf("flag change of an old row reported as %s", fmtChange(c))
				}
			default:
				t.Errorf("unexpected message change since %d: %s", afterAppend, fmtChange(c))
			}
		}
		if !sawU1 {
			t.Errorf("flag change of UID %d missing from Changes(%d)", u1, afterAppend)
		}
		if cs := f.changes(a.ID, top, 0); len(cs) != 0 {
			t.Errorf("Changes(current modseq) = %v, want none", cs)
		}

		checkPaging(t, f, a.ID, m0, all)
		// Moves show as an expunge in the source and a creation in the
		// destination.
		before := f.modseq(a.ID)
		mr, err := s.Move(ctx, a.ID, box.ID, mailstore.UIDSetOf(u3), f.mailbox(a.ID, "INBOX").ID)
		if err != nil {
			t.Fatal(err)
		}
		var sawExp, sawNew bool
		for _, c := range f.changes(a.ID, before, 0) {
			switch {
			case c.Kind == mailstore.ChangeExpunge && c.MailboxID == box.ID && c.UID == u3:
				sawExp = true
			case c.Kind == mailstore.ChangeMessage && c.UID == mr.DstUIDs[0] && c.Created && slices.Equal(c.Flags, []string{"$Keep"}):
				sawNew = true
			}
		}
		if !sawExp || !sawNew {
			t.Errorf("Move in the feed: expunge seen %v, creation with flags seen %v", sawExp, sawNew)
		}
	})

	// One operation gives its changes one modseq (RFC 7162 section 3.1:
	// a STORE to many messages). A client pages by resuming from the last
	// modseq it saw, so a page must not end inside such a group.
	t.Run("Paging", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		m0 := f.modseq(a.ID)
		u := f.appendN(a.ID, inbox.ID, "page", 6)
		group := f.storeFlags(a.ID, inbox.ID, mailstore.FlagsAdd, []string{"$Group"}, u...)
		if len(group.Changed) != 6 {
			t.Fatalf("STORE on 6 changed %d", len(group.Changed))
		}
		for _, c := range group.Changed {
			if c.ModSeq != group.ModSeq {
				t.Errorf("one STORE gave UID %d modseq %d, the operation %d", c.UID, c.ModSeq, group.ModSeq)
			}
		}
		f.create(a.ID, "After")
		f.storeFlags(a.ID, inbox.ID, mailstore.FlagsAdd, []string{mailstore.FlagSeen}, u[0])
		f.expunge(a.ID, inbox.ID, u[5])
		all := f.changes(a.ID, m0, 0)
		checkOrdered(t, all, m0, f.modseq(a.ID))
		checkPaging(t, f, a.ID, m0, all)
	})

	t.Run("VanishedExact", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		a := f.account("alice@example.test")
		box := f.create(a.ID, "V")
		other := f.create(a.ID, "W")
		uids := f.appendN(a.ID, box.ID, "van", 10)
		ou := f.appendN(a.ID, other.ID, "van-other", 2)
		s0 := f.modseq(a.ID)
		f.expunge(a.ID, box.ID, uids[1], uids[4])
		s1 := f.modseq(a.ID)
		f.expunge(a.ID, box.ID, uids[7])
		f.expunge(a.ID, other.ID, ou[0])
		mr, err := f.S().Move(f.ctx, a.ID, box.ID, mailstore.UIDSetOf(uids[9]), other.ID)
		if err != nil {
			t.Fatal(err)
		}
		f.storeFlags(a.ID, box.ID, mailstore.FlagsAdd, []string{mailstore.FlagSeen}, uids[0])
		// Expunging what is gone removes nothing and adds no tombstone.
		if gone, _, err := f.S().Expunge(f.ctx, a.ID, box.ID, mailstore.UIDSetOf(uids[1], uids[9]+1000)); err != nil || len(gone) != 0 {
			t.Errorf("Expunge of absent UIDs = %v, %v; want none", gone, err)
		}
		s2 := f.modseq(a.ID)
		vanished := func(since mailstore.ModSeq) []mailstore.UID {
			t.Helper()
			v, err := f.S().Vanished(f.ctx, a.ID, box.ID, since)
			if err != nil {
				t.Fatalf("Vanished: %v", err)
			}
			return sortedUIDs(v)
		}
		if got, want := vanished(s0), []mailstore.UID{uids[1], uids[4], uids[7], uids[9]}; !slices.Equal(got, want) {
			t.Errorf("Vanished(%d) = %v, want %v", s0, got, want)
		}
		if got, want := vanished(s1), []mailstore.UID{uids[7], uids[9]}; !slices.Equal(got, want) {
			t.Errorf("Vanished(%d) = %v, want %v", s1, got, want)
		}
		if got := vanished(s2); len(got) != 0 {
			t.Errorf("Vanished(current) = %v", got)
		}
		if v, _ := f.S().Vanished(f.ctx, a.ID, other.ID, s0); !slices.Equal(sortedUIDs(v), []mailstore.UID{ou[0]}) {
			t.Errorf("Vanished of W = %v, want [%d] (the move into W is no expunge there; got dst %v)", v, ou[0], mr.DstUIDs)
		}
		// Tombstones are durable.
		f.reopen()
		if got, want := vanished(s0), []mailstore.UID{uids[1], uids[4], uids[7], uids[9]}; !slices.Equal(got, want) {
			t.Errorf("after restart Vanished(%d) = %v, want %v", s0, got, want)
		}
	})
}

// checkOrdered pins modseq order and range of a change list.
func checkOrdered(t *testing.T, cs []mailstore.Change, since, top mailstore.ModSeq) {
	t.Helper()
	for i, c := range cs {
		if c.ModSeq <= since || c.ModSeq > top {
			t.Errorf("change %s outside (%d, %d]", fmtChange(c), since, top)
		}
		if i > 0 && c.ModSeq < cs[i-1].ModSeq {
			t.Errorf("changes out of modseq order at %d: %s after %s", i, fmtChange(c), fmtChange(cs[i-1]))
		}
	}
}

// Watchers are woken after a change to their account only.
func testWatch(t *testing.T, b Backend) {
	f := newFixture(t, b)
	s, ctx := f.S(), f.ctx
	a := f.account("alice@example.test")
	bob := f.account("bob@example.test")
	inbox := f.mailbox(a.ID, "INBOX")
	wa := s.Watch(a.ID)
	defer wa.Close()
	wb := s.Watch(bob.ID)
	defer wb.Close()

	expectWake := func(what string) {
		t.Helper()
		select {
		case <-wa.C:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: watcher of the account not woken", what)
		}
		select {
		case <-wb.C:
			t.Errorf("%s: another account's watcher woken", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
	u := f.appendMsg(a.ID, inbox.ID, simpleMsg("watch")).UID
	expectWake("Append")
	f.storeFlags(a.ID, inbox.ID, mailstore.FlagsAdd, []string{mailstore.FlagSeen}, u)
	expectWake("StoreFlags")
	if _, err := s.Deliver(ctx, mailstore.Delivery{Raw: simpleMsg("watch-d"), Recipients: []mailstore.DeliveryTarget{{AccountID: a.ID}}}); err != nil {
		t.Fatal(err)
	}
	expectWake("Deliver")
	f.create(a.ID, "W")
	expectWake("CreateMailbox")
	f.expunge(a.ID, inbox.ID, u)
	expectWake("Expunge")
	// Closed watchers are not woken and Close is idempotent.
	wa.Close()
	wa.Close()
	f.appendMsg(bob.ID, f.mailbox(bob.ID, "INBOX").ID, simpleMsg("watch-bob"))
	select {
	case <-wb.C:
	case <-time.After(10 * time.Second):
		t.Fatalf("bob's watcher not woken by bob's append")
	}
	select {
	case <-wa.C:
		t.Errorf("closed watcher woken")
	default:
	}
}

// checkPaging pins Changes with a limit: every page is a head of the full
// list, holds at most limit entries unless its single modseq group alone is
// bigger, never ends inside a modseq group, and resuming from each page's
// last modseq rebuilds the full list exactly.
func checkPaging(t *testing.T, f *fixture, acct int64, since mailstore.ModSeq, all []mailstore.Change) {
	t.Helper()
	for limit := 1; limit <= len(all); limit++ {
		var rebuilt []mailstore.Change
		cur := since
		for range len(all) + 1 {
			page := f.changes(acct, cur, limit)
			if len(page) == 0 {
				break
			}
			first, last := page[0].ModSeq, page[len(page)-1].ModSeq
			if len(page) > limit && first != last {
				t.Errorf("limit %d: page of %d entries spans modseqs %d..%d", limit, len(page), first, last)
			}
			off := len(rebuilt)
			if off+len(page) < len(all) && all[off+len(page)].ModSeq == last {
				t.Errorf("limit %d: page ends inside the group of modseq %d", limit, last)
			}
			rebuilt = append(rebuilt, page...)
			cur = last
		}
		if len(rebuilt) != len(all) {
			t.Errorf("limit %d: paging rebuilt %d of %d changes", limit, len(rebuilt), len(all))
			continue
		}
		for i := range all {
			if rebuilt[i].ModSeq != all[i].ModSeq {
				t.Errorf("limit %d: entry %d = %s, full list has %s", limit, i, fmtChange(rebuilt[i]), fmtChange(all[i]))
			}
		}
		// Within a group the order is free; the entries are not. Created
		// is relative to each page's own since, so it is left out.
		if got, want := changeSet(rebuilt), changeSet(all); !maps.Equal(got, want) {
			t.Errorf("limit %d: paging saw other changes than the full list", limit)
		}
	}
}

func changeSet(cs []mailstore.Change) map[string]int {
	m := map[string]int{}
	for _, c := range cs {
		c.Created = false
		m[fmtChange(c)]++
	}
	return m
}
