package postgres

import (
	"context"
	"fmt"
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
// deliveries to one busy account (a list, a role address) would run one
// commit at a time. The batcher takes every delivery waiting on this node
// into one transaction — one lock hold, one commit, one WAL flush, and a
// constant number of round trips (store.go) for all of them. Each
// delivery is still accepted or refused on its own (storeBatch). Measured
// by BenchmarkDeliver against BenchmarkDeliverNoGroupCommit.
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
	if len(d.Recipients) == 0 && len(d.Queue) == 0 {
		return nil, nil
	}
	f, err := newFacts(d.Raw)
	if err != nil {
		return nil, err
	}
	r := &deliverReq{ctx: ctx, d: d, f: f, done: make(chan struct{})}
	if len(d.Queue) > 0 {
		// A submission with remote recipients: local copies and queue
		// entries in one transaction of its own (not batched: the batch
		// shares one transaction between unrelated deliveries).
		date := now()
		err := s.write(ctx, func(w *wtx) error {
			// Local copies first: they lock their accounts' rows, which
			// every write transaction takes before anything else.
			if len(d.Recipients) > 0 {
				var err error
				if r.res, err = deliverOne(w, s, r, date); err != nil {
					return err
				}
			}
			_, err := s.enqueueIn(ctx, w, d.Raw, d.Queue)
			return err
		})
		return r.res, err
	}
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
		return s.storeBatch(w, batch, date)
	})
	if err != nil && len(batch) > 1 && ctx.Err() == nil && !errorsIs(err, mailstore.ErrClosed) {
		// Something the per-delivery checks did not foresee failed the
		// shared transaction: give each delivery its own, so one bad
		// delivery cannot fail the others.
		for _, r := range batch {
			r.res, r.err = nil, nil
			r.err = s.write(ctx, func(w *wtx) error {
				var err error
				r.res, err = deliverOne(w, s, r, date)
				return err
			})
			close(r.done)
		}
		return
	}
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

// storeBatch stores many deliveries in one transaction, accepting or
// refusing each on its own: a delivery naming a missing account or
// mailbox, or one that would put a recipient over quota, fails alone
// (checked in Go under the row locks, so no savepoint is needed), and the
// accepted ones are written together.
func (s *Store) storeBatch(w *wtx, batch []*deliverReq, date time.Time) error {
	// Every account of the batch is locked up front, in id order (see
	// wtx); missing ones are skipped here and fail their own delivery.
	var accts []int64
	var all []target
	per := make([][]target, len(batch))
	for i, r := range batch {
		r.res, r.err = nil, nil
		for _, t := range r.d.Recipients {
			accts = append(accts, t.AccountID)
			tg := target{acct: t.AccountID, mb: t.MailboxID, f: r.f, flags: cleanFlags(t.Flags), date: date}
			per[i] = append(per[i], tg)
			all = append(all, tg)
		}
	}
	if err := w.lockAccounts(accts...); err != nil && !isNoSuchAccount(err) {
		return err
	}
	mbs, inbox, err := lockMailboxes(w, all)
	if err != nil {
		return err
	}
	pending := map[int64][2]int64{}
	var todo []target
	var owner []int
	for i, r := range batch {
		need := map[int64][2]int64{}
		for j, t := range per[i] {
			if _, ok := w.locked[t.acct]; !ok {
				r.err = fmt.Errorf("account %d: %w", t.acct, mailstore.ErrNoSuchAccount)
				break
			}
			if t.mb == 0 {
				t.mb = inbox[t.acct]
				per[i][j].mb = t.mb
			}
			if mbs[mbKey{t.acct, t.mb}] == nil {
				r.err = fmt.Errorf("account %d: mailbox %d: %w", t.acct, t.mb, mailstore.ErrNoSuchMailbox)
				break
			}
			n := need[t.acct]
			n[0] += int64(len(t.f.p.Raw))
			n[1]++
			need[t.acct] = n
		}
		if r.err == nil {
			for acct, n := range need {
				p := pending[acct]
				if !w.usage[acct].fits(p[0]+n[0], p[1]+n[1]) {
					r.err = fmt.Errorf("account %d: %w", acct, mailstore.ErrOverQuota)
					break
				}
			}
		}
		if r.err != nil {
			continue
		}
		for acct, n := range need {
			p := pending[acct]
			pending[acct] = [2]int64{p[0] + n[0], p[1] + n[1]}
		}
		for _, t := range per[i] {
			todo = append(todo, t)
			owner = append(owner, i)
		}
	}
	res, err := s.writeTargets(w, todo, mbs)
	if err != nil {
		return err
	}
	for k, i := range owner {
		batch[i].res = append(batch[i].res, res[k])
	}
	return nil
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
