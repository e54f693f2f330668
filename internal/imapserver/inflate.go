package imapserver

import (
	"errors"
	"fmt"
	"io"
)

// A DEFLATE decoder (RFC 1951) for the client's side of COMPRESS=DEFLATE.
//
// Why not compress/flate: its reader hands out decoded bytes only at a
// stored block (a sync flush), when its window is full, or at the end of
// the stream (golang.org/issue/31514). Clients that flush with zlib's
// Z_PARTIAL_FLUSH (isync's mbsync does) end each command with an empty
// fixed block instead; compress/flate then keeps the command to itself
// until more input comes, the client waits for the answer, and both sit
// until a timeout. This decoder hands out everything it has decoded before
// it waits for more input, whatever ended the client's last write.
//
// It runs in a goroutine of its own, writing into a pipe that the session
// reads: it blocks on the connection (with the session's deadlines) or on
// the session, never holding back decoded bytes while it waits for input.

// errDeflateData is a stream that is not valid DEFLATE.
var errDeflateData = errors.New("invalid deflate data")

// inflater is the decoder's state; only its goroutine touches it.
type inflater struct {
	src    io.Reader
	dst    *io.PipeWriter
	in     [inSize]byte
	inPos  int
	inLen  int
	bitBuf uint32
	bitCnt uint
	// window is the output so far while it is shorter than windowSize,
	// for back-references; then ring holds the last windowSize bytes
	// (wPos the next write position). A session idling after a few
	// commands keeps a few hundred bytes here, not 32 KiB
	// (BenchmarkCompressedIdleSessionMemory).
	window []byte
	ring   *[windowSize]byte
	wPos   int
	total  int64  // bytes decoded so far (bounds distances)
	out    []byte // decoded, not yet handed to dst; nil between bursts
}

