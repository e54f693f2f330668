package sqlite

import (
	"context"
	"slices"
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
)

func TestFlagsRoundTrip(t *testing.T) {
	for _, in := range [][]string{
		nil,
		{`\seen`, `\ANSWERED`, `\Draft`, `\Flagged`, `\Deleted`},
		{"$Junk", `\Seen`, "NonJunk", "$label1", "nonjunk"},
		{`\Recent`, `\Bogus`, "ok"},
	} {
		bits, kws := encodeFlags(in)
		got := decodeFlags(bits, kws)
		want := mailstore.NormalizeFlags(in)
		want = slices.DeleteFunc(want, func(f string) bool { return f == `\Bogus` })
		if !slices.Equal(got, want) {
			t.Errorf("flags %v: round trip %v, want %v", in, got, want)
		}
	}
}

// TestStoreNoChangeSkipsWriter: a STORE that changes nothing is answered
// from a read (fetch.go), with the same result as a write would give, and
// commits nothing; one that changes a flag still goes to the writer.
func TestStoreNoChangeSkipsWriter(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	a := addAccount(t, s, "noop@example.test")
	mb := inbox(t, s, a.ID)
	res, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: mb.ID, Raw: msg("noop", "noop@example.test", "x"), Flags: []string{`\Seen`}}})
	if err != nil {
		t.Fatal(err)
	}
	uid := res[0].UID
	req := mailstore.StoreFlagsRequest{MailboxID: mb.ID, UIDs: mailstore.UIDSetOf(uid), Mode: mailstore.FlagsAdd, Flags: []string{`\Seen`}}
	b0, _ := s.WriteStats()
	got, err := s.StoreFlags(ctx, a.ID, req)
	if err != nil {
		t.Fatal(err)
	}
	if b1, _ := s.WriteStats(); b1 != b0 {
		t.Errorf("a STORE changing nothing committed %d transactions", b1-b0)
	}
	if len(got.Changed) != 0 || len(got.Unchanged) != 1 || got.Unchanged[0].UID != uid || !slices.Equal(got.Unchanged[0].Flags, []string{`\Seen`}) {
		t.Errorf("no-op STORE result = %+v; want the message unchanged with \\Seen", got)
	}
	req.Flags = []string{`\Flagged`}
	got, err = s.StoreFlags(ctx, a.ID, req)
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := s.WriteStats(); b2 != b0+1 {
		t.Errorf("a STORE adding \\Flagged committed %d transactions, want 1", b2-b0)
	}
	if len(got.Changed) != 1 || got.Changed[0].UID != uid || got.ModSeq == 0 {
		t.Errorf("STORE +\\Flagged result = %+v; want the message changed with a modseq", got)
	}
}
