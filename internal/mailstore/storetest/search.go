package storetest

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// testSearch pins every SearchOp (RFC 9051 section 6.4.4, RFC 7162 MODSEQ,
// RFC 8514 SAVEDATE, RFC 5032 OLDER/YOUNGER, RFC 8474 EMAILID/THREADID).
func testSearch(t *testing.T, b Backend) {
	f := newFixture(t, b)
	s, ctx := f.S(), f.ctx
	a := f.account("alice@example.test")
	inbox := f.mailbox(a.ID, "INBOX")
	other := f.create(a.ID, "Other")

	m1 := msgSpec{
		From: "Alice Anders <alice@example.org>", Subject: "Quarterly report Qx", MessageID: "s1@example.org",
		Date: time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC), Extra: []string{"X-Tag: yes"},
		Body: "The Purple Elephant dances.\r\n",
	}.bytes()
	m2 := msgSpec{
		From: "bob@example.net", Subject: "Lunch", MessageID: "s2@example.net",
		Date: time.Date(2024, 3, 12, 12, 0, 0, 0, time.UTC),
		Body: "Grüße aus Köln. code ZQ here.\r\n" + strings.Repeat("filler text line\r\n", 200),
	}.bytes()
	// Sent late on the 10th in its own zone: the 11th in UTC.
	m3 := []byte("From: carol@example.com\r\nTo: alice@example.test\r\nSubject: SubjectOnlyWord here\r\n" +
		"Message-ID: <s3@example.com>\r\nDate: Sun, 10 Mar 2024 23:30:00 -0800\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte("this hides a decodedneedle inside\r\n")) + "\r\n")
	m4 := msgSpec{Subject: "expunged Purple Elephant", Body: "Purple Elephant\r\n"}.bytes()
	m5 := msgSpec{Subject: "elsewhere Purple Elephant", Body: "Purple Elephant\r\n"}.bytes()

	res, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{
		{MailboxID: inbox.ID, Raw: m1, Flags: []string{mailstore.FlagSeen, "$Important"}, InternalDate: time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)},
		{MailboxID: inbox.ID, Raw: m2, Flags: []string{mailstore.FlagFlagged}, InternalDate: time.Date(2024, 3, 12, 12, 0, 0, 0, time.UTC)},
		{MailboxID: inbox.ID, Raw: m3},
		{MailboxID: inbox.ID, Raw: m4},
		{MailboxID: other.ID, Raw: m5},
	})
	if err != nil {
		t.Fatal(err)
	}
	u1, u2, u3, u4 := res[0].UID, res[1].UID, res[2].UID, res[3].UID
	f.expunge(a.ID, inbox.ID, u4)
	m3mod := f.storeFlags(a.ID, inbox.ID, mailstore.FlagsAdd, []string{"$Later"}, u3).ModSeq
	msgs := f.fetch(a.ID, inbox.ID, mailstore.UIDSetOf(u1, u2, u3), mailstore.FetchIDs|mailstore.FetchSize)
	if len(msgs) != 3 {
		t.Fatalf("fetched %d", len(msgs))
	}
	size := map[mailstore.UID]int64{}
	for _, m := range msgs {
		size[m.UID] = m.Size
	}
	all := []mailstore.UID{u1, u2, u3}
	bySize := func(keep func(int64) bool) []mailstore.UID {
		var out []mailstore.UID
		for _, u := range all {
			if keep(size[u]) {
				out = append(out, u)
			}
		}
		return out
	}
	now := time.Now()

	k := func(op mailstore.SearchOp) *mailstore.SearchKey { return &mailstore.SearchKey{Op: op} }
	flag := func(op mailstore.SearchOp, fl string) *mailstore.SearchKey {
		return &mailstore.SearchKey{Op: op, Flag: fl}
	}
	date := func(op mailstore.SearchOp, d time.Time) *mailstore.SearchKey {
		return &mailstore.SearchKey{Op: op, Date: d}
	}
	hdr := func(name, v string) *mailstore.SearchKey {
		return &mailstore.SearchKey{Op: mailstore.SearchHeader, Name: name, Value: v}
	}
	val := func(op mailstore.SearchOp, v string) *mailstore.SearchKey {
		return &mailstore.SearchKey{Op: op, Value: v}
	}
	and := func(c ...*mailstore.SearchKey) *mailstore.SearchKey {
		return &mailstore.SearchKey{Op: mailstore.SearchAnd, Children: c}
	}
	or := func(c ...*mailstore.SearchKey) *mailstore.SearchKey {
		return &mailstore.SearchKey{Op: mailstore.SearchOr, Children: c}
	}
	not := func(c *mailstore.SearchKey) *mailstore.SearchKey {
		return &mailstore.SearchKey{Op: mailstore.SearchNot, Children: []*mailstore.SearchKey{c}}
	}
	cases := []struct {
		name string
		key  *mailstore.SearchKey
		want []mailstore.UID
	}{
		{"ALL", k(mailstore.SearchAll), all},
		{"UID set", &mailstore.SearchKey{Op: mailstore.SearchUIDs, UIDs: mailstore.UIDSet{{Lo: u2, Hi: mailstore.MaxUID}}}, []mailstore.UID{u2, u3}},
		{"UID set of an expunged UID", &mailstore.SearchKey{Op: mailstore.SearchUIDs, UIDs: mailstore.UIDSetOf(u4)}, nil},
		{`SEEN`, flag(mailstore.SearchFlag, mailstore.FlagSeen), []mailstore.UID{u1}},
		{`\SEEN in upper case`, flag(mailstore.SearchFlag, `\SEEN`), []mailstore.UID{u1}},
		{"keyword, other case", flag(mailstore.SearchFlag, "$important"), []mailstore.UID{u1}},
		{"UNSEEN", flag(mailstore.SearchNoFlag, mailstore.FlagSeen), []mailstore.UID{u2, u3}},
		{"UNKEYWORD", flag(mailstore.SearchNoFlag, "$IMPORTANT"), []mailstore.UID{u2, u3}},
		{"BEFORE", date(mailstore.SearchBefore, day(2024, 3, 11)), []mailstore.UID{u1}},
		{"BEFORE is strict", date(mailstore.SearchBefore, day(2024, 3, 10)), nil},
		{"ON", date(mailstore.SearchOn, day(2024, 3, 12)), []mailstore.UID{u2}},
		{"SINCE", date(mailstore.SearchSince, day(2024, 3, 11)), []mailstore.UID{u2, u3}},
		{"SINCE includes the day", date(mailstore.SearchSince, day(2024, 3, 12)), []mailstore.UID{u2, u3}},
		{"SENTBEFORE", date(mailstore.SearchSentBefore, day(2024, 3, 12)), []mailstore.UID{u1, u3}},
		{"SENTON", date(mailstore.SearchSentOn, day(2024, 3, 12)), []mailstore.UID{u2}},
		{"SENTSINCE", date(mailstore.SearchSentSince, day(2024, 3, 12)), []mailstore.UID{u2}},
		{"LARGER", &mailstore.SearchKey{Op: mailstore.SearchLarger, Size: size[u1]}, bySize(func(n int64) bool { return n > size[u1] })},
		{"SMALLER", &mailstore.SearchKey{Op: mailstore.SearchSmaller, Size: size[u2]}, bySize(func(n int64) bool { return n < size[u2] })},
		{"HEADER Subject, other case", hdr("Subject", "quarterly REPORT"), []mailstore.UID{u1}},
		{"HEADER field name case", hdr("subject", "lunch"), []mailstore.UID{u2}},
		{"HEADER From address", hdr("From", "ALICE@example.ORG"), []mailstore.UID{u1}},
		{"HEADER 2-char needle", hdr("Subject", "qx"), []mailstore.UID{u1}},
		{"HEADER empty value: has the field", hdr("X-Tag", ""), []mailstore.UID{u1}},
		{"HEADER does not search the body", hdr("Subject", "purple"), nil},
		{"BODY", val(mailstore.SearchBody, "purple ELEPHANT"), []mailstore.UID{u1}},
		{"BODY 2-char needle", val(mailstore.SearchBody, "zq"), []mailstore.UID{u2}},
		{"BODY needle of punctuation and spaces", val(mailstore.SearchBody, "N. C"), []mailstore.UID{u2}},
		{"BODY two words, other case", val(mailstore.SearchBody, "ELEPHANT DANCES."), []mailstore.UID{u1}},
		{"BODY two words, one missing", val(mailstore.SearchBody, "elephant sings"), nil},
		{"BODY UTF-8 needle, ASCII case", val(mailstore.SearchBody, "grüße AUS köln"), []mailstore.UID{u2}},
		{"BODY decoded base64", val(mailstore.SearchBody, "DecodedNeedle"), []mailstore.UID{u3}},
		{"BODY does not search headers", val(mailstore.SearchBody, "subjectonlyword"), nil},
		{"TEXT in a header", val(mailstore.SearchText, "subjectonlyword"), []mailstore.UID{u3}},
		{"TEXT in a display name", val(mailstore.SearchText, "anders"), []mailstore.UID{u1}},
		{"TEXT in the body", val(mailstore.SearchText, "PURPLE"), []mailstore.UID{u1}},
		{"TEXT no match", val(mailstore.SearchText, "nowhere-to-be-found"), nil},
		{"MODSEQ", &mailstore.SearchKey{Op: mailstore.SearchModSeq, ModSeq: m3mod}, []mailstore.UID{u3}},
		{"MODSEQ 1", &mailstore.SearchKey{Op: mailstore.SearchModSeq, ModSeq: 1}, all},
		{"SAVEDSINCE yesterday", date(mailstore.SearchSavedSince, now.AddDate(0, 0, -1)), all},
		{"SAVEDBEFORE yesterday", date(mailstore.SearchSavedBefore, now.AddDate(0, 0, -1)), nil},
		{"SAVEDBEFORE tomorrow", date(mailstore.SearchSavedBefore, now.AddDate(0, 0, 1)), all},
		{"SAVEDON last year", date(mailstore.SearchSavedOn, now.AddDate(-1, 0, 0)), nil},
		{"OLDER", &mailstore.SearchKey{Op: mailstore.SearchOlder, Seconds: 3600}, []mailstore.UID{u1, u2}},
		{"YOUNGER", &mailstore.SearchKey{Op: mailstore.SearchYounger, Seconds: 3600}, []mailstore.UID{u3}},
		{"EMAILID", val(mailstore.SearchEmailID, mailstore.Prepare(m2).EmailID), []mailstore.UID{u2}},
		{"THREADID", val(mailstore.SearchThreadID, mailstore.Prepare(m1).ThreadID), []mailstore.UID{u1}},
		{"AND", and(flag(mailstore.SearchFlag, mailstore.FlagSeen), hdr("Subject", "quarterly")), []mailstore.UID{u1}},
		{"AND disjoint", and(flag(mailstore.SearchFlag, mailstore.FlagSeen), flag(mailstore.SearchFlag, mailstore.FlagFlagged)), nil},
		{"OR", or(flag(mailstore.SearchFlag, mailstore.FlagSeen), flag(mailstore.SearchFlag, mailstore.FlagFlagged)), []mailstore.UID{u1, u2}},
		{"OR of three", or(hdr("Subject", "lunch"), val(mailstore.SearchBody, "decodedneedle"), val(mailstore.SearchBody, "purple")), all},
		{"NOT", not(flag(mailstore.SearchFlag, mailstore.FlagSeen)), []mailstore.UID{u2, u3}},
		{"NOT OR", not(or(flag(mailstore.SearchFlag, mailstore.FlagSeen), flag(mailstore.SearchFlag, mailstore.FlagFlagged))), []mailstore.UID{u3}},
		{"NOT of text", not(val(mailstore.SearchText, "purple")), []mailstore.UID{u2, u3}},
		{"nested", and(not(flag(mailstore.SearchFlag, mailstore.FlagDeleted)), or(date(mailstore.SearchOn, day(2024, 3, 10)), &mailstore.SearchKey{Op: mailstore.SearchLarger, Size: size[u2] - 1})), []mailstore.UID{u1, u2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := f.search(a.ID, inbox.ID, c.key)
			if !slices.Equal(got, c.want) {
				t.Errorf("Search %s = %v, want %v (u1..u3 = %d %d %d)", c.name, got, c.want, u1, u2, u3)
			}
		})
	}
	// RFC 9051 section 6.4.4: SENTON compares the Date header's day
	// "disregarding time and timezone", so a message dated late on the
	// 10th at -0800 was sent on the 10th, not on the 11th (UTC).
	t.Run("SENTON in the header's own zone", func(t *testing.T) {
		got := f.search(a.ID, inbox.ID, date(mailstore.SearchSentOn, day(2024, 3, 10)))
		if want := []mailstore.UID{u1, u3}; !slices.Equal(got, want) {
			t.Errorf("SENTON 10-Mar-2024 = %v, want %v", got, want)
		}
	})
	t.Run("other mailbox", func(t *testing.T) {
		got := f.search(a.ID, other.ID, val(mailstore.SearchBody, "purple"))
		if len(got) != 1 {
			t.Errorf("Search in Other = %v, want its one message", got)
		}
	})
	t.Run("many", func(t *testing.T) {
		box := f.create(a.ID, "Many")
		var reqs []mailstore.AppendRequest
		var want []mailstore.UID
		for i := range 60 {
			body := fmt.Sprintf("number %d\r\n", i)
			if i%7 == 0 {
				body += "seventh marker\r\n"
			}
			reqs = append(reqs, mailstore.AppendRequest{MailboxID: box.ID, Raw: msgSpec{Subject: fmt.Sprint(i), Body: body}.bytes()})
		}
		rs, err := s.Append(ctx, a.ID, reqs)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rs {
			if i%7 == 0 {
				want = append(want, r.UID)
			}
		}
		if got := f.search(a.ID, box.ID, val(mailstore.SearchBody, "SEVENTH marker")); !slices.Equal(got, want) {
			t.Errorf("Search over 60 = %v, want %v", got, want)
		}
	})
}
