package smtpserver

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/roost-mail/roost/internal/benchmail"
	"github.com/roost-mail/roost/internal/storage/sqlite"
)

// BenchmarkMXAccept measures messages/s accepted (250 after a durable
// commit) on the MX port by a number of concurrent clients, each on its own
// connection, one or ten recipients per message.
func BenchmarkMXAccept(b *testing.B) {
	for _, rcpts := range []int{1, 10} {
		for _, clients := range []int{1, 16} {
			b.Run(fmt.Sprintf("rcpts=%d/clients=%d", rcpts, clients), func(b *testing.B) {
				benchMX(b, clients, rcpts)
			})
		}
	}
}

func benchMX(b *testing.B, clients, nrcpt int) {
	e := newEnv(b)
	ctx := context.Background()
	var to []string
	for i := 0; i < nrcpt; i++ {
		name := fmt.Sprintf("u%d@x.test", i)
		if _, err := e.store.AddAccount(ctx, name, "x"); err != nil {
			b.Fatal(err)
		}
		to = append(to, name)
	}
	_, addr := e.start(b, nil, Config{MaxConnsPerIP: -1}, false)
	msgs := benchMessages()
	conns := dialAll(b, addr, clients)
	st := e.store.(*sqlite.Store)
	b0, w0 := st.WriteStats()
	io0, ioOK := diskWrites()
	b.SetBytes(int64(len(msgs[0])))
	b.ResetTimer()
	start := time.Now()
	sendAll(b, conns, to, msgs)
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	// The full-text indexer runs beside the deliveries and may end behind
	// them; the rate at which messages were both accepted and indexed is
	// the one a steady stream of mail can be served at.
	for {
		n, err := st.IndexBacklog(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "indexed-msgs/s")
	// Bytes the process had written to disk per message: the store's
	// write amplification (WAL, checkpoints, full-text index).
	if io1, ok := diskWrites(); ok && ioOK {
		b.ReportMetric(float64(io1-io0)/1024/float64(b.N), "diskKB/msg")
	}
	// Writes per commit shows how much group commit is doing.
	if b1, w1 := st.WriteStats(); b1 > b0 {
		b.ReportMetric(float64(w1-w0)/float64(b1-b0), "writes/commit")
	}
}

func benchMessages() []string {
	msgs := make([]string, 256)
	for i := range msgs {
		msgs[i] = benchmail.Message(i, "s@remote.test", "bob@x.test")
	}
	return msgs
}

func dialAll(b *testing.B, addr string, n int) []*smtp.Client {
	conns := make([]*smtp.Client, n)
	for i := range conns {
		c, err := smtp.Dial(addr)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	return conns
}

// sendAll sends b.N messages over the connections, each connection on a
// goroutine of its own taking the next message number until b.N are sent.
func sendAll(b *testing.B, conns []*smtp.Client, to, msgs []string) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func(c *smtp.Client) {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := c.SendMail("s@remote.test", to, strings.NewReader(msgs[i%int64(len(msgs))])); err != nil {
					b.Error(err)
					return
				}
			}
		}(c)
	}
	wg.Wait()
}

// BenchmarkMXSink is the ceiling the machine puts on any SMTP server
// measured this way: the same client and the same go-smtp protocol code,
// against a backend that accepts every recipient and reads each message
// into nothing: no parsing, no store, no fsync. MXAccept's msgs/s over
// this one's is the share of the work that is Roost's own.
func BenchmarkMXSink(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			s := smtp.NewServer(sinkBackend{})
			s.Domain = "mx.x.test"
			s.MaxMessageBytes = 1 << 20
			// Connections of b.N=1's first run end without QUIT.
			s.ErrorLog = log.New(io.Discard, "", 0)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go s.Serve(ln)
			b.Cleanup(func() { s.Close() })
			msgs := benchMessages()
			conns := dialAll(b, ln.Addr().String(), clients)
			b.SetBytes(int64(len(msgs[0])))
			b.ResetTimer()
			start := time.Now()
			sendAll(b, conns, []string{"u0@x.test"}, msgs)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

type sinkBackend struct{}

func (sinkBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return sinkSession{}, nil }

type sinkSession struct{}

func (sinkSession) Reset()                               {}
func (sinkSession) Logout() error                        { return nil }
func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (sinkSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }

// BenchmarkFsyncBaseline is the disk's rate of small durable writes (write
// 512 bytes, fsync) in the same temp dir, the yardstick for the MX figures:
// messages/s divided by fsyncs/s shows what group commit buys.
func BenchmarkFsyncBaseline(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 512)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := f.WriteAt(buf, int64(i%64)*512); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "fsyncs/s")
}

// diskWrites is the bytes this process has caused to be written to
// storage so far (Linux /proc/self/io write_bytes); ok is false where
// that is not available.
func diskWrites() (n int64, ok bool) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, "write_bytes: "); found {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
