package imapserver

import (
	"bufio"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// COMPRESS=DEFLATE, RFC 4978: once a client turns it on, both directions of
// the connection are raw DEFLATE streams (RFC 1951, no zlib header). The
// session's connection is swapped for a compressConn, the way STARTTLS
// swaps in a tls.Conn, so that the handlers, the bufio reader and writer
// above it and IDLE's writer (ensureWriter) work unchanged.
//
// Layering (RFC 4978 section 3): COMPRESS sits above TLS. STARTTLS cannot
// follow COMPRESS: it is valid only before login, COMPRESS only after.

// compressLevel is flate.BestSpeed: server CPU matters more than ratio.
// BenchmarkCompressLevels, on a burst of FETCH ENVELOPE lines and a 100 KB
// body: level 1 sends 21.6% of the bytes at about 170 MB/s, level 2 19.4%
// at 110 MB/s, the default level 15% at 25 MB/s. Level 1 also resets for
// almost nothing, which the per-burst pooling below needs: on a small
// reply (a FETCH FLAGS line and a tagged OK) it takes 4 µs, levels 2 and
// up 15-22 µs, clearing 640 KB of hash tables. Its writer is the largest
// (1.2 MB, against 0.8 MB), but a session holds one only while it writes.
const compressLevel = flate.BestSpeed

// errCorruptDeflate: the client's compressed stream cannot be decoded;
// nothing more can be read from it, so the session ends.
var errCorruptDeflate = errors.New("corrupt compressed input")

// deflater is a DEFLATE compressor and the buffer under it, which turns
// flate's small writes (a few hundred bytes each) into few, full writes to
// the connection (few syscalls, few TLS records).
type deflater struct {
	zw *flate.Writer
	bw *bufio.Writer
}

// deflaters holds compressors between output bursts. A compressor is 1.2
// MB, so a session keeps one only while it has output under way, not while
// it waits for the client: thousands of idle compressing sessions share a
// handful, and such a session costs its decoder only (inflate.go: a window
// as long as the client's input so far, up to 32 KiB, a 1 KiB read buffer
// and a goroutine): 18 KB against 14 KB for a plain idle session
// (BenchmarkCompressedIdleSessionMemory; 62 KB with a 32 KiB window from
// the start and 4 KiB buffers held throughout).
var deflaters = sync.Pool{New: func() any {
	d := &deflater{bw: bufio.NewWriterSize(io.Discard, writeBufSize)}
	zw, err := flate.NewWriter(d.bw, compressLevel)
	if err != nil {
		panic(err) // only for a level out of range: a constant here
	}
	d.zw = zw
	return d
}}

// compressConn is a session's connection with COMPRESS=DEFLATE active.
// Deadlines, addresses and Close are those of the connection under it.
// Read is used by one goroutine at a time (the session's, or IDLE's
// reader), Write and flush by the session goroutine only; the two
// directions share no state, so IDLE may read and write at once.
type compressConn struct {
	net.Conn
	zr      io.ReadCloser
	corrupt func(error) // reports a corrupt input stream (once)
	bad     bool

	out *deflater // nil between output bursts
}

func newCompressConn(c net.Conn, corrupt func(error)) *compressConn {
	z := &compressConn{Conn: c, corrupt: corrupt}
	// Not compress/flate's reader: it can hold a command back until the
	// client's next write (inflate.go).
	z.zr = startInflater(c)
	return z
}

func (z *compressConn) Read(p []byte) (int, error) {
	n, err := z.zr.Read(p)
	if err == nil || !errors.Is(err, errDeflateData) {
		// Data, the end of the client's stream (a final block), or the
		// connection's own error, unchanged: a timeout stays
		// os.ErrDeadlineExceeded for the autologout.
		return n, err
	}
	if !z.bad {
		z.bad = true
		z.corrupt(err)
	}
	return n, fmt.Errorf("%w: %w", errCorruptDeflate, err)
}

func (z *compressConn) Write(p []byte) (int, error) {
	if z.out == nil {
		z.out = deflaters.Get().(*deflater)
		z.out.bw.Reset(z.Conn)
		// A pooled compressor still holds the history of the session that
		// used it last: without Reset its next output could refer to
		// bytes this client never received (and leak them).
		z.out.zw.Reset(z.out.bw)
	}
	return z.out.zw.Write(p)
}

// flush sends everything written so far, ending with a sync flush (an
// empty stored block), so the client can decode every byte of it without
// waiting for more. The session calls it each time it flushes its output.
//
// The compressor then goes back to the pool and the next burst starts a
// fresh one. That is a Z_FULL_FLUSH in zlib's terms, which RFC 4978
// section 4 allows at any point ("the receiving peer does not need to do
// anything"): the client's decompressor keeps its window, the new
// compressor just does not refer back to it. A burst's own content still
// compresses; only repeats across bursts are missed, which at level 1
// costs next to nothing (BenchmarkCompressLevels: the same ratio with a
// compressor kept across bursts, since level 1 does not look back for
// bursts under 128 bytes, and 21.5% against 21.6% on a large one).
func (z *compressConn) flush() error {
	d := z.out
	if d == nil {
		return nil
	}
	z.out = nil
	err := d.zw.Flush()
	if err == nil {
		err = d.bw.Flush()
	}
	z.release(d)
	if err != nil {
		return fmt.Errorf("compressed write: %w", err)
	}
	return nil
}

// release returns a compressor to the pool without a reference to this
// connection (the next user resets the compressor's state).
func (z *compressConn) release(d *deflater) {
	d.bw.Reset(io.Discard)
	deflaters.Put(d)
}

// CloseWrite ends the output of the connection under the stream (TLS:
// its close_notify), for linger.
func (z *compressConn) CloseWrite() error {
	if cw, ok := z.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the connection, drops a compressor still held (output cut
// off by an error) and ends the decoder's goroutine.
func (z *compressConn) Close() error {
	if d := z.out; d != nil {
		z.out = nil
		z.release(d)
	}
	err := z.Conn.Close()
	// The decoder's goroutine ends on the closed connection, or, if it
	// is handing over decoded bytes, on the closed pipe.
	z.zr.Close()
	return err
}

// cmdCompress: RFC 4978 section 3. The table lets it run in the
// authenticated and selected states only (section 5: command-auth).
func (s *session) cmdCompress(c *command) error {
	if s.deflate != nil {
		// RFC 4978 section 3 and 5: COMPRESSIONACTIVE. (The section's
		// result list would also allow BAD for a second COMPRESS.)
		return no("COMPRESSIONACTIVE", "DEFLATE is already active")
	}
	if c.args.(string) != "DEFLATE" {
		// RFC 4978 section 3: BAD for an unknown argument.
		return bad("", "Unsupported compression algorithm")
	}
	if s.br.Buffered() > 0 {
		// RFC 4978 section 3: the client MUST NOT send another command
		// before it sees COMPRESS's result. Bytes already here were sent
		// before the OK: plain commands pipelined by a client that broke
		// that rule, or compressed data sent too early. They cannot be
		// told apart, and turning compression on would feed plain text to
		// the decompressor. So compression stays off and the command gets
		// BAD: the client must not compress (RFC 4978 section 3), and
		// the pipelined commands run as the plain commands they most
		// likely are.
		return bad("", "Commands sent after COMPRESS before its result; compression not started")
	}
	// RFC 4978 section 3: the OK goes out uncompressed; compression starts
	// with the byte after its CRLF, in both directions.
	s.writef("%s OK DEFLATE active\r\n", c.tag)
	if err := s.flush(); err != nil {
		return err
	}
	z := newCompressConn(s.conn, func(err error) {
		s.logger().Info("imap: corrupt compressed input, ending session", "err", err)
	})
	s.conn = z
	s.deflate = z
	s.br.Reset(z)
	s.bw.Reset(z)
	s.suppressReply = true
	return nil
}
