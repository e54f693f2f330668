package imapserver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// Benchmarks drive the real server over sockets on 127.0.0.1 with a
// temp-dir SQLite store, like the tests. Run for example:
//
//	go test ./internal/imapserver -run XXX -bench . -benchtime 200x

func benchUsers(n int) []string {
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("user%d@example.test", i)
	}
	return users
}

// BenchmarkMixedWorkload: each client repeats SELECT, FETCH flags and
// envelopes, STORE, SEARCH, APPEND, EXPUNGE in its own account; reports
// commands per second over all clients.
func BenchmarkMixedWorkload(b *testing.B) {
	for _, clients := range []int{1, 50} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			users := benchUsers(clients)
			env := newTestEnv(b, Config{}, users...)
			conns := make([]*rawClient, clients)
			for i, u := range users {
				for j := 1; j <= 20; j++ {
					env.deliver(b, u, testMessage(j))
				}
				conns[i] = env.login(b, u)
			}
			const perRound = 7
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for i, c := range conns {
				rounds := b.N / clients
				if i < b.N%clients {
					rounds++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for r := 0; r < rounds; r++ {
						c.ok("SELECT INBOX")
						c.ok("FETCH 1:10 (FLAGS ENVELOPE)")
						c.ok(`STORE 1:5 +FLAGS (\Seen)`)
						c.ok("SEARCH UNSEEN")
						c.ok("APPEND INBOX {30+}\r\nSubject: bench\r\n\r\nbody bytes\r\n")
						c.ok(`STORE * +FLAGS.SILENT (\Deleted)`)
						c.ok("EXPUNGE")
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N*perRound)/time.Since(start).Seconds(), "cmds/s")
		})
	}
}

// BenchmarkPushLatency: time from a STORE on one session to the untagged
// FETCH on another session of the account idling in the same mailbox.
func BenchmarkPushLatency(b *testing.B) {
	env := newTestEnv(b, Config{})
	env.deliver(b, "alice@example.test", testMessage(1))
	idler := env.login(b, "alice@example.test")
	idler.ok("SELECT INBOX")
	idler.send("i IDLE")
	idler.expect(`^\+ `)
	actor := env.login(b, "alice@example.test")
	actor.ok("SELECT INBOX")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		op := "+"
		if i%2 == 1 {
			op = "-"
		}
		start := time.Now()
		actor.send(fmt.Sprintf("s%d STORE 1 %sFLAGS.SILENT (\\Flagged)", i, op))
		idler.expect(`^\* 1 FETCH `)
		lat = append(lat, time.Since(start))
		actor.readUntil(fmt.Sprintf("s%d", i))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkFetch10k: FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE) on a
// mailbox of 10,000 messages.
func BenchmarkFetch10k(b *testing.B) {
	env := newTestEnv(b, Config{})
	acct := env.users["alice@example.test"]
	ctx := context.Background()
	inbox, err := env.store.GetMailbox(ctx, acct.ID, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	const n = 10000
	for i := 0; i < n; i += 500 {
		reqs := make([]mailstore.AppendRequest, 500)
		for j := range reqs {
			reqs[j] = mailstore.AppendRequest{MailboxID: inbox.ID, Raw: []byte(testMessage(i + j))}
		}
		if _, err := env.store.Append(ctx, acct.ID, reqs); err != nil {
			b.Fatal(err)
		}
	}
	c := env.login(b, "alice@example.test")
	c.ok("SELECT INBOX")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lines := c.ok("FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE)")
		if len(lines) != n+1 {
			b.Fatalf("%d lines", len(lines))
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkIdleSessionMemory: heap and stack per session with 1,000
// sessions selected and idling. The clients are bare sockets driven from
// one goroutine so that they add little to the measure.
func BenchmarkIdleSessionMemory(b *testing.B) {
	const sessions = 1000
	for i := 0; i < b.N; i++ {
		env := newTestEnv(b, Config{})
		buf := make([]byte, 4096)
		readUntil := func(c net.Conn, want string) {
			var got []byte
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			for !bytes.Contains(got, []byte(want)) {
				n, err := c.Read(buf)
				if err != nil {
					b.Fatalf("read: %v (%q)", err, got)
				}
				got = append(got, buf[:n]...)
			}
		}
		// Warm up: one session, so that one-off allocations are not counted.
		warm, err := net.Dial("tcp", env.addr)
		if err != nil {
			b.Fatal(err)
		}
		readUntil(warm, "\r\n")
		io.WriteString(warm, "a LOGIN alice@example.test \"secret pass\"\r\nb SELECT INBOX\r\n")
		readUntil(warm, "b OK")
		beforeHeap, beforeStack := memUse()
		conns := make([]net.Conn, sessions)
		for j := range conns {
			c, err := net.Dial("tcp", env.addr)
			if err != nil {
				b.Fatal(err)
			}
			conns[j] = c
			readUntil(c, "\r\n")
			io.WriteString(c, "a LOGIN alice@example.test \"secret pass\"\r\nb SELECT INBOX\r\nc IDLE\r\n")
			readUntil(c, "+ idling")
		}
		afterHeap, afterStack := memUse()
		heap := float64(afterHeap) - float64(beforeHeap)
		stack := float64(afterStack) - float64(beforeStack)
		b.ReportMetric((heap+stack)/sessions, "bytes/session")
		b.ReportMetric(heap/sessions, "heap-bytes/session")
		b.ReportMetric(stack/sessions, "stack-bytes/session")
		for _, c := range conns {
			c.Close()
		}
		warm.Close()
	}
}

// memUse returns live heap and goroutine stack bytes after collection
// (collections also shrink idle goroutines' stacks, as they do in a
// long-running server).
func memUse() (heap, stack uint64) {
	for i := 0; i < 6; i++ {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.StackInuse
}
