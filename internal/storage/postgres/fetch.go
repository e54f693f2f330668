package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
)

func (s *Store) UIDs(ctx context.Context, accountID, mailboxID int64) ([]mailstore.UID, mailstore.ModSeq, error) {
	q, err := s.db()
	if err != nil {
		return nil, 0, err
	}
	// One statement is one snapshot: the list and the modseq agree.
	var ms int64
	var raw []int64
	err = q.QueryRow(ctx, `SELECT a.modseq,
		(SELECT coalesce(array_agg(m.uid ORDER BY m.uid), '{}') FROM messages m WHERE m.mailbox_id = mb.id)
		FROM mailboxes mb JOIN accounts a ON a.id = mb.account_id
		WHERE mb.id = $2 AND mb.account_id = $1 AND NOT mb.deleted`, accountID, mailboxID).Scan(&ms, &raw)
	if err != nil {
		return nil, 0, mailboxErr(err, fmt.Sprint(mailboxID))
	}
	uids := make([]mailstore.UID, len(raw))
	for i, u := range raw {
		uids[i] = mailstore.UID(u)
	}
	return uids, mailstore.ModSeq(ms), nil
}

// SelectMailbox reads what selecting a mailbox needs in one statement,
// one snapshot: the mailbox, the account's modseq, the UIDs, the keywords
// in use and the first message without \Seen (system flags are stored
// canonical).
func (s *Store) SelectMailbox(ctx context.Context, accountID int64, name string) (mailstore.MailboxView, error) {
	var v mailstore.MailboxView
	n, err := mailstore.NormalizeMailboxName(name)
	if err != nil {
		return v, fmt.Errorf("mailbox %q: %w", name, mailstore.ErrNoSuchMailbox)
	}
	q, err := s.db()
	if err != nil {
		return v, err
	}
	var ms, first int64
	var raw []int64
	var kws []string
	v.Mailbox, err = scanMailboxAnd(q.QueryRow(ctx, `SELECT `+selectMailboxCols+`, a.modseq,
		(SELECT coalesce(array_agg(m.uid ORDER BY m.uid), '{}') FROM messages m WHERE m.mailbox_id = mb.id),
		(SELECT coalesce(array_agg(DISTINCT k), '{}') FROM messages m, unnest(m.flags) AS k
			WHERE m.mailbox_id = mb.id AND NOT (m.flags <@ ARRAY['\Answered', '\Deleted', '\Draft', '\Flagged', '\Seen']::text[])),
		(SELECT coalesce(min(m.uid), 0) FROM messages m WHERE m.mailbox_id = mb.id AND NOT ('\Seen' = ANY(m.flags)))
		FROM mailboxes mb JOIN accounts a ON a.id = mb.account_id
		WHERE mb.account_id = $1 AND mb.name = $2 AND NOT mb.deleted`, accountID, n), &ms, &raw, &kws, &first)
	if err != nil {
		return mailstore.MailboxView{}, mailboxErr(err, n)
	}
	v.ModSeq = mailstore.ModSeq(ms)
	v.UIDs = make([]mailstore.UID, len(raw))
	for i, u := range raw {
		v.UIDs[i] = mailstore.UID(u)
	}
	v.Keywords = mailstore.Keywords(kws)
	v.FirstUnseen = mailstore.UID(first)
	return v, nil
}

// selectMailboxCols is mailboxCols qualified by the alias mb.
var selectMailboxCols = "mb." + strings.ReplaceAll(mailboxCols, ", ", ", mb.")

// checkMailbox fails with ErrNoSuchMailbox unless the account has a live
// mailbox with that id.
func checkMailbox(ctx context.Context, q querier, accountID, mailboxID int64) error {
	var one int
	err := q.QueryRow(ctx, "SELECT 1 FROM mailboxes WHERE id = $2 AND account_id = $1 AND NOT deleted", accountID, mailboxID).Scan(&one)
	if err != nil {
		return mailboxErr(err, fmt.Sprint(mailboxID))
	}
	return nil
}

// fetchChunk bounds how many rows are buffered between database round
// trips: fn (which may write to a slow client) runs with no connection
// held.
const fetchChunk = 256

