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
		// Trigrams across punctuation or at a word's edge are not
		// indexed; those joining two words with one space are.
		{"e q", "ez20q"},
		{"e  q", ""},
		{"a, b", ""},
		{`a"b`, ""},
		{"c++", ""},
		{"say \"hi\"", "say"},
		{"Review meeting", "rev AND evi AND vie AND iew AND wz20m AND mee AND eet AND eti AND tin AND ing"},
		{"zoo", "z7aoo"},
		{"GRÜß", "grzc3zbc AND rzc3zbczc3z9f"},
		{"x\u0301yz", "xzccz81y AND zccz81yz7a"},
	} {
		if got := termsQuery(c.in); got != c.want {
			t.Errorf("termsQuery(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	long := "the quick brown fox jumps over the lazy dog, then sleeps and dreams of endless summer afternoons"
	if n := len(strings.Split(termsQuery(long), " AND ")); n != maxTrigrams {
		t.Errorf("a long needle has %d terms, want %d", n, maxTrigrams)
	}
}

func TestEntryTerms(t *testing.T) {
	got := entryTerms("Subject: Hi", "hi hi hi, bye")
	want := "sub ubj bje jec ect iz20h bye "
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
// So does an entry indexed before trigrams across word boundaries were
// left out (allTrigramTerms), which is why such an index needs no
// rebuilding. Every term is also one token of the ascii tokenizer,
// unchanged by it.
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
		before := allTrigramTerms(header, body)
		for _, hay := range []string{header, body} {
			if i < 0 || j < i || j > len(hay) {
				continue
			}
			for _, needle := range []string{hay[i:j], strings.ToUpper(hay[i:j]), strings.ToLower(hay[i:j])} {
				if utf8.RuneCountInString(needle) < 3 || !containsFold(hay, needle) {
					continue
				}
				q := termsQuery(needle)
				if q == "" {
					continue // searched without the index
				}
				for _, term := range strings.Split(q, " AND ") {
					if !terms[term] {
						t.Fatalf("needle %q found in %q, but its term %q is not indexed", needle, hay, term)
					}
					if !before[term] {
						t.Fatalf("needle %q found in %q, but its term %q is not in an index made with every trigram", needle, hay, term)
					}
				}
			}
		}
	})
}

// allTrigramTerms is the terms of an entry as they were indexed before
// trigrams across word boundaries were left out: every distinct trigram
// of the header and of the body (each apart), folded.
func allTrigramTerms(header, body string) map[string]bool {
	out := map[string]bool{}
	for _, part := range []string{header, body} {
		var w [3]rune
		n := 0
		for _, c := range part {
			w[0], w[1], w[2] = w[1], w[2], foldRune(c)
			if n++; n >= 3 {
				out[string(appendTerm(nil, w))] = true
			}
		}
	}
	return out
}
