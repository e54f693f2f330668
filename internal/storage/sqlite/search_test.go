package sqlite

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

func TestHeaderHas(t *testing.T) {
	h := "From: Ann <ann@example.org>\r\nX-Spam-Flag: YES\r\nSubject: Grüße aus\r\n  Köln\r\nX-Empty:\r\n"
	for _, c := range []struct {
		name, value string
		want        bool
	}{
		{"x-spam-flag", "yes", true},
		{"X-Spam-Flag", "no", false},
		{"subject", "GRÜSSE", false},
		{"subject", "grüße aus köln", true}, // folded line joined
		{"x-empty", "", true},
		{"x-missing", "", false},
		{"from", "ANN@example", true},
	} {
		if got := headerHas(h, c.name, c.value); got != c.want {
			t.Errorf("headerHas(%q, %q) = %v, want %v", c.name, c.value, got, c.want)
		}
	}
}

func TestSearch(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	a := addAccount(t, s, "search@example.test")
	in := inbox(t, s, a.ID)
	raws := [][]byte{
		[]byte("From: Ann <ann@example.org>\r\nSubject: Quarterly report\r\nX-Priority: 1\r\nDate: Tue, 03 Jan 2006 10:00:00 +0000\r\nMessage-ID: <r1@x>\r\n\r\nThe NUMBERS are in. Ünïcode body.\r\n"),
		[]byte("From: Bob <bob@example.org>\r\nSubject: lunch?\r\nDate: Wed, 04 Jan 2006 23:30:00 -0800\r\nMessage-ID: <r2@x>\r\n\r\nPizza at noon ok\r\n"),
		[]byte("From: Cy <cy@example.org>\r\nSubject: re: report\r\nDate: Thu, 05 Jan 2006 10:00:00 +0000\r\nMessage-ID: <r3@x>\r\n\r\nxy\r\n"),
	}
	day := time.Date(2024, 5, 10, 12, 0, 0, 0, time.UTC)
	for i, raw := range raws {
		_, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: raw, InternalDate: day.AddDate(0, 0, i), Flags: []string{[]string{`\Seen`, "Work", `\Flagged`}[i]}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	k := func(op mailstore.SearchOp, f func(*mailstore.SearchKey)) *mailstore.SearchKey {
		key := &mailstore.SearchKey{Op: op}
		if f != nil {
			f(key)
		}
		return key
	}
	for _, c := range []struct {
		name string
		key  *mailstore.SearchKey
		want []mailstore.UID
	}{
		{"all", k(mailstore.SearchAll, nil), []mailstore.UID{1, 2, 3}},
		{"body 3+ chars, other case", k(mailstore.SearchBody, func(k *mailstore.SearchKey) { k.Value = "numbers ARE" }), []mailstore.UID{1}},
		{"body unicode", k(mailstore.SearchBody, func(k *mailstore.SearchKey) { k.Value = "ÜNÏCODE" }), []mailstore.UID{1}},
		{"body 2 chars", k(mailstore.SearchBody, func(k *mailstore.SearchKey) { k.Value = "XY" }), []mailstore.UID{3}},
		{"text in header", k(mailstore.SearchText, func(k *mailstore.SearchKey) { k.Value = "report" }), []mailstore.UID{1, 3}},
		{"subject", k(mailstore.SearchHeader, func(k *mailstore.SearchKey) { k.Name, k.Value = "Subject", "LUNCH" }), []mailstore.UID{2}},
		{"from", k(mailstore.SearchHeader, func(k *mailstore.SearchKey) { k.Name, k.Value = "from", "bob@" }), []mailstore.UID{2}},
		{"other header present", k(mailstore.SearchHeader, func(k *mailstore.SearchKey) { k.Name = "x-priority" }), []mailstore.UID{1}},
		{"keyword any case", k(mailstore.SearchFlag, func(k *mailstore.SearchKey) { k.Flag = "work" }), []mailstore.UID{2}},
		{"unseen", k(mailstore.SearchNoFlag, func(k *mailstore.SearchKey) { k.Flag = `\seen` }), []mailstore.UID{2, 3}},
		{"on", k(mailstore.SearchOn, func(k *mailstore.SearchKey) { k.Date = day.AddDate(0, 0, 1) }), []mailstore.UID{2}},
		{"since", k(mailstore.SearchSince, func(k *mailstore.SearchKey) { k.Date = day.AddDate(0, 0, 1) }), []mailstore.UID{2, 3}},
		{"before", k(mailstore.SearchBefore, func(k *mailstore.SearchKey) { k.Date = day.AddDate(0, 0, 1) }), []mailstore.UID{1}},
		// RFC 9051: SENTON uses the Date: header's own day (2006-01-04 in -0800).
		{"senton", k(mailstore.SearchSentOn, func(k *mailstore.SearchKey) { k.Date = time.Date(2006, 1, 4, 0, 0, 0, 0, time.UTC) }), []mailstore.UID{2}},
		{"or/not/uids", k(mailstore.SearchOr, func(k *mailstore.SearchKey) {
			k.Children = []*mailstore.SearchKey{
				{Op: mailstore.SearchUIDs, UIDs: mailstore.UIDSetOf(1)},
				{Op: mailstore.SearchNot, Children: []*mailstore.SearchKey{{Op: mailstore.SearchUIDs, UIDs: mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}}}},
			}
		}), []mailstore.UID{1}},
		{"larger", k(mailstore.SearchLarger, func(k *mailstore.SearchKey) { k.Size = int64(len(raws[1])) }), []mailstore.UID{1}},
	} {
		got, err := s.Search(ctx, a.ID, in.ID, c.key)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: Search = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}

func TestCopyMoveChangesPaging(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	a := addAccount(t, s, "copy@example.test")
	in := inbox(t, s, a.ID)
	arch, err := s.MailboxBySpecialUse(ctx, a.ID, mailstore.SpecialArchive)
	if err != nil {
		t.Fatal(err)
	}
	var reqs []mailstore.AppendRequest
	for i := range 5 {
		reqs = append(reqs, mailstore.AppendRequest{MailboxID: in.ID, Raw: msg("c", string(rune('a'+i))+"@x", "copy me")})
	}
	if _, err := s.Append(ctx, a.ID, reqs); err != nil {
		t.Fatal(err)
	}
	since, _ := s.HighestModSeq(ctx, a.ID)
	cr, err := s.Copy(ctx, a.ID, in.ID, mailstore.UIDSetOf(2, 4), arch.ID)
	if err != nil || !slices.Equal(cr.SrcUIDs, []mailstore.UID{2, 4}) || !slices.Equal(cr.DstUIDs, []mailstore.UID{1, 2}) || cr.UIDValidity != arch.UIDValidity {
		t.Fatalf("Copy = %+v, %v", cr, err)
	}
	mr, err := s.Move(ctx, a.ID, in.ID, mailstore.UIDSet{{Lo: 1, Hi: 3}}, arch.ID)
	if err != nil || !slices.Equal(mr.DstUIDs, []mailstore.UID{3, 4, 5}) {
		t.Fatalf("Move = %+v, %v", mr, err)
	}
	// The copied text is searchable in the destination.
	found, err := s.Search(ctx, a.ID, arch.ID, &mailstore.SearchKey{Op: mailstore.SearchBody, Value: "copy me"})
	if err != nil || len(found) != 5 {
		t.Fatalf("Search after copy/move = %v, %v", found, err)
	}
	uids, _, _ := s.UIDs(ctx, a.ID, in.ID)
	if !slices.Equal(uids, []mailstore.UID{4, 5}) {
		t.Fatalf("INBOX after move = %v", uids)
	}
	acct, _ := s.GetAccountByID(ctx, a.ID)
	if acct.UsedMessages != 7 {
		t.Fatalf("used messages %d, want 7", acct.UsedMessages)
	}
	all, err := s.Changes(ctx, a.ID, since, 0)
	if err != nil || len(all) != 2+3+3 {
		t.Fatalf("Changes = %v, %v", all, err)
	}
	// A limit inside the move's group ends the page before it.
	page, err := s.Changes(ctx, a.ID, since, 4)
	if err != nil || len(page) != 2 || page[1].ModSeq != cr.ModSeq {
		t.Fatalf("Changes limit 4 = %v, %v", page, err)
	}
	// A first group larger than the limit comes whole.
	page, err = s.Changes(ctx, a.ID, cr.ModSeq, 1)
	if err != nil || len(page) != 6 {
		t.Fatalf("Changes limit 1 = %v, %v", page, err)
	}
	for _, c := range page {
		if c.ModSeq != mr.ModSeq || (c.Kind == mailstore.ChangeMessage && (!c.Created || c.MailboxID != arch.ID)) {
			t.Fatalf("move change %+v", c)
		}
	}
	checkCounts(t, s)
}

func TestQueueAndLeases(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	now := time.Now()
	raw := msg("q", "q@x", "out")
	ids, err := s.Enqueue(ctx, raw, []mailstore.QueueEntry{
		{From: "a@example.test", Recipients: []string{"x@one.example"}, Domain: "one.example"},
		{From: "a@example.test", Recipients: []string{"y@two.example", "z@two.example"}, Domain: "two.example", NextAttempt: now.Add(time.Hour)},
	})
	if err != nil || len(ids) != 2 {
		t.Fatalf("Enqueue = %v, %v", ids, err)
	}
	c1, err := s.ClaimDue(ctx, "node1", now.Add(time.Second), now.Add(time.Minute), 10)
	if err != nil || len(c1) != 1 || c1[0].ID != ids[0] || c1[0].LeaseOwner != "node1" {
		t.Fatalf("ClaimDue = %+v, %v", c1, err)
	}
	if c2, _ := s.ClaimDue(ctx, "node2", now.Add(time.Second), now.Add(time.Minute), 10); len(c2) != 0 {
		t.Fatalf("second claimer got %+v", c2)
	}
	// An expired lease is up for grabs.
	if c3, _ := s.ClaimDue(ctx, "node2", now.Add(2*time.Minute), now.Add(3*time.Minute), 10); len(c3) != 1 || c3[0].ID != ids[0] {
		t.Fatalf("claim after expiry = %+v", c3)
	}
	e := c1[0]
	e.Attempts, e.LastError, e.NextAttempt = 1, "451 try later", now.Add(time.Hour)
	if err := s.UpdateQueueEntry(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetQueueEntry(ctx, e.ID)
	if err != nil || got.Attempts != 1 || got.LeaseOwner != "" || got.LastError != "451 try later" {
		t.Fatalf("GetQueueEntry = %+v, %v", got, err)
	}
	if n, err := s.RetryQueue(ctx, nil, now); err != nil || n != 2 {
		t.Fatalf("RetryQueue = %d, %v", n, err)
	}
	b, err := s.ReadBlob(ctx, got.BlobID)
	if err != nil || string(b) != string(raw) {
		t.Fatalf("queued blob = %q, %v", b, err)
	}
	for _, id := range ids {
		if err := s.DeleteQueueEntry(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ReadBlob(ctx, got.BlobID); err == nil {
		t.Fatal("blob outlived its last queue entry")
	}

	ok, err := s.AcquireLease(ctx, "pop3/x", "a", now.Add(time.Minute))
	if err != nil || !ok {
		t.Fatalf("AcquireLease = %v, %v", ok, err)
	}
	if ok, _ := s.AcquireLease(ctx, "pop3/x", "b", now.Add(time.Minute)); ok {
		t.Fatal("second owner got a held lease")
	}
	if ok, _ := s.AcquireLease(ctx, "pop3/x", "a", now.Add(2*time.Minute)); !ok {
		t.Fatal("owner could not renew")
	}
	if err := s.ReleaseLease(ctx, "pop3/x", "a"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.AcquireLease(ctx, "pop3/x", "b", now.Add(time.Minute)); !ok {
		t.Fatal("released lease not free")
	}
}
