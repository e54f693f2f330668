package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strings"
	"time"
)

// Deferred flag sync (Options.DeferFlagSync; config store.flag_sync =
// "deferred"). A flag change is the one write that loses no mail if a
// power cut undoes it, and with every write synced it is also the most
// frequent fsync an IMAP client waits for: three of the five in a round of
// the mixed workload. In this mode a batch of nothing but flag changes
// commits at synchronous=NORMAL: into the WAL (so it survives the process
// being killed) without a sync. The next synced commit syncs the whole
// WAL, and the checkpointer syncs it at the latest checkpointEvery after
// the commit. The expunge of messages marked \Deleted (IMAP EXPUNGE,
// UID EXPUNGE, CLOSE) is deferred too: it completes the flag change, and
// a power cut that undoes it puts the messages back, losing none (an
// expunge only moves a row into the retention area; the blob stays).
// New messages, copies, moves, POP3's deletions, mailboxes and everything
// else still sync before they are acknowledged. Dovecot's default
// (mail_fsync = optimized) makes the same trade, expunges included.
//
// What a power cut may undo must not leave an IMAP client out of step.
// Lost flag changes took modseqs that the account's counter, rolled back
// with them, would hand out again for other changes: a CONDSTORE or
// QRESYNC client that saw the lost change at modseq M would then skip a
// new change at M and never learn that the lost one was undone (RFC 7162
// section 3.1 requires modseqs never to go back). So a process writes a
// marker row (counters, name deferredPrefix + a random process id, value:
// a hash of the kernel's boot id) before its first unsynced commit, and
// deletes it when it closes cleanly after syncing. A marker left from an
// earlier boot means unsynced commits may have been lost to the power
// cut; Open then moves every account's modseq up by modseqGap and gives
// every message and mailbox that modseq, so each client fetches all flags
// again. A process that was only killed leaves its marker with the
// current boot id: its writes are in the WAL, nothing was lost, and the
// marker stays until the next boot.

// deferredPrefix starts the name of each process's marker row.
const deferredPrefix = "deferred_sync:"

// modseqGap is how far recovery moves modseqs up: far more changes than
// one account could make between two WAL syncs, small enough that clients
// which hold modseqs in a double (exact to 2^53) can see 2^21 recoveries.
const modseqGap = 1 << 32

