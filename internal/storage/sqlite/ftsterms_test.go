package sqlite

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTermsQuery(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"ab", ""},
		{"abc", "abc"},
		{"ABCD", "abc AND bcd"},
		{"abcabc", "abc AND bca AND cab"},
		{"e q", "ez20q"},
		{"zoo", "z7aoo"},
		{`a"b`, "az22b"},
		{"GRÜß", "grzc3zbc AND rzc3zbczc3z9f"},
	} {
		if got := termsQuery(c.in); got != c.want {
			t.Errorf("termsQuery(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	long := "the quick brown fox jumps over the lazy dog, then sleeps"
	if n := len(strings.Split(termsQuery(long), " AND ")); n != maxTrigrams {
		t.Errorf("a long needle has %d terms, want %d", n, maxTrigrams)
	}
}

func TestEntryTerms(t *testing.T) {
	got := entryTerms("Subject: Hi", "hi hi hi")
	want := "sub ubj bje jec ect ctz3a tz3az20 z3az20h z20hi hiz20 iz20h "
	if got != want {
		t.Errorf("entryTerms = %q, want %q", got, want)
	}
	// The set is emptied between entries.
	if got := entryTerms("", "abc"); got != "abc " {
		t.Errorf("second entry = %q, want %q", got, "abc ")
	}
}

// FuzzTermsCoverNeedle: whenever the substring test search applies
// (containsFold) finds a needle in a text, the index holds every term the
// query for that needle asks for; otherwise the index would hide a match.
// Every term is also one token of the ascii tokenizer, unchanged by it.
func FuzzTermsCoverNeedle(f *testing.F) {
	f.Add("Subject: Quarterly budget\r\n", "the quarterly budget meeting, Grüße", 4, 17)
	f.Add("", "ſtraße KELVIN \u212a", 0, 8)
	f.Add("h", "\xff\xfeabc\x80", 0, 6)
	f.Add("", "ZZZ zzz", 1, 6)
	f.Fuzz(func(t *testing.T, header, body string, i, j int) {
		terms := map[string]bool{}
		for _, tok := range strings.Fields(entryTerms(header, body)) {
			for k := 0; k < len(tok); k++ {
				if c := tok[k]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
					t.Fatalf("term %q has byte %q", tok, c)
				}
			}
			terms[tok] = true
		}
		for _, hay := range []string{header, body} {
			if i < 0 || j < i || j > len(hay) {
				continue
			}
			for _, needle := range []string{hay[i:j], strings.ToUpper(hay[i:j]), strings.ToLower(hay[i:j])} {
				if utf8.RuneCountInString(needle) < 3 || !containsFold(hay, needle) {
					continue
				}
				for _, term := range strings.Split(termsQuery(needle), " AND ") {
					if !terms[term] {
						t.Fatalf("needle %q found in %q, but its term %q is not indexed", needle, hay, term)
					}
				}
			}
		}
	})
}
