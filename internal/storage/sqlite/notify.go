package sqlite

import (
	"context"
	"database/sql"
	"math"
	"sync"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// notified remembers, per account, the highest modseq this process has
// announced, so the poller announces only what other processes did.
type notified struct {
	mu sync.Mutex
	m  map[int64]mailstore.ModSeq // guarded by mu
}

// raise records m and reports whether it is news.
func (n *notified) raise(account int64, m mailstore.ModSeq) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m[account] >= m {
		return false
	}
	n.m[account] = m
	return true
}

// notify wakes an account's watchers after a commit of this process.
func (s *Store) notify(account int64, m mailstore.ModSeq) {
	s.notified.raise(account, m)
	s.notifier.Notify(account, m)
}

// wakeQueue asks for a wake-up of the queue workers (mailstore.QueueWatchID)
// once this request commits. It rides on the request's changed set, which
// the writer turns into Notify calls after the commit; the queue key has no
// modseq, so it is entered as 0 ("unknown" to a Watcher).
func (w *wtx) wakeQueue() {
	if _, ok := w.changed[mailstore.QueueWatchID]; !ok {
		w.changed[mailstore.QueueWatchID] = 0
	}
}

// queueMark is what the poller compares to learn that another process
// (`roost queue retry` from the CLI, a second server on the directory)
// queued mail or made some due earlier.
//
// Why not wake the queue on every foreign commit: data_version also moves
// for this process's own commits (the poller reads on its own connection)
// and for every delivery or flag change, and a woken worker runs a claim
// and a queue listing; waking only when the queue's mark moved keeps a busy
// server's workers asleep. Neither part scans the queue:
//   - seq is the queue's AUTOINCREMENT counter (sqlite_sequence, one row
//     per such table): it moves with every enqueue, even of an entry
//     already delivered and gone;
//   - earliest is the first next_attempt among entries nobody holds a lease
//     on (walking the queue_due index past the few in flight): it moves
//     earlier on a retry and on a lease given back.
//
// A claim, a finished attempt or a delete moves neither (or moves earliest
// later), so they wake nobody; leases that run out are the workers' timer's
// business (queue.Config.MaxIdle).
type queueMark struct {
	seq, earliest int64
}

// news reports whether m shows mail queued or made due earlier than prev.
func (m queueMark) news(prev queueMark) bool {
	return m.seq != prev.seq || m.earliest < prev.earliest
}

func readQueueMark(ctx context.Context, conn *sql.Conn) (queueMark, error) {
	m := queueMark{earliest: math.MaxInt64}
	err := conn.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'queue'`).Scan(&m.seq)
	if err != nil && !isNoRows(err) {
		return m, err
	}
	var next sql.NullInt64
	err = conn.QueryRowContext(ctx, `SELECT next_attempt FROM queue WHERE lease_owner = '' ORDER BY next_attempt LIMIT 1`).Scan(&next)
	if err != nil && !isNoRows(err) {
		return m, err
	}
	if next.Valid {
		m.earliest = next.Int64
	}
	return m, nil
}

// startPoller wakes watchers for commits made by other processes on the
// same database (the CLI restoring mail or retrying the queue, an import).
// SQLite's data_version changes on one connection when any other
// connection commits; only then are the accounts' modseqs compared with
// what was last announced, and the queue's mark with the last one seen.
//
// The first look happens in startPoller, before Open returns: a commit by
// another process after Open returned is then always news (a first look
// made later by the goroutine would have taken it as the baseline, and a
// queue worker of this process would sleep through it).
func (s *Store) startPoller(interval time.Duration) {
	ctx := context.Background()
	conn, err := s.rdb.Conn(ctx)
	if err != nil {
		return
	}
	p := &poller{s: s, conn: conn, last: -1}
	p.look(ctx)
	s.pollWG.Add(1)
	go func() {
		defer s.pollWG.Done()
		defer conn.Close()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-t.C:
			}
			p.look(ctx)
		}
	}()
}

// poller is the state of startPoller's goroutine between looks.
type poller struct {
	s         *Store
	conn      *sql.Conn
	last      int64 // data_version at the last look; -1 before the first
	lastQueue queueMark
}

// look wakes what changed since the last look; the first look only
// records the baseline.
func (p *poller) look(ctx context.Context) {
	s := p.s
	var v int64
	if err := p.conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil || v == p.last {
		return
	}
	first := p.last == -1
	p.last = v
	rows, err := p.conn.QueryContext(ctx, `SELECT id, modseq FROM accounts`)
	if err == nil {
		for rows.Next() {
			var id int64
			var m mailstore.ModSeq
			if rows.Scan(&id, &m) == nil && s.notified.raise(id, m) && !first {
				s.notifier.Notify(id, m)
			}
		}
		rows.Close()
	}
	if !first {
		// Another process may have added text to index.
		s.kickIndexer()
	}
	if qm, err := readQueueMark(ctx, p.conn); err == nil {
		if !first && qm.news(p.lastQueue) {
			s.notifier.Notify(mailstore.QueueWatchID, 0)
		}
		p.lastQueue = qm
	}
}
