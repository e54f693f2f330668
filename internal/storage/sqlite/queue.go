package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

const queueCols = `id, account_id, sender, recipients, domain, blob_id, size, created, attempts, next_attempt, last_error, warned, lease_owner, lease_until, dsn_ret, dsn_envid, dsn_notify, dsn_orcpt`

func scanQueue(r scanner) (mailstore.QueueEntry, error) {
	var e mailstore.QueueEntry
	var rcpts, notify, orcpt string
	var created, next, until int64
	err := r.Scan(&e.ID, &e.AccountID, &e.From, &rcpts, &e.Domain, &e.BlobID, &e.Size, &created, &e.Attempts, &next, &e.LastError, &e.Warned, &e.LeaseOwner, &until,
		&e.Ret, &e.EnvID, &notify, &orcpt)
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal([]byte(rcpts), &e.Recipients); err != nil {
		return e, fmt.Errorf("queue entry %d recipients: %w", e.ID, err)
	}
	var notifies, orcpts []string
	if err := json.Unmarshal([]byte(notify), &notifies); err != nil {
		return e, fmt.Errorf("queue entry %d NOTIFY: %w", e.ID, err)
	}
	if err := json.Unmarshal([]byte(orcpt), &orcpts); err != nil {
		return e, fmt.Errorf("queue entry %d ORCPT: %w", e.ID, err)
	}
	e.RcptDSN = mailstore.JoinRcptDSN(notifies, orcpts)
	e.Created, e.NextAttempt, e.LeaseUntil = fromNanos(created), fromNanos(next), fromNanos(until)
	return e, nil
}

