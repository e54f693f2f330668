package postgres

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
)

const queueCols = "id, account_id, sender, recipients, domain, blob_id, size, created, attempts, next_attempt, last_error, warned, lease_owner, lease_until, dsn_ret, dsn_envid, dsn_notify, dsn_orcpt"

func scanQueue(r pgx.Row) (mailstore.QueueEntry, error) {
	var e mailstore.QueueEntry
	var until *time.Time
	var notify, orcpt []string
	err := r.Scan(&e.ID, &e.AccountID, &e.From, &e.Recipients, &e.Domain, &e.BlobID, &e.Size, &e.Created, &e.Attempts, &e.NextAttempt, &e.LastError, &e.Warned, &e.LeaseOwner, &until,
		&e.Ret, &e.EnvID, &notify, &orcpt)
	if until != nil {
		e.LeaseUntil = *until
	}
	e.RcptDSN = mailstore.JoinRcptDSN(notify, orcpt)
	return e, err
}

func (s *Store) Enqueue(ctx context.Context, raw []byte, entries []mailstore.QueueEntry) ([]int64, error) {
	var ids []int64
	err := s.write(ctx, func(w *wtx) (err error) {
		ids, err = s.enqueueIn(ctx, w, raw, entries)
		return err
	})
	return ids, err
}

// enqueueIn stores entries for raw inside w (Enqueue, and Deliver for a
// submission's remote recipients) and asks for a queue wake-up.
func (s *Store) enqueueIn(ctx context.Context, w *wtx, raw []byte, entries []mailstore.QueueEntry) ([]int64, error) {
	ids := make([]int64, 0, len(entries))
	if len(entries) == 0 {
		return ids, nil
	}
	sum := sha256.Sum256(raw)
	blob := hex.EncodeToString(sum[:])
	if err := s.addBlobRef(w, nil, blob, raw, len(entries)); err != nil {
		return nil, err
	}
	for _, e := range entries {
		// A partial delivery re-enqueues the rest with its history:
		// given values are kept, zero ones take defaults.
		created := e.Created
		if created.IsZero() {
			created = now()
		}
		next := e.NextAttempt
		if next.IsZero() {
			next = created
		}
		rcpts := make([]string, len(e.Recipients))
		for i, r := range e.Recipients {
			rcpts[i] = clean(r)
		}
		notify, orcpt, err := splitRcptDSN(e)
		if err != nil {
			return nil, fmt.Errorf("postgres: enqueue: %w", err)
		}
		var id int64
		err = w.QueryRow(ctx, `INSERT INTO queue (account_id, sender, recipients, domain, blob_id, size, created, attempts, next_attempt, last_error, warned,
				dsn_ret, dsn_envid, dsn_notify, dsn_orcpt)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id`,
			e.AccountID, clean(e.From), rcpts, clean(e.Domain), blob, int64(len(raw)), created, e.Attempts, next, clean(e.LastError), e.Warned,
			clean(e.Ret), clean(e.EnvID), notify, orcpt).Scan(&id)
		if err != nil {
			return nil, fmt.Errorf("postgres: enqueue: %w", err)
		}
		ids = append(ids, id)
	}
	w.wakeQueue = true
	return ids, nil
}

func (s *Store) ListQueue(ctx context.Context) ([]mailstore.QueueEntry, error) {
	q, err := s.db()
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, "SELECT "+queueCols+" FROM queue ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("postgres: list queue: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mailstore.QueueEntry, error) { return scanQueue(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list queue: %w", err)
	}
	return out, nil
}

func (s *Store) GetQueueEntry(ctx context.Context, id int64) (mailstore.QueueEntry, error) {
	q, err := s.db()
	if err != nil {
		return mailstore.QueueEntry{}, err
	}
	e, err := scanQueue(q.QueryRow(ctx, "SELECT "+queueCols+" FROM queue WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return e, fmt.Errorf("queue entry %d: %w", id, mailstore.ErrNoSuchMessage)
	}
	if err != nil {
		return e, fmt.Errorf("postgres: queue entry: %w", err)
	}
	return e, nil
}

// ClaimDue leases due entries. FOR UPDATE SKIP LOCKED makes concurrent
// claimers on different nodes pass over rows another claimer is taking,
// instead of waiting for them and then claiming them a second time: each
// entry goes to exactly one caller.
func (s *Store) ClaimDue(ctx context.Context, owner string, now, leaseUntil time.Time, limit int) ([]mailstore.QueueEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []mailstore.QueueEntry
	err := s.write(ctx, func(w *wtx) error {
		rows, err := w.Query(ctx, `UPDATE queue SET lease_owner = $1, lease_until = $3
			WHERE id IN (
				SELECT id FROM queue
				WHERE next_attempt <= $2 AND (lease_until IS NULL OR lease_until <= $2)
				ORDER BY next_attempt, id LIMIT $4
				FOR UPDATE SKIP LOCKED)
			RETURNING `+queueCols, owner, now, leaseUntil, limit)
		if err != nil {
			return fmt.Errorf("postgres: claim: %w", err)
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (mailstore.QueueEntry, error) { return scanQueue(r) })
		if err != nil {
			return fmt.Errorf("postgres: claim: %w", err)
		}
		return nil
	})
	sortQueue(out)
	return out, err
}

// ExtendLease moves owner's lease on entry id to until.
func (s *Store) ExtendLease(ctx context.Context, id int64, owner string, until time.Time) error {
	return s.write(ctx, func(w *wtx) error {
		tag, err := w.Exec(ctx, `UPDATE queue SET lease_until = $3 WHERE id = $1 AND lease_owner = $2 AND lease_owner <> ''`, id, owner, until)
		if err != nil {
			return fmt.Errorf("postgres: extend lease: %w", err)
		}
		if tag.RowsAffected() == 0 {
			var one int
			err := w.QueryRow(ctx, "SELECT 1 FROM queue WHERE id = $1", id).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("queue entry %d: %w", id, mailstore.ErrNoSuchMessage)
			}
			if err != nil {
				return fmt.Errorf("postgres: extend lease: %w", err)
			}
			return fmt.Errorf("queue entry %d: %w", id, mailstore.ErrLeaseHeld)
		}
		// Given back: another node's worker may take it now.
		w.wakeQueue = !until.After(now())
		return nil
	})
}

