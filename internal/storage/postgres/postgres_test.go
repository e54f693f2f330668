package postgres

import (
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
)

func TestParsePayload(t *testing.T) {
	for _, c := range []struct {
		in   string
		acct int64
		ms   mailstore.ModSeq
		ok   bool
	}{
		{"12:345", 12, 345, true},
		{"1:18446744073709551615", 1, 18446744073709551615, true},
		{"", 0, 0, false},
		{"12", 0, 0, false},
		{"12:", 0, 0, false},
		{":5", 0, 0, false},
		{"a:5", 0, 0, false},
		{"5:-1", 0, 0, false},
		{"1:2:3", 0, 0, false},
	} {
		acct, ms, ok := parsePayload(c.in)
		if ok != c.ok || (ok && (acct != c.acct || ms != c.ms)) {
			t.Errorf("parsePayload(%q) = %d, %d, %v; want %d, %d, %v", c.in, acct, ms, ok, c.acct, c.ms, c.ok)
		}
	}
}

// FuzzParsePayload: notification payloads come from any client of the
// database that may NOTIFY the channel; a bad one must be refused, never
// panic, and a good one must round-trip.
func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{"1:1", "42:9001", "", ":", "x:y", "9223372036854775807:18446744073709551615", "-1:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		acct, ms, ok := parsePayload(s)
		if !ok {
			return
		}
		a2, m2, ok2 := parsePayload(formatPayload(acct, ms))
		if !ok2 || a2 != acct || m2 != ms {
			t.Fatalf("%q parsed to %d:%d, which does not round-trip", s, acct, ms)
		}
	})
}

func TestLikePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      "plain",
		"50%":        `50\%`,
		"a_b":        `a\_b`,
		`back\slash`: `back\\slash`,
	} {
		if got := likePrefix(in); got != want {
			t.Errorf("likePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClean(t *testing.T) {
	if got := clean("a\x00b\xffc"); got != "ab\uFFFDc" {
		t.Errorf("clean = %q", got)
	}
	if got := cleanFlags([]string{`\seen`, "bad\x00kw", "ok", "sp ace"}); len(got) != 2 || got[0] != `\Seen` || got[1] != "ok" {
		t.Errorf("cleanFlags = %q", got)
	}
}
