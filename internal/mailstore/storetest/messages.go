package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// oddMessages are stored byte for byte whatever their shape: the store
// never "fixes" a message (RFC 9051 section 6.3.12: the server stores the
// literal as given).
func oddMessages() map[string][]byte {
	big := make([]byte, 5<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.UintN(256))
	}
	copy(big, "Subject: five megabytes\r\nContent-Type: application/octet-stream\r\n\r\n")
	return map[string][]byte{
		"malformed":    []byte("this is not\r\n: a header\r\nFrom\r\n\r\n\r\n--boundary-without-multipart\r\n"),
		"8bit":         []byte("Subject: Grüße aus Köln\r\nFrom: Jörg <jörg@example.org>\r\n\r\nÄÖÜ äöü ß €\r\n"),
		"binary-nul":   []byte("Subject: nul\r\n\r\nbefore\x00after\x00\x00\r\n\xff\xfe\x80 invalid utf-8\r\n"),
		"bare-lf":      []byte("Subject: bare lf\nFrom: a@b.example\n\nline one\nline two\n"),
		"no-final-eol": []byte("Subject: no final CRLF\r\n\r\nthe last line has no end"),
		"mixed-eol":    []byte("Subject: mixed\r\nX: y\n\r\nbody\r\r\n\n"),
		"header-only":  []byte("Subject: only a header\r\n"),
		"5mb":          big,
	}
}

