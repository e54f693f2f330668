package imapserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// BenchmarkFanout2000: 2,000 sessions of one account idle in INBOX over
// real sockets; one delivery; the time until every session has read its
// "* n EXISTS". Reports the median session (p50-ms) and the last one
// (p100-ms), averaged over iterations. Target: p100 under 1 s.
func BenchmarkFanout2000(b *testing.B) {
	const sessions = 2000
	// Each session is two descriptors in this process (client and server
	// end), plus the store's.
	raiseNoFile(b, 2*sessions+256)
	env := newTestEnv(b, Config{})
	env.deliver(b, "alice@example.test", testMessage(0))
	type idler struct {
		c net.Conn
		r *bufio.Reader
	}
	idlers := make([]idler, sessions)
	for i := range idlers {
		c, err := net.Dial("tcp", env.addr)
		if err != nil {
			b.Fatalf("dial %d: %v", i, err)
		}
		defer c.Close()
		idlers[i] = idler{c, bufio.NewReaderSize(c, 512)}
		io.WriteString(c, "a LOGIN alice@example.test \"secret pass\"\r\nb SELECT INBOX\r\nc IDLE\r\n")
		if err := readLineUntil(idlers[i].r, c, "+ "); err != nil {
			b.Fatalf("session %d: %v", i, err)
		}
	}
	ctx := context.Background()
	var sumP50, sumP100 time.Duration
	// b.Loop runs this function once: the 2,000 logins are not repeated.
	n := 0
	for ; b.Loop(); n++ {
		want := fmt.Sprintf("* %d EXISTS", n+2)
		lat := make([]time.Duration, sessions)
		errs := make(chan error, sessions)
		var ready, done sync.WaitGroup
		start := make(chan time.Time)
		for i := range idlers {
			ready.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				ready.Done()
				t0 := <-start
				if err := readLineUntil(idlers[i].r, idlers[i].c, want); err != nil {
					errs <- fmt.Errorf("session %d: %w", i, err)
					return
				}
				lat[i] = time.Since(t0)
			}()
		}
		ready.Wait()
		t0 := time.Now()
		if _, err := env.store.Deliver(ctx, mailstore.Delivery{
			Raw:        []byte(testMessage(n + 1)),
			Recipients: []mailstore.DeliveryTarget{{AccountID: env.users["alice@example.test"].ID}},
		}); err != nil {
			b.Fatal(err)
		}
		for range idlers {
			start <- t0
		}
		done.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		slices.Sort(lat)
		sumP50 += lat[len(lat)/2]
		sumP100 += lat[len(lat)-1]
	}
	b.ReportMetric(float64(sumP50.Microseconds())/1000/float64(n), "p50-ms")
	b.ReportMetric(float64(sumP100.Microseconds())/1000/float64(n), "p100-ms")
}

// readLineUntil reads lines until one starts with prefix.
func readLineUntil(r *bufio.Reader, c net.Conn, prefix string) error {
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("waiting for %q: %w (last %q)", prefix, err, l)
		}
		if strings.HasPrefix(l, prefix) {
			return nil
		}
	}
}

// BenchmarkQresyncSelect100k: SELECT INBOX (QRESYNC (uidvalidity modseq))
// on a 100,000-message mailbox after 100 changes since the client's
// modseq (50 flag changes, 50 expunges): the reconnect of a client that
// was away for a short while.
func BenchmarkQresyncSelect100k(b *testing.B) {
	const n = 100_000
	env := newTestEnv(b, Config{})
	acct := env.users["alice@example.test"]
	ctx := context.Background()
	inbox, err := env.store.GetMailbox(ctx, acct.ID, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	for i := 0; i < n; i += batch {
		reqs := make([]mailstore.AppendRequest, batch)
		for j := range reqs {
			reqs[j] = mailstore.AppendRequest{MailboxID: inbox.ID, Raw: []byte(testMessage(i + j))}
		}
		if _, err := env.store.Append(ctx, acct.ID, reqs); err != nil {
			b.Fatal(err)
		}
	}
	since, err := env.store.HighestModSeq(ctx, acct.ID)
	if err != nil {
		b.Fatal(err)
	}
	inbox, err = env.store.GetMailbox(ctx, acct.ID, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	// 100 changes spread over the mailbox: flag changes on some messages,
	// expunges of others.
	for i := 0; i < 50; i++ {
		u := mailstore.UID(1 + i*1999)
		if _, err := env.store.StoreFlags(ctx, acct.ID, mailstore.StoreFlagsRequest{
			MailboxID: inbox.ID, UIDs: mailstore.UIDSet{{Lo: u, Hi: u}}, Mode: mailstore.FlagsAdd, Flags: []string{mailstore.FlagFlagged},
		}); err != nil {
			b.Fatal(err)
		}
		x := u + 7
		if _, _, err := env.store.Expunge(ctx, acct.ID, inbox.ID, mailstore.UIDSet{{Lo: x, Hi: x}}); err != nil {
			b.Fatal(err)
		}
	}
	c := env.login(b, "alice@example.test")
	c.ok("ENABLE QRESYNC")
	cmd := fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d))", inbox.UIDValidity, since)
	lines := c.ok(cmd)
	fetches := 0
	for _, l := range lines {
		if strings.Contains(l, " FETCH (") {
			fetches++
		}
	}
	mustHave(b, lines, `^\* VANISHED \(EARLIER\) `, fmt.Sprintf(`^\* %d EXISTS`, n-50))
	if fetches != 50 {
		b.Fatalf("%d FETCH responses, want 50:\n%s", fetches, strings.Join(lines, "\n"))
	}
	// b.Loop runs this function once: the 100k-message setup is not
	// repeated for each b.N.
	for b.Loop() {
		c.ok(cmd)
	}
}
