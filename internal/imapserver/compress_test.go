package imapserver

import (
	"bufio"
	"compress/flate"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// deflateConn is the client side of RFC 4978: every Write is compressed and
// sync-flushed (one command, or one literal, per Write), every Read
// decompresses. It counts the compressed bytes it receives.
type deflateConn struct {
	net.Conn
	zw    *flate.Writer
	zr    io.Reader
	wire  atomic.Int64 // compressed bytes read from the socket
	plain atomic.Int64 // bytes after decompression
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func newDeflateConn(t testing.TB, c net.Conn) *deflateConn {
	t.Helper()
	d := &deflateConn{Conn: c}
	zw, err := flate.NewWriter(c, flate.DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	d.zw = zw
	d.zr = flate.NewReader(bufio.NewReader(countingReader{c, &d.wire}))
	return d
}

func (d *deflateConn) Write(p []byte) (int, error) {
	n, err := d.zw.Write(p)
	if err == nil {
		err = d.zw.Flush()
	}
	return n, err
}

func (d *deflateConn) Read(p []byte) (int, error) {
	n, err := d.zr.Read(p)
	d.plain.Add(int64(n))
	return n, err
}

// compress runs cmd (a COMPRESS command) on c and returns a client that
// speaks through DEFLATE from then on, its tags carrying on from c's.
func (c *rawClient) compress(cmd string) (*rawClient, *deflateConn) {
	c.t.Helper()
	lines := c.ok(cmd)
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, " OK DEFLATE active") {
		c.t.Fatalf("COMPRESS: %q", lines)
	}
	if n := c.r.Buffered(); n > 0 {
		c.t.Fatalf("%d bytes after the COMPRESS OK before the client compresses", n)
	}
	d := newDeflateConn(c.t, c.c)
	return &rawClient{t: c.t, c: d, r: bufio.NewReader(d), tagN: c.tagN}, d
}

// bigMessage is a message of about size bytes of text that compresses the
// way mail does: repeated words and headers, varying numbers.
func bigMessage(size int) string {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"the", "mail", "server", "compress", "deflate", "session", "roost", "message", "client", "window"}
	var b strings.Builder
	b.WriteString("From: Big <big@example.org>\r\nTo: alice@example.test\r\nSubject: big\r\nMessage-ID: <big@example.org>\r\n\r\n")
	for b.Len() < size {
		fmt.Fprintf(&b, "%d", rng.IntN(100000))
		for i := 0; i < 10; i++ {
			b.WriteString(" " + words[rng.IntN(len(words))])
		}
		b.WriteString("\r\n")
	}
	return b.String()
}

// literalAfter returns the n bytes of the literal announced by marker in a
// response line (lines keep their literals inline).
func literalAfter(t testing.TB, line, marker string, n int) string {
	t.Helper()
	i := strings.Index(line, marker)
	if i < 0 || len(line) < i+len(marker)+n {
		t.Fatalf("no %q literal of %d bytes in %.200q", marker, n, line)
	}
	return line[i+len(marker) : i+len(marker)+n]
}

// The whole session through compress/flate on both sides: SELECT, APPEND
// with a synchronizing literal, FETCH BODY[] back byte-exact, IDLE with an
// update pushed by another session, LOGOUT.
func TestCompressSession(t *testing.T) {
	env := newTestEnv(t, Config{})
	alice := "alice@example.test"
	env.deliver(t, alice, testMessage(1))
	plainC := env.login(t, alice)
	caps := plainC.ok("CAPABILITY")
	mustHave(t, caps, `^\* CAPABILITY .* COMPRESS=DEFLATE( |$)`)
	// RFC 4978 section 5: the algorithm is case-insensitive.
	c, dc := plainC.compress("COMPRESS deflate")

	// Not advertised any more: it cannot be used twice.
	if hasLine(c.ok("CAPABILITY"), "COMPRESS=") {
		t.Fatal("COMPRESS=DEFLATE still advertised with compression active")
	}
	mustHave(t, c.ok("SELECT INBOX"), `^\* 1 EXISTS$`)

	msg := bigMessage(200 << 10)
	c.tagN++
	tag := fmt.Sprintf("t%d", c.tagN)
	c.send(fmt.Sprintf("%s APPEND INBOX (\\Seen) {%d}", tag, len(msg)))
	c.expect(`^\+ `)
	c.send(msg)
	mustHave(t, c.readUntil(tag), `^`+tag+` OK \[APPENDUID [0-9]+ 2\]`)

	before := dc.wire.Load()
	plainBefore := dc.plain.Load()
	lines := c.ok("UID FETCH 2 (BODY.PEEK[])")
	marker := fmt.Sprintf("BODY[] {%d}\r\n", len(msg))
	if got := literalAfter(t, lines[0], marker, len(msg)); got != msg {
		t.Fatal("FETCH BODY[] differs from the APPENDed message")
	}
	wire, plain := dc.wire.Load()-before, dc.plain.Load()-plainBefore
	t.Logf("FETCH of %d bytes: %d compressed bytes on the wire (%.1f%%)", plain, wire, 100*float64(wire)/float64(plain))
	if wire <= 0 || wire > plain/2 {
		t.Fatalf("FETCH response: %d bytes on the wire for %d bytes of text: not compressed", wire, plain)
	}

	// IDLE: a change made by another (uncompressed) session is pushed
	// through the compressed stream as soon as it is committed.
	c.send("i IDLE")
	c.expect(`^\+ `)
	other := env.login(t, alice)
	other.ok("SELECT INBOX")
	other.ok(`STORE 1 +FLAGS.SILENT (\Flagged)`)
	c.expect(`^\* 1 FETCH \(.*FLAGS \(.*\\Flagged.*\)`)
	env.deliver(t, alice, testMessage(3))
	c.expect(`^\* 3 EXISTS$`)
	c.send("DONE")
	c.expect(`^i OK `)

	lines = c.cmd("LOGOUT")
	mustHave(t, lines, `^\* BYE `, `^t[0-9]+ OK `)
	expectEOF(t, c)
}

// expectEOF checks that the server closed the connection.
func expectEOF(t *testing.T, c *rawClient) {
	t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l, err := c.r.ReadString('\n'); err == nil {
		t.Fatalf("still open, read %q", l)
	} else if isTimeout(err) {
		t.Fatal("connection not closed")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// RFC 4978 section 3 and 5: COMPRESS only once authenticated, only
// DEFLATE, only once; STARTTLS cannot follow it.
func TestCompressRefusals(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.dial(t)
	if hasLine(c.ok("CAPABILITY"), "COMPRESS=") {
		t.Fatal("COMPRESS=DEFLATE advertised before login")
	}
	mustHave(t, c.cmd("COMPRESS DEFLATE"), `^t2 BAD `)
	c.ok("LOGIN " + quote("alice@example.test") + " " + quote(testPassword))
	mustHave(t, c.cmd("COMPRESS FOO"), `^t4 BAD `)
	mustHave(t, c.cmd("COMPRESS"), `^t5 BAD `)
	mustHave(t, c.cmd("COMPRESS DEFLATE extra"), `^t6 BAD `)
	// Still uncompressed after every refusal.
	c.ok("NOOP")

	z, _ := c.compress("COMPRESS DEFLATE")
	mustHave(t, z.cmd("COMPRESS DEFLATE"), `^t[0-9]+ NO \[COMPRESSIONACTIVE\] `)
	mustHave(t, z.cmd("STARTTLS"), `^t[0-9]+ BAD `)
	z.ok("NOOP")
}

// RFC 4978 section 3: a client that pipelines after COMPRESS broke the
// rule; its next command is already here, uncompressed. The server refuses
// to start compression rather than decompress plain text, and the
// pipelined command runs as a plain command.
func TestCompressPipelinedRefused(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.login(t, "alice@example.test")
	_ = c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.c, "z1 COMPRESS DEFLATE\r\nz2 NOOP\r\n"); err != nil {
		t.Fatal(err)
	}
	mustHave(t, c.readUntil("z1"), `^z1 BAD `)
	mustHave(t, c.readUntil("z2"), `^z2 OK `)
	c.ok("NOOP")
}

// Bytes that are not DEFLATE after activation end that session with a BYE
// (compressed: the server's side of the stream is fine), and the server
// goes on serving others.
func TestCompressCorruptInput(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.login(t, "alice@example.test")
	z, _ := c.compress("COMPRESS DEFLATE")
	_ = c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	// 0xff: a final block of the reserved type 3 (RFC 1951 section
	// 3.2.3), an error at the first byte.
	if _, err := c.c.Write([]byte("\xff\xff\xffa NOOP\r\n")); err != nil {
		t.Fatal(err)
	}
	if l := z.line(); !strings.HasPrefix(l, "* BYE ") {
		t.Fatalf("after garbage: %q", l)
	}
	expectEOF(t, z)

	other := env.login(t, "bob@example.test")
	other.ok("SELECT INBOX")
	oz, _ := other.compress("COMPRESS DEFLATE")
	oz.ok("NOOP")
}

// A compressed command cut in two by the network is waited for, not taken
// for a corrupt stream.
func TestCompressTruncatedInput(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.login(t, "alice@example.test")
	z, _ := c.compress("COMPRESS DEFLATE")
	// Half of a compressed command, then the rest: the server must wait
	// for the whole block, then answer.
	var buf strings.Builder
	zw, _ := flate.NewWriter(&buf, flate.BestCompression)
	zw.Write([]byte("h1 NOOP\r\n"))
	zw.Flush()
	enc := buf.String()
	_ = c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.c.Write([]byte(enc[:len(enc)/2]))
	time.Sleep(50 * time.Millisecond)
	c.c.Write([]byte(enc[len(enc)/2:]))
	z.expect(`^h1 OK `)
}

// COMPRESS after STARTTLS (RFC 4978 section 3: TLS below, COMPRESS above).
func TestCompressOverSTARTTLS(t *testing.T) {
	env := newTestEnv(t, Config{})
	env.srv.cfg.TLS = selfSigned(t)
	// A session started here, after the TLS config is set (as in
	// TestPlaintextRefusedUntilSTARTTLS).
	c := env.dialPipe(t)
	c.line()
	c.ok("STARTTLS")
	tc := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.HandshakeContext(context.Background()); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c = &rawClient{t: t, c: tc, r: bufio.NewReader(tc), tagN: c.tagN}
	c.ok("LOGIN " + quote("alice@example.test") + " " + quote(testPassword))
	z, _ := c.compress("COMPRESS DEFLATE")
	mustHave(t, z.ok("SELECT INBOX"), `^\* 0 EXISTS$`)
	mustHave(t, z.ok(`LIST "" *`), `^\* LIST .* "INBOX"$`)
}

// Compressors are pooled between output bursts: two sessions taking turns
// must never get output that refers back to the other's history (it would
// not decode, or decode to the other's bytes).
func TestCompressSessionsTakingTurns(t *testing.T) {
	env := newTestEnv(t, Config{})
	alice := "alice@example.test"
	msgs := []string{bigMessage(30 << 10), strings.ReplaceAll(bigMessage(30<<10), "mail", "post")}
	for _, m := range msgs {
		env.deliver(t, alice, m)
	}
	var zs []*rawClient
	for range 2 {
		c := env.login(t, alice)
		c.ok("SELECT INBOX")
		z, _ := c.compress("COMPRESS DEFLATE")
		zs = append(zs, z)
	}
	for round := range 6 {
		for i, z := range zs {
			n := (round+i)%2 + 1
			lines := z.ok(fmt.Sprintf("FETCH %d (BODY.PEEK[])", n))
			m := msgs[n-1]
			if got := literalAfter(t, lines[0], fmt.Sprintf("BODY[] {%d}\r\n", len(m)), len(m)); got != m {
				t.Fatalf("round %d session %d: FETCH %d differs", round, i, n)
			}
		}
	}
}

// deflated compresses commands the way a client does: each sync-flushed;
// final adds the stream's last block.
func deflated(final bool, cmds ...string) []byte {
	var b strings.Builder
	zw, _ := flate.NewWriter(&b, flate.DefaultCompression)
	for _, c := range cmds {
		zw.Write([]byte(c))
		zw.Flush()
	}
	if final {
		zw.Close()
	}
	return []byte(b.String())
}

// FuzzCompressedInput sends arbitrary bytes as the client's side of an
// active COMPRESS=DEFLATE stream, then ends it. Whatever they are, the
// server's own stream stays valid DEFLATE with complete lines, the session
// ends when the input does, and the server goes on serving.
func FuzzCompressedInput(f *testing.F) {
	valid := deflated(false, "a SELECT INBOX\r\n", "b FETCH 1 (FLAGS BODY.PEEK[])\r\n", "c NOOP\r\n")
	for _, seed := range [][]byte{
		valid,
		valid[:len(valid)/2],
		deflated(true, "a NOOP\r\n", "b LOGOUT\r\n"),
		deflated(true, "a APPEND INBOX {5}\r\n"),
		deflated(false, "a IDLE\r\n"),
		append(deflated(false, "a NOOP\r\n"), 0xff, 0x00),
		[]byte("a NOOP\r\n"),
		{0xff},
		{},
	} {
		f.Add(seed)
	}
	env := newTestEnv(f, Config{LoginTimeout: 5 * time.Second})
	env.deliver(f, "alice@example.test", testMessage(1))
	watch := env.login(f, "bob@example.test")
	f.Fuzz(func(t *testing.T, in []byte) {
		c := env.login(t, "alice@example.test")
		c.ok("COMPRESS DEFLATE")
		_ = c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.c.Write(in); err != nil {
			t.Fatal(err)
		}
		if err := c.c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		out, err := io.ReadAll(flate.NewReader(c.r))
		if err != nil && err != io.ErrUnexpectedEOF {
			// ErrUnexpectedEOF: the server closes without a final block.
			t.Fatalf("server output after %q: %v (so far %q)", in, err, out)
		}
		if len(out) > 0 && !strings.HasSuffix(string(out), "\r\n") {
			t.Fatalf("server output after %q ends mid-line: %q", in, out)
		}
		watch.t = t
		watch.ok("NOOP")
	})
}

// BenchmarkCompressedIdleSessionMemory: heap and stack per session with
// sessions selected and idling, without and with COMPRESS=DEFLATE. The
// clients' commands are compressed once, up front, and each client's
// decompressor is dropped once it has seen "+ idling", so that the client
// side adds little to the measure.
func BenchmarkCompressedIdleSessionMemory(b *testing.B) {
	const sessions = 500
	raiseNoFile(b, 2*sessions+256)
	cmds := deflated(false, "b SELECT INBOX\r\nc IDLE\r\n")
	for _, compress := range []bool{false, true} {
		b.Run(fmt.Sprintf("compress=%v", compress), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				env := newTestEnv(b, Config{})
				open := func() net.Conn {
					c, err := net.Dial("tcp", env.addr)
					if err != nil {
						b.Fatal(err)
					}
					_ = c.SetDeadline(time.Now().Add(30 * time.Second))
					r := bufio.NewReaderSize(c, 64)
					readLine := func() string {
						l, err := r.ReadString('\n')
						if err != nil {
							b.Fatalf("read: %v (%q)", err, l)
						}
						return l
					}
					readLine()
					io.WriteString(c, "a LOGIN alice@example.test \"secret pass\"\r\n")
					for !strings.HasPrefix(readLine(), "a OK") {
					}
					if !compress {
						io.WriteString(c, "b SELECT INBOX\r\nc IDLE\r\n")
						for !strings.HasPrefix(readLine(), "+ ") {
						}
						return c
					}
					io.WriteString(c, "z COMPRESS DEFLATE\r\n")
					if l := readLine(); !strings.HasPrefix(l, "z OK") {
						b.Fatalf("COMPRESS: %q", l)
					}
					c.Write(cmds)
					zr := bufio.NewReader(flate.NewReader(r))
					for {
						l, err := zr.ReadString('\n')
						if err != nil {
							b.Fatalf("read: %v", err)
						}
						if strings.HasPrefix(l, "+ ") {
							return c
						}
					}
				}
				warm := open()
				beforeHeap, beforeStack := memUse()
				conns := make([]net.Conn, sessions)
				for j := range conns {
					conns[j] = open()
				}
				afterHeap, afterStack := memUse()
				heap := float64(afterHeap) - float64(beforeHeap)
				stack := float64(afterStack) - float64(beforeStack)
				b.ReportMetric((heap+stack)/sessions, "bytes/session")
				b.ReportMetric(heap/sessions, "heap-bytes/session")
				for _, c := range conns {
					c.Close()
				}
				warm.Close()
			}
		})
	}
}