// startInflater decodes src into a pipe and returns its reading end. The
// goroutine ends at the end of the stream, at the first error of src or of
// the data (passed on to the reader), or when the reader is closed.
func startInflater(src io.Reader) *io.PipeReader {
	pr, pw := io.Pipe()
	f := &inflater{src: src, dst: pw}
	go func() {
		err := f.run()
		if err == nil {
			err = f.flush()
		}
		if err == nil {
			err = io.EOF
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// flush hands the decoded bytes to the reader.
func (f *inflater) flush() error {
	if len(f.out) == 0 {
		return nil
	}
	_, err := f.dst.Write(f.out)
	f.out = f.out[:0]
	return err
}

// nextByte returns the next input byte. Before it waits for input it hands
// over what it has decoded: the point of this decoder.
func (f *inflater) nextByte() (byte, error) {
	if f.inPos == f.inLen {
		if err := f.flush(); err != nil {
			return 0, err
		}
		if f.inLen < len(f.in) {
			// The last read did not fill the buffer: the client's
			// burst is over and this read most likely waits, perhaps
			// for a long time (IDLE). The output buffer is let go
			// meanwhile; emit makes a new one when output comes.
			f.out = nil
		}
		n, err := f.src.Read(f.in[:])
		if n == 0 {
			if err == nil {
				err = io.ErrNoProgress
			}
			return 0, err
		}
		f.inPos, f.inLen = 0, n
	}
	b := f.in[f.inPos]
	f.inPos++
	return b, nil
}

// bits reads n (at most 16) bits, least significant first (RFC 1951
// section 3.1.1).
func (f *inflater) bits(n uint) (uint32, error) {
	for f.bitCnt < n {
		b, err := f.nextByte()
		if err != nil {
			return 0, err
		}
		f.bitBuf |= uint32(b) << f.bitCnt
		f.bitCnt += 8
	}
	v := f.bitBuf & (1<<n - 1)
	f.bitBuf >>= n
	f.bitCnt -= n
	return v, nil
}

// inSize and outSize bound the decoder's reads from the connection and its
// writes to the session. Reads of 1 KiB cost little through TLS, which
// hands out a record's bytes from its own buffer; an idle session holds
// that buffer while it waits.
const (
	inSize  = 1024
	outSize = 4096
)

// windowSize is DEFLATE's window: a distance reaches 32 KiB back at most
// (RFC 1951 section 2).
const windowSize = 1 << 15

// emit appends one decoded byte to the window and the output.
func (f *inflater) emit(b byte) error {
	if f.ring != nil {
		f.ring[f.wPos] = b
		f.wPos = (f.wPos + 1) & (windowSize - 1)
	} else {
		if len(f.window) == cap(f.window) {
			w := make([]byte, len(f.window), min(max(2*cap(f.window), 256), windowSize))
			copy(w, f.window)
			f.window = w
		}
		f.window = append(f.window, b)
		if len(f.window) == windowSize {
			// Full, wPos 0: the ring's oldest byte is at 0.
			f.ring = (*[windowSize]byte)(f.window)
		}
	}
	f.total++
	if f.out == nil {
		f.out = make([]byte, 0, outSize)
	}
	f.out = append(f.out, b)
	if len(f.out) == cap(f.out) {
		return f.flush()
	}
	return nil
}

// back is the byte d back in the output (1 <= d <= total, d <= windowSize).
func (f *inflater) back(d int) byte {
	if f.ring != nil {
		return f.ring[(f.wPos-d)&(windowSize-1)]
	}
	return f.window[len(f.window)-d]
}

// run decodes blocks until the final one (RFC 1951 section 3.2.3).
func (f *inflater) run() error {
	for {
		final, err := f.bits(1)
		if err != nil {
			return err
		}
		typ, err := f.bits(2)
		if err != nil {
			return err
		}
		switch typ {
		case 0:
			err = f.stored()
		case 1:
			err = f.codes(&fixedLit, &fixedDist)
		case 2:
			err = f.dynamic()
		default:
			err = fmt.Errorf("%w: block type 3", errDeflateData)
		}
		if err != nil {
			return err
		}
		if final == 1 {
			return nil
		}
	}
}

// stored copies a block stored as is (RFC 1951 section 3.2.4): from the
// next byte boundary, LEN, its complement NLEN, then LEN bytes.
func (f *inflater) stored() error {
	f.bitBuf, f.bitCnt = 0, 0
	var hdr [4]byte
	for i := range hdr {
		b, err := f.nextByte()
		if err != nil {
			return err
		}
		hdr[i] = b
	}
	n := uint16(hdr[0]) | uint16(hdr[1])<<8
	if n != ^(uint16(hdr[2]) | uint16(hdr[3])<<8) {
		return fmt.Errorf("%w: stored block length", errDeflateData)
	}
	for range n {
		b, err := f.nextByte()
		if err != nil {
			return err
		}
		if err := f.emit(b); err != nil {
			return err
		}
	}
	return nil
}

// huffman is a canonical Huffman code (RFC 1951 section 3.2.2) as the
// number of codes of each length and the symbols in code order.
type huffman struct {
	count  [16]uint16
	symbol []uint16
}

// newHuffman builds the code of the given code lengths (0: unused). An
// over-subscribed set of lengths is invalid; an incomplete one is
// accepted (a lone distance code is), and its unused codes fail to decode.
func newHuffman(lengths []uint8) (*huffman, error) {
	h := &huffman{symbol: make([]uint16, 0, len(lengths))}
	for _, l := range lengths {
		h.count[l]++
	}
	left := 1
	for l := 1; l < 16; l++ {
		left = left<<1 - int(h.count[l])
		if left < 0 {
			return nil, fmt.Errorf("%w: over-subscribed code", errDeflateData)
		}
	}
	for l := uint8(1); l < 16; l++ {
		for s, sl := range lengths {
			if sl == l {
				h.symbol = append(h.symbol, uint16(s))
			}
		}
	}
	return h, nil
}

// decode reads one symbol: the code bit by bit, most significant first,
// against the first code of each length.
func (f *inflater) decode(h *huffman) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := f.bits(1)
		if err != nil {
			return 0, err
		}
		code |= int(b)
		n := int(h.count[l])
		if code-first < n {
			return int(h.symbol[index+code-first]), nil
		}
		index += n
		first = (first + n) << 1
		code <<= 1
	}
	return 0, fmt.Errorf("%w: unused code", errDeflateData)
}

// Lengths and distances: base values and extra bits (RFC 1951 section
// 3.2.5).
var (
	lenBase   = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra  = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase  = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// The fixed codes (RFC 1951 section 3.2.6).
var fixedLit, fixedDist = func() (huffman, huffman) {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	var d [30]uint8
	for i := range d {
		d[i] = 5
	}
	lit, _ := newHuffman(l[:])
	dist, _ := newHuffman(d[:])
	return *lit, *dist
}()

// codes decodes a block's literals and length/distance pairs up to its
// end-of-block symbol (RFC 1951 section 3.2.5).
func (f *inflater) codes(lit, dist *huffman) error {
	for {
		sym, err := f.decode(lit)
		if err != nil {
			return err
		}
		switch {
		case sym < 256:
			if err := f.emit(byte(sym)); err != nil {
				return err
			}
			continue
		case sym == 256:
			return nil
		case sym > 285:
			return fmt.Errorf("%w: length symbol %d", errDeflateData, sym)
		}
		sym -= 257
		extra, err := f.bits(uint(lenExtra[sym]))
		if err != nil {
			return err
		}
		n := int(lenBase[sym]) + int(extra)
		dsym, err := f.decode(dist)
		if err != nil {
			return err
		}
		if dsym > 29 {
			return fmt.Errorf("%w: distance symbol %d", errDeflateData, dsym)
		}
		dextra, err := f.bits(uint(distExtra[dsym]))
		if err != nil {
			return err
		}
		d := int(distBase[dsym]) + int(dextra)
		if int64(d) > f.total {
			return fmt.Errorf("%w: distance %d before the start", errDeflateData, d)
		}
		for range n {
			if err := f.emit(f.back(d)); err != nil {
				return err
			}
		}
	}
}

// codeLengthOrder is the order of the code length code lengths (RFC 1951
// section 3.2.7).
var codeLengthOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// dynamic reads a block's own codes, then decodes the block (RFC 1951
// section 3.2.7).
func (f *inflater) dynamic() error {
	nlen, err := f.bits(5)
	if err != nil {
		return err
	}
	ndist, err := f.bits(5)
	if err != nil {
		return err
	}
	ncode, err := f.bits(4)
	if err != nil {
		return err
	}
	nl, nd := int(nlen)+257, int(ndist)+1
	if nl > 286 || nd > 30 {
		return fmt.Errorf("%w: %d length and %d distance codes", errDeflateData, nl, nd)
	}
	var clen [19]uint8
	for i := range int(ncode) + 4 {
		v, err := f.bits(3)
		if err != nil {
			return err
		}
		clen[codeLengthOrder[i]] = uint8(v)
	}
	lencode, err := newHuffman(clen[:])
	if err != nil {
		return err
	}
	lengths := make([]uint8, nl+nd)
	for i := 0; i < len(lengths); {
		sym, err := f.decode(lencode)
		if err != nil {
			return err
		}
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var val uint8
		var rep uint32
		switch sym {
		case 16:
			if i == 0 {
				return fmt.Errorf("%w: repeat with no previous length", errDeflateData)
			}
			val = lengths[i-1]
			rep, err = f.bits(2)
			rep += 3
		case 17:
			rep, err = f.bits(3)
			rep += 3
		default:
			rep, err = f.bits(7)
			rep += 11
		}
		if err != nil {
			return err
		}
		if i+int(rep) > len(lengths) {
			return fmt.Errorf("%w: code lengths overrun", errDeflateData)
		}
		for range rep {
			lengths[i] = val
			i++
		}
	}
	if lengths[256] == 0 {
		return fmt.Errorf("%w: no end-of-block code", errDeflateData)
	}
	lit, err := newHuffman(lengths[:nl])
	if err != nil {
		return err
	}
	dist, err := newHuffman(lengths[nl:])
	if err != nil {
		return err
	}
	return f.codes(lit, dist)
}