func testMessages(t *testing.T, b Backend) {
	t.Run("ByteExactRoundTrip", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		msgs := oddMessages()
		uids := map[string]mailstore.UID{}
		for name, raw := range msgs {
			uids[name] = f.appendMsg(a.ID, inbox.ID, raw).UID
		}
		check := func(phase string) {
			for name, raw := range msgs {
				m := f.fetchOne(a.ID, inbox.ID, uids[name], mailstore.FetchIDs|mailstore.FetchSize)
				if m.Size != int64(len(raw)) || m.BlobID != blobID(raw) {
					t.Errorf("%s %s: size %d blob %s; want %d, %s", phase, name, m.Size, m.BlobID, len(raw), blobID(raw))
				}
				got, err := f.S().ReadBlob(f.ctx, m.BlobID)
				if err != nil || !bytes.Equal(got, raw) {
					t.Errorf("%s %s: ReadBlob differs (len %d vs %d), %v", phase, name, len(got), len(raw), err)
				}
			}
		}
		check("fresh")
		f.reopen()
		check("after restart")
		// The delivery path keeps bytes too.
		raw := msgs["binary-nul"]
		res, err := f.S().Deliver(f.ctx, mailstore.Delivery{Raw: append([]byte(nil), raw...), Recipients: []mailstore.DeliveryTarget{{AccountID: a.ID}}})
		if err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		m := f.fetchOne(a.ID, inbox.ID, res[0].UID, mailstore.FetchIDs)
		if got, err := f.S().ReadBlob(f.ctx, m.BlobID); err != nil || !bytes.Equal(got, raw) {
			t.Errorf("delivered message not byte-exact: %v", err)
		}
		if _, err := f.S().ReadBlob(f.ctx, blobID([]byte("never stored"))); err == nil {
			t.Errorf("ReadBlob of an unknown blob succeeded")
		}
	})

	t.Run("FetchFields", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		idate := time.Date(2024, 2, 29, 13, 14, 15, 0, time.FixedZone("", -5*3600))
		raw := []byte("From: \"Ann Example\" <ann@example.org>\r\nTo: bob@example.test, carol@example.test\r\n" +
			"Cc: dave@example.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= and fetch\r\nDate: Thu, 29 Feb 2024 10:00:00 +0100\r\n" +
			"Message-ID: <fetch-fields@example.org>\r\nIn-Reply-To: <parent@example.org>\r\nReferences: <root@example.org> <parent@example.org>\r\n" +
			"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
			"Hello there, this is the preview text.\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQ=\r\n--XX--\r\n")
		before := time.Now().Add(-time.Second)
		res, err := f.S().Append(f.ctx, a.ID, []mailstore.AppendRequest{{MailboxID: inbox.ID, Raw: raw, InternalDate: idate, Flags: []string{"$Forwarded", `\seen`}}})
		if err != nil {
			t.Fatal(err)
		}
		u := res[0].UID
		p := mailstore.Prepare(raw)
		m := f.fetchOne(a.ID, inbox.ID, u, mailstore.FetchAll)
		if !m.InternalDate.Equal(idate) {
			t.Errorf("InternalDate %v, want %v", m.InternalDate, idate)
		}
		if m.Size != int64(len(raw)) || m.BlobID != p.BlobID || m.EmailID != p.EmailID || m.ThreadID != p.ThreadID {
			t.Errorf("Size/BlobID/EmailID/ThreadID = %d %s %s %s; want %d %s %s %s", m.Size, m.BlobID, m.EmailID, m.ThreadID, len(raw), p.BlobID, p.EmailID, p.ThreadID)
		}
		if m.SaveDate.Before(before) || m.SaveDate.After(time.Now().Add(time.Second)) {
			t.Errorf("SaveDate %v not the time of the append", m.SaveDate)
		}
		if !slices.Equal(m.Flags, []string{"$Forwarded", mailstore.FlagSeen}) || m.ModSeq != res[0].ModSeq || m.MailboxID != inbox.ID {
			t.Errorf("Flags %v ModSeq %d MailboxID %d", m.Flags, m.ModSeq, m.MailboxID)
		}
		// The stored facts are the parser's, unchanged by the trip through
		// the store. JSON compares them modulo nil-versus-empty.
		if js(m.Envelope) != js(&p.Parsed.Envelope) {
			t.Errorf("Envelope\n got %s\nwant %s", js(m.Envelope), js(&p.Parsed.Envelope))
		}
		if js(m.Body) != js(p.Parsed.Body) {
			t.Errorf("Body\n got %s\nwant %s", js(m.Body), js(p.Parsed.Body))
		}
		if m.Preview != p.Parsed.Preview {
			t.Errorf("Preview %q, want %q", m.Preview, p.Parsed.Preview)
		}
		// Only UID, ModSeq and Flags when nothing else is asked.
		m0 := f.fetchOne(a.ID, inbox.ID, u, 0)
		if m0.UID != u || m0.ModSeq == 0 || len(m0.Flags) != 2 {
			t.Errorf("Fetch(0) = %+v", m0)
		}
		if f.fetchOne(a.ID, inbox.ID, u, mailstore.FetchEnvelope).Envelope == nil {
			t.Errorf("FetchEnvelope alone gave no envelope")
		}
		if f.fetchOne(a.ID, inbox.ID, u, mailstore.FetchBody).Body == nil {
			t.Errorf("FetchBody alone gave no body structure")
		}
		// Fetch stops at fn's error and returns it.
		stop := errors.New("stop here")
		f.appendMsg(a.ID, inbox.ID, simpleMsg("second"))
		calls := 0
		err = f.S().Fetch(f.ctx, a.ID, inbox.ID, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}, 0, 0, func(*mailstore.Message) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("Fetch with a failing fn: %d calls, %v", calls, err)
		}
	})

	t.Run("FetchSets", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		u := f.appendN(a.ID, inbox.ID, "sets", 6)
		f.expunge(a.ID, inbox.ID, u[2])
		list := func(set mailstore.UIDSet) []mailstore.UID {
			var out []mailstore.UID
			for _, m := range f.fetch(a.ID, inbox.ID, set, 0) {
				out = append(out, m.UID)
			}
			return out
		}
		cases := []struct {
			set  mailstore.UIDSet
			want []mailstore.UID
		}{
			{mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}, []mailstore.UID{u[0], u[1], u[3], u[4], u[5]}},
			{mailstore.UIDSet{{Lo: u[4], Hi: mailstore.MaxUID}}, []mailstore.UID{u[4], u[5]}},
			{mailstore.UIDSet{{Lo: u[1], Hi: u[3]}}, []mailstore.UID{u[1], u[3]}},
			{mailstore.UIDSet{{Lo: u[5], Hi: u[5]}, {Lo: u[0], Hi: u[0]}}, []mailstore.UID{u[0], u[5]}},
			{mailstore.UIDSetOf(u[2]), nil},
			{mailstore.UIDSetOf(u[5] + 100), nil},
		}
		for _, c := range cases {
			if got := list(c.set); !slices.Equal(got, c.want) {
				t.Errorf("Fetch %s = %v, want %v", c.set, got, c.want)
			}
		}
	})

	t.Run("CopySharesBlob", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		arch := f.mailbox(a.ID, "Archive")
		raw := simpleMsg("shared-blob")
		u := f.appendMsg(a.ID, inbox.ID, raw, mailstore.FlagFlagged, "$Tag").UID
		cr, err := s.Copy(ctx, a.ID, inbox.ID, mailstore.UIDSetOf(u, u+50), arch.ID)
		if err != nil {
			t.Fatalf("Copy: %v", err)
		}
		if !slices.Equal(cr.SrcUIDs, []mailstore.UID{u}) || len(cr.DstUIDs) != 1 || cr.UIDValidity != arch.UIDValidity {
			t.Fatalf("Copy result %+v; want src [%d], one dst, UIDVALIDITY %d", cr, u, arch.UIDValidity)
		}
		c := f.fetchOne(a.ID, arch.ID, cr.DstUIDs[0], mailstore.FetchIDs|mailstore.FetchSize)
		if c.BlobID != blobID(raw) || c.Size != int64(len(raw)) || !slices.Equal(c.Flags, []string{"$Tag", mailstore.FlagFlagged}) {
			t.Errorf("copy = %+v; want the same blob and flags", c)
		}
		// The blob lives while any row (or retained deleted message)
		// needs it, and goes with the last reference.
		f.expunge(a.ID, inbox.ID, u)
		future := time.Now().Add(time.Hour)
		if _, err := s.Purge(ctx, future, future); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		if got, err := s.ReadBlob(ctx, blobID(raw)); err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("blob gone while its copy remains: %v", err)
		}
		f.expunge(a.ID, arch.ID, cr.DstUIDs[0])
		if got, err := s.ReadBlob(ctx, blobID(raw)); err != nil || !bytes.Equal(got, raw) {
			t.Errorf("blob of a retained deleted message unreadable before Purge: %v", err)
		}
		if _, err := s.Purge(ctx, future, future); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		if _, err := s.ReadBlob(ctx, blobID(raw)); err == nil {
			t.Errorf("blob still readable after its last reference was purged")
		}
		// The same bytes arriving twice are two messages over one blob.
		r1 := f.appendMsg(a.ID, inbox.ID, raw)
		r2 := f.appendMsg(a.ID, inbox.ID, raw)
		if r1.UID == r2.UID {
			t.Fatalf("identical appends share a UID")
		}
		f.expunge(a.ID, inbox.ID, r1.UID)
		if _, err := s.Purge(ctx, future, future); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ReadBlob(ctx, blobID(raw)); err != nil || !bytes.Equal(got, raw) {
			t.Errorf("blob of the second identical message lost: %v", err)
		}
	})

	t.Run("SentDedup", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		sent, err := s.MailboxBySpecialUse(ctx, a.ID, mailstore.SpecialSent)
		if err != nil {
			t.Fatal(err)
		}
		inbox := f.mailbox(a.ID, "INBOX")
		raw := msgSpec{Subject: "sent once", MessageID: "dedup-1@example.test"}.bytes()
		// The submission path files the message into Sent; a client then
		// APPENDs its own copy (other bytes, same Message-ID).
		clientCopy := msgSpec{Subject: "sent once", MessageID: "dedup-1@example.test", Extra: []string{"X-Mailer: client"}}.bytes()
		r1 := f.appendMsg(a.ID, sent.ID, raw)
		if r1.Existing {
			t.Errorf("first append reported Existing")
		}
		before := f.modseq(a.ID)
		r2 := f.appendMsg(a.ID, sent.ID, clientCopy)
		if !r2.Existing || r2.UID != r1.UID || r2.UIDValidity != sent.UIDValidity || r2.MailboxID != sent.ID {
			t.Errorf("second append into Sent = %+v; want Existing with UID %d", r2, r1.UID)
		}
		if n := f.status(a.ID, sent.ID).Messages; n != 1 {
			t.Errorf("Sent holds %d messages, want 1", n)
		}
		if f.modseq(a.ID) != before {
			t.Errorf("a de-duplicated append raised the modseq")
		}
		// Other mailboxes keep every copy.
		i1 := f.appendMsg(a.ID, inbox.ID, raw)
		i2 := f.appendMsg(a.ID, inbox.ID, raw)
		if i1.Existing || i2.Existing || i1.UID == i2.UID || f.status(a.ID, inbox.ID).Messages != 2 {
			t.Errorf("INBOX de-duplicated: %+v %+v", i1, i2)
		}
		// Messages without a Message-ID are never merged.
		noID := msgSpec{Subject: "no id"}.bytes()
		n1 := f.appendMsg(a.ID, sent.ID, noID)
		n2 := f.appendMsg(a.ID, sent.ID, noID)
		if n1.Existing || n2.Existing || n1.UID == n2.UID {
			t.Errorf("messages without Message-ID merged: %+v %+v", n1, n2)
		}
		// Once expunged, the Message-ID is no longer "already there".
		f.expunge(a.ID, sent.ID, r1.UID)
		r3 := f.appendMsg(a.ID, sent.ID, raw)
		if r3.Existing || r3.UID <= r1.UID {
			t.Errorf("append after expunge = %+v; want a new message", r3)
		}
	})

	t.Run("DeliverAtomic", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		bob := f.account("bob@example.test")
		carol := f.account("carol@example.test")
		cbox := f.create(carol.ID, "Lists")
		raw := simpleMsg("to-three")
		res, err := s.Deliver(ctx, mailstore.Delivery{Raw: raw, Recipients: []mailstore.DeliveryTarget{
			{AccountID: a.ID},
			{AccountID: bob.ID, Flags: []string{"$Junk"}},
			{AccountID: carol.ID, MailboxID: cbox.ID},
		}})
		if err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		wantBox := []int64{f.mailbox(a.ID, "INBOX").ID, f.mailbox(bob.ID, "INBOX").ID, cbox.ID}
		if len(res) != 3 {
			t.Fatalf("Deliver to 3 gave %d results", len(res))
		}
		accts := []int64{a.ID, bob.ID, carol.ID}
		for i, r := range res {
			if r.MailboxID != wantBox[i] {
				t.Errorf("result %d in mailbox %d, want %d", i, r.MailboxID, wantBox[i])
				continue
			}
			m := f.fetchOne(accts[i], r.MailboxID, r.UID, mailstore.FetchIDs)
			if m.BlobID != blobID(raw) {
				t.Errorf("recipient %d got another message", i)
			}
			if i == 1 && !slices.Equal(m.Flags, []string{"$Junk"}) {
				t.Errorf("per-recipient flags: %v", m.Flags)
			}
			if r.ModSeq != f.modseq(accts[i]) {
				t.Errorf("recipient %d: result modseq %d, account at %d", i, r.ModSeq, f.modseq(accts[i]))
			}
		}
		// One recipient over quota fails them all.
		if err := s.SetQuota(ctx, "bob@example.test", 0, 1); err != nil {
			t.Fatal(err)
		}
		ms := []mailstore.ModSeq{f.modseq(a.ID), f.modseq(bob.ID), f.modseq(carol.ID)}
		raw2 := simpleMsg("refused")
		_, err = s.Deliver(ctx, mailstore.Delivery{Raw: raw2, Recipients: []mailstore.DeliveryTarget{
			{AccountID: a.ID}, {AccountID: bob.ID}, {AccountID: carol.ID, MailboxID: cbox.ID},
		}})
		expectErr(t, "Deliver with one recipient over quota", err, mailstore.ErrOverQuota)
		for i, id := range accts {
			if got := f.modseq(id); got != ms[i] {
				t.Errorf("refused delivery changed recipient %d's modseq", i)
			}
		}
		if n := f.status(a.ID, wantBox[0]).Messages; n != 1 {
			t.Errorf("alice has %d messages after the refused delivery, want 1", n)
		}
		if n := f.status(carol.ID, cbox.ID).Messages; n != 1 {
			t.Errorf("carol has %d messages after the refused delivery, want 1", n)
		}
		if _, err := s.ReadBlob(ctx, blobID(raw2)); err == nil {
			// A leftover blob is no visible message, but Purge must then
			// collect it.
			future := time.Now().Add(time.Hour)
			if _, err := s.Purge(ctx, future, future); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ReadBlob(ctx, blobID(raw2)); err == nil {
				t.Errorf("blob of a refused delivery survives Purge")
			}
		}
	})
}

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