func (s *Store) Fetch(ctx context.Context, accountID, mailboxID int64, uids mailstore.UIDSet, fields mailstore.FetchFields, changedSince mailstore.ModSeq, fn func(*mailstore.Message) error) error {
	q, err := s.db()
	if err != nil {
		return err
	}
	if err := checkMailbox(ctx, q, accountID, mailboxID); err != nil {
		return err
	}
	cols := "m.uid, m.modseq, m.flags, m.internal_date, m.save_date, m.size, m.line_size, m.blob_id, m.email_id, m.thread_id"
	if fields&mailstore.FetchEnvelope != 0 {
		cols += ", m.envelope"
	} else {
		cols += ", NULL::bytea"
	}
	if fields&mailstore.FetchBody != 0 {
		cols += ", m.body"
	} else {
		cols += ", NULL::bytea"
	}
	if fields&mailstore.FetchPreview != 0 {
		cols += ", m.preview"
	} else {
		cols += ", ''"
	}
	lo, hi := uidRanges(uids)
	var last int64
	for {
		rows, err := q.Query(ctx, `SELECT `+cols+` FROM messages m
			JOIN unnest($2::bigint[], $3::bigint[]) AS r(lo, hi) ON m.uid BETWEEN r.lo AND r.hi
			WHERE m.mailbox_id = $1 AND m.modseq > $4 AND m.uid > $5
			ORDER BY m.uid LIMIT $6`, mailboxID, lo, hi, int64(changedSince), last, fetchChunk)
		if err != nil {
			return fmt.Errorf("postgres: fetch: %w", err)
		}
		batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mailstore.Message, error) {
			return scanMessage(r, mailboxID, fields, &s.decoded)
		})
		if err != nil {
			return fmt.Errorf("postgres: fetch: %w", err)
		}
		for i := range batch {
			if err := fn(&batch[i]); err != nil {
				return err
			}
		}
		if len(batch) < fetchChunk {
			return nil
		}
		last = int64(batch[len(batch)-1].UID)
	}
}

func scanMessage(r pgx.Row, mailboxID int64, fields mailstore.FetchFields, decoded *mailstore.DecodeCache) (mailstore.Message, error) {
	m := mailstore.Message{MailboxID: mailboxID}
	var uid, ms int64
	var env, body []byte
	if err := r.Scan(&uid, &ms, &m.Flags, &m.InternalDate, &m.SaveDate, &m.Size, &m.LineSize, &m.BlobID, &m.EmailID, &m.ThreadID, &env, &body, &m.Preview); err != nil {
		return m, err
	}
	m.UID, m.ModSeq = mailstore.UID(uid), mailstore.ModSeq(ms)
	if m.Flags == nil {
		m.Flags = []string{}
	}
	if fields&mailstore.FetchIDs == 0 {
		m.BlobID, m.EmailID, m.ThreadID = "", "", ""
		m.SaveDate = time.Time{}
	}
	if fields&mailstore.FetchInternalDate == 0 {
		m.InternalDate = time.Time{}
	}
	if fields&mailstore.FetchSize == 0 {
		m.Size, m.LineSize = 0, 0
	}
	var err error
	if len(env) > 0 {
		if m.Envelope, err = decoded.Envelope(env); err != nil {
			return m, fmt.Errorf("uid %d: %w", uid, err)
		}
	}
	if len(body) > 0 && string(body) != "null" {
		if m.Body, err = decoded.Body(body); err != nil {
			return m, fmt.Errorf("uid %d: %w", uid, err)
		}
	}
	return m, nil
}

