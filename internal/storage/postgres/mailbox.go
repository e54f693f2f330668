package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
)

const mailboxCols = "id, account_id, name, special_use, uidvalidity, uidnext, highestmodseq, vanished_floor, subscribed"

func scanMailbox(r pgx.Row) (mailstore.Mailbox, error) {
	return scanMailboxAnd(r)
}

// scanMailboxAnd scans mailboxCols followed by more columns into extra.
func scanMailboxAnd(r pgx.Row, extra ...any) (mailstore.Mailbox, error) {
	var mb mailstore.Mailbox
	var uidvalidity, uidnext, hms, floor int64
	dest := append([]any{&mb.ID, &mb.AccountID, &mb.Name, &mb.SpecialUse, &uidvalidity, &uidnext, &hms, &floor, &mb.Subscribed}, extra...)
	err := r.Scan(dest...)
	mb.UIDValidity = uint32(uidvalidity)
	mb.UIDNext = mailstore.UID(uidnext)
	mb.HighestModSeq = mailstore.ModSeq(hms)
	mb.VanishedFloor = mailstore.ModSeq(floor)
	return mb, err
}

func mailboxErr(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("mailbox %s: %w", what, mailstore.ErrNoSuchMailbox)
	}
	return fmt.Errorf("postgres: mailbox %s: %w", what, err)
}

func (s *Store) HighestModSeq(ctx context.Context, accountID int64) (mailstore.ModSeq, error) {
	q, err := s.db()
	if err != nil {
		return 0, err
	}
	var ms int64
	err = q.QueryRow(ctx, "SELECT modseq FROM accounts WHERE id = $1", accountID).Scan(&ms)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("account %d: %w", accountID, mailstore.ErrNoSuchAccount)
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: highest modseq: %w", err)
	}
	return mailstore.ModSeq(ms), nil
}

func (s *Store) ListMailboxes(ctx context.Context, accountID int64) ([]mailstore.Mailbox, error) {
	q, err := s.db()
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, "SELECT "+mailboxCols+" FROM mailboxes WHERE account_id = $1 AND NOT deleted ORDER BY name", accountID)
	if err != nil {
		return nil, fmt.Errorf("postgres: list mailboxes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mailstore.Mailbox, error) { return scanMailbox(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list mailboxes: %w", err)
	}
	return out, nil
}

func (s *Store) GetMailbox(ctx context.Context, accountID int64, name string) (mailstore.Mailbox, error) {
	n, err := mailstore.NormalizeMailboxName(name)
	if err != nil {
		return mailstore.Mailbox{}, fmt.Errorf("mailbox %q: %w", name, mailstore.ErrNoSuchMailbox)
	}
	q, err := s.db()
	if err != nil {
		return mailstore.Mailbox{}, err
	}
	mb, err := scanMailbox(q.QueryRow(ctx, "SELECT "+mailboxCols+" FROM mailboxes WHERE account_id = $1 AND name = $2 AND NOT deleted", accountID, n))
	if err != nil {
		return mb, mailboxErr(err, n)
	}
	return mb, nil
}

func (s *Store) GetMailboxByID(ctx context.Context, accountID, id int64) (mailstore.Mailbox, error) {
	q, err := s.db()
	if err != nil {
		return mailstore.Mailbox{}, err
	}
	mb, err := scanMailbox(q.QueryRow(ctx, "SELECT "+mailboxCols+" FROM mailboxes WHERE account_id = $1 AND id = $2 AND NOT deleted", accountID, id))
	if err != nil {
		return mb, mailboxErr(err, fmt.Sprint(id))
	}
	return mb, nil
}

func (s *Store) MailboxBySpecialUse(ctx context.Context, accountID int64, use string) (mailstore.Mailbox, error) {
	q, err := s.db()
	if err != nil {
		return mailstore.Mailbox{}, err
	}
	mb, err := scanMailbox(q.QueryRow(ctx, "SELECT "+mailboxCols+` FROM mailboxes
		WHERE account_id = $1 AND lower(special_use) = lower($2) AND NOT deleted ORDER BY id LIMIT 1`, accountID, use))
	if err != nil {
		return mb, mailboxErr(err, use)
	}
	return mb, nil
}

