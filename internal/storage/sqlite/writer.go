package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// writeReq is one Store method's write, waiting for the writer.
type writeReq struct {
	ctx    context.Context
	fn     func(w *wtx) error
	result chan error // buffered (1): the writer never blocks answering
	// sync says when the request's commit must be synced before it is
	// answered (flagsync.go).
	sync syncClass
}

// wtx is what a write function sees: the batch's transaction (on the
// writer's held connection, heldconn.go) plus the bookkeeping of its own
// request.
type wtx struct {
	conn *heldConn
	ctx  context.Context // the writer's, never a caller's: see writer
	now  time.Time
	// changed holds, per account, the highest modseq this request took:
	// the wake-ups to send once the batch commits.
	changed map[int64]mailstore.ModSeq
	// textAdded: this request put text in fts_pending (the indexer is
	// woken after the commit).
	textAdded bool
	// mustSync: this request, submitted as one that may go unsynced,
	// changed something a power cut must not undo (flagsync.go).
	mustSync bool
	// newTexts and droppedTexts change the store's pendingTexts once the
	// batch commits (pendingtext.go).
	newTexts     []pendingEntry
	droppedTexts []int64
}

// pendingEntry is a new entry's text, for pendingTexts.
type pendingEntry struct {
	id   int64
	text ftsText
}

func (w *wtx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return w.conn.ExecContext(ctx, query, args...)
}

func (w *wtx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return w.conn.QueryContext(ctx, query, args...)
}

func (w *wtx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return w.conn.QueryRowContext(ctx, query, args...)
}

func (w *wtx) exec(query string, args ...any) (sql.Result, error) {
	return w.ExecContext(w.ctx, query, args...)
}

func (w *wtx) query(query string, args ...any) (*sql.Rows, error) {
	return w.QueryContext(w.ctx, query, args...)
}

func (w *wtx) queryRow(query string, args ...any) *sql.Row {
	return w.QueryRowContext(w.ctx, query, args...)
}

// nextModSeq takes the account's next modseq. Every change of an account
// takes one (RFC 7162 section 3.1: a strictly increasing value per change).
func (w *wtx) nextModSeq(accountID int64) (mailstore.ModSeq, error) {
	var m mailstore.ModSeq
	err := w.queryRow(`UPDATE accounts SET modseq = modseq + 1 WHERE id = ? RETURNING modseq`, accountID).Scan(&m)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("account %d: %w", accountID, mailstore.ErrNoSuchAccount)
	}
	if err != nil {
		return 0, fmt.Errorf("next modseq: %w", err)
	}
	w.changed[accountID] = max(w.changed[accountID], m)
	return m, nil
}

// update runs fn as one atomic write and returns once it is durable (or
// failed and left no trace). It is the bbolt-style helper: fn's error or
// panic rolls back fn's work only; other writes in the same batch commit.
func (s *Store) update(ctx context.Context, fn func(w *wtx) error) error {
	return s.submit(ctx, &writeReq{ctx: ctx, fn: fn, result: make(chan error, 1)})
}

// updateFlags is update for a write that changes nothing but flags, or
// expunges only messages that have \Deleted (ExpungeDeleted): with
// Options.DeferFlagSync it may return before its commit is synced
// (flagsync.go).
func (s *Store) updateFlags(ctx context.Context, fn func(w *wtx) error) error {
	return s.submit(ctx, &writeReq{ctx: ctx, fn: fn, result: make(chan error, 1), sync: syncUnlessFlagsDeferred})
}

// updateUnsynced is update for the store's own bookkeeping that a power
// cut may undo at no cost (flagsync.go): it returns before its commit is
// synced. A request that finds it changed more (wtx.mustSync) is synced
// before it returns.
func (s *Store) updateUnsynced(ctx context.Context, fn func(w *wtx) error) error {
	return s.submit(ctx, &writeReq{ctx: ctx, fn: fn, result: make(chan error, 1), sync: syncNever})
}

