package storetest

import (
	"fmt"
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
)

// Quota refusals store nothing at all (RFC 9208 section 4: the command
// fails as a whole).
func testQuota(t *testing.T, b Backend) {
	t.Run("Bytes", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		small := simpleMsg("small-1")
		f.appendMsg(a.ID, inbox.ID, small)
		acc, _ := s.GetAccount(ctx, a.Name)
		if acc.UsedBytes != int64(len(small)) || acc.UsedMessages != 1 {
			t.Errorf("usage %d bytes %d messages, want %d and 1", acc.UsedBytes, acc.UsedMessages, len(small))
		}
		// Room for about one more small message, not for a big one.
		if err := s.SetQuota(ctx, a.Name, int64(len(small))*2+100, 0); err != nil {
			t.Fatal(err)
		}
		big := append(simpleMsg("big"), make([]byte, 4096)...)
		snap := snapshot(f, a.ID, inbox.ID)
		_, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: inbox.ID, Raw: big}})
		expectErr(t, "Append over the byte quota", err, mailstore.ErrOverQuota)
		snap.same(t, "after a refused append")
		// MULTIAPPEND: a fitting message plus a big one stores neither.
		_, err = s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: inbox.ID, Raw: simpleMsg("small-2")}, {MailboxID: inbox.ID, Raw: big}})
		expectErr(t, "MULTIAPPEND over the byte quota", err, mailstore.ErrOverQuota)
		snap.same(t, "after a refused MULTIAPPEND")
		_, err = s.Deliver(ctx, mailstore.Delivery{Raw: big, Recipients: []mailstore.DeliveryTarget{{AccountID: a.ID}}})
		expectErr(t, "Deliver over the byte quota", err, mailstore.ErrOverQuota)
		snap.same(t, "after a refused delivery")
		f.appendMsg(a.ID, inbox.ID, simpleMsg("small-3"))
		// Expunging frees room: the user deletes mail to get under quota,
		// so retained deleted mail must not count.
		f.expunge(a.ID, inbox.ID, f.uids(a.ID, inbox.ID)...)
		acc, _ = s.GetAccount(ctx, a.Name)
		if acc.UsedBytes != 0 || acc.UsedMessages != 0 {
			t.Errorf("usage after expunging everything: %d bytes, %d messages", acc.UsedBytes, acc.UsedMessages)
		}
		f.appendMsg(a.ID, inbox.ID, simpleMsg("small-4"))
		// Quota 0 is unlimited.
		if err := s.SetQuota(ctx, a.Name, 0, 0); err != nil {
			t.Fatal(err)
		}
		f.appendMsg(a.ID, inbox.ID, big)
	})

	t.Run("Messages", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		arch := f.mailbox(a.ID, "Archive")
		if err := s.SetQuota(ctx, a.Name, 0, 3); err != nil {
			t.Fatal(err)
		}
		f.appendMsg(a.ID, inbox.ID, simpleMsg("q1"))
		f.appendMsg(a.ID, arch.ID, simpleMsg("q2")) // the quota is per account, over all mailboxes
		snap := snapshot(f, a.ID, inbox.ID)
		var reqs []mailstore.AppendRequest
		for i := range 2 {
			reqs = append(reqs, mailstore.AppendRequest{MailboxID: inbox.ID, Raw: simpleMsg(fmt.Sprintf("multi-%d", i))})
		}
		_, err := s.Append(ctx, a.ID, reqs)
		expectErr(t, "MULTIAPPEND of 2 with room for 1", err, mailstore.ErrOverQuota)
		snap.same(t, "after a refused MULTIAPPEND")
		f.appendMsg(a.ID, inbox.ID, simpleMsg("q3"))
		_, err = s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: inbox.ID, Raw: simpleMsg("q4")}})
		expectErr(t, "Append at the message limit", err, mailstore.ErrOverQuota)
		acc, _ := s.GetAccount(ctx, a.Name)
		if acc.UsedMessages != 3 {
			t.Errorf("UsedMessages %d, want 3", acc.UsedMessages)
		}
		// Survives a restart.
		f.reopen()
		_, err = f.S().Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: inbox.ID, Raw: simpleMsg("q5")}})
		expectErr(t, "Append at the message limit after restart", err, mailstore.ErrOverQuota)
	})

	// The SMTP server refuses a full mailbox at RCPT from the account
	// ResolveAddress returns (Account.Full): its usage must be current,
	// by name and by alias, and agree with what Deliver refuses.
	t.Run("FullAtResolve", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		if err := s.AddAlias(ctx, "info@example.test", a.Name); err != nil {
			t.Fatal(err)
		}
		if err := s.SetQuota(ctx, a.Name, 0, 1); err != nil {
			t.Fatal(err)
		}
		full := func(want bool) {
			t.Helper()
			for _, addr := range []string{a.Name, "info@example.test"} {
				r, err := s.ResolveAddress(ctx, addr)
				if err != nil {
					t.Fatalf("ResolveAddress(%s): %v", addr, err)
				}
				if r.Full() != want {
					t.Errorf("ResolveAddress(%s).Full() = %v with %d of 1 messages, want %v", addr, r.Full(), r.UsedMessages, want)
				}
			}
		}
		full(false)
		to := []mailstore.DeliveryTarget{{AccountID: a.ID}}
		if _, err := s.Deliver(ctx, mailstore.Delivery{Raw: simpleMsg("fills"), Recipients: to}); err != nil {
			t.Fatalf("Deliver below the quota: %v", err)
		}
		full(true)
		_, err := s.Deliver(ctx, mailstore.Delivery{Raw: simpleMsg("over"), Recipients: to})
		expectErr(t, "Deliver to a full account", err, mailstore.ErrOverQuota)
	})
}

// storeSnapshot is what a refused write must leave unchanged.
type storeSnapshot struct {
	f       *fixture
	acct    int64
	mbox    int64
	modseq  mailstore.ModSeq
	status  mailstore.MailboxStatus
	account mailstore.Account
}

func snapshot(f *fixture, acct, mbox int64) storeSnapshot {
	f.t.Helper()
	acc, err := f.S().GetAccountByID(f.ctx, acct)
	if err != nil {
		f.t.Fatal(err)
	}
	return storeSnapshot{f: f, acct: acct, mbox: mbox, modseq: f.modseq(acct), status: f.status(acct, mbox), account: acc}
}

func (s storeSnapshot) same(t *testing.T, when string) {
	t.Helper()
	now := snapshot(s.f, s.acct, s.mbox)
	if now.modseq != s.modseq {
		t.Errorf("%s: modseq %d -> %d", when, s.modseq, now.modseq)
	}
	if now.status.Messages != s.status.Messages || now.status.Size != s.status.Size || now.status.UIDNext != s.status.UIDNext {
		t.Errorf("%s: status %d msgs %d bytes UIDNEXT %d -> %d msgs %d bytes UIDNEXT %d", when,
			s.status.Messages, s.status.Size, s.status.UIDNext, now.status.Messages, now.status.Size, now.status.UIDNext)
	}
	if now.account.UsedBytes != s.account.UsedBytes || now.account.UsedMessages != s.account.UsedMessages {
		t.Errorf("%s: usage %d/%d -> %d/%d", when, s.account.UsedBytes, s.account.UsedMessages, now.account.UsedBytes, now.account.UsedMessages)
	}
}
