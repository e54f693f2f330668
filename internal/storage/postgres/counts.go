package postgres

import (
	"fmt"
	"slices"

	"github.com/roost-mail/roost/internal/mailstore"
)

// Per-mailbox counts (migration 0003): n_messages, n_unseen, n_deleted and
// n_size on the mailbox row, which STATUS reads instead of scanning the
// mailbox's messages.
//
// Every statement that adds, removes or re-flags message rows updates them
// in the same transaction, under the mailbox row lock the write already
// holds (lockMailbox, lockMailboxes, lockPair): two writers to one mailbox,
// on one node or two, apply their deltas one after the other, and a reader
// sees the counts and the rows of one snapshot. The paths are:
//   - writeTargets (Append, Deliver, RestoreDeleted): deltas computed in Go,
//     added by the UPDATE that already sets uidnext;
//   - StoreFlags: deltas from old and new flags, in Go;
//   - copyRows, moveRows, expungeRows: set-based statements that aggregate
//     the rows they insert or delete (RETURNING) into the mailbox UPDATE.
// DeleteAccount removes the mailbox rows themselves, so it needs none.

// mbCounts is a change to one mailbox's counts.
type mbCounts struct{ n, unseen, deleted, size int64 }

// add counts one message row with these (normalized) flags and size, sign
// +1 for a row added and -1 for one removed.
func (c *mbCounts) add(flags []string, size, sign int64) {
	c.n += sign
	if !slices.Contains(flags, mailstore.FlagSeen) {
		c.unseen += sign
	}
	if slices.Contains(flags, mailstore.FlagDeleted) {
		c.deleted += sign
	}
	c.size += sign * size
}

// reflag counts one row whose flags change from old to new.
func (c *mbCounts) reflag(old, new []string) {
	c.add(old, 0, -1)
	c.add(new, 0, 1)
}

// countsAggSQL aggregates changed message rows (a CTE's RETURNING flags,
// size) into the four counts. '\Seen' and '\Deleted' are compared exactly:
// stored flags are in mailstore.NormalizeFlags form.
const countsAggSQL = `SELECT count(*) AS n,
	count(*) FILTER (WHERE NOT ('\Seen' = ANY(flags))) AS unseen,
	count(*) FILTER (WHERE '\Deleted' = ANY(flags)) AS deleted,
	coalesce(sum(size), 0) AS size`

// countsSetSQL is the SET list applying an aggregate x (countsAggSQL) to
// mailbox row mb; sign is "+" for rows added, "-" for rows removed.
func countsSetSQL(sign string) string {
	return "n_messages = mb.n_messages " + sign + " x.n, n_unseen = mb.n_unseen " + sign + " x.unseen, " +
		"n_deleted = mb.n_deleted " + sign + " x.deleted, n_size = mb.n_size " + sign + " x.size"
}

// touchMailboxCounts records a change's modseq on a locked mailbox and
// applies a delta to its counts, in one statement.
func touchMailboxCounts(w *wtx, mailboxID int64, ms mailstore.ModSeq, d mbCounts) error {
	_, err := w.Exec(w.ctx, `UPDATE mailboxes SET highestmodseq = $2, n_messages = n_messages + $3,
		n_unseen = n_unseen + $4, n_deleted = n_deleted + $5, n_size = n_size + $6 WHERE id = $1`,
		mailboxID, int64(ms), d.n, d.unseen, d.deleted, d.size)
	if err != nil {
		return fmt.Errorf("postgres: mailbox modseq: %w", err)
	}
	return nil
}
