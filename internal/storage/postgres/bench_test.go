package postgres_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/storage/postgres"
)

// Run: go test -run '^$' -bench . -benchtime 2s ./internal/storage/postgres/
// (with ROOST_TEST_POSTGRES set). The names mirror the SQLite backend's
// benchmarks so `go test -bench . ./internal/storage/...` compares them.
//
// BenchmarkFsync is the baseline: how many single-row transactions one
// writer commits per second, each waiting for its own WAL flush. Delivery
// rates are best read as a ratio to it; deliveries/walsync (from
// pg_stat_wal, server-wide) above 1 means commits shared WAL flushes.
func BenchmarkFsync(b *testing.B) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, freshDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE fsync_probe (n bigint)"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := conn.Exec(ctx, "INSERT INTO fsync_probe VALUES (1)"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
}

// sizedMessage makes a distinct message of about size bytes, shaped like
// the SQLite benchmark's: plain text up to 4 KB, else a short text part
// and a base64 attachment.
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

func benchStore(b *testing.B, dsn string, conns int32) *postgres.Store {
	return benchStoreBatch(b, dsn, conns, 0)
}

func benchStoreBatch(b *testing.B, dsn string, conns int32, batch int) *postgres.Store {
	b.Helper()
	st, err := postgres.Open(context.Background(), dsn, postgres.Options{MaxConns: conns, MaxDeliveryBatch: batch})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

func walSyncs(b *testing.B, dsn string) int64 {
	var n int64
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(context.Background(), "SELECT wal_sync FROM pg_stat_wal").Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

func BenchmarkDeliver(b *testing.B) {
	for _, size := range []int{1 << 10, 100 << 10} {
		for _, writers := range []int{1, 32} {
			b.Run(fmt.Sprintf("%dKB/writers=%d", size>>10, writers), func(b *testing.B) {
				dsn := freshDatabase(b)
				st := benchStore(b, dsn, 16)
				benchDeliver(b, dsn, []*postgres.Store{st}, size, writers, 1)
			})
		}
	}
}

// BenchmarkDeliverRecipients delivers 10 KB messages to ten accounts
// each: the message's text is stored and indexed once per blob, not once
// per recipient (migration 0007).
func BenchmarkDeliverRecipients(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("10KB/rcpts=10/writers=%d", writers), func(b *testing.B) {
			dsn := freshDatabase(b)
			st := benchStore(b, dsn, 16)
			benchDeliverTo(b, dsn, []*postgres.Store{st}, 10<<10, writers, 10, 10)
		})
	}
}

// BenchmarkDeliverNoGroupCommit is BenchmarkDeliver with the batcher off
// (MaxDeliveryBatch 1): each delivery is its own transaction, and only
// PostgreSQL's own WAL flush sharing helps.
func BenchmarkDeliverNoGroupCommit(b *testing.B) {
	for _, writers := range []int{1, 32} {
		b.Run(fmt.Sprintf("1KB/writers=%d", writers), func(b *testing.B) {
			dsn := freshDatabase(b)
			st := benchStoreBatch(b, dsn, 16, 1)
			benchDeliver(b, dsn, []*postgres.Store{st}, 1<<10, writers, 1)
		})
	}
	b.Run("1KB/writers=32/accounts=16", func(b *testing.B) {
		dsn := freshDatabase(b)
		st := benchStoreBatch(b, dsn, 16, 1)
		benchDeliver(b, dsn, []*postgres.Store{st}, 1<<10, 32, 16)
	})
}

// BenchmarkDeliverTwoNodes delivers through two Stores on one database,
// as two nodes would; accounts=16 spreads the writers over accounts, so
// they contend only where they must (the account row of the same
// recipient).
func BenchmarkDeliverTwoNodes(b *testing.B) {
	for _, accounts := range []int{1, 16} {
		b.Run(fmt.Sprintf("1KB/writers=32/accounts=%d", accounts), func(b *testing.B) {
			dsn := freshDatabase(b)
			n1 := benchStore(b, dsn, 16)
			n2 := benchStore(b, dsn, 16)
			benchDeliver(b, dsn, []*postgres.Store{n1, n2}, 1<<10, 32, accounts)
		})
	}
}

func benchDeliver(b *testing.B, dsn string, nodes []*postgres.Store, size, writers, accounts int) {
	benchDeliverTo(b, dsn, nodes, size, writers, accounts, 1)
}

// benchDeliverTo is benchDeliver with rcpts recipients per message, each
// on another of the accounts.
func benchDeliverTo(b *testing.B, dsn string, nodes []*postgres.Store, size, writers, accounts, rcpts int) {
	ctx := context.Background()
	var ids []int64
	for i := range accounts {
		ids = append(ids, mustAccount(b, nodes[0], fmt.Sprintf("bench%d@example.test", i)).ID)
	}
	// Messages are made before the clock runs; each is distinct so no blob
	// is shared.
	msgs := make([][]byte, b.N)
	for i := range msgs {
		msgs[i] = sizedMessage(i, size)
	}
	s0 := walSyncs(b, dsn)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(int64(size))
	b.ResetTimer()
	for w := range writers {
		st := nodes[w%len(nodes)]
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(msgs) {
					return
				}
				to := make([]mailstore.DeliveryTarget, rcpts)
				for j := range to {
					to[j] = mailstore.DeliveryTarget{AccountID: ids[(i+j)%len(ids)]}
				}
				_, err := st.Deliver(ctx, mailstore.Delivery{Raw: msgs[i], Recipients: to})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	s1 := walSyncs(b, dsn)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	if s1 > s0 {
		b.ReportMetric(float64(b.N)/float64(s1-s0), "deliveries/walsync")
	}
}

// fillMailbox appends n small messages in batches (setup, not measured).
func fillMailbox(b *testing.B, s *postgres.Store, acct, mbox int64, n int) {
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

func inbox(b *testing.B, s *postgres.Store, acct int64) mailstore.Mailbox {
	mb, err := s.GetMailbox(context.Background(), acct, mailstore.InboxName)
	if err != nil {
		b.Fatal(err)
	}
	return mb
}

func BenchmarkFetchFlagsEnvelope10k(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b, freshDatabase(b), 4)
	a := mustAccount(b, s, "fetch@example.test")
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
// Changes after 100 flag changes, STATUS, the UID list and a text search
// (served by the pg_trgm indexes).
func BenchmarkMailbox100k(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b, freshDatabase(b), 4)
	a := mustAccount(b, s, "changes@example.test")
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
