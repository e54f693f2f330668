package postgres

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/roost-mail/roost/internal/mailstore"
)

// sender publishes this node's commits to the other nodes: NOTIFY
// roost_changes, '<account>:<modseq>'.
//
// Why after the commit and not with pg_notify inside the write
// transaction (which PostgreSQL would deliver exactly at commit): a
// transaction that has NOTIFYed takes one database-wide lock at commit and
// holds it through its WAL flush, so every notifying transaction commits
// one after another. Deliveries to different accounts, which could commit
// in parallel and share a WAL flush, were measured queueing on that lock
// (13 of 16 backends waiting on it; BenchmarkDeliverNoGroupCommit
// accounts=16). The sender instead coalesces what committed since its last
// send (the highest modseq per account is all a wake-up needs) into one
// small transaction at a time, which does not wait for its own WAL flush
// (synchronous_commit off: a NOTIFY is delivered at commit, durability of
// the notification itself is irrelevant).
//
// The price: if this node dies between a commit and the send, other
// nodes' watchers of that account are not woken for that change; they see
// it with the account's next change or their next command, as RFC 9051
// allows outside IDLE.
type sender struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	mu      sync.Mutex
	pending map[int64]mailstore.ModSeq // guarded by mu
	kick    chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
}

func newSender(pool *pgxpool.Pool, log *slog.Logger) *sender {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sender{pool: pool, log: log, pending: map[int64]mailstore.ModSeq{}, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go s.run(ctx)
	return s
}

// add queues a wake-up for the other nodes.
func (s *sender) add(acct int64, ms mailstore.ModSeq) {
	s.mu.Lock()
	if ms > s.pending[acct] {
		s.pending[acct] = ms
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// stop sends what is pending and ends the sender.
func (s *sender) stop() {
	s.cancel()
	<-s.done
}

func (s *sender) run(ctx context.Context) {
	defer close(s.done)
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			// Last flush, bounded: Close should not hang on a dead server.
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s.flush(fctx)
			cancel()
			return
		case <-s.kick:
		}
		if err := s.flush(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("postgres: sending change notifications failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
	}
}

func (s *sender) flush(ctx context.Context) error {
	s.mu.Lock()
	batch := s.pending
	if len(batch) == 0 {
		s.mu.Unlock()
		return nil
	}
	s.pending = map[int64]mailstore.ModSeq{}
	s.mu.Unlock()
	payloads := make([]string, 0, len(batch))
	for acct, ms := range batch {
		payloads = append(payloads, formatPayload(acct, ms))
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", notifyChannel, payloads)
		return err
	})
	if err != nil {
		// Put them back (unless newer ones arrived) and retry later.
		s.mu.Lock()
		for acct, ms := range batch {
			if ms > s.pending[acct] {
				s.pending[acct] = ms
			}
		}
		s.mu.Unlock()
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return err
}
