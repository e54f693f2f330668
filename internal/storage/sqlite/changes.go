package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/roost-mail/roost/internal/mailstore"
)

// Changes returns the account's changes with modseq > since in modseq
// order: message rows changed or created (their current state), expunges
// from tombstones, and mailbox changes.
//
// One operation gives all its changes the same modseq (a STORE on many
// messages, a MOVE). A client resumes from the last modseq it saw, so a
// page must never end inside such a group: with a limit, the page ends at
// the last complete group within it; if the first group alone is larger
// than limit, the whole group is returned (more than limit entries).
func (s *Store) Changes(ctx context.Context, accountID int64, since mailstore.ModSeq, limit int) ([]mailstore.Change, error) {
	var out []mailstore.Change
	err := s.readTx(ctx, func(tx *rtx) error {
		cur, err := accountModSeq(ctx, tx, accountID)
		if err != nil {
			return err
		}
		upto := cur
		if limit > 0 {
			// The limit-th smallest modseq over the three sources bounds
			// the page; the sources are then read in full up to it.
			var c sql.NullInt64
			err := tx.QueryRowContext(ctx, `SELECT max(modseq) FROM (
				SELECT modseq FROM (SELECT modseq FROM messages WHERE account_id = ?1 AND modseq > ?2 ORDER BY modseq LIMIT ?3)
				UNION ALL SELECT modseq FROM (SELECT modseq FROM tombstones WHERE account_id = ?1 AND modseq > ?2 ORDER BY modseq LIMIT ?3)
				UNION ALL SELECT modseq FROM (SELECT modseq FROM mailboxes WHERE account_id = ?1 AND modseq > ?2 ORDER BY modseq LIMIT ?3)
				ORDER BY modseq LIMIT ?3)`, accountID, int64(since), limit).Scan(&c)
			if err != nil {
				return fmt.Errorf("changes: %w", err)
			}
			if !c.Valid {
				return nil
			}
			upto = mailstore.ModSeq(c.Int64)
		}
		out, err = readChanges(ctx, tx, accountID, since, upto)
		if err != nil {
			return err
		}
		if limit > 0 && len(out) > limit {
			// Drop the trailing group that went past the limit, unless
			// it is the only one.
			last := out[len(out)-1].ModSeq
			i := len(out)
			for i > 0 && out[i-1].ModSeq == last {
				i--
			}
			if i > 0 {
				out = out[:i]
			}
		}
		return nil
	})
	return out, err
}

func readChanges(ctx context.Context, tx querier, accountID int64, since, upto mailstore.ModSeq) ([]mailstore.Change, error) {
	args := []any{accountID, int64(since), int64(upto)}
	out, err := appendChanges(ctx, tx, nil, `SELECT modseq, createmodseq, mailbox_id, uid, flags, keywords FROM messages
		WHERE account_id = ? AND modseq > ? AND modseq <= ?`, args, func(rows *sql.Rows) (mailstore.Change, error) {
		c := mailstore.Change{Kind: mailstore.ChangeMessage}
		var created mailstore.ModSeq
		var bits int64
		var kws string
		err := rows.Scan(&c.ModSeq, &created, &c.MailboxID, &c.UID, &bits, &kws)
		c.Flags = decodeFlags(bits, kws)
		c.Created = created > since
		return c, err
	})
	if err != nil {
		return nil, err
	}
	out, err = appendChanges(ctx, tx, out, `SELECT modseq, mailbox_id, uid FROM tombstones
		WHERE account_id = ? AND modseq > ? AND modseq <= ?`, args, func(rows *sql.Rows) (mailstore.Change, error) {
		c := mailstore.Change{Kind: mailstore.ChangeExpunge}
		err := rows.Scan(&c.ModSeq, &c.MailboxID, &c.UID)
		return c, err
	})
	if err != nil {
		return nil, err
	}
	out, err = appendChanges(ctx, tx, out, `SELECT modseq, id, deleted FROM mailboxes
		WHERE account_id = ? AND modseq > ? AND modseq <= ?`, args, func(rows *sql.Rows) (mailstore.Change, error) {
		c := mailstore.Change{Kind: mailstore.ChangeMailbox}
		err := rows.Scan(&c.ModSeq, &c.MailboxID, &c.Deleted)
		return c, err
	})
	if err != nil {
		return nil, err
	}

	// Within one modseq: mailbox changes first (a session learns of a new
	// mailbox before its messages), then expunges, then messages.
	rank := map[mailstore.ChangeKind]int{mailstore.ChangeMailbox: 0, mailstore.ChangeExpunge: 1, mailstore.ChangeMessage: 2}
	slices.SortFunc(out, func(a, b mailstore.Change) int {
		switch {
		case a.ModSeq != b.ModSeq:
			return cmpInt(a.ModSeq, b.ModSeq)
		case a.Kind != b.Kind:
			return rank[a.Kind] - rank[b.Kind]
		case a.MailboxID != b.MailboxID:
			return cmpInt(a.MailboxID, b.MailboxID)
		}
		return cmpInt(a.UID, b.UID)
	})
	return out, nil
}