func (s *Store) submit(ctx context.Context, r *writeReq) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.runInline(r) {
		return <-r.result
	}
	s.pending.Add(1)
	select {
	case s.reqs <- r:
		s.pending.Add(-1)
	case <-s.quit:
		s.pending.Add(-1)
		return mailstore.ErrClosed
	case <-ctx.Done():
		s.pending.Add(-1)
		return ctx.Err()
	}
	// Once handed over, wait for the outcome even if ctx ends: returning
	// early could report failure for a write that then commits.
	return <-r.result
}

// runInline runs a flag write that will not be synced (Options.
// DeferFlagSync) on the caller's goroutine, as a batch of its own, when
// the writer is idle: nothing waiting and writeGate free. Handing it to
// the writer goroutine and back cost two goroutine wake-ups, a seventh of
// the server's CPU in a loop of STOREs, and such a batch gains nothing
// from waiting for company (no fsync to share). Writes that sync keep
// the writer goroutine, whose batches share the fsync: run by their
// callers, deliveries made smaller commits and fewer of them
// (ARCHITECTURE.md, "Tried and measured"). writeGate keeps every use of
// the writer connection one at a time, and Close waits for it.
func (s *Store) runInline(r *writeReq) bool {
	// Not while a request waits to be handed to the writer (s.reqs is
	// unbuffered: pending counts the senders), nor while the writer
	// goroutine has a batch in hand and waits for the gate: a stream of
	// inline writes must not hold deliveries back.
	if r.sync != syncUnlessFlagsDeferred || !s.dsync.on || s.pending.Load() > 0 || s.writerWaiting.Load() {
		return false
	}
	if !s.writeGate.TryLock() {
		return false
	}
	if !s.dsync.marked {
		// The first deferred batch writes the marker, synced: the
		// writer's, as any synced batch.
		s.writeGate.Unlock()
		return false
	}
	select {
	case <-s.quit:
		s.writeGate.Unlock()
		r.result <- mailstore.ErrClosed
	default:
		s.inlined.Add(1)
		// On the caller's goroutine a panic may be recovered by its
		// connection's handler: the gate must not stay held behind it.
		errs := func() []error {
			defer s.writeGate.Unlock()
			return s.runBatch([]*writeReq{r})
		}()
		r.result <- errs[0]
	}
	return true
}

// writer is the single goroutine that owns the writer connection. It takes
// every request waiting (up to maxBatch) into one transaction, runs each in
// its own SAVEPOINT, commits once (one fsync for the whole batch: group
// commit, DESIGN section 3), answers the callers, then sends wake-ups.
func (s *Store) writer() {
	// Close closes s.wconn once the writer has gone.
	defer close(s.done)
	batch := make([]*writeReq, 0, s.maxBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		case <-s.quit:
			return
		}
	fill:
		for len(batch) < s.maxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.writerWaiting.Store(true)
		s.writeGate.Lock()
		s.writerWaiting.Store(false)
		errs := s.runBatch(batch)
		s.writeGate.Unlock()
		answer(batch, errs)
	}
}

