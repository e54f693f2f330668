package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
)

func (s *Store) ListDeleted(ctx context.Context, accountID int64) ([]mailstore.DeletedMessage, error) {
	q, err := s.db()
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, `SELECT id, account_id, mailbox_id, mailbox_name, uid, flags, internal_date, expunged, size, hdr_from, hdr_subject, blob_id
		FROM deleted_messages WHERE account_id = $1 ORDER BY expunged, id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("postgres: list deleted: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mailstore.DeletedMessage, error) {
		var d mailstore.DeletedMessage
		var uid int64
		err := r.Scan(&d.ID, &d.AccountID, &d.MailboxID, &d.MailboxName, &uid, &d.Flags, &d.InternalDate, &d.ExpungedAt, &d.Size, &d.From, &d.Subject, &d.BlobID)
		d.UID = mailstore.UID(uid)
		if d.Flags == nil {
			d.Flags = []string{}
		}
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list deleted: %w", err)
	}
	return out, nil
}

type deletedRow struct {
	id      int64
	mailbox int64
	flags   []string
	date    time.Time
	blob    string
}

// RestoreDeleted puts deleted messages back under new UIDs, into the
// mailbox they left or INBOX if it is gone. The parsed facts are rebuilt
// from the blob: a rare operator action need not keep them twice.
func (s *Store) RestoreDeleted(ctx context.Context, accountID int64, ids []int64) ([]mailstore.AppendResult, error) {
	ids = mailstore.DistinctIDs(ids)
	var res []mailstore.AppendResult
	err := s.write(ctx, func(w *wtx) error {
		if err := w.lockAccounts(accountID); err != nil {
			return err
		}
		rows, err := w.Query(ctx, `SELECT d.id, coalesce(mb.id, 0), d.flags, d.internal_date, d.blob_id
			FROM unnest($2::bigint[]) WITH ORDINALITY AS x(id, ord)
			JOIN deleted_messages d ON d.id = x.id AND d.account_id = $1
			LEFT JOIN mailboxes mb ON mb.id = d.mailbox_id AND mb.account_id = $1 AND NOT mb.deleted
			ORDER BY x.ord FOR UPDATE OF d`, accountID, ids)
		if err != nil {
			return fmt.Errorf("postgres: restore: %w", err)
		}
		dels, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (deletedRow, error) {
			var d deletedRow
			err := r.Scan(&d.id, &d.mailbox, &d.flags, &d.date, &d.blob)
			return d, err
		})
		if err != nil {
			return fmt.Errorf("postgres: restore: %w", err)
		}
		if len(dels) != len(ids) {
			return fmt.Errorf("restore: %d of %d deleted messages not found: %w", len(ids)-len(dels), len(ids), mailstore.ErrNoSuchMessage)
		}
		ts := make([]target, len(dels))
		blobs := make([]string, len(dels))
		for i, d := range dels {
			// d.mailbox is 0 when the mailbox is gone: storeMessages then
			// uses INBOX.
			raw, err := s.blobs.Get(ctx, w, d.blob)
			if err != nil {
				return err
			}
			f, err := newFacts(raw)
			if err != nil {
				return err
			}
			ts[i] = target{acct: accountID, mb: d.mailbox, f: f, flags: cleanFlags(mailstore.RestoredFlags(d.flags)), date: d.date}
			blobs[i] = d.blob
		}
		if res, err = s.storeMessages(w, ts, false); err != nil {
			return err
		}
		// The restored rows took their own references; the retention
		// rows give theirs up.
		if _, err := w.Exec(ctx, "DELETE FROM deleted_messages WHERE id = ANY($1)", ids); err != nil {
			return fmt.Errorf("postgres: restore: %w", err)
		}
		return changeBlobRefs(w, blobs, -1)
	})
	return res, err
}

func (s *Store) Purge(ctx context.Context, cutoff, tombstoneCutoff time.Time) (int, error) {
	var n int
	err := s.write(ctx, func(w *wtx) error {
		rows, err := w.Query(ctx, "DELETE FROM deleted_messages WHERE expunged < $1 RETURNING blob_id", cutoff)
		if err != nil {
			return fmt.Errorf("postgres: purge: %w", err)
		}
		blobs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("postgres: purge: %w", err)
		}
		n = len(blobs)
		if err := changeBlobRefs(w, blobs, -1); err != nil {
			return err
		}
		// QRESYNC from a modseq at or below the floor cannot be answered
		// from tombstones alone (RFC 7162 section 3.2.5.2 lets the server
		// then send a full VANISHED (EARLIER) or fall back).
		_, err = w.Exec(ctx, `WITH t AS (
				DELETE FROM tombstones WHERE expunged < $1 RETURNING mailbox_id, modseq
			)
			UPDATE mailboxes mb SET vanished_floor = greatest(mb.vanished_floor, x.m)
			FROM (SELECT mailbox_id, max(modseq) AS m FROM t GROUP BY mailbox_id) x
			WHERE mb.id = x.mailbox_id`, tombstoneCutoff)
		if err != nil {
			return fmt.Errorf("postgres: purge tombstones: %w", err)
		}
		_, err = s.purgeBlobs(w)
		return err
	})
	return n, err
}