// sortQueue orders claimed entries as the claim query chose them
// (RETURNING does not keep the subquery's order).
func sortQueue(es []mailstore.QueueEntry) {
	slices.SortFunc(es, func(a, b mailstore.QueueEntry) int {
		if c := a.NextAttempt.Compare(b.NextAttempt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

func (s *Store) UpdateQueueEntry(ctx context.Context, e mailstore.QueueEntry) error {
	return s.write(ctx, func(w *wtx) error {
		tag, err := w.Exec(ctx, `UPDATE queue SET attempts = $2, next_attempt = $3, last_error = $4, warned = $5,
			lease_owner = '', lease_until = NULL WHERE id = $1`, e.ID, e.Attempts, e.NextAttempt, clean(e.LastError), e.Warned)
		if err != nil {
			return fmt.Errorf("postgres: update queue entry: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("queue entry %d: %w", e.ID, mailstore.ErrNoSuchMessage)
		}
		// Due now (a lease given back): another node's worker may take it.
		w.wakeQueue = !e.NextAttempt.After(now())
		return nil
	})
}

func (s *Store) RetryQueue(ctx context.Context, ids []int64, now time.Time) (int, error) {
	var n int
	err := s.write(ctx, func(w *wtx) error {
		tag, err := w.Exec(ctx, "UPDATE queue SET next_attempt = $2 WHERE (coalesce(cardinality($1::bigint[]), 0) = 0 OR id = ANY($1))", ids, now)
		if err != nil {
			return fmt.Errorf("postgres: retry queue: %w", err)
		}
		n = int(tag.RowsAffected())
		w.wakeQueue = n > 0
		return nil
	})
	return n, err
}

func (s *Store) DeleteQueueEntry(ctx context.Context, id int64) error {
	return s.write(ctx, func(w *wtx) error {
		var blob string
		err := w.QueryRow(ctx, "DELETE FROM queue WHERE id = $1 RETURNING blob_id", id).Scan(&blob)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("queue entry %d: %w", id, mailstore.ErrNoSuchMessage)
		}
		if err != nil {
			return fmt.Errorf("postgres: delete queue entry: %w", err)
		}
		return changeBlobRefs(w, []string{blob}, -1)
	})
}

// AcquireLease takes or renews a lease in one statement: the upsert only
// overwrites a row that has expired or that owner already holds, and the
// primary key makes two racing inserts collide instead of both winning.
func (s *Store) AcquireLease(ctx context.Context, name, owner string, until time.Time) (bool, error) {
	var ok bool
	err := s.write(ctx, func(w *wtx) error {
		tag, err := w.Exec(ctx, `INSERT INTO leases (name, owner, until) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
			WHERE leases.until <= $4 OR leases.owner = excluded.owner`, clean(name), clean(owner), until, now())
		if err != nil {
			return fmt.Errorf("postgres: acquire lease: %w", err)
		}
		ok = tag.RowsAffected() == 1
		return nil
	})
	return ok, err
}

// ReleaseLease drops owner's lease. A lease another owner holds is left
// alone without error (as in the SQLite backend): an owner whose lease
// expired and was taken over has nothing left to release.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	return s.write(ctx, func(w *wtx) error {
		if _, err := w.Exec(ctx, "DELETE FROM leases WHERE name = $1 AND owner = $2", clean(name), clean(owner)); err != nil {
			return fmt.Errorf("postgres: release lease: %w", err)
		}
		return nil
	})
}

// splitRcptDSN is mailstore.SplitRcptDSN with the values made storable in
// text columns (valid UTF-8, no NUL).
func splitRcptDSN(e mailstore.QueueEntry) (notify, orcpt []string, err error) {
	notify, orcpt, err = mailstore.SplitRcptDSN(e)
	for i := range notify {
		notify[i], orcpt[i] = clean(notify[i]), clean(orcpt[i])
	}
	return notify, orcpt, err
}
