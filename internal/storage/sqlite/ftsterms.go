package sqlite

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// The full-text index's terms are made here, not by an FTS5 tokenizer.
// An entry's terms are the distinct trigrams (three characters, case
// folded) of its header and body that indexedTrigram keeps, each written
// as one token of FTS5's ascii tokenizer; the index table keeps no
// positions (detail=none), so each distinct trigram is all it needs.
// FTS5's own trigram tokenizer handed every trigram of a text to the
// index, about 10,000 for 10 KB of mail of which 2,000-2,500 are
// distinct, and that cost more than the rest of a delivery together.
// Folding is unicode.ToLower, the folding of the substring test search
// applies afterwards (containsFold), so a needle found by that test always
// has all its terms in the entry.
//
// Trigrams across punctuation or at a word's edge ("y, ", "e. ", "ng ")
// are left out: only those of three word characters (letters, digits,
// combining marks: wordRune), or of two with one space between them ("w
// m"), are indexed. The rest were 45% of the distinct trigrams of 10 KB
// of real text (Debian's /usr/share/doc: 2,408 distinct, 1,093 of word
// characters, 238 across one space), and indexing costs by distinct
// trigrams. A needle keeps its words' trigrams and those joining two
// words, which is what makes a phrase of common words selective ("w m"
// in "review meeting"); the substring test decides the rest. A needle
// with none of these ("a, b", "c++") is tested on the stored text
// directly, as a short one is. Entries indexed before this hold every
// trigram, a superset of what a query asks for, so an index made then
// answers the same and needs no rebuilding.

// termSet collects the distinct trigrams of one entry. ASCII trigrams
// (nearly all of them in most mail) are kept in a bitmap, 7 bits per
// character; others in a map.
type termSet struct {
	bits  []uint64
	ascii []uint32 // the bits set, to clear them afterwards
	wide  map[[3]rune]struct{}
}

var termSets = sync.Pool{New: func() any {
	return &termSet{bits: make([]uint64, 1<<21/64), wide: map[[3]rune]struct{}{}}
}}

// entryTerms is the terms column of an entry with this header and body.
func entryTerms(header, body string) string {
	ts := termSets.Get().(*termSet)
	defer termSets.Put(ts)
	out := make([]byte, 0, 4*1024)
	out = ts.add(out, header)
	out = ts.add(out, body)
	ts.reset()
	return string(out)
}

// add appends the trigrams of text not in the set yet to dst, each as a
// token followed by a space.
func (ts *termSet) add(dst []byte, text string) []byte {
	var w [3]rune
	n := 0
	for _, c := range text {
		w[0], w[1], w[2] = w[1], w[2], foldRune(c)
		if n++; n < 3 {
			continue
		}
		if w[0]|w[1]|w[2] < utf8.RuneSelf {
			// indexedTrigram, written out: calling it here made the
			// terms of 10 KB cost 180 us instead of 100 (not inlined).
			if !asciiWord[w[0]] || !asciiWord[w[2]] || !asciiWord[w[1]] && w[1] != ' ' {
				continue
			}
			k := uint32(w[0])<<14 | uint32(w[1])<<7 | uint32(w[2])
			if ts.bits[k>>6]&(1<<(k&63)) != 0 {
				continue
			}
			ts.bits[k>>6] |= 1 << (k & 63)
			ts.ascii = append(ts.ascii, k)
			// appendTerm, by table: encoding was most of the cost.
			dst = append(dst, asciiTerm[w[0]]...)
			dst = append(dst, asciiTerm[w[1]]...)
			dst = append(dst, asciiTerm[w[2]]...)
			dst = append(dst, ' ')
			continue
		}
		if !indexedTrigram(w) {
			continue
		}
		if _, ok := ts.wide[w]; ok {
			continue
		}
		ts.wide[w] = struct{}{}
		dst = appendTerm(dst, w)
		dst = append(dst, ' ')
	}
	return dst
}

// asciiWord tells the ASCII word characters once folded: a-z and 0-9.
var asciiWord = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
	}
	return t
}()

// indexedTrigram tells a trigram (folded) the index holds: three word
// characters, or two with one space between them.
func indexedTrigram(w [3]rune) bool {
	return wordRune(w[0]) && wordRune(w[2]) && (wordRune(w[1]) || w[1] == ' ')
}

// wordRune tells a folded word character: a letter, a digit or a
// combining mark.
func wordRune(c rune) bool {
	if c < utf8.RuneSelf {
		return asciiWord[c]
	}
	return unicode.IsLetter(c) || unicode.IsDigit(c) || unicode.IsMark(c)
}

// asciiTerm is appendTerm's encoding of each ASCII character.
var asciiTerm = func() (t [utf8.RuneSelf]string) {
	for c := range t {
		t[c] = string(appendTermByte(nil, byte(c)))
	}
	return t
}()

func (ts *termSet) reset() {
	for _, k := range ts.ascii {
		ts.bits[k>>6] = 0
	}
	ts.ascii = ts.ascii[:0]
	clear(ts.wide)
}

// foldRune folds as strings.ToLower does, rune by rune.
func foldRune(c rune) rune {
	if c < utf8.RuneSelf {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		return c
	}
	return unicode.ToLower(c)
}

// appendTerm writes a trigram as a token the ascii tokenizer keeps whole
// and does not change: the UTF-8 bytes a-y and 0-9 as they are, any other
// byte as 'z' and two lowercase hex digits (so z itself is "z7a"). The
// mapping is one-to-one, so distinct trigrams are distinct tokens.
func appendTerm(dst []byte, w [3]rune) []byte {
	var buf [utf8.UTFMax]byte
	for _, c := range w {
		for _, x := range buf[:utf8.EncodeRune(buf[:], c)] {
			dst = appendTermByte(dst, x)
		}
	}
	return dst
}

func appendTermByte(dst []byte, x byte) []byte {
	const hex = "0123456789abcdef"
	if ('a' <= x && x <= 'y') || ('0' <= x && x <= '9') {
		return append(dst, x)
	}
	return append(dst, 'z', hex[x>>4], hex[x&15])
}

// termsQuery is the FTS5 query for the entries holding every indexed
// trigram of value (indexedTrigram), overlapping; each is necessary, and
// the substring test that follows decides. It is "" when value has none:
// the index cannot narrow that search. A long needle is cut to its first
// maxTrigrams distinct trigrams.
func termsQuery(value string) string {
	var w [3]rune
	seen := map[[3]rune]bool{}
	var terms []string
	n := 0
	for _, c := range value {
		w[0], w[1], w[2] = w[1], w[2], foldRune(c)
		if n++; n < 3 || seen[w] || !indexedTrigram(w) {
			continue
		}
		seen[w] = true
		terms = append(terms, string(appendTerm(nil, w)))
		if len(terms) == maxTrigrams {
			break
		}
	}
	return strings.Join(terms, " AND ")
}

// maxTrigrams bounds the terms of one index query.
const maxTrigrams = 32
