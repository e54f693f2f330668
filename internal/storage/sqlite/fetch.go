package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/roost-mail/roost/internal/mailstore"
)

// UIDs lists a mailbox's UIDs with the account modseq of the same snapshot.
func (s *Store) UIDs(ctx context.Context, accountID, mailboxID int64) ([]mailstore.UID, mailstore.ModSeq, error) {
	var out []mailstore.UID
	var mod mailstore.ModSeq
	err := s.readTx(ctx, func(tx *rtx) error {
		if _, err := getMailboxByID(ctx, tx, accountID, mailboxID); err != nil {
			return err
		}
		var err error
		if mod, err = accountModSeq(ctx, tx, accountID); err != nil {
			return err
		}
		out, err = listUIDs(ctx, tx, mailboxID)
		return err
	})
	return out, mod, err
}

// SelectMailbox reads a mailbox, its UIDs, the account's modseq, the
// keywords in use and the first unseen UID in one read transaction.
func (s *Store) SelectMailbox(ctx context.Context, accountID int64, name string) (mailstore.MailboxView, error) {
	var v mailstore.MailboxView
	n, err := mailstore.NormalizeMailboxName(name)
	if err != nil {
		return v, fmt.Errorf("mailbox %q: %w", name, mailstore.ErrNoSuchMailbox)
	}
	err = s.readTx(ctx, func(tx *rtx) error {
		var err error
		if v.Mailbox, err = getMailbox(ctx, tx, accountID, n); err != nil {
			return err
		}
		if v.ModSeq, err = accountModSeq(ctx, tx, accountID); err != nil {
			return err
		}
		if v.UIDs, err = listUIDs(ctx, tx, v.Mailbox.ID); err != nil {
			return err
		}
		if v.Keywords, err = mailboxKeywords(ctx, tx, v.Mailbox.ID); err != nil {
			return err
		}
		// One step down the partial index messages_unseen.
		var first sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT min(uid) FROM messages WHERE mailbox_id = ? AND flags & 1 = 0`, v.Mailbox.ID).Scan(&first); err != nil {
			return fmt.Errorf("first unseen: %w", err)
		}
		v.FirstUnseen = mailstore.UID(first.Int64)
		return nil
	})
	if err != nil {
		return mailstore.MailboxView{}, err
	}
	return v, nil
}

func accountModSeq(ctx context.Context, q querier, accountID int64) (mailstore.ModSeq, error) {
	var mod mailstore.ModSeq
	if err := q.QueryRowContext(ctx, `SELECT modseq FROM accounts WHERE id = ?`, accountID).Scan(&mod); err != nil {
		return 0, accountNotFound(err, fmt.Sprint("#", accountID))
	}
	return mod, nil
}

// listUIDs lists a mailbox's UIDs in ascending order.
func listUIDs(ctx context.Context, q querier, mailboxID int64) ([]mailstore.UID, error) {
	// One row with every UID: per-row scanning costs more than the
	// query for a large mailbox.
	var list sql.NullString
	// The subquery walks the (mailbox_id, uid) index in order; an
	// ORDER BY inside the aggregate would sort again.
	if err := q.QueryRowContext(ctx, `SELECT group_concat(uid) FROM (SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid)`, mailboxID).Scan(&list); err != nil {
		return nil, fmt.Errorf("list uids: %w", err)
	}
	if !list.Valid || list.String == "" {
		return nil, nil
	}
	out := make([]mailstore.UID, 0, strings.Count(list.String, ",")+1)
	for f := range strings.SplitSeq(list.String, ",") {
		u, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("list uids: %w", err)
		}
		out = append(out, mailstore.UID(u))
	}
	// SQLite does not promise an aggregate keeps the subquery's order.
	if !slices.IsSorted(out) {
		slices.Sort(out)
	}
	return out, nil
}

// fetchChunk is how many rows Fetch reads per query. Between chunks no
// connection is held, so fn may call back into the store.
const fetchChunk = 512

// Fetch calls fn for each message of uids in UID order, reading only the
// columns fields asks for (the JSON of ENVELOPE and BODYSTRUCTURE is
// decoded only when asked).
func (s *Store) Fetch(ctx context.Context, accountID, mailboxID int64, uids mailstore.UIDSet, fields mailstore.FetchFields, changedSince mailstore.ModSeq, fn func(*mailstore.Message) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	cols := []string{"uid", "modseq", "flags", "keywords"}
	if fields&mailstore.FetchInternalDate != 0 {
		cols = append(cols, "internal_date")
	}
	if fields&mailstore.FetchSize != 0 {
		cols = append(cols, "size", "line_size")
	}
	// ENVELOPE, BODYSTRUCTURE and the preview are in message_meta
	// (migration 0014), joined only when asked for.
	from := "messages"
	if fields&(mailstore.FetchEnvelope|mailstore.FetchBody|mailstore.FetchPreview) != 0 {
		from = "messages LEFT JOIN message_meta t ON t.id = messages.id"
	}
	if fields&mailstore.FetchEnvelope != 0 {
		cols = append(cols, "coalesce(t.envelope, '')")
	}
	if fields&mailstore.FetchBody != 0 {
		cols = append(cols, "coalesce(t.body, '')")
	}
	if fields&mailstore.FetchPreview != 0 {
		cols = append(cols, "coalesce(t.preview, '')")
	}
	if fields&mailstore.FetchIDs != 0 {
		cols = append(cols, "email_id", "thread_id", "blob_id", "save_date")
	}
	cond, cargs, exact := uidCond("uid", uids)
	// The mailbox check rides in the query (SQLite evaluates the
	// uncorrelated EXISTS once); only an empty answer needs a second
	// look, to tell "no such mailbox" from "no such messages".
	query := `SELECT ` + strings.Join(cols, ", ") + ` FROM ` + from + ` WHERE mailbox_id = ? AND ` + cond +
		` AND modseq > ? AND uid > ?
		AND EXISTS (SELECT 1 FROM mailboxes WHERE id = ? AND account_id = ? AND deleted = 0)
		ORDER BY uid LIMIT ?`
	var after mailstore.UID
	for first := true; ; first = false {
		args := append([]any{mailboxID}, cargs...)
		args = append(args, int64(changedSince), int64(after), mailboxID, accountID, fetchChunk)
		batch, err := s.fetchRows(ctx, query, args, fields)
		if err != nil {
			return err
		}
		if first && len(batch) == 0 {
			_, err := getMailboxByID(ctx, s.rd(), accountID, mailboxID)
			return err
		}
		for _, m := range batch {
			after = m.UID
			if !exact && !uids.Contains(m.UID) {
				continue
			}
			m.MailboxID = mailboxID
			if err := fn(m); err != nil {
				return err
			}
		}
		if len(batch) < fetchChunk {
			return nil
		}
	}
}

func (s *Store) fetchRows(ctx context.Context, query string, args []any, fields mailstore.FetchFields) ([]*mailstore.Message, error) {
	rows, err := s.rd().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	defer rows.Close()
	var out []*mailstore.Message
	// One set of scan targets for every row, copied into each Message.
	var r mailstore.Message
	var bits, internal, save int64
	var kws string
	// RawBytes: the cache looks up the JSON without copying it.
	var env, body sql.RawBytes
	dest := []any{&r.UID, &r.ModSeq, &bits, &kws}
	if fields&mailstore.FetchInternalDate != 0 {
		dest = append(dest, &internal)
	}
	if fields&mailstore.FetchSize != 0 {
		dest = append(dest, &r.Size, &r.LineSize)
	}
	if fields&mailstore.FetchEnvelope != 0 {
		dest = append(dest, &env)
	}
	if fields&mailstore.FetchBody != 0 {
		dest = append(dest, &body)
	}
	if fields&mailstore.FetchPreview != 0 {
		dest = append(dest, &r.Preview)
	}
	if fields&mailstore.FetchIDs != 0 {
		dest = append(dest, &r.EmailID, &r.ThreadID, &r.BlobID, &save)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("fetch: %w", err)
		}
		m := new(mailstore.Message)
		*m = r
		m.Flags = decodeFlags(bits, kws)
		m.InternalDate = fromNanos(internal)
		m.SaveDate = fromNanos(save)
		if len(env) != 0 {
			if m.Envelope, err = s.decoded.Envelope(env); err != nil {
				return nil, fmt.Errorf("uid %d: %w", m.UID, err)
			}
		}
		if len(body) != 0 && string(body) != "null" {
			if m.Body, err = s.decoded.Body(body); err != nil {
				return nil, fmt.Errorf("uid %d: %w", m.UID, err)
			}
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// StoreFlags changes flags (RFC 9051 section 6.4.6) with RFC 7162's
// UNCHANGEDSINCE. A message whose flags would not change keeps its modseq.
func (s *Store) StoreFlags(ctx context.Context, accountID int64, req mailstore.StoreFlagsRequest) (mailstore.StoreFlagsResult, error) {
	var res mailstore.StoreFlagsResult
	err := s.updateFlags(ctx, func(w *wtx) error {
		var changes []flagChange
		var err error
		res, changes, err = w.planFlags(accountID, req)
		if err != nil || len(changes) == 0 {
			return err
		}
		m, err := w.nextModSeq(accountID)
		if err != nil {
			return err
		}
		for _, c := range changes {
			bits, kws := encodeFlags(c.flags)
			if _, err := w.exec(`UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE id = ?`, bits, kws, m, c.id); err != nil {
				return fmt.Errorf("store flags: %w", err)
			}
			res.Changed = append(res.Changed, mailstore.Message{MailboxID: req.MailboxID, UID: c.uid, ModSeq: m, Flags: c.flags})
		}
		res.ModSeq = m
		return w.touchHighest(req.MailboxID, m)
	})
	return res, err
}

// flagChange is one message's new flags, planned by planFlags.
type flagChange struct {
	id    int64
	uid   mailstore.UID
	flags []string
}

// planFlags reads the flags of req's messages and works out which change:
// the result holds Modified and Unchanged; the changes are returned to
// apply.
func (w *wtx) planFlags(accountID int64, req mailstore.StoreFlagsRequest) (mailstore.StoreFlagsResult, []flagChange, error) {
	var res mailstore.StoreFlagsResult
	mb, err := getMailboxByID(w.ctx, w, accountID, req.MailboxID)
	if err != nil {
		return res, nil, err
	}
	cond, args, exact := uidCond("uid", req.UIDs)
	rows, err := w.query(`SELECT id, uid, modseq, flags, keywords FROM messages WHERE mailbox_id = ? AND `+cond+` ORDER BY uid`,
		append([]any{mb.ID}, args...)...)
	if err != nil {
		return res, nil, fmt.Errorf("store flags: %w", err)
	}
	defer rows.Close()
	var changes []flagChange
	var modified []mailstore.UID
	for rows.Next() {
		var id, bits int64
		var uid mailstore.UID
		var m mailstore.ModSeq
		var kws string
		if err := rows.Scan(&id, &uid, &m, &bits, &kws); err != nil {
			return res, nil, fmt.Errorf("store flags: %w", err)
		}
		if !exact && !req.UIDs.Contains(uid) {
			continue
		}
		// RFC 7162 section 3.1.3: a message whose modseq is above
		// UNCHANGEDSINCE is not changed and is reported as modified.
		if req.UnchangedSince > 0 && m > req.UnchangedSince {
			modified = append(modified, uid)
			continue
		}
		cur := decodeFlags(bits, kws)
		next := mailstore.ApplyFlags(cur, req.Mode, req.Flags)
		nb, nk := encodeFlags(next)
		if nb == bits && nk == kws {
			res.Unchanged = append(res.Unchanged, mailstore.Message{MailboxID: mb.ID, UID: uid, ModSeq: m, Flags: cur})
			continue
		}
		changes = append(changes, flagChange{id, uid, decodeFlags(nb, nk)})
	}
	if err := rows.Err(); err != nil {
		return res, nil, fmt.Errorf("store flags: %w", err)
	}
	res.Modified = mailstore.CompactUIDs(modified)
	return res, changes, nil
}
