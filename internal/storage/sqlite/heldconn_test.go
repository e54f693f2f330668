package sqlite

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
)

// TestReadTxStartsNoGoroutine: a read transaction and the queries inside
// it start no goroutine (heldconn.go). With database/sql's Tx each would
// start one, and the count inside would be at least two higher.
func TestReadTxStartsNoGoroutine(t *testing.T) {
	s, _ := openTest(t)
	a := addAccount(t, s, "held@example.test")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A warm-up: the first read transaction opens its connection.
	if _, err := s.MailboxKeywords(ctx, a.ID, inbox(t, s, a.ID).ID); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	var during int
	err := s.readTx(ctx, func(tx *rtx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM mailboxes WHERE account_id = ?`, a.ID)
		if err != nil {
			return err
		}
		defer rows.Close()
		if !rows.Next() {
			return errors.New("no mailbox")
		}
		during = runtime.NumGoroutine()
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if during > before {
		t.Fatalf("goroutines: %d before the read transaction, %d inside it", before, during)
	}
}

// TestHeldConnBegin: a connection left inside a transaction (a ROLLBACK
// that did not happen) is rolled back by the next begin instead of
// failing every later transaction on it.
func TestHeldConnBegin(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	h, err := s.rconns.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.begin(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ExecContext(ctx, "BEGIN"); err == nil {
		t.Fatal("BEGIN inside a transaction succeeded: the case below is not tested")
	}
	if err := h.begin(ctx, "BEGIN"); err != nil {
		t.Fatalf("begin on a connection left in a transaction: %v", err)
	}
	if err := h.rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.rollback(ctx); err == nil {
		t.Fatal("ROLLBACK outside a transaction succeeded: begin left two open")
	}
	s.rconns.put(h, true)
}

// TestReadConnsReuse: read transactions reuse the most recently returned
// connection, a failed one is replaced, and get waits for a free one.
func TestReadConnsReuse(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	p := newReadConns(s.rdb, 1)
	defer p.close()
	h1, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// All in use: get waits until its context ends.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.get(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("get with every connection in use: %v", err)
	}
	p.put(h1, true)
	h2, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h2 != h1 {
		t.Fatal("a free connection was not reused")
	}
	// h2 fails inside a transaction holding a snapshot: discarded, it
	// must not reach the pool, whose single queries would read that
	// snapshot (the pool hands out the connection returned last).
	var before, after int
	if err := h2.begin(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if err := h2.QueryRowContext(ctx, `SELECT count(*) FROM accounts`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	p.put(h2, false)
	addAccount(t, s, "later@example.test")
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM accounts`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != before+1 {
		t.Fatalf("a single query after the discard saw %d accounts, want %d: the failed connection's snapshot", after, before+1)
	}
	h3, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h3 == h1 {
		t.Fatal("a failed connection was handed out again")
	}
	if err := h3.begin(ctx, "BEGIN"); err != nil {
		t.Fatalf("replacement connection: %v", err)
	}
	if err := h3.rollback(ctx); err != nil {
		t.Fatal(err)
	}
	p.put(h3, true)
	p.close()
	if _, err := p.get(ctx); !errors.Is(err, mailstore.ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
}