func cmpInt[T ~int64 | ~uint64 | ~uint32](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Vanished lists the UIDs of a mailbox expunged with modseq > since, from
// tombstones (RFC 7162 section 3.2.10).
func (s *Store) Vanished(ctx context.Context, accountID, mailboxID int64, since mailstore.ModSeq) ([]mailstore.UID, error) {
	var out []mailstore.UID
	err := s.readTx(ctx, func(tx *rtx) error {
		if _, err := getMailboxByID(ctx, tx, accountID, mailboxID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT uid FROM tombstones WHERE mailbox_id = ? AND modseq > ? ORDER BY uid`, mailboxID, int64(since))
		if err != nil {
			return fmt.Errorf("vanished: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var u mailstore.UID
			if err := rows.Scan(&u); err != nil {
				return fmt.Errorf("vanished: %w", err)
			}
			out = append(out, u)
		}
		return rows.Err()
	})
	return out, err
}

// PopHidden lists the UIDs hidden from a POP3 view.
func (s *Store) PopHidden(ctx context.Context, accountID, mailboxID int64, view string) ([]mailstore.UID, error) {
	var out []mailstore.UID
	err := s.readTx(ctx, func(tx *rtx) error {
		rows, err := tx.QueryContext(ctx, `SELECT uid FROM pop_hidden WHERE account_id = ? AND mailbox_id = ? AND view = ? ORDER BY uid`, accountID, mailboxID, view)
		if err != nil {
			return fmt.Errorf("pop hidden: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var u mailstore.UID
			if err := rows.Scan(&u); err != nil {
				return fmt.Errorf("pop hidden: %w", err)
			}
			out = append(out, u)
		}
		return rows.Err()
	})
	return out, err
}

// PopHide hides UIDs from a POP3 view; IMAP sees no change, so no modseq.
func (s *Store) PopHide(ctx context.Context, accountID, mailboxID int64, view string, uids []mailstore.UID) error {
	if len(uids) == 0 {
		return nil
	}
	return s.update(ctx, func(w *wtx) error {
		if _, err := getMailboxByID(w.ctx, w, accountID, mailboxID); err != nil {
			return err
		}
		for _, u := range uids {
			if _, err := w.exec(`INSERT OR IGNORE INTO pop_hidden (account_id, mailbox_id, view, uid) VALUES (?, ?, ?, ?)`,
				accountID, mailboxID, view, u); err != nil {
				return fmt.Errorf("pop hide: %w", err)
			}
		}
		return nil
	})
}

// appendChanges runs one source query of the change feed and appends a
// Change per row, built by scan.
func appendChanges(ctx context.Context, tx querier, out []mailstore.Change, query string, args []any, scan func(*sql.Rows) (mailstore.Change, error)) ([]mailstore.Change, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("changes: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	return out, nil
}
