package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/roost-mail/roost/internal/mailstore"
)

const mailboxCols = `id, account_id, name, special_use, uidvalidity, uidnext, highestmodseq, vanished_floor, subscribed`

func scanMailbox(r scanner) (mailstore.Mailbox, error) {
	var m mailstore.Mailbox
	err := r.Scan(&m.ID, &m.AccountID, &m.Name, &m.SpecialUse, &m.UIDValidity, &m.UIDNext, &m.HighestModSeq, &m.VanishedFloor, &m.Subscribed)
	return m, err
}

var specialUses = []string{mailstore.SpecialSent, mailstore.SpecialTrash, mailstore.SpecialDrafts,
	mailstore.SpecialJunk, mailstore.SpecialArchive, mailstore.SpecialAll, mailstore.SpecialFlagged}

// normalizeSpecialUse returns the canonical spelling of a special-use
// attribute (RFC 6154 section 2), "" for none.
func normalizeSpecialUse(use string) (string, error) {
	if use == "" {
		return "", nil
	}
	for _, u := range specialUses {
		if strings.EqualFold(u, use) {
			return u, nil
		}
	}
	return "", fmt.Errorf("%w: special use %q", mailstore.ErrInvalidName, use)
}

func mailboxNotFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("mailbox %s: %w", what, mailstore.ErrNoSuchMailbox)
	}
	return fmt.Errorf("look up mailbox: %w", err)
}

// HighestModSeq is the account's current modseq.
func (s *Store) HighestModSeq(ctx context.Context, accountID int64) (mailstore.ModSeq, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	return accountModSeq(ctx, s.rd(), accountID)
}