// runBatch runs batch as one transaction and returns each request's
// outcome. Its caller answers the requests (answer) once it has let go of
// writeGate: a caller woken by its answer and writing again then finds
// the gate free.
func (s *Store) runBatch(batch []*writeReq) []error {
	// The writer's own context: a caller's cancelled context must not
	// roll back a transaction that carries other callers' writes.
	ctx := context.Background()
	errs := make([]error, len(batch))
	changed := make(map[int64]mailstore.ModSeq)
	// A batch of flag changes skips the sync only once this process's
	// marker is durable: the first such batch syncs and writes it.
	deferred, flags := s.batchDefers(batch)
	mark := deferred && flags && !s.dsync.marked
	deferred = deferred && !mark
	if err := s.beginBatch(ctx, deferred, mark); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	now := time.Now()
	ran := 0
	var textAdded, mustSync bool
	var newTexts []pendingEntry
	var droppedTexts []int64
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		w := &wtx{conn: s.wconn, ctx: ctx, now: now, changed: make(map[int64]mailstore.ModSeq)}
		var broken bool
		if len(batch) == 1 {
			// Alone in the transaction: a failure rolls the whole
			// transaction back, which is what the savepoint would do,
			// without its two statements.
			errs[i] = runAlone(w, r.fn)
		} else {
			broken, errs[i] = runSavepoint(w, r.fn)
		}
		if broken {
			// The transaction is in an unknown state: drop the whole batch
			// rather than commit a half-undone request.
			_ = s.wconn.rollback(ctx)
			for j := range batch {
				if j > i || errs[j] == nil {
					errs[j] = fmt.Errorf("write batch aborted: %w", errs[i])
				}
			}
			return errs
		}
		if errs[i] == nil {
			ran++
			mustSync = mustSync || w.mustSync
			textAdded = textAdded || w.textAdded
			newTexts = append(newTexts, w.newTexts...)
			droppedTexts = append(droppedTexts, w.droppedTexts...)
			for a, m := range w.changed {
				changed[a] = max(changed[a], m)
			}
		}
	}
	if ran == 0 {
		_ = s.wconn.rollback(ctx)
		return errs
	}
	if err := s.wconn.commit(ctx); err != nil {
		err = fmt.Errorf("commit: %w", err)
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs
	}
	s.batches.Add(1)
	s.writes.Add(int64(ran))
	if mark {
		s.dsync.marked = true
	}
	if deferred && mustSync {
		// A request found it changed more than its class may lose.
		if err := s.syncWAL(); err != nil {
			// The commit stands and others see it, so the wake-ups below
			// still go out; the callers hear it may not be durable, and
			// the WAL stays due for the checkpointer's sync.
			for i := range errs {
				if errs[i] == nil {
					errs[i] = err
				}
			}
		} else {
			deferred = false
		}
	}
	if deferred {
		s.deferredCommits.Add(1)
		s.walUnsynced.Store(true)
	} else {
		// This commit synced the WAL, with every frame before it.
		s.walUnsynced.Store(false)
	}
	s.kickCheckpoint()
	// Before the callers hear back: a search right after a delivery
	// finds its text in memory rather than extracting it again.
	for _, e := range newTexts {
		s.ptexts.put(e.id, e.text)
	}
	s.ptexts.drop(droppedTexts...)
	if textAdded {
		s.kickIndexer()
	}
	// Wake watchers before answering: once a write returns, its wake-ups
	// have been delivered, so a watcher made after a write returned is
	// never woken by that write (Notify does not block).
	for a, m := range changed {
		s.notify(a, m)
	}
	return errs
}

// answer hands each request of a batch its outcome.
func answer(batch []*writeReq, errs []error) {
	for i, r := range batch {
		r.result <- errs[i]
	}
}

// beginBatch sets the writer connection's sync mode for the batch and
// begins its transaction, with this process's deferred-sync marker in it
// when mark is set.
func (s *Store) beginBatch(ctx context.Context, deferred, mark bool) error {
	if err := s.setSynchronous(ctx, deferred); err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	// IMMEDIATE: take the write lock now, where a busy wait can still
	// be retried, not at the first write inside the batch.
	if err := s.wconn.begin(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	if mark {
		if err := s.writeMarker(ctx); err != nil {
			_ = s.wconn.rollback(ctx)
			return err
		}
	}
	return nil
}

// runAlone runs fn with runSavepoint's panic isolation but no savepoint,
// for a request that has the transaction to itself.
func runAlone(w *wtx, fn func(w *wtx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return fn(w)
}

// runSavepoint runs fn inside SAVEPOINT w; on error or panic it rolls back
// to the savepoint, leaving the batch's other work intact. broken reports
// that the savepoint itself failed, so the transaction cannot be trusted.
func runSavepoint(w *wtx, fn func(w *wtx) error) (broken bool, err error) {
	if _, err := w.exec("SAVEPOINT w"); err != nil {
		return true, fmt.Errorf("savepoint: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write panicked: %v\n%s", p, debug.Stack())
		}
		if err != nil {
			if _, rerr := w.exec("ROLLBACK TO w"); rerr != nil {
				err = errors.Join(err, fmt.Errorf("rollback to savepoint: %w", rerr))
				broken = true
			}
		}
		if _, rerr := w.exec("RELEASE w"); rerr != nil {
			err = errors.Join(err, fmt.Errorf("release savepoint: %w", rerr))
			broken = true
		}
	}()
	return false, fn(w)
}
