package queue

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkQueueThroughput measures messages/s the queue delivers from the
// store to a local sink (go-smtp on loopback), ~10 KB each, one recipient
// domain per entry, counting claim, SMTP transaction and entry removal.
func BenchmarkQueueThroughput(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchQueue(b, nil) })
	// STARTTLS: each new connection pays a handshake, which connection
	// reuse (connpool.go) saves.
	b.Run("starttls", func(b *testing.B) { benchQueue(b, selfSigned(b)) })
}

func benchQueue(b *testing.B, tlsCfg *tls.Config) {
	st, alice := openStore(b, b.TempDir())
	defer st.Close()
	sk := startSinkTLS(b, "", tlsCfg)
	body := strings.Repeat(strings.Repeat("0123456789", 7)+"\r\n", 140)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		raw := fmt.Sprintf("From: alice@x.test\r\nTo: u%d@remote.test\r\nSubject: q%d\r\n\r\n%s", i, i, body)
		if _, err := enqueue(ctx, st, "alice@x.test", []string{fmt.Sprintf("u%d@remote.test", i)}, []byte(raw), alice.ID, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": sk.addr}, MaxConnsPerDest: 16}, testLogger())
	b.ResetTimer()
	start := time.Now()
	runQueue(b, q)
	sk.wait(b, b.N)
	waitFor(b, "empty queue", func() bool { return queueLen(b, st) == 0 })
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
}