// ListMailboxes lists the account's mailboxes by name.
func (s *Store) ListMailboxes(ctx context.Context, accountID int64) ([]mailstore.Mailbox, error) {
	var out []mailstore.Mailbox
	err := s.readTx(ctx, func(tx *rtx) error {
		var err error
		out, err = listMailboxes(ctx, tx, accountID)
		if err == nil && len(out) == 0 {
			// Every account has INBOX: none means no account.
			var ok bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE id = ?)`, accountID).Scan(&ok); err != nil {
				return fmt.Errorf("list mailboxes: %w", err)
			}
			if !ok {
				return fmt.Errorf("account #%d: %w", accountID, mailstore.ErrNoSuchAccount)
			}
		}
		return err
	})
	return out, err
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func listMailboxes(ctx context.Context, q querier, accountID int64) ([]mailstore.Mailbox, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = ? AND deleted = 0 ORDER BY name`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	defer rows.Close()
	var out []mailstore.Mailbox
	for rows.Next() {
		m, err := scanMailbox(rows)
		if err != nil {
			return nil, fmt.Errorf("list mailboxes: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// GetMailbox finds a mailbox by name.
func (s *Store) GetMailbox(ctx context.Context, accountID int64, name string) (mailstore.Mailbox, error) {
	if err := s.checkOpen(); err != nil {
		return mailstore.Mailbox{}, err
	}
	n, err := mailstore.NormalizeMailboxName(name)
	if err != nil {
		return mailstore.Mailbox{}, fmt.Errorf("mailbox %q: %w", name, mailstore.ErrNoSuchMailbox)
	}
	return getMailbox(ctx, s.rd(), accountID, n)
}

func getMailbox(ctx context.Context, q querier, accountID int64, name string) (mailstore.Mailbox, error) {
	m, err := scanMailbox(q.QueryRowContext(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = ? AND name = ? AND deleted = 0`, accountID, name))
	if err != nil {
		return m, mailboxNotFound(err, fmt.Sprintf("%q", name))
	}
	return m, nil
}

func getMailboxByID(ctx context.Context, q querier, accountID, id int64) (mailstore.Mailbox, error) {
	m, err := scanMailbox(q.QueryRowContext(ctx, `SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = ? AND id = ? AND deleted = 0`, accountID, id))
	if err != nil {
		return m, mailboxNotFound(err, fmt.Sprint("#", id))
	}
	return m, nil
}

// GetMailboxByID finds a mailbox by id.
func (s *Store) GetMailboxByID(ctx context.Context, accountID, id int64) (mailstore.Mailbox, error) {
	if err := s.checkOpen(); err != nil {
		return mailstore.Mailbox{}, err
	}
	return getMailboxByID(ctx, s.rd(), accountID, id)
}

// MailboxBySpecialUse finds the (oldest) mailbox with that attribute.
func (s *Store) MailboxBySpecialUse(ctx context.Context, accountID int64, use string) (mailstore.Mailbox, error) {
	if err := s.checkOpen(); err != nil {
		return mailstore.Mailbox{}, err
	}
	u, err := normalizeSpecialUse(use)
	if err != nil || u == "" {
		return mailstore.Mailbox{}, fmt.Errorf("special use %q: %w", use, mailstore.ErrNoSuchMailbox)
	}
	m, err := scanMailbox(s.rd().QueryRowContext(ctx, `SELECT `+mailboxCols+` FROM mailboxes
		WHERE account_id = ? AND special_use = ? AND deleted = 0 ORDER BY id LIMIT 1`, accountID, u))
	if err != nil {
		return m, mailboxNotFound(err, u)
	}
	return m, nil
}

// nextUIDValidity takes a value never handed out before in this store
// (RFC 9051 section 2.3.1.1: a recreated name must get a new UIDVALIDITY).
// It starts from the clock so a store rebuilt from scratch is unlikely to
// repeat values an old client cached.
func (w *wtx) nextUIDValidity() (uint32, error) {
	var v int64
	err := w.queryRow(`INSERT INTO counters (name, value) VALUES ('uidvalidity', ?)
		ON CONFLICT (name) DO UPDATE SET value = max(value + 1, excluded.value) RETURNING value`,
		w.now.Unix()).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("next uidvalidity: %w", err)
	}
	// 32 bits, nonzero (RFC 9051 section 9: nz-number).
	v = v % (1 << 32)
	if v == 0 {
		v = 1
	}
	return uint32(v), nil
}

func (w *wtx) insertMailbox(accountID int64, name, specialUse string, subscribed bool, m mailstore.ModSeq) (mailstore.Mailbox, error) {
	uv, err := w.nextUIDValidity()
	if err != nil {
		return mailstore.Mailbox{}, err
	}
	mb, err := scanMailbox(w.queryRow(`INSERT INTO mailboxes (account_id, name, special_use, uidvalidity, highestmodseq, subscribed, modseq, changed)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+mailboxCols, accountID, name, specialUse, uv, m, subscribed, m, nanos(w.now)))
	if isUniqueViolation(err) {
		return mb, fmt.Errorf("mailbox %q: %w", name, mailstore.ErrExists)
	}
	if err != nil {
		return mb, fmt.Errorf("create mailbox: %w", err)
	}
	return mb, nil
}

// CreateMailbox creates a mailbox and its missing parents (RFC 9051
// section 6.3.4).
func (s *Store) CreateMailbox(ctx context.Context, accountID int64, name, specialUse string) (mailstore.Mailbox, error) {
	n, err := mailstore.NormalizeMailboxName(name)
	if err != nil {
		return mailstore.Mailbox{}, err
	}
	use, err := normalizeSpecialUse(specialUse)
	if err != nil {
		return mailstore.Mailbox{}, err
	}
	var out mailstore.Mailbox
	err = s.update(ctx, func(w *wtx) error {
		if _, err := getMailbox(w.ctx, w, accountID, n); err == nil {
			return fmt.Errorf("mailbox %q: %w", n, mailstore.ErrExists)
		} else if !errors.Is(err, mailstore.ErrNoSuchMailbox) {
			return err
		}
		m, err := w.nextModSeq(accountID)
		if err != nil {
			return err
		}
		if err := w.createParents(accountID, n, m); err != nil {
			return err
		}
		out, err = w.insertMailbox(accountID, n, use, false, m)
		return err
	})
	return out, err
}

// createParents makes the missing superior names of name.
func (w *wtx) createParents(accountID int64, name string, m mailstore.ModSeq) error {
	var missing []string
	for p := mailstore.Parent(name); p != ""; p = mailstore.Parent(p) {
		_, err := getMailbox(w.ctx, w, accountID, p)
		if err == nil {
			break
		}
		if !errors.Is(err, mailstore.ErrNoSuchMailbox) {
			return err
		}
		missing = append(missing, p)
	}
	slices.Reverse(missing)
	for _, p := range missing {
		if _, err := w.insertMailbox(accountID, p, "", false, m); err != nil {
			return err
		}
	}
	return nil
}

// touchMailbox records a change of the mailbox itself (the change feed's
// ChangeMailbox) and of its HIGHESTMODSEQ.
func (w *wtx) touchMailbox(id int64, m mailstore.ModSeq) error {
	_, err := w.exec(`UPDATE mailboxes SET modseq = ?, highestmodseq = max(highestmodseq, ?), changed = ? WHERE id = ?`, m, m, nanos(w.now), id)
	if err != nil {
		return fmt.Errorf("update mailbox: %w", err)
	}
	return nil
}

// RenameMailbox renames a mailbox and its inferiors (RFC 9051 section
// 6.3.6). Renaming INBOX moves its messages into a new mailbox instead.
func (s *Store) RenameMailbox(ctx context.Context, accountID int64, from, to string) error {
	src, err := mailstore.NormalizeMailboxName(from)
	if err != nil {
		return fmt.Errorf("mailbox %q: %w", from, mailstore.ErrNoSuchMailbox)
	}
	dst, err := mailstore.NormalizeMailboxName(to)
	if err != nil {
		return err
	}
	// INBOX always exists and cannot be replaced. A mailbox cannot move
	// into its own subtree, except INBOX: RFC 9051 section 6.3.6 moves
	// only INBOX's messages to the new name and leaves INBOX and its
	// inferiors in place, so RENAME INBOX INBOX/old is a plain new child.
	if dst == mailstore.InboxName || src != mailstore.InboxName && strings.HasPrefix(dst, src+mailstore.Separator) {
		return fmt.Errorf("%w: cannot rename %q to %q", mailstore.ErrInvalidName, src, dst)
	}
	return s.update(ctx, func(w *wtx) error {
		mb, err := getMailbox(w.ctx, w, accountID, src)
		if err != nil {
			return err
		}
		if src == dst {
			return fmt.Errorf("mailbox %q: %w", dst, mailstore.ErrExists)
		}
		if _, err := getMailbox(w.ctx, w, accountID, dst); err == nil {
			return fmt.Errorf("mailbox %q: %w", dst, mailstore.ErrExists)
		} else if !errors.Is(err, mailstore.ErrNoSuchMailbox) {
			return err
		}
		m, err := w.nextModSeq(accountID)
		if err != nil {
			return err
		}
		// RFC 9051 section 6.3.6: the server SHOULD create superior names
		// the new name needs.
		if err := w.createParents(accountID, dst, m); err != nil {
			return err
		}
		if src == mailstore.InboxName {
			// RFC 9051 section 6.3.6: renaming INBOX moves all its
			// messages to a new mailbox with the given name, leaving INBOX
			// empty; INBOX's inferiors are unaffected.
			nb, err := w.insertMailbox(accountID, dst, "", mb.Subscribed, m)
			if err != nil {
				return err
			}
			_, err = s.moveAll(w, accountID, mb, nb, m)
			return err
		}
		all, err := listMailboxes(w.ctx, w, accountID)
		if err != nil {
			return err
		}
		for _, c := range all {
			var newName string
			switch {
			case c.Name == src:
				newName = dst
			case strings.HasPrefix(c.Name, src+mailstore.Separator):
				newName = dst + c.Name[len(src):]
			default:
				continue
			}
			_, err := w.exec(`UPDATE mailboxes SET name = ? WHERE id = ?`, newName, c.ID)
			if isUniqueViolation(err) {
				return fmt.Errorf("mailbox %q: %w", newName, mailstore.ErrExists)
			}
			if err != nil {
				return fmt.Errorf("rename mailbox: %w", err)
			}
			if err := w.touchMailbox(c.ID, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteMailbox deletes a mailbox, moving its messages into the retention
// area. RFC 9051 section 6.3.5 would let a mailbox with inferiors lose its
// messages and stay as \Noselect; the store has no \Noselect mailboxes, so
// it refuses with ErrHasChildren and the client deletes the children
// first.
func (s *Store) DeleteMailbox(ctx context.Context, accountID int64, name string) error {
	n, err := mailstore.NormalizeMailboxName(name)
	if err != nil {
		return fmt.Errorf("mailbox %q: %w", name, mailstore.ErrNoSuchMailbox)
	}
	if n == mailstore.InboxName {
		// RFC 9051 section 6.3.5: deleting INBOX is an error.
		return fmt.Errorf("INBOX: %w", mailstore.ErrCannotDelete)
	}
	return s.update(ctx, func(w *wtx) error {
		mb, err := getMailbox(w.ctx, w, accountID, n)
		if err != nil {
			return err
		}
		all, err := listMailboxes(w.ctx, w, accountID)
		if err != nil {
			return err
		}
		for _, c := range all {
			if strings.HasPrefix(c.Name, n+mailstore.Separator) {
				return fmt.Errorf("mailbox %q: %w", n, mailstore.ErrHasChildren)
			}
		}
		m, err := w.nextModSeq(accountID)
		if err != nil {
			return err
		}
		if err := s.expungeAll(w, &mb, m); err != nil {
			return err
		}
		// Its tombstones answer no one now: the mailbox ID is never
		// selected again.
		if _, err := w.exec(`DELETE FROM tombstones WHERE mailbox_id = ?`, mb.ID); err != nil {
			return fmt.Errorf("delete mailbox: %w", err)
		}
		if _, err := w.exec(`DELETE FROM pop_hidden WHERE mailbox_id = ?`, mb.ID); err != nil {
			return fmt.Errorf("delete mailbox: %w", err)
		}
		if _, err := w.exec(`UPDATE mailboxes SET deleted = 1, subscribed = 0 WHERE id = ?`, mb.ID); err != nil {
			return fmt.Errorf("delete mailbox: %w", err)
		}
		return w.touchMailbox(mb.ID, m)
	})
}

// SetSubscribed (un)subscribes a mailbox (RFC 9051 sections 6.3.7, 6.3.8).
func (s *Store) SetSubscribed(ctx context.Context, accountID int64, name string, subscribed bool) error {
	n, err := mailstore.NormalizeMailboxName(name)
	if err != nil {
		return fmt.Errorf("mailbox %q: %w", name, mailstore.ErrNoSuchMailbox)
	}
	return s.update(ctx, func(w *wtx) error {
		mb, err := getMailbox(w.ctx, w, accountID, n)
		if err != nil {
			return err
		}
		if mb.Subscribed == subscribed {
			return nil
		}
		m, err := w.nextModSeq(accountID)
		if err != nil {
			return err
		}
		if _, err := w.exec(`UPDATE mailboxes SET subscribed = ? WHERE id = ?`, subscribed, mb.ID); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		return w.touchMailbox(mb.ID, m)
	})
}

// MailboxKeywords lists the keywords set in a mailbox (index
// messages_keywords: only rows with keywords are read).
func (s *Store) MailboxKeywords(ctx context.Context, accountID, mailboxID int64) ([]string, error) {
	var kws []string
	err := s.readTx(ctx, func(tx *rtx) error {
		if _, err := getMailboxByID(ctx, tx, accountID, mailboxID); err != nil {
			return err
		}
		var err error
		kws, err = mailboxKeywords(ctx, tx, mailboxID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return kws, nil
}

func mailboxKeywords(ctx context.Context, q querier, mailboxID int64) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT keywords FROM messages WHERE mailbox_id = ? AND keywords <> ''`, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("keywords: %w", err)
	}
	defer rows.Close()
	var kws []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("keywords: %w", err)
		}
		kws = append(kws, strings.Fields(k)...)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("keywords: %w", err)
	}
	return mailstore.Keywords(kws), nil
}

// Status counts a mailbox.
func (s *Store) Status(ctx context.Context, accountID, mailboxID int64) (mailstore.MailboxStatus, error) {
	var st mailstore.MailboxStatus
	err := s.readTx(ctx, func(tx *rtx) error {
		mb, err := getMailboxByID(ctx, tx, accountID, mailboxID)
		if err != nil {
			return err
		}
		st.Mailbox = mb
		// The counts are kept by triggers (migration 0002).
		err = tx.QueryRowContext(ctx, `SELECT n_messages, n_unseen, n_deleted, n_size FROM mailboxes WHERE id = ?`,
			mailboxID).Scan(&st.Messages, &st.Unseen, &st.Deleted, &st.Size)
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		return nil
	})
	return st, err
}
