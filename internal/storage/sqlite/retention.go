package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// ListDeleted lists an account's recoverable messages, oldest expunge
// first.
func (s *Store) ListDeleted(ctx context.Context, accountID int64) ([]mailstore.DeletedMessage, error) {
	var out []mailstore.DeletedMessage
	err := s.readTx(ctx, func(tx *rtx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, account_id, mailbox_id, mailbox_name, uid, flags, keywords,
			internal_date, expunged, size, hdr_from, hdr_subject, blob_id
			FROM deleted_messages WHERE account_id = ? ORDER BY id`, accountID)
		if err != nil {
			return fmt.Errorf("list deleted: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var d mailstore.DeletedMessage
			var bits, internal, expunged int64
			var kws string
			if err := rows.Scan(&d.ID, &d.AccountID, &d.MailboxID, &d.MailboxName, &d.UID, &bits, &kws,
				&internal, &expunged, &d.Size, &d.From, &d.Subject, &d.BlobID); err != nil {
				return fmt.Errorf("list deleted: %w", err)
			}
			d.Flags = decodeFlags(bits, kws)
			d.InternalDate = fromNanos(internal)
			d.ExpungedAt = fromNanos(expunged)
			out = append(out, d)
		}
		return rows.Err()
	})
	return out, err
}

// RestoreDeleted puts retained messages back under new UIDs, into the
// mailbox they left or INBOX if it is gone. Quota is not enforced: this
// is the operator's act.
func (s *Store) RestoreDeleted(ctx context.Context, accountID int64, ids []int64) ([]mailstore.AppendResult, error) {
	// Read and parse outside the writer; the writer re-checks each row.
	type item struct {
		d    mailstore.DeletedMessage
		prep *prepared
	}
	ids = mailstore.DistinctIDs(ids)
	all, err := s.ListDeleted(ctx, accountID)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]mailstore.DeletedMessage, len(all))
	for _, d := range all {
		byID[d.ID] = d
	}
	items := make([]item, len(ids))
	for i, id := range ids {
		d, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("deleted message %d: %w", id, mailstore.ErrNoSuchMessage)
		}
		raw, err := s.ReadBlob(ctx, d.BlobID)
		if err != nil {
			return nil, err
		}
		p, err := prepare(raw)
		if err != nil {
			return nil, err
		}
		items[i] = item{d, p}
	}
	var out []mailstore.AppendResult
	err = s.update(ctx, func(w *wtx) error {
		out = make([]mailstore.AppendResult, len(items))
		boxes := newMailboxCache(w)
		ms := &lazyModSeq{w: w, account: accountID}
		var bytes int64
		for i, it := range items {
			res, err := w.exec(`DELETE FROM deleted_messages WHERE id = ? AND account_id = ?`, it.d.ID, accountID)
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("deleted message %d: %w", it.d.ID, mailstore.ErrNoSuchMessage)
			}
			mb, err := boxes.get(accountID, it.d.MailboxID)
			if errors.Is(err, mailstore.ErrNoSuchMailbox) {
				mb, err = boxes.inbox(accountID)
			}
			if err != nil {
				return err
			}
			m, err := ms.get()
			if err != nil {
				return err
			}
			uid, err := s.insertMessage(w, mb, it.prep, mailstore.RestoredFlags(it.d.Flags), it.d.InternalDate, m)
			if err != nil {
				return err
			}
			// insertMessage took a new reference; the retention row's
			// reference goes away with the row.
			if err := s.refBlob(w, it.d.BlobID, -1); err != nil {
				return err
			}
			boxes.changed(mb, m)
			bytes += it.d.Size
			out[i] = mailstore.AppendResult{MailboxID: mb.ID, UIDValidity: mb.UIDValidity, UID: uid, ModSeq: m}
		}
		if err := boxes.flush(); err != nil {
			return err
		}
		return w.addUsage(accountID, bytes, int64(len(items)), false)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Purge ends retention: it drops retained messages expunged before cutoff,
// tombstones older than tombstoneCutoff (raising each mailbox's
// VanishedFloor to the highest modseq dropped, so QRESYNC knows its
// history is incomplete below it), deleted mailboxes' records of the same
// age, stale POP3 hide marks, and unreferenced blobs. It returns the
// number of messages dropped.
func (s *Store) Purge(ctx context.Context, cutoff, tombstoneCutoff time.Time) (int, error) {
	var n int
	err := s.update(ctx, func(w *wtx) error {
		n = 0
		deltas := map[string]int{}
		rows, err := w.query(`DELETE FROM deleted_messages WHERE expunged < ? RETURNING blob_id`, nanos(cutoff))
		if err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		for rows.Next() {
			var b string
			if err := rows.Scan(&b); err != nil {
				rows.Close()
				return fmt.Errorf("purge: %w", err)
			}
			deltas[b]--
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		if err := s.refBlobs(w, deltas); err != nil {
			return err
		}
		tc := nanos(tombstoneCutoff)
		if _, err := w.exec(`UPDATE mailboxes SET vanished_floor = max(vanished_floor,
				(SELECT max(t.modseq) FROM tombstones t WHERE t.mailbox_id = mailboxes.id AND t.expunged < ?1))
			WHERE id IN (SELECT DISTINCT mailbox_id FROM tombstones WHERE expunged < ?1)`, tc); err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		if _, err := w.exec(`DELETE FROM tombstones WHERE expunged < ?`, tc); err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		if _, err := w.exec(`DELETE FROM mailboxes WHERE deleted = 1 AND changed < ?`, tc); err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		// POP3 hide marks of messages no longer there (UIDs are never
		// reused, so they only take room).
		if _, err := w.exec(`DELETE FROM pop_hidden WHERE NOT EXISTS (SELECT 1 FROM messages m
			WHERE m.mailbox_id = pop_hidden.mailbox_id AND m.uid = pop_hidden.uid)`); err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		// Blobs whose count reached zero are deleted at once; this sweeps
		// any left by an interrupted older version.
		rows, err = w.query(`DELETE FROM blobs WHERE refs <= 0 RETURNING id, coalesce(text_id, 0)`)
		if err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		type goneBlob struct {
			id     string
			textID int64
		}
		var gone []goneBlob
		for rows.Next() {
			var b goneBlob
			if err := rows.Scan(&b.id, &b.textID); err != nil {
				rows.Close()
				return fmt.Errorf("purge: %w", err)
			}
			gone = append(gone, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		for _, b := range gone {
			if b.textID == 0 {
				continue
			}
			if err := w.dropText(b.textID); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}