// BenchmarkCompressLevels: one output burst as the server sends it (a
// reset compressor, a sync flush at the end), per flate level: CPU (MB/s
// of input) and ratio (wire bytes per 100 input bytes). "small" is a
// typical reply (a FETCH FLAGS line and a tagged OK), "large" 100 FETCH
// ENVELOPE lines and a 100 KB message body.
func BenchmarkCompressLevels(b *testing.B) {
	var large strings.Builder
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&large, "* %d FETCH (UID %d FLAGS (\\Seen) ENVELOPE (\"Mon, 02 Jan 2006 15:04:05 +0000\" \"test message %d\" ((\"Sender %d\" NIL \"sender%d\" \"example.org\")) ((\"Sender %d\" NIL \"sender%d\" \"example.org\")) ((\"Sender %d\" NIL \"sender%d\" \"example.org\")) ((NIL NIL \"alice\" \"example.test\")) NIL NIL NIL \"<m%d@example.org>\"))\r\n", i, i+1000, i, i, i, i, i, i, i, i)
	}
	large.WriteString(bigMessage(100 << 10))
	bursts := []struct {
		name string
		in   []byte
	}{
		{"small", []byte("* 12 FETCH (UID 1012 FLAGS (\\Seen \\Flagged) MODSEQ (4711))\r\nt42 OK UID STORE completed\r\n")},
		{"large", []byte(large.String())},
	}
	for _, burst := range bursts {
		for _, level := range []int{flate.BestSpeed, 2, flate.DefaultCompression} {
			b.Run(fmt.Sprintf("%s/level=%d", burst.name, level), func(b *testing.B) {
				var out countingWriter
				zw, _ := flate.NewWriter(&out, level)
				b.SetBytes(int64(len(burst.in)))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					zw.Reset(&out)
					zw.Write(burst.in)
					zw.Flush()
				}
				b.ReportMetric(100*float64(out)/float64(b.N)/float64(len(burst.in)), "wire-%")
			})
		}
		// For comparison: a compressor kept across bursts (not what the
		// server does), whose history makes repeated replies cheap.
		b.Run(burst.name+"/level=1/kept", func(b *testing.B) {
			var out countingWriter
			zw, _ := flate.NewWriter(&out, flate.BestSpeed)
			b.SetBytes(int64(len(burst.in)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				zw.Write(burst.in)
				zw.Flush()
			}
			b.ReportMetric(100*float64(out)/float64(b.N)/float64(len(burst.in)), "wire-%")
		})
	}
}