func testStatus(t *testing.T, b Backend) {
	t.Run("Counts", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		a := f.account("alice@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		raws := [][]byte{simpleMsg("st-1"), simpleMsg("st-2"), simpleMsg("st-3")}
		before := time.Now().Add(-time.Second).Truncate(time.Second)
		u := []mailstore.UID{
			f.appendMsg(a.ID, inbox.ID, raws[0], mailstore.FlagSeen).UID,
			f.appendMsg(a.ID, inbox.ID, raws[1], mailstore.FlagDeleted).UID,
			f.appendMsg(a.ID, inbox.ID, raws[2]).UID,
		}
		after := time.Now().Add(time.Second)
		size := int64(len(raws[0]) + len(raws[1]) + len(raws[2]))
		st := f.status(a.ID, inbox.ID)
		if st.Messages != 3 || st.Unseen != 2 || st.Deleted != 1 || st.Size != size || st.ID != inbox.ID || st.Name != "INBOX" || st.UIDNext <= u[2] {
			t.Errorf("Status = %+v; want 3 messages, 2 unseen, 1 deleted, %d bytes", st, size)
		}
		// InternalDate defaults to the time of the append.
		if d := f.fetchOne(a.ID, inbox.ID, u[2], mailstore.FetchInternalDate).InternalDate; d.Before(before) || d.After(after) {
			t.Errorf("default InternalDate %v not between %v and %v", d, before, after)
		}
		f.storeFlags(a.ID, inbox.ID, mailstore.FlagsAdd, []string{mailstore.FlagSeen}, u[1], u[2])
		f.storeFlags(a.ID, inbox.ID, mailstore.FlagsReplace, nil, u[1])
		st = f.status(a.ID, inbox.ID)
		if st.Unseen != 1 || st.Deleted != 0 {
			t.Errorf("after STOREs: unseen %d deleted %d; want 1 and 0", st.Unseen, st.Deleted)
		}
		f.expunge(a.ID, inbox.ID, u[0])
		st = f.status(a.ID, inbox.ID)
		if st.Messages != 2 || st.Size != size-int64(len(raws[0])) {
			t.Errorf("after EXPUNGE: %d messages, %d bytes", st.Messages, st.Size)
		}
	})

	t.Run("CopyMovePairs", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		src := f.create(a.ID, "Src")
		dst := f.create(a.ID, "Dst")
		u := f.appendN(a.ID, src.ID, "pair", 5)
		blobOf := map[mailstore.UID]string{}
		for _, m := range f.fetch(a.ID, src.ID, mailstore.UIDSetOf(u...), mailstore.FetchIDs) {
			blobOf[m.UID] = m.BlobID
		}
		check := func(what string, r mailstore.CopyResult, wantSrc []mailstore.UID) {
			t.Helper()
			// RFC 4315 COPYUID: source and destination UIDs pair up in
			// order.
			if !slices.Equal(r.SrcUIDs, wantSrc) || len(r.DstUIDs) != len(wantSrc) || !slices.IsSorted(r.DstUIDs) || r.UIDValidity != dst.UIDValidity {
				t.Fatalf("%s = %+v; want sources %v", what, r, wantSrc)
			}
			for i, d := range r.DstUIDs {
				if m := f.fetchOne(a.ID, dst.ID, d, mailstore.FetchIDs); m.BlobID != blobOf[r.SrcUIDs[i]] {
					t.Errorf("%s: destination UID %d does not hold source UID %d", what, d, r.SrcUIDs[i])
				}
			}
		}
		cr, err := s.Copy(ctx, a.ID, src.ID, mailstore.UIDSet{{Lo: u[1], Hi: u[3]}}, dst.ID)
		if err != nil {
			t.Fatal(err)
		}
		check("Copy", cr, u[1:4])
		mr, err := s.Move(ctx, a.ID, src.ID, mailstore.UIDSetOf(u[4], u[0]), dst.ID)
		if err != nil {
			t.Fatal(err)
		}
		check("Move", mr, []mailstore.UID{u[0], u[4]})
		if got := f.uids(a.ID, src.ID); !slices.Equal(got, u[1:4]) {
			t.Errorf("source after Move = %v, want %v", got, u[1:4])
		}
		_, err = s.Copy(ctx, a.ID, src.ID, mailstore.UIDSetOf(u[1]), src.ID+100000)
		expectErr(t, "Copy into an unknown mailbox", err, mailstore.ErrNoSuchMailbox)
	})

	// RFC 9051 section 6.4.3, RFC 4315: EXPUNGE removes the messages that
	// have \Deleted when it runs, within the set the session knows.
	t.Run("ExpungeDeleted", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		box := f.create(a.ID, "Del")
		u := f.appendN(a.ID, box.ID, "del", 6)
		f.storeFlags(a.ID, box.ID, mailstore.FlagsAdd, []string{mailstore.FlagDeleted}, u[1], u[2], u[4])
		// Another session takes \Deleted away from u[2] before the
		// expunge: it stays.
		f.storeFlags(a.ID, box.ID, mailstore.FlagsRemove, []string{mailstore.FlagDeleted}, u[2])
		before := f.modseq(a.ID)
		// u[4] has \Deleted but is outside the set: it stays too.
		gone, ms, err := s.ExpungeDeleted(ctx, a.ID, box.ID, mailstore.UIDSet{{Lo: u[0], Hi: u[3]}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gone, []mailstore.UID{u[1]}) || ms <= before {
			t.Fatalf("ExpungeDeleted = %v at modseq %d (was %d); want [%d] at a higher one", gone, ms, before, u[1])
		}
		if got, want := f.uids(a.ID, box.ID), []mailstore.UID{u[0], u[2], u[3], u[4], u[5]}; !slices.Equal(got, want) {
			t.Fatalf("left %v, want %v", got, want)
		}
		// Nothing with \Deleted in the set: nothing removed, no modseq.
		if gone, ms, err := s.ExpungeDeleted(ctx, a.ID, box.ID, mailstore.UIDSetOf(u[0], u[5])); err != nil || len(gone) != 0 || ms != 0 {
			t.Fatalf("ExpungeDeleted of undeleted messages = %v, %d, %v; want none", gone, ms, err)
		}
		_, _, err = s.ExpungeDeleted(ctx, a.ID, box.ID+100000, mailstore.UIDSetOf(u[0]))
		expectErr(t, "ExpungeDeleted in an unknown mailbox", err, mailstore.ErrNoSuchMailbox)
	})

	t.Run("Closed", func(t *testing.T) {
		t.Parallel()
		st, err := b.Open(b.Fresh(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		_, err = st.ListDomains(context.Background())
		expectErr(t, "ListDomains after Close", err, mailstore.ErrClosed)
		err = st.AddDomain(context.Background(), "late.test")
		expectErr(t, "AddDomain after Close", err, mailstore.ErrClosed)
	})
}