// bootIDFile is where Linux names the current boot.
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// readBootID is the default Options.bootID.
func readBootID() (string, error) {
	b, err := os.ReadFile(bootIDFile)
	if err != nil {
		return "", fmt.Errorf("boot id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("boot id: %s is empty", bootIDFile)
	}
	return id, nil
}

// bootHash is the marker value for a boot id (counters holds integers).
func bootHash(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int64(h.Sum64() >> 1)
}

// oldMarkers picks the markers of boots other than the one given, with
// the arguments of oldMarkerArgs.
const oldMarkers = `FROM counters WHERE name >= ? AND name < ? AND value <> ?`

func oldMarkerArgs(boot int64) []any {
	return []any{deferredPrefix, deferredPrefix + "\xff", boot}
}

// recoverModSeqs runs in Open, before the writer starts. It looks for
// markers of an earlier boot and, if there are any, moves modseqs up and
// drops those markers, in one synced transaction. boot is the current
// boot's hash. It reports whether it moved anything.
func recoverModSeqs(ctx context.Context, wdb *sql.DB, boot int64) (bool, error) {
	// A read first: every Open (the CLI's too, beside a running server)
	// gets here, and the write transaction below would take the write
	// lock for nothing.
	var old int
	if err := wdb.QueryRowContext(ctx, `SELECT count(*) `+oldMarkers, oldMarkerArgs(boot)...).Scan(&old); err != nil {
		return false, fmt.Errorf("deferred sync recovery: %w", err)
	}
	if old == 0 {
		return false, nil
	}
	tx, err := wdb.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("deferred sync recovery: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit: a no-op
	// Again inside the transaction: another process may have recovered
	// in between.
	err = tx.QueryRowContext(ctx, `SELECT count(*) `+oldMarkers, oldMarkerArgs(boot)...).Scan(&old)
	if err != nil {
		return false, fmt.Errorf("deferred sync recovery: %w", err)
	}
	if old == 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE accounts SET modseq = modseq + ?`, modseqGap); err != nil {
		return false, fmt.Errorf("deferred sync recovery: %w", err)
	}
	for _, q := range []string{
		`UPDATE messages SET modseq = (SELECT a.modseq FROM accounts a WHERE a.id = messages.account_id)`,
		`UPDATE mailboxes SET highestmodseq = (SELECT a.modseq FROM accounts a WHERE a.id = mailboxes.account_id)`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return false, fmt.Errorf("deferred sync recovery: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE `+oldMarkers, oldMarkerArgs(boot)...); err != nil {
		return false, fmt.Errorf("deferred sync recovery: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("deferred sync recovery: %w", err)
	}
	return true, nil
}

// startDeferredSync recovers from an earlier boot's unsynced commits
// and returns the writer's state for opts.
func startDeferredSync(ctx context.Context, wdb *sql.DB, busy time.Duration, opts Options) (deferredSync, error) {
	readID := opts.bootID
	if readID == nil {
		readID = readBootID
	}
	var boot int64
	id, err := readID()
	if err != nil {
		if opts.DeferFlagSync {
			return deferredSync{}, fmt.Errorf("deferred flag sync needs the kernel's boot id: %w", err)
		}
		// Without the boot id a live server's marker (beside this
		// process: the CLI, say) cannot be told from an earlier boot's.
		// Recovering would move every modseq up under that server and
		// delete its marker while it still commits without syncing, so
		// the next opener that knows the boot recovers instead.
		if opts.Logger != nil {
			opts.Logger.Debug("deferred flag sync recovery not checked: kernel boot id unknown", "err", err)
		}
		return deferredSync{}, nil
	}
	boot = bootHash(id)
	var moved bool
	if err := retryBusy(busy, func() error {
		var err error
		moved, err = recoverModSeqs(ctx, wdb, boot)
		return err
	}); err != nil {
		return deferredSync{}, err
	}
	if moved && opts.Logger != nil {
		opts.Logger.Warn("the machine restarted while flag changes and expunges may not have been synced (store.flag_sync = deferred): every modseq moved up, IMAP clients will fetch all flags again and see any message whose expunge was undone")
	}
	return deferredSync{on: opts.DeferFlagSync, boot: boot, marker: newMarkerName()}, nil
}

// deferredSync is the writer's state for this mode. Only the holder of
// writeGate touches it (the writer goroutine, or a caller running its
// own flag write: runInline), and Close once both have stopped; on is
// set at Open and only read.
type deferredSync struct {
	on     bool   // Options.DeferFlagSync
	boot   int64  // bootHash of this boot
	marker string // this process's marker row name
	// marked: the marker is durable, so unsynced commits may start.
	marked bool
	// normal: the writer connection is at synchronous=NORMAL.
	normal bool
}

// newMarkerName names this process's marker row.
func newMarkerName() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return deferredPrefix + hex.EncodeToString(b[:])
}

// syncClass says when a write request's commit must be synced.
type syncClass uint8

const (
	// syncAlways: before the request is answered (the default).
	syncAlways syncClass = iota
	// syncUnlessFlagsDeferred: a flag change or an expunge of \Deleted
	// messages; with Options.DeferFlagSync it may be answered before the
	// sync.
	syncUnlessFlagsDeferred
	// syncNever: the store's own bookkeeping, which a power cut may undo
	// at no cost (the indexer's clearing of fts_pending: an entry found
	// pending again is indexed again, as after a crash between the index
	// commit and the clearing). It never takes a modseq, so no marker.
	syncNever
)

// batchDefers reports whether batch may commit without a sync, and
// whether it holds flag changes (then only once the marker is durable).
func (s *Store) batchDefers(batch []*writeReq) (deferred, flags bool) {
	for _, r := range batch {
		switch r.sync {
		case syncNever:
		case syncUnlessFlagsDeferred:
			if !s.dsync.on {
				return false, false
			}
			flags = true
		default:
			return false, false
		}
	}
	return true, flags
}

// setSynchronous switches the writer connection between NORMAL (a commit
// without a sync) and FULL, between batches.
func (s *Store) setSynchronous(ctx context.Context, normal bool) error {
	if s.dsync.normal == normal {
		return nil
	}
	mode := "FULL"
	if normal {
		mode = "NORMAL"
	}
	if _, err := s.wconn.ExecContext(ctx, "PRAGMA synchronous = "+mode); err != nil {
		return fmt.Errorf("synchronous %s: %w", mode, err)
	}
	s.dsync.normal = normal
	return nil
}

// writeMarker records, inside the batch's (synced) transaction, that this
// process is about to commit without syncing.
func (s *Store) writeMarker(ctx context.Context) error {
	_, err := s.wconn.ExecContext(ctx, `INSERT INTO counters (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, s.dsync.marker, s.dsync.boot)
	if err != nil {
		return fmt.Errorf("deferred sync marker: %w", err)
	}
	return nil
}

// syncWAL makes every commit in the WAL durable. fsync works on the file,
// not the descriptor, so a descriptor of our own covers the frames the
// writer connection wrote. No WAL (checkpointed and removed) has nothing
// to sync.
func (s *Store) syncWAL() error {
	f, err := os.Open(s.path + "-wal")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync wal: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync wal: %w", err)
	}
	s.walSyncs.Add(1)
	return nil
}

// syncDeferred is the checkpointer's part: sync the WAL if a commit since
// the last sync did not.
func (s *Store) syncDeferred() error {
	// Cleared before the sync: a commit that lands after this sets it
	// again and is synced next round; one that landed before is in the
	// file this sync covers.
	if !s.walUnsynced.Swap(false) {
		return nil
	}
	if err := s.syncWAL(); err != nil {
		s.walUnsynced.Store(true)
		return err
	}
	return nil
}

// closeDeferred runs in Close once the writer and the checkpointer have
// stopped: it syncs what is left and removes this process's marker, so
// the next boot need not move modseqs.
func (s *Store) closeDeferred(ctx context.Context) error {
	if !s.dsync.marked {
		return nil
	}
	if err := s.syncWAL(); err != nil {
		return err
	}
	if err := s.setSynchronous(ctx, false); err != nil {
		return err
	}
	if _, err := s.wconn.ExecContext(ctx, `DELETE FROM counters WHERE name = ?`, s.dsync.marker); err != nil {
		return fmt.Errorf("deferred sync marker: %w", err)
	}
	return nil
}
