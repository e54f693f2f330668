package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
)

// listener is a node's one dedicated LISTEN connection. It forwards other
// nodes' NOTIFYs into the local hub. Wake-ups carry only (account, modseq):
// a woken session reads the change feed, so a wake-up lost while the
// connection was down is repaired by waking every watcher after the
// reconnect — each one re-reads the feed from its own modseq and catches
// up on whatever happened in between.
type listener struct {
	cfg *pgx.ConnConfig
	hub mailstore.Notifier
	log *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}

	mu sync.Mutex
	// seen is the highest modseq already announced per account, so the
	// echo of this node's own NOTIFY (and a stale one from another node)
	// does not wake sessions twice. Guarded by mu.
	seen map[int64]mailstore.ModSeq
	// watched is every account a watcher was ever made for on this node:
	// after a reconnect all of them are woken. Guarded by mu.
	watched map[int64]struct{}
	// backendPID of the current LISTEN connection (tests kill it).
	backendPID uint32
}

func newListener(cfg *pgx.ConnConfig, hub mailstore.Notifier, log *slog.Logger) *listener {
	return &listener{cfg: cfg, hub: hub, log: log, seen: map[int64]mailstore.ModSeq{}, watched: map[int64]struct{}{}}
}

// start connects and LISTENs before returning, so a watcher made right
// after Open already hears other nodes; then it serves in the background.
func (l *listener) start(ctx context.Context) error {
	conn, err := l.connect(ctx)
	if err != nil {
		return err
	}
	bg, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.done = make(chan struct{})
	go l.run(bg, conn)
	return nil
}

func (l *listener) stop() {
	l.cancel()
	<-l.done
}

func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: listener connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("postgres: listen: %w", err)
	}
	l.mu.Lock()
	l.backendPID = conn.PgConn().PID()
	l.mu.Unlock()
	return conn, nil
}

func (l *listener) run(ctx context.Context, conn *pgx.Conn) {
	defer close(l.done)
	backoff := 50 * time.Millisecond
	for {
		err := l.serve(ctx, conn)
		conn.Close(context.Background())
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("postgres: lost the LISTEN connection; reconnecting", "err", err)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			conn, err = l.connect(ctx)
			if err == nil {
				break
			}
			backoff = min(backoff*2, 5*time.Second)
			l.log.Warn("postgres: LISTEN reconnect failed", "err", err, "retry_in", backoff)
		}
		backoff = 50 * time.Millisecond
		l.log.Info("postgres: LISTEN connection restored; waking all watchers")
		l.wakeAll()
	}
}

func (l *listener) serve(ctx context.Context, conn *pgx.Conn) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		acct, ms, ok := parsePayload(n.Payload)
		if !ok {
			l.log.Warn("postgres: ignoring malformed notification", "payload", n.Payload)
			continue
		}
		l.deliver(acct, ms)
	}
}

// formatPayload writes "<account>:<modseq>".
func formatPayload(acct int64, ms mailstore.ModSeq) string {
	return strconv.FormatInt(acct, 10) + ":" + strconv.FormatUint(uint64(ms), 10)
}

// parsePayload reads "<account>:<modseq>".
func parsePayload(p string) (int64, mailstore.ModSeq, bool) {
	a, m, ok := strings.Cut(p, ":")
	if !ok {
		return 0, 0, false
	}
	acct, err1 := strconv.ParseInt(a, 10, 64)
	ms, err2 := strconv.ParseUint(m, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return acct, mailstore.ModSeq(ms), true
}

// deliver wakes an account's local watchers unless modseq was already
// announced. Queue wake-ups carry no modseq and always pass: a node's own
// echo costs its worker one extra look at the queue, a dropped one would
// leave mail waiting for the worker's idle timer.
func (l *listener) deliver(acct int64, ms mailstore.ModSeq) {
	if acct == mailstore.QueueWatchID {
		l.hub.Notify(acct, ms)
		return
	}
	l.mu.Lock()
	if ms <= l.seen[acct] {
		l.mu.Unlock()
		return
	}
	l.seen[acct] = ms
	l.mu.Unlock()
	l.hub.Notify(acct, ms)
}

func (l *listener) watch(acct int64) {
	l.mu.Lock()
	l.watched[acct] = struct{}{}
	l.mu.Unlock()
}

func (l *listener) wakeAll() {
	l.mu.Lock()
	accts := make([]int64, 0, len(l.watched))
	for a := range l.watched {
		accts = append(accts, a)
	}
	l.mu.Unlock()
	for _, a := range accts {
		l.hub.Notify(a, 0)
	}
}

func (l *listener) pid() uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.backendPID
}
