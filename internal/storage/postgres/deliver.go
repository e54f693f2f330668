package postgres

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// Group commit for deliveries.
//
// PostgreSQL already shares WAL flushes between transactions that commit
// at the same moment on different connections. What it cannot share is
// the account row lock: every delivery to an account holds that lock from
// its modseq allocation until its commit is flushed (see wtx), so
// deliveries to one busy account (a list, a role address) run one fsync
// at a time. The batcher takes every delivery waiting on this node into
// one transaction — one lock hold, one commit, one fsync for all of them —
// each inside its own SAVEPOINT so that one failing (over quota, unknown
// account) fails alone. Measured in bench_test.go (BenchmarkDeliver);
// figures in the package report.
const (
	defaultMaxBatch = 64 // deliveries per transaction
	maxCommitters   = 4  // concurrent batch transactions per node
	batchTimeout    = 2 * time.Minute
)

type deliverReq struct {
	ctx  context.Context
	d    mailstore.Delivery
	f    *facts
	res  []mailstore.AppendResult
	err  error
	done chan struct{}
}

type batcher struct {
	// shared counts deliveries that committed in a transaction with
	// others (tests check that batching happens at all).
	shared atomic.Int64

	mu         sync.Mutex
	queue      []*deliverReq // guarded by mu
	committers int           // guarded by mu
}

// Deliver stores one inbound message for all its local recipients in one
// transaction, shared with other deliveries waiting at the same moment.
func (s *Store) Deliver(ctx context.Context, d mailstore.Delivery) ([]mailstore.AppendResult, error) {
	if s.closed.Load() {
		return nil, mailstore.ErrClosed
	}
	f, err := newFacts(d.Raw)
	if err != nil {
		return nil, err
	}
	r := &deliverReq{ctx: ctx, d: d, f: f, done: make(chan struct{})}
	if s.maxBatch == 1 {
		date := now()
		err := s.write(ctx, func(w *wtx) error {
			var err error
			r.res, err = deliverOne(w, s, r, date)
			return err
		})
		return r.res, err
	}
	b := &s.batch
	b.mu.Lock()
	b.queue = append(b.queue, r)
	if b.committers < maxCommitters {
		b.committers++
		go s.commitLoop()
	}
	b.mu.Unlock()
	// Once a committer has taken the request its outcome is decided by
	// that transaction, so the caller waits for it rather than reporting a
	// cancellation for a message that may be stored after all. A request
	// still queued when its context ends is dropped by the committer.
	<-r.done
	return r.res, r.err
}

// commitLoop runs batches until the queue is empty.
func (s *Store) commitLoop() {
	b := &s.batch
	for {
		b.mu.Lock()
		n := min(len(b.queue), s.maxBatch)
		if n == 0 {
			b.committers--
			b.mu.Unlock()
			return
		}
		batch := make([]*deliverReq, 0, n)
		for _, r := range b.queue[:n] {
			if r.ctx.Err() != nil {
				r.err = r.ctx.Err()
				close(r.done)
				continue
			}
			batch = append(batch, r)
		}
		b.queue = append(b.queue[:0:0], b.queue[n:]...)
		b.mu.Unlock()
		if len(batch) > 0 {
			s.commitBatch(batch)
		}
	}
}

func (s *Store) commitBatch(batch []*deliverReq) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	date := now()
	err := s.write(ctx, func(w *wtx) error {
		if len(batch) == 1 {
			r := batch[0]
			r.res, r.err = deliverOne(w, s, r, date)
			return r.err
		}
		// Lock every account of the batch up front, in id order: the
		// deliveries then take their locks in whatever order they come
		// without breaking the global order (see wtx). Missing accounts
		// are skipped here and fail their own delivery below.
		var accts []int64
		for _, r := range batch {
			for _, t := range r.d.Recipients {
				accts = append(accts, t.AccountID)
			}
		}
		if err := w.lockAccounts(accts...); err != nil && !isNoSuchAccount(err) {
			return err
		}
		for _, r := range batch {
			r.res, r.err = nil, nil
			if _, err := w.Exec(ctx, "SAVEPOINT delivery"); err != nil {
				return fmt.Errorf("postgres: savepoint: %w", err)
			}
			bumped := maps.Clone(w.bumped)
			r.res, r.err = deliverOne(w, s, r, date)
			if c := pgCode(r.err); c == codeDeadlockDetected || c == codeSerializationFailure {
				return r.err // retry the whole batch
			}
			if r.err != nil {
				// This delivery alone is undone, modseq allocation
				// included.
				w.bumped = bumped
				if _, err := w.Exec(ctx, "ROLLBACK TO SAVEPOINT delivery"); err != nil {
					return fmt.Errorf("postgres: rollback to savepoint: %w", err)
				}
				continue
			}
			if _, err := w.Exec(ctx, "RELEASE SAVEPOINT delivery"); err != nil {
				return fmt.Errorf("postgres: release savepoint: %w", err)
			}
		}
		return nil
	})
	if err == nil && len(batch) > 1 {
		s.batch.shared.Add(int64(len(batch)))
	}
	for _, r := range batch {
		if err != nil {
			// The transaction as a whole failed: nothing was stored.
			r.res, r.err = nil, err
		}
		close(r.done)
	}
}

func isNoSuchAccount(err error) bool {
	return err != nil && errorsIs(err, mailstore.ErrNoSuchAccount)
}

// deliverOne stores one delivery inside a (batch) transaction.
func deliverOne(w *wtx, s *Store, r *deliverReq, date time.Time) ([]mailstore.AppendResult, error) {
	ts := make([]target, len(r.d.Recipients))
	for i, t := range r.d.Recipients {
		ts[i] = target{acct: t.AccountID, mb: t.MailboxID, f: r.f, flags: cleanFlags(t.Flags), date: date}
	}
	return s.storeMessages(w, ts, false)
}
