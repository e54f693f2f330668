package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
)

// notifyChannel is the LISTEN/NOTIFY channel; payloads are
// "<account>:<modseq>" and never carry the changes themselves. Account 0
// (mailstore.QueueWatchID) is the outbound queue: "0:1" wakes every
// node's queue worker.
const notifyChannel = "roost_changes"

// wtx is one write transaction. It tracks the account rows it locked and
// the modseq it allocated for each, so that every account gets exactly one
// new modseq per transaction however many rows change.
//
// Why the account row is locked FIRST and held to COMMIT: modseq must be
// strictly increasing per account in commit order. The change feed is read
// as "everything with modseq > M"; if transaction T2 could take modseq N+1
// and commit while T1, holding N, was still open, a reader would see N+1,
// remember it as its high-water mark, and never ask for N again: T1's
// change would be lost to that session for good. Allocating the modseq
// under the account row lock (SELECT ... FOR UPDATE, then UPDATE) makes T2
// wait until T1 has committed, and PostgreSQL releases row locks only after
// the commit is visible, so commit order is modseq order. Taking that lock
// before any mailbox or message row also gives every transaction the same
// lock order (account, mailbox, rows), so writers queue instead of
// deadlocking. Accounts are locked in ascending id order (Deliver locks
// several).
type wtx struct {
	pgx.Tx
	ctx    context.Context
	locked map[int64]mailstore.ModSeq // account -> modseq at lock time
	usage  map[int64]*acctUsage       // account -> quota and usage, as locked
	bumped map[int64]mailstore.ModSeq // account -> modseq allocated here
	// wakeQueue: the transaction queued mail or made some due, so every
	// node's queue worker should look (mailstore.QueueWatchID).
	wakeQueue bool
}

// write runs fn in a transaction and commits it, retrying the whole
// function on a deadlock or serialization failure (fn must therefore build
// its results afresh on each call). After the commit it wakes the watchers
// of every account whose modseq it raised (and the queue workers, when fn
// set wakeQueue), on this node directly and on the others through NOTIFY,
// sent by the node's sender after the commit (sender.go says why not
// inside the transaction).
func (s *Store) write(ctx context.Context, fn func(w *wtx) error) error {
	if s.closed.Load() {
		return mailstore.ErrClosed
	}
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		var w *wtx
		w, err = s.writeOnce(ctx, fn)
		if err == nil {
			for acct, ms := range w.bumped {
				s.lis.deliver(acct, ms)
				s.send.add(acct, ms)
			}
			if w.wakeQueue {
				s.hub.Notify(mailstore.QueueWatchID, 0)
				// The queue key has no modseq; 1 only makes the sender
				// keep it (it coalesces by highest value), and every
				// node's listener passes queue wake-ups on unfiltered.
				s.send.add(mailstore.QueueWatchID, 1)
			}
			return nil
		}
		if c := pgCode(err); c != codeDeadlockDetected && c != codeSerializationFailure {
			return err
		}
	}
	return err
}

func (s *Store) writeOnce(ctx context.Context, fn func(w *wtx) error) (*wtx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: begin: %w", err)
	}
	w := &wtx{Tx: tx, ctx: ctx, locked: map[int64]mailstore.ModSeq{}, usage: map[int64]*acctUsage{}, bumped: map[int64]mailstore.ModSeq{}}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := fn(w); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: commit: %w", err)
	}
	return w, nil
}

// lockAccounts takes the row locks of the given accounts in ascending id
// order and records their current modseq. ErrNoSuchAccount if one is
// missing. It must come before any other row lock of the transaction.
func (w *wtx) lockAccounts(ids ...int64) error {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var todo []int64
	for _, id := range ids {
		if _, ok := w.locked[id]; !ok {
			todo = append(todo, id)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	// ORDER BY with FOR UPDATE locks rows in that order.
	rows, err := w.Query(w.ctx, `SELECT id, modseq, quota_bytes, quota_messages, used_bytes, used_messages
		FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE`, todo)
	if err != nil {
		return fmt.Errorf("postgres: lock accounts: %w", err)
	}
	for rows.Next() {
		var id int64
		var ms int64
		u := &acctUsage{}
		if err := rows.Scan(&id, &ms, &u.quotaBytes, &u.quotaMessages, &u.usedBytes, &u.usedMessages); err != nil {
			rows.Close()
			return fmt.Errorf("postgres: lock accounts: %w", err)
		}
		w.locked[id] = mailstore.ModSeq(ms)
		w.usage[id] = u
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: lock accounts: %w", err)
	}
	for _, id := range todo {
		if _, ok := w.locked[id]; !ok {
			return fmt.Errorf("account %d: %w", id, mailstore.ErrNoSuchAccount)
		}
	}
	return nil
}

// acctUsage is an account's quota and usage as read under its row lock.
type acctUsage struct {
	quotaBytes, quotaMessages int64
	usedBytes, usedMessages   int64
}

// fits reports whether bytes and msgs more stay within the quota.
func (u *acctUsage) fits(bytes, msgs int64) bool {
	return (u.quotaBytes == 0 || u.usedBytes+bytes <= u.quotaBytes) &&
		(u.quotaMessages == 0 || u.usedMessages+msgs <= u.quotaMessages)
}

// modseq returns this transaction's modseq for a locked account,
// allocating it (one more than the account's) on first use.
func (w *wtx) modseq(acct int64) (mailstore.ModSeq, error) {
	if ms, ok := w.bumped[acct]; ok {
		return ms, nil
	}
	cur, ok := w.locked[acct]
	if !ok {
		return 0, errors.New("postgres: internal error: modseq of an account not locked first")
	}
	ms := cur + 1
	if _, err := w.Exec(w.ctx, "UPDATE accounts SET modseq = $2 WHERE id = $1", acct, int64(ms)); err != nil {
		return 0, fmt.Errorf("postgres: raise modseq: %w", err)
	}
	w.bumped[acct] = ms
	return ms, nil
}

// charge records bytes and msgs more usage on a locked account and
// allocates the transaction's modseq for it, in one statement; it fails
// with ErrOverQuota (changing nothing) when the quota would be exceeded.
func (w *wtx) charge(acct int64, bytes, msgs int64) error {
	ms, ok := w.bumped[acct]
	if !ok {
		cur, locked := w.locked[acct]
		if !locked {
			return errors.New("postgres: internal error: charge of an account not locked first")
		}
		ms = cur + 1
	}
	tag, err := w.Exec(w.ctx, `UPDATE accounts SET used_bytes = used_bytes + $2, used_messages = used_messages + $3, modseq = $4
		WHERE id = $1 AND (quota_bytes = 0 OR used_bytes + $2 <= quota_bytes)
		AND (quota_messages = 0 OR used_messages + $3 <= quota_messages)`, acct, bytes, msgs, int64(ms))
	if err != nil {
		return fmt.Errorf("postgres: quota: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("account %d: %w", acct, mailstore.ErrOverQuota)
	}
	w.bumped[acct] = ms
	if u := w.usage[acct]; u != nil {
		u.usedBytes += bytes
		u.usedMessages += msgs
	}
	return nil
}

// read runs fn in a REPEATABLE READ, read-only transaction: several
// queries that must agree (a UID list and the modseq it matches) see one
// snapshot.
func (s *Store) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if s.closed.Load() {
		return mailstore.ErrClosed
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