type countingWriter int64

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}

// greetedConn hands a client a greeting before the connection's own bytes.
type greetedConn struct {
	net.Conn
	greeting *strings.Reader
}

func (g *greetedConn) Read(p []byte) (int, error) {
	if g.greeting.Len() > 0 {
		return g.greeting.Read(p)
	}
	return g.Conn.Read(p)
}

// go-imap v2 (v2.0.0-beta.8) has no COMPRESS support of its own, so the
// test turns compression on and hands the compressed connection to
// imapclient: an independent parser then reads everything the server
// compresses. imapclient starts by reading a greeting, which the server
// sent long before; the test gives it a PREAUTH greeting (RFC 9051
// section 7.1.4) carrying the server's own capability list, since the
// session is indeed authenticated.
func TestCompressInteropImapclient(t *testing.T) {
	env := newTestEnv(t, Config{})
	alice := "alice@example.test"
	for i := 1; i <= 3; i++ {
		env.deliver(t, alice, testMessage(i))
	}
	raw := env.login(t, alice)
	z, dc := raw.compress("COMPRESS DEFLATE")
	caps := z.ok("CAPABILITY")[0]
	if !strings.HasPrefix(caps, "* CAPABILITY ") {
		t.Fatalf("CAPABILITY: %q", caps)
	}
	greeting := "* PREAUTH [CAPABILITY " + strings.TrimPrefix(caps, "* CAPABILITY ") + "] compressed\r\n"
	exists := make(chan uint32, 8)
	c := imapclient.New(&greetedConn{Conn: dc, greeting: strings.NewReader(greeting)}, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					exists <- *d.NumMessages
				}
			},
		},
	})
	t.Cleanup(func() { c.Close() })
	if err := c.WaitGreeting(); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 3 {
		t.Fatalf("SELECT: %+v %v", sel, err)
	}
	msg := bigMessage(80 << 10)
	app := c.Append("INBOX", int64(len(msg)), nil)
	app.Write([]byte(msg))
	app.Close()
	ad, err := app.Wait()
	if err != nil || ad.UID != 4 {
		t.Fatalf("APPEND: %+v %v", ad, err)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(2, 4), &imap.FetchOptions{
		UID: true, Envelope: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("FETCH: %v %v", msgs, err)
	}
	if msgs[0].Envelope.Subject != "test message 2" || string(msgs[0].FindBodySection(&imap.FetchItemBodySection{})) != testMessage(2) {
		t.Fatalf("FETCH 2: %+v", msgs[0])
	}
	if string(msgs[1].FindBodySection(&imap.FetchItemBodySection{})) != msg {
		t.Fatal("FETCH BODY[] of the appended message differs")
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	for len(exists) > 0 {
		<-exists // EXISTS of SELECT and APPEND
	}
	env.deliver(t, alice, testMessage(5))
	select {
	case n := <-exists:
		if n != 5 {
			t.Fatalf("EXISTS %d during IDLE, want 5", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no EXISTS during IDLE")
	}
	if err := idle.Close(); err != nil {
		t.Fatalf("DONE: %v", err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("LOGOUT: %v", err)
	}
}
