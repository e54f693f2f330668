package imapserver

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// inflateAll decodes a whole stream with the inflater.
func inflateAll(data []byte) ([]byte, error) {
	pr := startInflater(bytes.NewReader(data))
	defer pr.Close()
	return io.ReadAll(pr)
}

// TestInflateMatchesStdlib: what compress/flate writes, at every level and
// with sync flushes between writes, the inflater decodes byte for byte.
func TestInflateMatchesStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"FETCH ", "1:* ", "(FLAGS ENVELOPE) ", "UID ", "\r\n", "INBOX ", "A001 "}
	for _, level := range []int{flate.NoCompression, flate.BestSpeed, 5, flate.BestCompression, flate.HuffmanOnly} {
		for _, size := range []int{0, 1, 100, 70_000, 300_000} {
			var plain bytes.Buffer
			for plain.Len() < size {
				if r.IntN(4) == 0 {
					plain.WriteByte(byte(r.IntN(256)))
				} else {
					plain.WriteString(words[r.IntN(len(words))])
				}
			}
			var z bytes.Buffer
			w, _ := flate.NewWriter(&z, level)
			for p := plain.Bytes(); len(p) > 0; {
				n := min(len(p), 1+r.IntN(5000))
				w.Write(p[:n])
				if r.IntN(3) == 0 {
					w.Flush()
				}
				p = p[n:]
			}
			w.Close()
			got, err := inflateAll(z.Bytes())
			if err != nil || !bytes.Equal(got, plain.Bytes()) {
				t.Fatalf("level %d, %d bytes: got %d bytes, %v", level, size, len(got), err)
			}
		}
	}
}

// fixedBlock encodes literals as one fixed-Huffman block, not final, the
// way zlib ends a write with Z_PARTIAL_FLUSH: the data's block, then an
// empty fixed block, with no byte alignment (RFC 1951 section 3.2.6).
func fixedBlock(lit []byte) []byte {
	var out []byte
	var acc uint32
	var n uint
	put := func(v uint32, bits uint) { // LSB first
		acc |= v << n
		n += bits
		for n >= 8 {
			out = append(out, byte(acc))
			acc >>= 8
			n -= 8
		}
	}
	putCode := func(code uint32, bits uint) { // Huffman codes MSB first
		var rev uint32
		for i := range bits {
			rev |= (code >> i & 1) << (bits - 1 - i)
		}
		put(rev, bits)
	}
	for range 2 {
		put(0, 1) // BFINAL 0
		put(1, 2) // BTYPE 01: fixed
		for _, b := range lit {
			if b < 144 {
				putCode(0x30+uint32(b), 8)
			} else {
				putCode(0x190+uint32(b)-144, 9)
			}
		}
		putCode(0, 7) // end of block
		lit = nil     // the second block is the empty one
	}
	if n > 0 {
		out = append(out, byte(acc))
	}
	return out
}

// TestInflatePartialFlush: a command ended by a partial flush is handed
// over at once, though the stream does not continue (compress/flate's
// reader waits for more input here: inflate.go).
func TestInflatePartialFlush(t *testing.T) {
	cmd := []byte("3 NAMESPACE\r\n")
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write(fixedBlock(cmd)) // and nothing more
	zr := startInflater(pr)
	defer zr.Close()
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 64)
		n, _ := io.ReadFull(zr, buf[:len(cmd)])
		got <- buf[:n]
	}()
	select {
	case b := <-got:
		if !bytes.Equal(b, cmd) {
			t.Fatalf("decoded %q", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a partially flushed command was held back")
	}
	// Also what compress/flate makes of it, to show why this decoder exists.
	sr, sw := io.Pipe()
	defer sw.Close()
	go sw.Write(fixedBlock(cmd))
	stdGot := make(chan int, 1)
	go func() {
		n, _ := flate.NewReader(sr).Read(make([]byte, 64))
		stdGot <- n
	}()
	select {
	case n := <-stdGot:
		t.Logf("compress/flate returned %d bytes (it held them back in Go 1.26)", n)
	case <-time.After(200 * time.Millisecond):
		t.Logf("compress/flate still holds the command back, as expected")
	}
}

// TestInflateBadData: invalid streams end with errDeflateData, not a
// panic or a hang.
func TestInflateBadData(t *testing.T) {
	for _, in := range [][]byte{
		{0x07},                               // block type 3
		{0x01, 0x05, 0x00, 0x00, 0x00},       // stored, LEN/NLEN mismatch
		{0x03, 0xff, 0xff, 0xff},             // fixed block, distance before the start
		{0xfd, 0xff, 0xff, 0xff, 0xff, 0xff}, // dynamic block, bad code lengths
	} {
		_, err := inflateAll(in)
		if !errors.Is(err, errDeflateData) && !errors.Is(err, io.ErrUnexpectedEOF) && err != io.EOF {
			t.Errorf("%x: %v", in, err)
		}
		if err == nil {
			t.Errorf("%x decoded without error", in)
		}
	}
}

// FuzzInflate: any input ends (data, an error), never a panic; where
// compress/flate decodes a whole stream, the inflater gives the same bytes.
func FuzzInflate(f *testing.F) {
	for _, s := range []string{"3 NAMESPACE\r\n", "a LOGIN x y\r\n", ""} {
		var z bytes.Buffer
		w, _ := flate.NewWriter(&z, flate.BestSpeed)
		w.Write([]byte(s))
		w.Flush()
		f.Add(z.Bytes())
		f.Add(fixedBlock([]byte(s)))
	}
	f.Add([]byte{0x07})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := inflateAll(data)
		want, werr := io.ReadAll(flate.NewReader(bytes.NewReader(data)))
		if werr == nil && (err != nil || !bytes.Equal(got, want)) {
			t.Fatalf("stdlib: %q; inflater: %q, %v", want, got, err)
		}
	})
}

// BenchmarkInflate decodes 1 MB of command-like text compressed by
// compress/flate, through the pipe a session reads.
func BenchmarkInflate(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	words := []string{"APPEND ", "INBOX ", "{1200+}\r\n", "Subject: hello\r\n", "the quick brown fox ", "\r\n"}
	var plain bytes.Buffer
	for plain.Len() < 1<<20 {
		plain.WriteString(words[r.IntN(len(words))])
	}
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestSpeed)
	w.Write(plain.Bytes())
	w.Close()
	b.SetBytes(int64(plain.Len()))
	for b.Loop() {
		got, err := inflateAll(z.Bytes())
		if err != nil || len(got) != plain.Len() {
			b.Fatalf("%d bytes, %v", len(got), err)
		}
	}
}