// lockMailbox locks a live mailbox row of the account (after the account
// row: see wtx).
func lockMailbox(w *wtx, accountID, id int64) (mailstore.Mailbox, error) {
	mb, err := scanMailbox(w.QueryRow(w.ctx, "SELECT "+mailboxCols+" FROM mailboxes WHERE account_id = $1 AND id = $2 AND NOT deleted FOR UPDATE", accountID, id))
	if err != nil {
		return mb, mailboxErr(err, fmt.Sprint(id))
	}
	return mb, nil
}

func lockMailboxByName(w *wtx, accountID int64, name string) (mailstore.Mailbox, error) {
	mb, err := scanMailbox(w.QueryRow(w.ctx, "SELECT "+mailboxCols+" FROM mailboxes WHERE account_id = $1 AND name = $2 AND NOT deleted FOR UPDATE", accountID, name))
	if err != nil {
		return mb, mailboxErr(err, name)
	}
	return mb, nil
}

func validSpecialUse(use string) bool {
	switch use {
	case "", mailstore.SpecialSent, mailstore.SpecialTrash, mailstore.SpecialDrafts, mailstore.SpecialJunk,
		mailstore.SpecialArchive, mailstore.SpecialAll, mailstore.SpecialFlagged:
		return true
	}
	return false
}

func (s *Store) CreateMailbox(ctx context.Context, accountID int64, name, specialUse string) (mailstore.Mailbox, error) {
	n, err := mailstore.NormalizeMailboxName(name)
	if err != nil {
		return mailstore.Mailbox{}, err
	}
	if !validSpecialUse(specialUse) {
		return mailstore.Mailbox{}, fmt.Errorf("%w: special use %q", mailstore.ErrInvalidName, specialUse)
	}
	var out mailstore.Mailbox
	err = s.write(ctx, func(w *wtx) error {
		if err := w.lockAccounts(accountID); err != nil {
			return err
		}
		var exists bool
		if err := w.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM mailboxes WHERE account_id = $1 AND name = $2 AND NOT deleted)", accountID, n).Scan(&exists); err != nil {
			return fmt.Errorf("postgres: create mailbox: %w", err)
		}
		if exists {
			return fmt.Errorf("mailbox %s: %w", n, mailstore.ErrExists)
		}
		ms, err := w.modseq(accountID)
		if err != nil {
			return err
		}
		// RFC 9051 section 6.3.4: create missing superior names too.
		if err := createParents(w, accountID, n, ms); err != nil {
			return err
		}
		out, err = insertMailbox(w, accountID, n, specialUse, false, ms)
		return err
	})
	return out, err
}

func insertMailbox(w *wtx, accountID int64, name, specialUse string, subscribed bool, ms mailstore.ModSeq) (mailstore.Mailbox, error) {
	mb, err := scanMailbox(w.QueryRow(w.ctx, `INSERT INTO mailboxes (account_id, name, special_use, uidvalidity, highestmodseq, modseq, subscribed)
		VALUES ($1, $2, $3, nextval('uidvalidity_seq'), $4, $4, $5) RETURNING `+mailboxCols, accountID, name, specialUse, int64(ms), subscribed))
	if pgCode(err) == codeUniqueViolation {
		return mb, fmt.Errorf("mailbox %s: %w", name, mailstore.ErrExists)
	}
	if err != nil {
		return mb, fmt.Errorf("postgres: create mailbox: %w", err)
	}
	return mb, nil
}

func createParents(w *wtx, accountID int64, name string, ms mailstore.ModSeq) error {
	var parents []string
	for p := mailstore.Parent(name); p != ""; p = mailstore.Parent(p) {
		parents = append([]string{p}, parents...)
	}
	for _, p := range parents {
		if _, err := w.Exec(w.ctx, `INSERT INTO mailboxes (account_id, name, uidvalidity, highestmodseq, modseq)
			SELECT $1, $2, nextval('uidvalidity_seq'), $3, $3
			WHERE NOT EXISTS (SELECT 1 FROM mailboxes WHERE account_id = $1 AND name = $2 AND NOT deleted)`,
			accountID, p, int64(ms)); err != nil {
			return fmt.Errorf("postgres: create parent mailbox: %w", err)
		}
	}
	return nil
}

