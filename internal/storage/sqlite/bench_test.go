package sqlite

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
)

// Run: go test -run '^$' -bench . -benchtime 2s ./internal/storage/sqlite/
//
// BenchmarkFsync is the baseline: how many write+fsync cycles the temp
// dir's disk does per second. Delivery rates are best read as a ratio to
// it: above 1 means group commit shares fsyncs between deliveries.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte("x"), 512)
	for b.Loop() {
		if _, err := f.WriteAt(buf, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
}

// sizedMessage makes a distinct message of about size bytes. Up to 4 KB
// it is plain text; larger ones are shaped like most large mail: a short
// text part and a base64 attachment (text is what the full-text index
// pays for, per byte, far more than a blob).
func sizedMessage(i, size int) []byte {
	head := fmt.Sprintf("From: sender@example.org\r\nTo: rcpt@example.test\r\nSubject: message %d\r\nMessage-ID: <%d.bench@example.org>\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n", i, i)
	line := "The quick brown fox jumps over the lazy dog, again and again.\r\n"
	var b bytes.Buffer
	b.WriteString(head)
	if size <= 4<<10 {
		b.WriteString("\r\n")
		for b.Len() < size {
			b.WriteString(line)
		}
		return b.Bytes()
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n")
	for range 30 {
		b.WriteString(line)
	}
	b.WriteString("--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	chunk := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(i), 0xfe, 0x01}, 19))
	for b.Len() < size-10 {
		b.WriteString(chunk + "\r\n")
	}
	b.WriteString("--b--\r\n")
	return b.Bytes()
}

func BenchmarkDeliver(b *testing.B) {
	for _, size := range []int{1 << 10, 100 << 10} {
		for _, writers := range []int{1, 32} {
			b.Run(fmt.Sprintf("%dKB/writers=%d", size>>10, writers), func(b *testing.B) {
				benchDeliver(b, size, writers, 1)
			})
		}
	}
}

// BenchmarkDeliverFanout delivers 10 KB messages to 10 local recipients
// each, from 16 concurrent writers: the shape of list or team mail, where
// per-recipient costs (one message row each) and per-message costs (one
// blob, one full-text index entry) separate.
func BenchmarkDeliverFanout(b *testing.B) {
	b.Run("10KB/rcpts=10/writers=16", func(b *testing.B) {
		benchDeliver(b, 10<<10, 16, 10)
	})
}

func benchDeliver(b *testing.B, size, writers, rcpts int) {
	ctx := context.Background()
	s, _ := openTest(b)
	targets := make([]mailstore.DeliveryTarget, rcpts)
	for i := range targets {
		a := addAccount(b, s, fmt.Sprintf("bench%d@example.test", i))
		targets[i] = mailstore.DeliveryTarget{AccountID: a.ID}
	}
	// Messages are made before the clock runs; each is distinct so no blob
	// is shared.
	msgs := make([][]byte, b.N)
	for i := range msgs {
		msgs[i] = sizedMessage(i, size)
	}
	b0, w0 := s.WriteStats()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(msgs) {
					return
				}
				_, err := s.Deliver(ctx, mailstore.Delivery{Raw: msgs[i], Recipients: targets})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b1, w1 := s.WriteStats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	if b1 > b0 {
		b.ReportMetric(float64(w1-w0)/float64(b1-b0), "writes/commit")
	}
}

// fillMailbox appends n small messages in batches (setup, not measured).
func fillMailbox(b testing.TB, s *Store, acct, mbox int64, n int) {
	ctx := context.Background()
	const batch = 1000
	for lo := 0; lo < n; lo += batch {
		reqs := make([]mailstore.AppendRequest, 0, batch)
		for i := lo; i < min(n, lo+batch); i++ {
			reqs = append(reqs, mailstore.AppendRequest{MailboxID: mbox, Raw: sizedMessage(i, 300)})
		}
		if _, err := s.Append(ctx, acct, reqs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFetchFlagsEnvelope10k(b *testing.B) {
	ctx := context.Background()
	s, _ := openTest(b)
	a := addAccount(b, s, "fetch@example.test")
	in := inbox(b, s, a.ID)
	const n = 10000
	fillMailbox(b, s, a.ID, in.ID, n)
	all := mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}
	for b.Loop() {
		count := 0
		err := s.Fetch(ctx, a.ID, in.ID, all, mailstore.FetchEnvelope, 0, func(m *mailstore.Message) error {
			if m.Envelope == nil {
				return fmt.Errorf("uid %d: no envelope", m.UID)
			}
			count++
			return nil
		})
		if err != nil || count != n {
			b.Fatalf("fetched %d, %v", count, err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "messages/s")
}

// BenchmarkMailbox100k measures reads on a 100,000-message mailbox:
// Changes after 100 flag changes, STATUS, the UID list and a body search.
func BenchmarkMailbox100k(b *testing.B) {
	ctx := context.Background()
	s, _ := openTest(b)
	a := addAccount(b, s, "changes@example.test")
	in := inbox(b, s, a.ID)
	const n = 100000
	fillMailbox(b, s, a.ID, in.ID, n)
	since, err := s.HighestModSeq(ctx, a.ID)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		uid := mailstore.UID(1 + i*(n/100))
		if _, err := s.StoreFlags(ctx, a.ID, mailstore.StoreFlagsRequest{MailboxID: in.ID, UIDs: mailstore.UIDSetOf(uid), Mode: mailstore.FlagsAdd, Flags: []string{mailstore.FlagSeen}}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Changes100", func(b *testing.B) {
		for b.Loop() {
			ch, err := s.Changes(ctx, a.ID, since, 0)
			if err != nil || len(ch) != 100 {
				b.Fatalf("changes = %d, %v", len(ch), err)
			}
		}
	})
	b.Run("Status", func(b *testing.B) {
		for b.Loop() {
			st, err := s.Status(ctx, a.ID, in.ID)
			if err != nil || st.Messages != n || st.Unseen != n-100 {
				b.Fatalf("status = %+v, %v", st, err)
			}
		}
	})
	b.Run("UIDs", func(b *testing.B) {
		for b.Loop() {
			uids, _, err := s.UIDs(ctx, a.ID, in.ID)
			if err != nil || len(uids) != n {
				b.Fatalf("uids = %d, %v", len(uids), err)
			}
		}
	})
	b.Run("SearchBody", func(b *testing.B) {
		// Message 77777's subject is unique; its trigrams are not.
		key := &mailstore.SearchKey{Op: mailstore.SearchText, Value: "message 77777"}
		for b.Loop() {
			got, err := s.Search(ctx, a.ID, in.ID, key)
			if err != nil || len(got) != 1 {
				b.Fatalf("search = %v, %v", got, err)
			}
		}
	})
}

// BenchmarkSearchText searches the bodies of 5,000 indexed 4 KB messages
// of prose: a needle in one message in 100, a phrase whose words are in
// every message but together in one in 100 (every entry holds all its
// trigrams, so each is tested for the phrase), and a needle in none.
func BenchmarkSearchText(b *testing.B) {
	ctx := context.Background()
	s, _ := openTest(b)
	a := addAccount(b, s, "search@example.test")
	in := inbox(b, s, a.ID)
	const n = 5000
	words := []string{"budget", "meeting", "quarterly", "report", "invoice", "project", "status", "review", "client", "deadline"}
	reqs := make([]mailstore.AppendRequest, 0, 500)
	for i := range n {
		var body bytes.Buffer
		for j := 0; body.Len() < 4<<10; j++ {
			body.WriteString(words[(i*7+j*3)%len(words)])
			body.WriteString(" ")
			if j%12 == 11 {
				body.WriteString("\r\n")
			}
		}
		if i%100 == 0 {
			body.WriteString("\r\nzanzibar review meeting\r\n")
		}
		reqs = append(reqs, mailstore.AppendRequest{MailboxID: in.ID, Raw: msg(fmt.Sprint("m", i), fmt.Sprint(i, "@x"), body.String())})
		if len(reqs) == cap(reqs) {
			if _, err := s.Append(ctx, a.ID, reqs); err != nil {
				b.Fatal(err)
			}
			reqs = reqs[:0]
		}
	}
	waitIndexed(b, s)
	for _, c := range []struct {
		name, needle string
		want         int
	}{{"rare", "zanzibar", n / 100}, {"phrase", "review meeting", n / 100}, {"none", "xylophone", 0}} {
		b.Run(c.name, func(b *testing.B) {
			k := &mailstore.SearchKey{Op: mailstore.SearchBody, Value: c.needle}
			for b.Loop() {
				if got := searchUIDs(b, s, a.ID, in.ID, k); len(got) != c.want {
					b.Fatalf("%q: %d results, want %d", c.needle, len(got), c.want)
				}
			}
		})
	}
}