// Changes returns the account's changes with modseq > since. One
// operation gives all its changes one modseq (a STORE on many messages, a
// MOVE), and a client resumes from the last modseq it saw, so with a limit
// a page ends at the last complete modseq group within it; a first group
// larger than limit is returned whole. Within a modseq, mailbox changes
// come first (a session learns of a mailbox before its messages), then
// expunges, then messages — the same order as the SQLite backend.
func (s *Store) Changes(ctx context.Context, accountID int64, since mailstore.ModSeq, limit int) ([]mailstore.Change, error) {
	q, err := s.db()
	if err != nil {
		return nil, err
	}
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	// One statement, one snapshot: the bound and the rows agree.
	rows, err := q.Query(ctx, `WITH c AS (
			SELECT 0 AS kind, modseq, id AS mailbox_id, 0::bigint AS uid, NULL::text[] AS flags, false AS created, deleted
				FROM mailboxes WHERE account_id = $1 AND modseq > $2
			UNION ALL
			SELECT 1, modseq, mailbox_id, uid, NULL, false, false
				FROM tombstones WHERE account_id = $1 AND modseq > $2
			UNION ALL
			SELECT 2, modseq, mailbox_id, uid, flags, createmodseq > $2, false
				FROM messages WHERE account_id = $1 AND modseq > $2
		)
		SELECT kind, modseq, mailbox_id, uid, flags, created, deleted FROM c
		WHERE $3::int IS NULL OR modseq <= (SELECT max(modseq) FROM (SELECT modseq FROM c ORDER BY modseq LIMIT $3) b)
		ORDER BY modseq, kind, mailbox_id, uid`, accountID, int64(since), lim)
	if err != nil {
		return nil, fmt.Errorf("postgres: changes: %w", err)
	}
	kinds := [...]mailstore.ChangeKind{mailstore.ChangeMailbox, mailstore.ChangeExpunge, mailstore.ChangeMessage}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mailstore.Change, error) {
		var c mailstore.Change
		var kind int
		var ms, uid int64
		err := r.Scan(&kind, &ms, &c.MailboxID, &uid, &c.Flags, &c.Created, &c.Deleted)
		c.Kind, c.ModSeq, c.UID = kinds[kind], mailstore.ModSeq(ms), mailstore.UID(uid)
		if c.Kind == mailstore.ChangeMessage && c.Flags == nil {
			c.Flags = []string{}
		}
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: changes: %w", err)
	}
	if limit > 0 && len(out) > limit {
		// Drop the trailing group that went past the limit, unless it is
		// the only one.
		last := out[len(out)-1].ModSeq
		i := len(out)
		for i > 0 && out[i-1].ModSeq == last {
			i--
		}
		if i > 0 {
			out = out[:i]
		}
	}
	if len(out) == 0 {
		if _, err := s.HighestModSeq(ctx, accountID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) Vanished(ctx context.Context, accountID, mailboxID int64, since mailstore.ModSeq) ([]mailstore.UID, error) {
	q, err := s.db()
	if err != nil {
		return nil, err
	}
	if err := checkMailbox(ctx, q, accountID, mailboxID); err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, "SELECT uid FROM tombstones WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid", mailboxID, int64(since))
	if err != nil {
		return nil, fmt.Errorf("postgres: vanished: %w", err)
	}
	return collectUIDs(rows)
}

func collectUIDs(rows pgx.Rows) ([]mailstore.UID, error) {
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mailstore.UID, error) {
		var u int64
		err := r.Scan(&u)
		return mailstore.UID(u), err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: uids: %w", err)
	}
	return out, nil
}

func (s *Store) PopHidden(ctx context.Context, accountID, mailboxID int64, view string) ([]mailstore.UID, error) {
	q, err := s.db()
	if err != nil {
		return nil, err
	}
	if err := checkMailbox(ctx, q, accountID, mailboxID); err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, "SELECT uid FROM pop_hidden WHERE account_id = $1 AND mailbox_id = $2 AND view = $3 ORDER BY uid", accountID, mailboxID, clean(view))
	if err != nil {
		return nil, fmt.Errorf("postgres: pop hidden: %w", err)
	}
	return collectUIDs(rows)
}

// PopHide records hidden UIDs for a POP3 view. It changes nothing IMAP
// sees, so it raises no modseq and takes no account lock.
func (s *Store) PopHide(ctx context.Context, accountID, mailboxID int64, view string, uids []mailstore.UID) error {
	return s.write(ctx, func(w *wtx) error {
		if err := checkMailbox(ctx, w, accountID, mailboxID); err != nil {
			return err
		}
		_, err := w.Exec(ctx, `INSERT INTO pop_hidden (account_id, mailbox_id, view, uid)
			SELECT $1, $2, $3, u FROM unnest($4::bigint[]) AS u
			WHERE EXISTS (SELECT 1 FROM messages WHERE mailbox_id = $2 AND uid = u)
			ON CONFLICT DO NOTHING`, accountID, mailboxID, clean(view), toInt64s(uids))
		if err != nil {
			return fmt.Errorf("postgres: pop hide: %w", err)
		}
		return nil
	})
}
