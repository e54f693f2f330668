package sqlite

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// BenchmarkEntryTerms makes the terms of 10 KB of prose-like text.
func BenchmarkEntryTerms(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	var words []string
	for range 5000 {
		var w strings.Builder
		for range 2 + r.IntN(8) {
			w.WriteByte(byte('a' + r.IntN(26)))
		}
		words = append(words, w.String())
	}
	z := rand.NewZipf(r, 1.07, 2, uint64(len(words)-1))
	var body strings.Builder
	for body.Len() < 10<<10 {
		body.WriteString(words[z.Uint64()])
		body.WriteByte(' ')
	}
	text := body.String()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		entryTerms("Subject: hello", text)
	}
}
