// Package benchmail owns the synthetic mail that Roost's SMTP benchmarks
// send: about 10 KB of prose whose words follow a Zipf distribution over
// English-like pseudo-words. Both the in-process benchmark
// (internal/smtpserver) and the load client run against other servers
// (bench/smtpload) send it, so their figures are about the same text.
package benchmail

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// vocab is the bodies' vocabulary, short words first (the most frequent).
// Full-text indexing costs by the distinct trigrams of a text: 10 KB of
// English mail has about 2,000-2,500 of them, and so do these bodies
// (about 2,300). A body drawn from a few dozen real words had 1,070 and
// made indexing look a third as costly as on real text.
var vocab = func() []string {
	r := rand.New(rand.NewPCG(7, 7))
	onset := strings.Fields("b c d f g h j k l m n p r s t v w st tr pr ch sh th bl gr cl")
	nucleus := strings.Fields("a e i o u ea ou io ai y")
	coda := append([]string{"", "", ""}, strings.Fields("n r s t l nd nt st ck m ng x")...)
	seen := map[string]bool{}
	var out []string
	for len(out) < 5000 {
		var b strings.Builder
		syllables := 1 + r.IntN(3)
		if len(out) < 100 {
			syllables = 1
		}
		for range syllables {
			b.WriteString(onset[r.IntN(len(onset))])
			b.WriteString(nucleus[r.IntN(len(nucleus))])
			b.WriteString(coda[r.IntN(len(coda))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}()

// Message returns message number i from s to to: about 10 KB of prose with
// numbers, sentences and commas, in CRLF lines of at most about 80 octets.
// The body depends on i only; the Message-ID is unique per call.
func Message(i int, from, to string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: bench %d\r\nMessage-ID: <bench-%d-%d@remote.test>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n\r\n", from, to, i, i, time.Now().UnixNano())
	r := rand.New(rand.NewPCG(uint64(i), 1))
	zipf := rand.NewZipf(r, 1.07, 2, uint64(len(vocab)-1))
	line, sentence := 0, 0
	for b.Len() < 10*1024 {
		w := vocab[zipf.Uint64()]
		if r.IntN(24) == 0 {
			w = strconv.Itoa(r.IntN(100000))
		}
		if sentence == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		if sentence++; sentence > 6 && r.IntN(10) == 0 {
			w += "."
			sentence = 0
		} else if r.IntN(14) == 0 {
			w += ","
		}
		b.WriteString(w)
		if line += len(w) + 1; line > 70 {
			b.WriteString("\r\n")
			line = 0
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteString("\r\n")
	return b.String()
}
