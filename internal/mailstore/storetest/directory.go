package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

func testDirectory(t *testing.T, b Backend) {
	t.Run("Domains", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		if err := s.AddDomain(ctx, "Example.TEST"); err != nil {
			t.Fatalf("AddDomain: %v", err)
		}
		if err := s.AddDomain(ctx, "other.test"); err != nil {
			t.Fatalf("AddDomain: %v", err)
		}
		// Domain names are case-insensitive (RFC 5321 section 2.4) and
		// stored lower case.
		expectErr(t, "AddDomain duplicate in other case", s.AddDomain(ctx, "example.test"), mailstore.ErrExists)
		ds, err := s.ListDomains(ctx)
		if err != nil {
			t.Fatalf("ListDomains: %v", err)
		}
		var names []string
		for _, d := range ds {
			names = append(names, d.Name)
			if d.Created.IsZero() {
				t.Errorf("domain %q has no Created time", d.Name)
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"example.test", "other.test"}) {
			t.Errorf("ListDomains = %v, want [example.test other.test]", names)
		}
		expectErr(t, "DeleteDomain unknown", s.DeleteDomain(ctx, "nowhere.test"), mailstore.ErrNoSuchDomain)
		if err := s.DeleteDomain(ctx, "OTHER.test"); err != nil {
			t.Fatalf("DeleteDomain of an unused domain: %v", err)
		}
		ds, _ = s.ListDomains(ctx)
		if len(ds) != 1 || ds[0].Name != "example.test" {
			t.Errorf("after DeleteDomain: %v", ds)
		}
	})

	t.Run("Accounts", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		_, err := s.AddAccount(ctx, "bob@nowhere.test", "h")
		expectErr(t, "AddAccount in unknown domain", err, mailstore.ErrNoSuchDomain)
		if err := s.AddDomain(ctx, "example.test"); err != nil {
			t.Fatal(err)
		}
		a, err := s.AddAccount(ctx, "Alice@Example.Test", "hash1")
		if err != nil {
			t.Fatalf("AddAccount: %v", err)
		}
		if a.ID == 0 || a.Name != "alice@example.test" || a.Domain != "example.test" || a.PasswordHash != "hash1" || a.Created.IsZero() {
			t.Errorf("AddAccount returned %+v; want lower-case name, domain, hash and Created", a)
		}
		_, err = s.AddAccount(ctx, "ALICE@example.test", "h")
		expectErr(t, "AddAccount duplicate in other case", err, mailstore.ErrExists)

		for _, name := range []string{"alice@example.test", "ALICE@EXAMPLE.TEST", "Alice@example.test"} {
			g, err := s.GetAccount(ctx, name)
			if err != nil || g.ID != a.ID {
				t.Errorf("GetAccount(%q) = %+v, %v; want account %d", name, g, err, a.ID)
			}
		}
		g, err := s.GetAccountByID(ctx, a.ID)
		if err != nil || g.Name != a.Name {
			t.Errorf("GetAccountByID = %+v, %v", g, err)
		}
		_, err = s.GetAccount(ctx, "carol@example.test")
		expectErr(t, "GetAccount unknown", err, mailstore.ErrNoSuchAccount)
		_, err = s.GetAccountByID(ctx, a.ID+1000)
		expectErr(t, "GetAccountByID unknown", err, mailstore.ErrNoSuchAccount)

		if err := s.SetPassword(ctx, "ALICE@example.test", "hash2"); err != nil {
			t.Fatalf("SetPassword: %v", err)
		}
		expectErr(t, "SetPassword unknown", s.SetPassword(ctx, "carol@example.test", "x"), mailstore.ErrNoSuchAccount)
		if err := s.SetQuota(ctx, "alice@example.test", 1000, 10); err != nil {
			t.Fatalf("SetQuota: %v", err)
		}
		expectErr(t, "SetQuota unknown", s.SetQuota(ctx, "carol@example.test", 1, 1), mailstore.ErrNoSuchAccount)
		g, _ = s.GetAccount(ctx, "alice@example.test")
		if g.PasswordHash != "hash2" || g.QuotaBytes != 1000 || g.QuotaMessages != 10 {
			t.Errorf("after SetPassword/SetQuota: %+v", g)
		}

		b2, err := s.AddAccount(ctx, "bob@example.test", "h")
		if err != nil {
			t.Fatal(err)
		}
		list, err := s.ListAccounts(ctx)
		if err != nil {
			t.Fatalf("ListAccounts: %v", err)
		}
		var ids []int64
		for _, x := range list {
			ids = append(ids, x.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []int64{min(a.ID, b2.ID), max(a.ID, b2.ID)}) {
			t.Errorf("ListAccounts ids = %v", ids)
		}
	})

	t.Run("DefaultMailboxes", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		a := f.account("alice@example.test")
		mbs := f.allMailboxes(a.ID)
		if len(mbs) != len(mailstore.DefaultMailboxes) {
			t.Errorf("new account has %d mailboxes, want %d", len(mbs), len(mailstore.DefaultMailboxes))
		}
		seenValidity := map[uint32]string{}
		for _, d := range mailstore.DefaultMailboxes {
			mb, ok := mbs[d.Name]
			if !ok {
				t.Errorf("default mailbox %q missing", d.Name)
				continue
			}
			if mb.SpecialUse != d.SpecialUse || mb.AccountID != a.ID || mb.UIDValidity == 0 || mb.UIDNext < 1 {
				t.Errorf("mailbox %q = %+v; want special use %q, UIDVALIDITY > 0, UIDNEXT >= 1", d.Name, mb, d.SpecialUse)
			}
			if other, dup := seenValidity[mb.UIDValidity]; dup {
				// Not required by RFC 9051, but a shared value across
				// mailboxes hints at a constant.
				t.Logf("mailboxes %q and %q share UIDVALIDITY %d", other, d.Name, mb.UIDValidity)
			}
			seenValidity[mb.UIDValidity] = d.Name
			if d.SpecialUse != "" {
				su, err := f.S().MailboxBySpecialUse(f.ctx, a.ID, d.SpecialUse)
				if err != nil || su.ID != mb.ID {
					t.Errorf("MailboxBySpecialUse(%s) = %+v, %v; want %q", d.SpecialUse, su, err, d.Name)
				}
			}
		}
		_, err := f.S().MailboxBySpecialUse(f.ctx, a.ID, mailstore.SpecialAll)
		expectErr(t, `MailboxBySpecialUse(\All) without one`, err, mailstore.ErrNoSuchMailbox)
	})

	t.Run("Aliases", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		f.account("bob@example.test")
		if err := s.AddAlias(ctx, "Info@Example.test", "ALICE@example.test"); err != nil {
			t.Fatalf("AddAlias: %v", err)
		}
		expectErr(t, "AddAlias duplicate in other case", s.AddAlias(ctx, "INFO@example.test", "bob@example.test"), mailstore.ErrExists)
		expectErr(t, "AddAlias to unknown account", s.AddAlias(ctx, "x@example.test", "nobody@example.test"), mailstore.ErrNoSuchAccount)
		if err := s.AddAlias(ctx, "x@nowhere.test", "alice@example.test"); err == nil {
			t.Errorf("AddAlias in an unknown domain succeeded")
		}
		for _, addr := range []string{"info@example.test", "INFO@EXAMPLE.TEST", "alice@example.test", "Alice@EXAMPLE.test"} {
			r, err := s.ResolveAddress(ctx, addr)
			if err != nil || r.ID != a.ID {
				t.Errorf("ResolveAddress(%q) = %+v, %v; want alice", addr, r, err)
			}
		}
		_, err := s.ResolveAddress(ctx, "nobody@example.test")
		expectErr(t, "ResolveAddress unknown", err, mailstore.ErrNoSuchAccount)
		al, err := s.ListAliases(ctx)
		if err != nil {
			t.Fatalf("ListAliases: %v", err)
		}
		if len(al) != 1 || al[0].Address != "info@example.test" || al[0].AccountID != a.ID || al[0].Account != "alice@example.test" {
			t.Errorf("ListAliases = %+v", al)
		}
		if err := s.DeleteAlias(ctx, "INFO@example.test"); err != nil {
			t.Fatalf("DeleteAlias: %v", err)
		}
		if err := s.DeleteAlias(ctx, "info@example.test"); !errors.Is(err, mailstore.ErrNoSuchAlias) {
			t.Fatalf("DeleteAlias of a deleted alias: got %v, want ErrNoSuchAlias", err)
		}
		_, err = s.ResolveAddress(ctx, "info@example.test")
		expectErr(t, "ResolveAddress after DeleteAlias", err, mailstore.ErrNoSuchAccount)
		if al, _ := s.ListAliases(ctx); len(al) != 0 {
			t.Errorf("ListAliases after delete = %+v", al)
		}
	})

	t.Run("DeleteDomainInUse", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		f.account("alice@example.test")
		if err := s.AddDomain(ctx, "alias.test"); err != nil {
			t.Fatal(err)
		}
		if err := s.AddAlias(ctx, "info@alias.test", "alice@example.test"); err != nil {
			t.Fatal(err)
		}
		expectErr(t, "DeleteDomain with an account", s.DeleteDomain(ctx, "example.test"), mailstore.ErrNotEmpty)
		expectErr(t, "DeleteDomain with an alias", s.DeleteDomain(ctx, "alias.test"), mailstore.ErrNotEmpty)
		if err := s.DeleteAlias(ctx, "info@alias.test"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDomain(ctx, "alias.test"); err != nil {
			t.Errorf("DeleteDomain after its alias went: %v", err)
		}
		if _, err := s.GetAccount(ctx, "alice@example.test"); err != nil {
			t.Errorf("account vanished after a refused DeleteDomain: %v", err)
		}
	})

	t.Run("DeleteAccountCascades", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		bob := f.account("bob@example.test")
		if err := s.AddAlias(ctx, "info@example.test", "alice@example.test"); err != nil {
			t.Fatal(err)
		}
		inbox := f.mailbox(a.ID, "INBOX")
		oldValidity := inbox.UIDValidity
		raw := simpleMsg("cascade-only-alice")
		f.appendMsg(a.ID, inbox.ID, raw)
		bobRaw := simpleMsg("cascade-bob")
		f.appendMsg(bob.ID, f.mailbox(bob.ID, "INBOX").ID, bobRaw)

		if err := s.DeleteAccount(ctx, "ALICE@example.test"); err != nil {
			t.Fatalf("DeleteAccount: %v", err)
		}
		expectErr(t, "DeleteAccount twice", s.DeleteAccount(ctx, "alice@example.test"), mailstore.ErrNoSuchAccount)
		_, err := s.GetAccount(ctx, "alice@example.test")
		expectErr(t, "GetAccount after delete", err, mailstore.ErrNoSuchAccount)
		_, err = s.ResolveAddress(ctx, "info@example.test")
		expectErr(t, "alias after DeleteAccount", err, mailstore.ErrNoSuchAccount)
		if al, _ := s.ListAliases(ctx); len(al) != 0 {
			t.Errorf("aliases survive their account: %+v", al)
		}
		_, err = s.GetMailboxByID(ctx, a.ID, inbox.ID)
		if err == nil {
			t.Errorf("the deleted account's INBOX is still readable")
		}
		// Its mail is gone for good once purged (whether or not it passed
		// through the retention area on the way); bob's is untouched.
		future := time.Now().Add(time.Hour)
		if _, err := s.Purge(ctx, future, future); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		if _, err := s.ReadBlob(ctx, blobID(raw)); err == nil {
			t.Errorf("blob of a deleted account's message still readable after Purge")
		}
		if got, err := s.ReadBlob(ctx, blobID(bobRaw)); err != nil || string(got) != string(bobRaw) {
			t.Errorf("another account's blob damaged: %v", err)
		}
		// A recreated account of the same name starts empty, and IMAP
		// clients that cached the old INBOX must see a new UIDVALIDITY
		// (RFC 9051 section 2.3.1.1).
		a2 := f.account("alice@example.test")
		in2 := f.mailbox(a2.ID, "INBOX")
		if st := f.status(a2.ID, in2.ID); st.Messages != 0 {
			t.Errorf("recreated account's INBOX has %d messages", st.Messages)
		}
		if in2.UIDValidity == oldValidity {
			t.Errorf("recreated account's INBOX reuses UIDVALIDITY %d", oldValidity)
		}
		if err := s.DeleteAccount(ctx, "alice@example.test"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteAccount(ctx, "bob@example.test"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDomain(ctx, "example.test"); err != nil {
			t.Errorf("DeleteDomain after every account went: %v", err)
		}
	})

	t.Run("Isolation", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		bob := f.account("bob@example.test")
		ain := f.mailbox(a.ID, "INBOX")
		uid := f.appendMsg(a.ID, ain.ID, simpleMsg("private")).UID
		// Another account's mailbox ID must not be reachable by bob.
		_, err := s.GetMailboxByID(ctx, bob.ID, ain.ID)
		expectErr(t, "GetMailboxByID of another account's mailbox", err, mailstore.ErrNoSuchMailbox)
		if _, err := s.Status(ctx, bob.ID, ain.ID); err == nil {
			t.Errorf("Status of another account's mailbox succeeded")
		}
		if _, err := s.Append(ctx, bob.ID, []mailstore.AppendRequest{{MailboxID: ain.ID, Raw: simpleMsg("intruder")}}); err == nil {
			t.Errorf("Append into another account's mailbox succeeded")
		}
		n := 0
		_ = s.Fetch(ctx, bob.ID, ain.ID, mailstore.UIDSetOf(uid), 0, 0, func(*mailstore.Message) error { n++; return nil })
		if n != 0 {
			t.Errorf("Fetch showed another account's message")
		}
		if u, _, err := s.UIDs(ctx, bob.ID, ain.ID); err == nil && len(u) > 0 {
			t.Errorf("UIDs listed another account's messages")
		}
		if u, err := s.Search(ctx, bob.ID, ain.ID, &mailstore.SearchKey{Op: mailstore.SearchAll}); err == nil && len(u) > 0 {
			t.Errorf("Search found another account's messages")
		}
		bin := f.mailbox(bob.ID, "INBOX")
		if r, err := s.Copy(ctx, bob.ID, ain.ID, mailstore.UIDSetOf(uid), bin.ID); err == nil && len(r.DstUIDs) > 0 {
			t.Errorf("Copy out of another account's mailbox succeeded")
		}
		if r, err := s.Copy(ctx, a.ID, ain.ID, mailstore.UIDSetOf(uid), bin.ID); err == nil && len(r.DstUIDs) > 0 {
			t.Errorf("Copy into another account's mailbox succeeded")
		}
		if n := f.status(bob.ID, bin.ID).Messages; n != 0 {
			t.Errorf("bob's INBOX got %d of alice's messages", n)
		}
		_, _, _ = s.Expunge(ctx, bob.ID, ain.ID, mailstore.UIDSetOf(uid))
		_, _ = s.StoreFlags(ctx, bob.ID, mailstore.StoreFlagsRequest{MailboxID: ain.ID, UIDs: mailstore.UIDSetOf(uid), Mode: mailstore.FlagsAdd, Flags: []string{mailstore.FlagDeleted}})
		if fl := f.fetchOne(a.ID, ain.ID, uid, 0).Flags; len(fl) != 0 {
			t.Errorf("another account changed alice's flags to %v", fl)
		}
		if got := f.uids(a.ID, ain.ID); len(got) != 1 {
			t.Errorf("alice's INBOX has %v after bob's attempts", got)
		}
	})
}
