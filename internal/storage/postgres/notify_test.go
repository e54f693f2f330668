package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/storage/postgres"
)

func openStore(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, dsn, openOptions)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func mustAccount(t testing.TB, st mailstore.Store, name string) mailstore.Account {
	t.Helper()
	ctx := context.Background()
	if err := st.AddDomain(ctx, "example.test"); err != nil && !errors.Is(err, mailstore.ErrExists) {
		t.Fatalf("AddDomain: %v", err)
	}
	a, err := st.AddAccount(ctx, name, "x")
	if err != nil {
		t.Fatalf("AddAccount: %v", err)
	}
	return a
}

func deliver(t testing.TB, st mailstore.Store, acct int64, tag string) mailstore.AppendResult {
	t.Helper()
	raw := []byte(fmt.Sprintf("From: a@example.org\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\nbody %s\r\n", tag, tag, tag))
	res, err := st.Deliver(context.Background(), mailstore.Delivery{Raw: raw, Recipients: []mailstore.DeliveryTarget{{AccountID: acct}}})
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	return res[0]
}

func waitWake(t *testing.T, w *mailstore.Watcher, what string) {
	t.Helper()
	select {
	case <-w.C:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: watcher not woken within 10s", what)
	}
}

// drain empties a watcher's pending wake-up.
func drain(w *mailstore.Watcher) {
	select {
	case <-w.C:
	default:
	}
}

// TestCrossNodeWake runs two Stores ("nodes") on one database: a watcher
// on A must wake for a delivery made through B, also after A's LISTEN
// connection was killed, and the reconnect itself must wake it (changes
// made while the connection was down are then read from the feed).
func TestCrossNodeWake(t *testing.T) {
	dsn := freshDatabase(t)
	a := openStore(t, dsn)
	b := openStore(t, dsn)
	acct := mustAccount(t, b, "user@example.test")

	w := a.Watch(acct.ID)
	defer w.Close()
	other := a.Watch(acct.ID + 1000) // an account nobody writes to
	defer other.Close()

	res := deliver(t, b, acct.ID, "one")
	waitWake(t, w, "delivery through node B")
	ms, err := a.HighestModSeq(context.Background(), acct.ID)
	if err != nil || ms < res.ModSeq {
		t.Fatalf("node A after wake: modseq %d (err %v), want >= %d", ms, err, res.ModSeq)
	}
	select {
	case <-other.C:
		t.Fatal("a watcher of another account was woken by a delivery")
	default:
	}

	// Kill A's LISTEN connection from the server side.
	pid := postgres.ListenerPID(a)
	admin, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var ok bool
	if err := admin.QueryRow(context.Background(), "SELECT pg_terminate_backend($1)", int32(pid)).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d): %v %v", pid, ok, err)
	}
	// The reconnect wakes every watcher, whether or not anything changed,
	// since notifications sent while it was down are lost.
	waitWake(t, w, "listener reconnect")
	waitWake(t, other, "listener reconnect (every watcher)")
	deadline := time.Now().Add(10 * time.Second)
	for postgres.ListenerPID(a) == pid {
		if time.Now().After(deadline) {
			t.Fatal("listener did not reconnect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	drain(w)

	deliver(t, b, acct.ID, "two")
	waitWake(t, w, "delivery through node B after reconnect")
}

// TestLocalWakeWithoutListener: a node's own commits wake its watchers
// directly, not via the round trip through PostgreSQL.
func TestLocalWake(t *testing.T) {
	dsn := freshDatabase(t)
	a := openStore(t, dsn)
	acct := mustAccount(t, a, "user@example.test")
	w := a.Watch(acct.ID)
	defer w.Close()
	deliver(t, a, acct.ID, "local")
	select {
	case <-w.C:
	default:
		t.Fatal("own delivery did not wake the watcher by the time Deliver returned")
	}
}

// TestQueueWakeCrossesNodes: the outbound queue's wake-ups
// (mailstore.QueueWatchID, payload account 0) reach every node's queue
// watchers, for mail queued, retried, or given back due by a worker.
func TestQueueWakeCrossesNodes(t *testing.T) {
	dsn := freshDatabase(t)
	a := openStore(t, dsn)
	b := openStore(t, dsn)
	acct := mustAccount(t, b, "user@example.test")
	ctx := context.Background()

	wa := a.Watch(mailstore.QueueWatchID)
	defer wa.Close()
	wb := b.Watch(mailstore.QueueWatchID)
	defer wb.Close()

	now := time.Now()
	ids, err := b.Enqueue(ctx, []byte("Subject: q\r\n\r\nbody\r\n"), []mailstore.QueueEntry{{
		AccountID: acct.ID, From: "user@example.test", Recipients: []string{"x@remote.test"}, Domain: "remote.test",
		Created: now, NextAttempt: now.Add(time.Hour),
	}})
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	select {
	case <-wb.C:
	default:
		t.Fatal("own Enqueue did not wake the node's queue watcher by the time it returned")
	}
	waitWake(t, wa, "Enqueue through node B")

	if n, err := b.RetryQueue(ctx, nil, time.Now()); err != nil || n != 1 {
		t.Fatalf("RetryQueue: %d, %v", n, err)
	}
	waitWake(t, wa, "RetryQueue through node B")

	// A worker on B claims the entry and gives it back unattempted (as on
	// shutdown): it is due at once, so A's worker should look.
	claimed, err := b.ClaimDue(ctx, "node-b", time.Now(), time.Now().Add(time.Hour), 10)
	if err != nil || len(claimed) != 1 || claimed[0].ID != ids[0] {
		t.Fatalf("ClaimDue: %v, %v", claimed, err)
	}
	drain(wa)
	if err := b.UpdateQueueEntry(ctx, claimed[0]); err != nil {
		t.Fatalf("UpdateQueueEntry: %v", err)
	}
	waitWake(t, wa, "a lease given back due through node B")
}