// Enqueue stores raw once (one blob reference per entry) and the entries.
// An entry's zero NextAttempt means now; zero Created means now. The queue
// workers are woken after the commit.
func (s *Store) Enqueue(ctx context.Context, raw []byte, entries []mailstore.QueueEntry) ([]int64, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	q, err := newQueued(raw, entries)
	if err != nil {
		return nil, err
	}
	var ids []int64
	err = s.update(ctx, func(w *wtx) (err error) {
		ids, err = s.enqueueIn(w, q)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// queued is an Enqueue's input with its encodings done before the writer.
type queued struct {
	raw     []byte
	blobID  string
	entries []mailstore.QueueEntry
	recips  []string // JSON of each entry's recipients
	notify  []string // JSON of each entry's NOTIFY parameters
	orcpt   []string // JSON of each entry's ORCPT parameters
}

func newQueued(raw []byte, entries []mailstore.QueueEntry) (*queued, error) {
	sum := sha256.Sum256(raw)
	q := &queued{raw: raw, blobID: hex.EncodeToString(sum[:]), entries: entries,
		recips: make([]string, len(entries)), notify: make([]string, len(entries)), orcpt: make([]string, len(entries))}
	for i, e := range entries {
		b, err := json.Marshal(e.Recipients)
		if err != nil {
			return nil, fmt.Errorf("encode recipients: %w", err)
		}
		q.recips[i] = string(b)
		notify, orcpt, err := mailstore.SplitRcptDSN(e)
		if err != nil {
			return nil, fmt.Errorf("encode DSN parameters: %w", err)
		}
		if b, err = json.Marshal(notify); err != nil {
			return nil, fmt.Errorf("encode NOTIFY: %w", err)
		}
		q.notify[i] = string(b)
		if b, err = json.Marshal(orcpt); err != nil {
			return nil, fmt.Errorf("encode ORCPT: %w", err)
		}
		q.orcpt[i] = string(b)
	}
	return q, nil
}

// enqueueIn stores q's entries inside w (Enqueue, and Deliver for a
// submission's remote recipients) and asks for a queue wake-up.
func (s *Store) enqueueIn(w *wtx, q *queued) ([]int64, error) {
	ids := make([]int64, len(q.entries))
	if _, err := s.blobs.put(w.ctx, w, q.blobID, q.raw); err != nil {
		return nil, err
	}
	if err := s.refBlob(w, q.blobID, len(q.entries)-1); err != nil {
		return nil, err
	}
	for i, e := range q.entries {
		created, next := e.Created, e.NextAttempt
		if created.IsZero() {
			created = w.now
		}
		if next.IsZero() {
			next = w.now
		}
		err := w.queryRow(`INSERT INTO queue (account_id, sender, recipients, domain, blob_id, size, created, attempts, next_attempt, last_error, warned,
				dsn_ret, dsn_envid, dsn_notify, dsn_orcpt)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			e.AccountID, e.From, q.recips[i], strings.ToLower(e.Domain), q.blobID, len(q.raw), nanos(created), e.Attempts, nanos(next), e.LastError, e.Warned,
			e.Ret, e.EnvID, q.notify[i], q.orcpt[i]).Scan(&ids[i])
		if err != nil {
			return nil, fmt.Errorf("enqueue: %w", err)
		}
	}
	w.wakeQueue()
	return ids, nil
}

// ListQueue lists every entry by id.
func (s *Store) ListQueue(ctx context.Context) ([]mailstore.QueueEntry, error) {
	var out []mailstore.QueueEntry
	err := s.readTx(ctx, func(tx *rtx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+queueCols+` FROM queue ORDER BY id`)
		if err != nil {
			return fmt.Errorf("list queue: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanQueue(rows)
			if err != nil {
				return fmt.Errorf("list queue: %w", err)
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}

func queueNotFound(err error, id int64) error {
	if isNoRows(err) {
		return fmt.Errorf("queue entry %d: %w", id, mailstore.ErrNoSuchMessage)
	}
	return fmt.Errorf("queue entry %d: %w", id, err)
}

// GetQueueEntry finds an entry.
func (s *Store) GetQueueEntry(ctx context.Context, id int64) (mailstore.QueueEntry, error) {
	if err := s.checkOpen(); err != nil {
		return mailstore.QueueEntry{}, err
	}
	e, err := scanQueue(s.rd().QueryRowContext(ctx, `SELECT `+queueCols+` FROM queue WHERE id = ?`, id))
	if err != nil {
		return e, queueNotFound(err, id)
	}
	return e, nil
}

// ClaimDue leases due entries to owner. The writer runs claims one at a
// time (and other processes' writers wait on the database lock), so an
// entry goes to exactly one claimer.
func (s *Store) ClaimDue(ctx context.Context, owner string, now, leaseUntil time.Time, limit int) ([]mailstore.QueueEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []mailstore.QueueEntry
	err := s.update(ctx, func(w *wtx) error {
		out = nil
		rows, err := w.query(`UPDATE queue SET lease_owner = ?, lease_until = ?
			WHERE id IN (SELECT id FROM queue WHERE next_attempt <= ?3 AND (lease_owner = '' OR lease_until <= ?3)
				ORDER BY next_attempt, id LIMIT ?4)
			RETURNING `+queueCols, owner, nanos(leaseUntil), nanos(now), limit)
		if err != nil {
			return fmt.Errorf("claim queue: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanQueue(rows)
			if err != nil {
				return fmt.Errorf("claim queue: %w", err)
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	sortQueue(out)
	return out, nil
}

// ExtendLease moves owner's lease on entry id to until.
func (s *Store) ExtendLease(ctx context.Context, id int64, owner string, until time.Time) error {
	return s.update(ctx, func(w *wtx) error {
		res, err := w.exec(`UPDATE queue SET lease_until = ? WHERE id = ? AND lease_owner = ? AND lease_owner <> ''`, nanos(until), id, owner)
		if err != nil {
			return fmt.Errorf("extend lease: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var one int
			if err := w.queryRow(`SELECT 1 FROM queue WHERE id = ?`, id).Scan(&one); err != nil {
				return queueNotFound(err, id)
			}
			return fmt.Errorf("queue entry %d: %w", id, mailstore.ErrLeaseHeld)
		}
		if !until.After(w.now) {
			// Given back: another worker may take it now.
			w.wakeQueue()
		}
		return nil
	})
}

func sortQueue(es []mailstore.QueueEntry) {
	slices.SortFunc(es, func(a, b mailstore.QueueEntry) int {
		if c := a.NextAttempt.Compare(b.NextAttempt); c != 0 {
			return c
		}
		return cmpInt(a.ID, b.ID)
	})
}

// UpdateQueueEntry records an attempt and releases the lease; an entry
// left due wakes the queue workers.
func (s *Store) UpdateQueueEntry(ctx context.Context, e mailstore.QueueEntry) error {
	return s.update(ctx, func(w *wtx) error {
		res, err := w.exec(`UPDATE queue SET attempts = ?, next_attempt = ?, last_error = ?, warned = ?, lease_owner = '', lease_until = 0 WHERE id = ?`,
			e.Attempts, nanos(e.NextAttempt), e.LastError, e.Warned, e.ID)
		if err != nil {
			return fmt.Errorf("update queue entry: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return queueNotFound(sql.ErrNoRows, e.ID)
		}
		if !e.NextAttempt.After(w.now) {
			// Due now (a lease given back): another worker may take it.
			w.wakeQueue()
		}
		return nil
	})
}

// RetryQueue makes entries due now (all when ids is empty) and wakes the
// queue workers.
func (s *Store) RetryQueue(ctx context.Context, ids []int64, now time.Time) (int, error) {
	var n int
	err := s.update(ctx, func(w *wtx) error {
		n = 0
		if len(ids) == 0 {
			res, err := w.exec(`UPDATE queue SET next_attempt = ?`, nanos(now))
			if err != nil {
				return fmt.Errorf("retry queue: %w", err)
			}
			c, _ := res.RowsAffected()
			n = int(c)
			if n > 0 {
				w.wakeQueue()
			}
			return nil
		}
		for _, id := range ids {
			res, err := w.exec(`UPDATE queue SET next_attempt = ? WHERE id = ?`, nanos(now), id)
			if err != nil {
				return fmt.Errorf("retry queue: %w", err)
			}
			c, _ := res.RowsAffected()
			n += int(c)
		}
		if n > 0 {
			w.wakeQueue()
		}
		return nil
	})
	return n, err
}

// DeleteQueueEntry removes an entry and its blob reference.
func (s *Store) DeleteQueueEntry(ctx context.Context, id int64) error {
	return s.update(ctx, func(w *wtx) error {
		var blob string
		if err := w.queryRow(`DELETE FROM queue WHERE id = ? RETURNING blob_id`, id).Scan(&blob); err != nil {
			return queueNotFound(err, id)
		}
		return s.refBlob(w, blob, -1)
	})
}

// AcquireLease takes or renews a named lease.
func (s *Store) AcquireLease(ctx context.Context, name, owner string, until time.Time) (bool, error) {
	var ok bool
	err := s.update(ctx, func(w *wtx) error {
		var cur string
		var curUntil int64
		err := w.queryRow(`SELECT owner, until FROM leases WHERE name = ?`, name).Scan(&cur, &curUntil)
		if err != nil && !isNoRows(err) {
			return fmt.Errorf("lease: %w", err)
		}
		if err == nil && cur != owner && curUntil > nanos(w.now) {
			ok = false
			return nil
		}
		if _, err := w.exec(`INSERT INTO leases (name, owner, until) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until`, name, owner, nanos(until)); err != nil {
			return fmt.Errorf("lease: %w", err)
		}
		ok = true
		return nil
	})
	return ok, err
}

// ReleaseLease gives a lease up; releasing one not held is no error.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	return s.update(ctx, func(w *wtx) error {
		if _, err := w.exec(`DELETE FROM leases WHERE name = ? AND owner = ?`, name, owner); err != nil {
			return fmt.Errorf("release lease: %w", err)
		}
		return nil
	})
}