// likePrefix escapes s for use as a LIKE prefix (with ESCAPE '\').
func likePrefix(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

func (s *Store) RenameMailbox(ctx context.Context, accountID int64, from, to string) error {
	f, err := mailstore.NormalizeMailboxName(from)
	if err != nil {
		return fmt.Errorf("mailbox %q: %w", from, mailstore.ErrNoSuchMailbox)
	}
	t, err := mailstore.NormalizeMailboxName(to)
	if err != nil {
		return err
	}
	// INBOX always exists and cannot be replaced, so a rename to it is a
	// bad name rather than an existing one. A mailbox cannot move into its
	// own subtree, except INBOX: RFC 9051 section 6.3.6 moves only INBOX's
	// messages to the new name and leaves INBOX and its inferiors in
	// place, so RENAME INBOX INBOX/old is a plain new child.
	if t == mailstore.InboxName || f != mailstore.InboxName && strings.HasPrefix(t, f+mailstore.Separator) {
		return fmt.Errorf("%w: cannot rename %q to %q", mailstore.ErrInvalidName, f, t)
	}
	return s.write(ctx, func(w *wtx) error {
		if err := w.lockAccounts(accountID); err != nil {
			return err
		}
		src, err := lockMailboxByName(w, accountID, f)
		if err != nil {
			return err
		}
		// Checked after the lookup so that a missing source reports
		// ErrNoSuchMailbox, as on SQLite; an existing one is the name the
		// rename would take (RFC 9051 section 6.3.6).
		if f == t {
			return fmt.Errorf("mailbox %s: %w", t, mailstore.ErrExists)
		}
		var exists bool
		if err := w.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM mailboxes WHERE account_id = $1 AND name = $2 AND NOT deleted)", accountID, t).Scan(&exists); err != nil {
			return fmt.Errorf("postgres: rename mailbox: %w", err)
		}
		if exists {
			return fmt.Errorf("mailbox %s: %w", t, mailstore.ErrExists)
		}
		ms, err := w.modseq(accountID)
		if err != nil {
			return err
		}
		if err := createParents(w, accountID, t, ms); err != nil {
			return err
		}
		if f == mailstore.InboxName {
			// RFC 9051 section 6.3.6: renaming INBOX moves all its
			// messages to a new mailbox with the given name, leaving INBOX
			// empty; INBOX's inferior names are unaffected. The new
			// mailbox holds what INBOX held, so it keeps INBOX's
			// subscription and stays in LSUB.
			dst, err := insertMailbox(w, accountID, t, "", src.Subscribed, ms)
			if err != nil {
				return err
			}
			uids, err := selectUIDs(w, src.ID, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}})
			if err != nil {
				return err
			}
			_, err = s.moveRows(w, accountID, &src, &dst, uids, ms)
			return err
		}
		// The mailbox keeps its id and UIDVALIDITY: it is the same
		// mailbox under a new name. Its children follow it. The rename is
		// a change to each of them, so their HIGHESTMODSEQ reaches its
		// modseq as on SQLite.
		_, err = w.Exec(ctx, `UPDATE mailboxes SET name = $3 || substr(name, length($2) + 1), modseq = $5,
			highestmodseq = greatest(highestmodseq, $5)
			WHERE account_id = $1 AND NOT deleted AND (name = $2 OR name LIKE $4 ESCAPE '\')`,
			accountID, f, t, likePrefix(f+mailstore.Separator)+"%", int64(ms))
		if pgCode(err) == codeUniqueViolation {
			return fmt.Errorf("mailbox %s: %w", t, mailstore.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("postgres: rename mailbox: %w", err)
		}
		return nil
	})
}

