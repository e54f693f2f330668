package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// Push latency: how long after a writer's call returns a session watching
// the account (an IMAP IDLE) is woken.
//
//	go test -run '^$' -bench 'Push' -benchtime 200x ./internal/storage/postgres
//
// BenchmarkCrossNodePush writes through node B and watches on node A (two
// Stores on one database): the wake-up travels B's sender, NOTIFY, and A's
// LISTEN connection. BenchmarkSameNodePush is the baseline, writer and
// watcher on one node, where write() wakes the hub itself before it
// returns. Each reports push-p50/p99-ns (call returned -> watcher woken)
// and write-p50-ns (the call itself: one STORE, one commit), so the
// cross-node figure reads as a ratio to either.

func BenchmarkCrossNodePush(b *testing.B) { benchPush(b, true) }

func BenchmarkSameNodePush(b *testing.B) { benchPush(b, false) }

func benchPush(b *testing.B, crossNode bool) {
	ctx := context.Background()
	dsn := freshDatabase(b)
	watcher := benchStore(b, dsn, 4)
	writer := watcher
	if crossNode {
		writer = benchStore(b, dsn, 4)
	}
	acct := mustAccount(b, writer, "push@example.test").ID
	res := deliver(b, writer, acct, "push")
	w := watcher.Watch(acct)
	defer w.Close()

	// Each change toggles \Flagged on one message: a real modseq bump (an
	// unchanged STORE wakes nobody) at the smallest write cost.
	flip := func(i int) time.Duration {
		mode := mailstore.FlagsAdd
		if i%2 == 1 {
			mode = mailstore.FlagsRemove
		}
		drain(w)
		t0 := time.Now()
		r, err := writer.StoreFlags(ctx, acct, mailstore.StoreFlagsRequest{MailboxID: res.MailboxID, UIDs: mailstore.UIDSetOf(res.UID), Mode: mode, Flags: []string{mailstore.FlagFlagged}})
		if err != nil || len(r.Changed) != 1 {
			b.Fatalf("store flags: %+v, %v", r, err)
		}
		return time.Since(t0)
	}
	wait := func() {
		select {
		case <-w.C:
		case <-time.After(10 * time.Second):
			b.Fatal("watcher not woken within 10s")
		}
	}
	// Warm up: pools connected, statements prepared, LISTEN established.
	for i := range 10 {
		flip(i)
		wait()
	}

	push := make([]time.Duration, 0, b.N)
	write := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := flip(i)
		returned := time.Now()
		wait()
		push = append(push, time.Since(returned))
		write = append(write, d)
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(push, 50).Nanoseconds()), "push-p50-ns")
	b.ReportMetric(float64(percentile(push, 99).Nanoseconds()), "push-p99-ns")
	b.ReportMetric(float64(percentile(write, 50).Nanoseconds()), "write-p50-ns")
}

// percentile returns the p-th percentile (nearest rank) of ds, sorting it.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := (len(ds)*p + 99) / 100 // ceil(n*p/100), 1-based
	return ds[max(i, 1)-1]
}
