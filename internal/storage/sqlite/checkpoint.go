package sqlite

import (
	"context"
	"time"
)

// Checkpoints copy committed pages from the WAL back into the database
// file. SQLite runs them inside the commit that fills the WAL past 1,000
// pages, which put them in the writer goroutine: 19% of its time under a
// mixed IMAP load, with every caller of the batch waiting. The writer
// connection has wal_autocheckpoint off; this goroutine checkpoints on a
// connection of its own, on the other core, while the writer goes on
// (a PASSIVE checkpoint never blocks the writer or readers: SQLite's WAL
// locks let them run together).

// checkpointEvery is the least time between two checkpoints: each one
// syncs the database file, and a burst of commits needs one, not one per
// commit.
const checkpointEvery = 100 * time.Millisecond

// checkpointer runs until quit, checkpointing after commits (kicked by
// the writer through ckptKick).
func (s *Store) checkpointer() {
	defer s.pollWG.Done()
	ctx := context.Background()
	for {
		select {
		case <-s.quit:
			return
		case <-s.ckptKick:
		}
		// A failure (another process holding a lock past busy_timeout)
		// leaves the frames in the WAL for the next round.
		_, _ = s.cdb.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
		select {
		case <-s.quit:
			return
		case <-time.After(checkpointEvery):
		}
	}
}

// kickCheckpoint tells the checkpointer that a commit added frames.
func (s *Store) kickCheckpoint() {
	select {
	case s.ckptKick <- struct{}{}:
	default:
	}
}
