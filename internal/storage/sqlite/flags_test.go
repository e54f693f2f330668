package sqlite

import (
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
