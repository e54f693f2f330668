package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/storage/postgres"
)

// wakeDeadline bounds how long a worker on another store handle may take
// to act on a retry or an enqueue. The workers run with MaxIdle = 1 hour,
// so within this deadline only the store's queue wake-up
// (mailstore.QueueWatchID) can explain a delivery. It is a hang guard, not
// a performance figure: SQLite's poller looks once a second.
const wakeDeadline = 15 * time.Second

// listSpy is a real store that also hands every queue listing to the
// test: Run lists the queue right before it goes to sleep, so a listing
// shows what the sleeping worker knew.
type listSpy struct {
	mailstore.Store
	lists chan []mailstore.QueueEntry
}

func (s *listSpy) ListQueue(ctx context.Context) ([]mailstore.QueueEntry, error) {
	es, err := s.Store.ListQueue(ctx)
	if err == nil {
		select {
		case s.lists <- es:
		default: // the test asserts on later listings, never on all of them
		}
	}
	return es, err
}

// awaitListing waits for the worker to list the queue in a state that
// satisfies ok, then returns: the worker is about to sleep on that state.
func (s *listSpy) awaitListing(t *testing.T, what string, ok func([]mailstore.QueueEntry) bool) {
	t.Helper()
	deadline := time.After(wakeDeadline)
	for {
		select {
		case es := <-s.lists:
			if ok(es) {
				return
			}
		case <-deadline:
			t.Fatalf("the worker never listed the queue with %s", what)
		}
	}
}

// awaitSink waits until sk holds n messages, within wakeDeadline.
func awaitSink(t *testing.T, sk *sink, n int, after string) {
	t.Helper()
	deadline := time.After(wakeDeadline)
	for len(sk.messages()) < n {
		select {
		case <-sk.got:
		case <-deadline:
			t.Fatalf("%v after %s the sink holds %d messages, want %d: the other handle's worker was not woken",
				wakeDeadline, after, len(sk.messages()), n)
		}
	}
}

// testCrossHandleWake runs a worker on store b and changes the queue only
// through store a (another process, or another node): a retry and an
// enqueue made through a must reach b's worker long before its idle cap.
func testCrossHandleWake(t *testing.T, a, b mailstore.Store, acctID int64) {
	ctx := context.Background()
	sk := startSink(t, "")
	spy := &listSpy{Store: b, lists: make(chan []mailstore.QueueEntry, 1000)}
	q := New(spy, Config{Hostname: "mx.x.test", NodeID: "node-b", Transport: map[string]string{"remote.test": sk.addr},
		MaxIdle: time.Hour, WarnAfter: -1}, testLogger())
	runQueue(t, q)

	// An entry due in an hour, as after a failed attempt.
	now := time.Now()
	ids, err := a.Enqueue(ctx, []byte(testMsg), []mailstore.QueueEntry{{
		AccountID: acctID, From: "alice@x.test", Recipients: []string{"bob@remote.test"}, Domain: "remote.test",
		Created: now, NextAttempt: now.Add(time.Hour), Attempts: 1,
	}})
	if err != nil {
		t.Fatal(err)
	}
	spy.awaitListing(t, "the entry due in an hour", func(es []mailstore.QueueEntry) bool {
		return len(es) == 1 && es[0].ID == ids[0] && es[0].NextAttempt.After(time.Now().Add(30*time.Minute))
	})
	// The worker now sleeps for an hour unless woken.
	if len(sk.messages()) != 0 {
		t.Fatal("delivered before due")
	}
	if n, err := Retry(ctx, a, nil); err != nil || n != 1 {
		t.Fatalf("Retry through the other handle: %d, %v", n, err)
	}
	awaitSink(t, sk, 1, "a retry through the other handle")
	spy.awaitListing(t, "an empty queue", func(es []mailstore.QueueEntry) bool { return len(es) == 0 })

	// Idle on an empty queue: new mail queued through a wakes it too.
	raw := strings.Replace(testMsg, "Subject: out", "Subject: second", 1)
	if _, err := enqueue(ctx, a, "alice@x.test", []string{"carol@remote.test"}, []byte(raw), acctID, time.Now()); err != nil {
		t.Fatal(err)
	}
	awaitSink(t, sk, 2, "an enqueue through the other handle")
	if m := sk.messages(); m[0].Data != testMsg || m[1].Data != raw {
		t.Fatalf("sink got %+v", m)
	}
}

// TestRetryWakesOtherProcessSQLite: two sqlite.Open of one directory are
// two processes' worth of store (own writer, own hub); the CLI's `roost
// queue retry` is the first, the server's worker the second.
func TestRetryWakesOtherProcessSQLite(t *testing.T) {
	dir := t.TempDir()
	a, alice := openStore(t, dir)
	defer a.Close()
	b, _ := openStore(t, dir)
	defer b.Close()
	testCrossHandleWake(t, a, b, alice.ID)
}

// TestRetryWakesOtherNodePostgres: two postgres Stores on one database
// are two nodes; the wake-up crosses over LISTEN/NOTIFY.
func TestRetryWakesOtherNodePostgres(t *testing.T) {
	dsn := freshPostgres(t)
	open := func() mailstore.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := postgres.Open(ctx, dsn, postgres.Options{MaxConns: 4})
		if err != nil {
			t.Fatalf("postgres.Open: %v", err)
		}
		return st
	}
	a := open()
	defer a.Close()
	b := open()
	defer b.Close()
	ctx := context.Background()
	if err := a.AddDomain(ctx, "x.test"); err != nil {
		t.Fatal(err)
	}
	alice, err := a.AddAccount(ctx, "alice@x.test", "x")
	if err != nil {
		t.Fatal(err)
	}
	testCrossHandleWake(t, a, b, alice.ID)
}

// freshPostgres creates an empty database on the server named by
// ROOST_TEST_POSTGRES (see .ci/postgres.sh) and drops it after the test.
func freshPostgres(t *testing.T) string {
	t.Helper()
	admin := os.Getenv("ROOST_TEST_POSTGRES")
	if admin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("ROOST_TEST_POSTGRES not set on CI: the PostgreSQL queue test cannot run (see .ci/postgres.sh)")
		}
		t.Skip("ROOST_TEST_POSTGRES not set: PostgreSQL queue test skipped (export ROOST_TEST_POSTGRES=\"$(.ci/postgres.sh)\")")
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	name := "roostqueue_" + hex.EncodeToString(rnd[:])
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		if err := exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(admin, name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// withDatabase points a DSN (URL or key=value form) at database name.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", errors.New("ROOST_TEST_POSTGRES is not a valid URL")
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	return dsn + " dbname=" + name, nil // key=value form: the last setting wins
}
