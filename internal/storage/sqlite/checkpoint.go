package sqlite

import (
	"context"
	"fmt"
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
// the writer through ckptKick). Held (Options.holdCheckpointer, tests
// only), it does nothing until quit.
func (s *Store) checkpointer(held bool) {
	defer s.pollWG.Done()
	if held {
		<-s.quit
		return
	}
	ctx := context.Background()
	for {
		select {
		case <-s.quit:
			return
		case <-s.ckptKick:
		}
		// First, as a checkpoint can wait out another process's lock: a
		// failed sync stays due for the next round, and the next synced
		// commit covers it too.
		_ = s.syncDeferred()
		// A failure (another process holding a lock past busy_timeout)
		// leaves the frames in the WAL for the next round.
		var busy, frames, done int // done < frames: a reader holds older frames
		err := s.cdb.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &done)
		if err == nil && int64(frames) >= s.walRestart.Load() {
			s.restartWAL(ctx)
		}
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

// walRestartFrames is the WAL length (4 MiB of 4 KiB pages) past which
// the checkpointer makes the log start over (Store.walRestart; tests
// lower it). Under steady writes a PASSIVE
// checkpoint never finds the log idle, SQLite never rewinds it, and it
// grows without bound (270 MB in a 50-client run); every page a reader
// looks up is searched for in the index of all those frames. Until the
// log first starts over, every commit also grows the file, and syncing a
// file whose size changed costs this disk about twice as much as
// syncing one rewritten in place: with 64 MiB that lasted the first 64
// MiB of writes after every start (1 IMAP client: STORE 0.64-0.69 ms,
// against 0.61-0.66 with 4 MiB; the mix 7% faster; 16 MX and 50 IMAP
// clients unchanged).
const walRestartFrames = 1024

// restartWAL runs a RESTART checkpoint: it waits for readers of old
// snapshots to finish, with new writers held back meanwhile, so that the
// next commit writes the log from its start. The wait is cut short (a
// busy_timeout of restartWait on this connection) so that a long reader
// never holds the writers up for long; the next round tries again.
//
// It holds writeGate, so the writer goroutine is between batches: under
// writes that never pause, a RESTART that had to win SQLite's write lock
// from the writer, polling within restartWait, mostly lost, and the log
// kept growing between the rounds it won (19-45 MB for 24 MB of mail in
// TestWALStartsOver).
func (s *Store) restartWAL(ctx context.Context) {
	s.writeGate.Lock()
	defer s.writeGate.Unlock()
	conn, err := s.cdb.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, restartWait.Milliseconds())); err != nil {
		return
	}
	_, _ = conn.ExecContext(ctx, `PRAGMA wal_checkpoint(RESTART)`)
	_, _ = conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, s.busy.Milliseconds()))
}

// restartWait bounds how long a RESTART checkpoint holds writers back.
const restartWait = 20 * time.Millisecond