func (s *Store) DeleteMailbox(ctx context.Context, accountID int64, name string) error {
	n, err := mailstore.NormalizeMailboxName(name)
	if err != nil {
		return fmt.Errorf("mailbox %q: %w", name, mailstore.ErrNoSuchMailbox)
	}
	if n == mailstore.InboxName {
		return fmt.Errorf("mailbox %s: %w", n, mailstore.ErrCannotDelete)
	}
	return s.write(ctx, func(w *wtx) error {
		if err := w.lockAccounts(accountID); err != nil {
			return err
		}
		mb, err := lockMailboxByName(w, accountID, n)
		if err != nil {
			return err
		}
		var children bool
		if err := w.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM mailboxes WHERE account_id = $1 AND NOT deleted AND name LIKE $2 ESCAPE '\')`,
			accountID, likePrefix(n+mailstore.Separator)+"%").Scan(&children); err != nil {
			return fmt.Errorf("postgres: delete mailbox: %w", err)
		}
		if children {
			return fmt.Errorf("mailbox %s: %w", n, mailstore.ErrHasChildren)
		}
		ms, err := w.modseq(accountID)
		if err != nil {
			return err
		}
		// Its messages go to the retention area; no tombstones: the
		// mailbox itself is reported deleted, and its UIDs die with it.
		if _, err := expungeRows(w, accountID, mb, nil, ms, false); err != nil {
			return err
		}
		for _, q := range []string{
			"DELETE FROM tombstones WHERE mailbox_id = $1",
			"DELETE FROM pop_hidden WHERE mailbox_id = $1",
		} {
			if _, err := w.Exec(ctx, q, mb.ID); err != nil {
				return fmt.Errorf("postgres: delete mailbox: %w", err)
			}
		}
		if _, err := w.Exec(ctx, "UPDATE mailboxes SET deleted = true, subscribed = false, modseq = $2, highestmodseq = $2 WHERE id = $1", mb.ID, int64(ms)); err != nil {
			return fmt.Errorf("postgres: delete mailbox: %w", err)
		}
		return nil
	})
}

func (s *Store) SetSubscribed(ctx context.Context, accountID int64, name string, subscribed bool) error {
	n, err := mailstore.NormalizeMailboxName(name)
	if err != nil {
		return fmt.Errorf("mailbox %q: %w", name, mailstore.ErrNoSuchMailbox)
	}
	return s.write(ctx, func(w *wtx) error {
		if err := w.lockAccounts(accountID); err != nil {
			return err
		}
		mb, err := lockMailboxByName(w, accountID, n)
		if err != nil {
			return err
		}
		if mb.Subscribed == subscribed {
			return nil
		}
		ms, err := w.modseq(accountID)
		if err != nil {
			return err
		}
		_, err = w.Exec(ctx, "UPDATE mailboxes SET subscribed = $2, modseq = $3 WHERE id = $1", mb.ID, subscribed, int64(ms))
		if err != nil {
			return fmt.Errorf("postgres: subscribe: %w", err)
		}
		return nil
	})
}

func (s *Store) Status(ctx context.Context, accountID, mailboxID int64) (mailstore.MailboxStatus, error) {
	var st mailstore.MailboxStatus
	q, err := s.db()
	if err != nil {
		return st, err
	}
	// One row: the counts are kept on the mailbox row by every write
	// (counts.go), so no snapshot spanning two queries is needed.
	row := q.QueryRow(ctx, "SELECT "+mailboxCols+", n_messages, n_unseen, n_deleted, n_size FROM mailboxes WHERE account_id = $1 AND id = $2 AND NOT deleted",
		accountID, mailboxID)
	st.Mailbox, err = scanMailboxAnd(row, &st.Messages, &st.Unseen, &st.Deleted, &st.Size)
	if err != nil {
		return mailstore.MailboxStatus{}, mailboxErr(err, fmt.Sprint(mailboxID))
	}
	return st, nil
}

// MailboxKeywords lists the keywords set in a mailbox (index
// messages_keywords, migration 0004: only rows with keywords are read).
func (s *Store) MailboxKeywords(ctx context.Context, accountID, mailboxID int64) ([]string, error) {
	q, err := s.db()
	if err != nil {
		return nil, err
	}
	var ok bool
	if err := q.QueryRow(ctx, `SELECT true FROM mailboxes WHERE account_id = $1 AND id = $2 AND NOT deleted`, accountID, mailboxID).Scan(&ok); err != nil {
		return nil, mailboxErr(err, fmt.Sprint(mailboxID))
	}
	rows, err := q.Query(ctx, `SELECT DISTINCT k FROM messages, unnest(flags) AS k
		WHERE mailbox_id = $1 AND NOT (flags <@ ARRAY['\Answered', '\Deleted', '\Draft', '\Flagged', '\Seen']::text[])`, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("postgres: keywords: %w", err)
	}
	kws, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: keywords: %w", err)
	}
	return mailstore.Keywords(kws), nil
}

// now is the store's clock for save dates and expunge times.
func now() time.Time { return time.Now() }
