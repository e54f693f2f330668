package sqlite

import (
	"context"
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

// pollOthers wakes watchers for commits made by other processes on the
// same database (the CLI restoring mail, an import). SQLite's data_version
// changes on one connection when any other connection commits; only then
// are the accounts' modseqs compared with what was last announced.
func (s *Store) pollOthers(interval time.Duration) {
	defer s.pollWG.Done()
	ctx := context.Background()
	conn, err := s.rdb.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	var last int64 = -1
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var v int64
		if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err == nil && v != last {
			first := last == -1
			last = v
			rows, err := conn.QueryContext(ctx, `SELECT id, modseq FROM accounts`)
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
		}
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
	}
}
