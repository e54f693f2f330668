package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
)

// uidRanges turns a set into parallel lo/hi arrays for
// "JOIN unnest($lo, $hi) AS r(lo, hi) ON uid BETWEEN r.lo AND r.hi", which
// walks the (mailbox_id, uid) primary key once per range.
func uidRanges(set mailstore.UIDSet) (lo, hi []int64) {
	for _, r := range set.Normalize() {
		lo = append(lo, int64(r.Lo))
		hi = append(hi, int64(r.Hi))
	}
	return lo, hi
}

// selectUIDs lists the existing UIDs of a mailbox within set, ascending.
func selectUIDs(q querier, mailboxID int64, set mailstore.UIDSet) ([]mailstore.UID, error) {
	return selectUIDsFlagged(q, mailboxID, set, false)
}

// selectUIDsFlagged is selectUIDs of the messages with \Deleted only,
// when deleted is set.
func selectUIDsFlagged(q querier, mailboxID int64, set mailstore.UIDSet, deleted bool) ([]mailstore.UID, error) {
	if deleted {
		return selectDeleted(q, mailboxID, set)
	}
	lo, hi := uidRanges(set)
	rows, err := q.Query(context.Background(), `SELECT m.uid FROM messages m
		JOIN unnest($2::bigint[], $3::bigint[]) AS r(lo, hi) ON m.uid BETWEEN r.lo AND r.hi
		WHERE m.mailbox_id = $1 ORDER BY m.uid`, mailboxID, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("postgres: select uids: %w", err)
	}
	return collectUIDs(rows)
}

// selectDeleted lists the messages of set with \Deleted. IMAP's EXPUNGE
// hands the store every message its session knows, so the rows come from
// the partial index messages_deleted (migration 0008), which the literal
// predicate lets the planner use, and the set is applied here: a mailbox
// holds few \Deleted messages, and the whole mailbox is not walked.
func selectDeleted(q querier, mailboxID int64, set mailstore.UIDSet) ([]mailstore.UID, error) {
	rows, err := q.Query(context.Background(), `SELECT uid FROM messages
		WHERE mailbox_id = $1 AND '\Deleted' = ANY(flags) ORDER BY uid`, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("postgres: select deleted: %w", err)
	}
	all, err := collectUIDs(rows)
	if err != nil {
		return nil, err
	}
	set = set.Normalize()
	return slices.DeleteFunc(all, func(u mailstore.UID) bool { return !set.Contains(u) }), nil
}

func toInt64s(uids []mailstore.UID) []int64 {
	out := make([]int64, len(uids))
	for i, u := range uids {
		out[i] = int64(u)
	}
	return out
}

// clean makes parser output storable as PostgreSQL text, which refuses NUL
// bytes and invalid UTF-8; broken messages are stored all the same.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return s
}

func cleanFlags(flags []string) []string {
	out := make([]string, 0, len(flags))
	for _, f := range mailstore.NormalizeFlags(flags) {
		if c := clean(f); c == f && !strings.ContainsAny(f, " \t\r\n") {
			out = append(out, f)
		}
	}
	return out
}

// facts are the parsed columns of a message row, computed once per
// Prepared message before the transaction.
type facts struct {
	p          *mailstore.Prepared
	sentDay    time.Time // zero: use the internal date's day (UTC), as SQLite does
	messageID  string
	from, to   string
	cc, bcc    string
	subject    string
	envelope   []byte
	body       []byte
	preview    string
	headerText string
	bodyText   string
}

func newFacts(raw []byte) (*facts, error) {
	p := mailstore.Prepare(raw)
	f := &facts{p: p}
	if pp := p.Parsed; pp != nil {
		if !pp.Date.IsZero() {
			// RFC 9051 section 6.4.4: SENTBEFORE/ON/SINCE compare the
			// Date: header's date, "disregarding time and timezone": its
			// calendar day as written.
			y, m, d := pp.Date.Date()
			f.sentDay = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		}
		sh := pp.SearchHeaders
		f.messageID, f.from, f.to, f.cc, f.bcc, f.subject = clean(sh.MessageID), clean(sh.From), clean(sh.To), clean(sh.Cc), clean(sh.Bcc), clean(sh.Subject)
		var err error
		if f.envelope, err = json.Marshal(&pp.Envelope); err != nil {
			return nil, fmt.Errorf("postgres: encode envelope: %w", err)
		}
		if pp.Body != nil {
			if f.body, err = json.Marshal(pp.Body); err != nil {
				return nil, fmt.Errorf("postgres: encode body structure: %w", err)
			}
		}
		f.preview, f.headerText, f.bodyText = clean(pp.Preview), clean(pp.HeaderText), clean(pp.BodyText)
	}
	return f, nil
}

func dayOf(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// newRow is one message row to insert.
type newRow struct {
	f            *facts
	mailbox      int64
	uid          mailstore.UID
	flags        []string
	internalDate time.Time
}

const insertMessageSQL = `INSERT INTO messages (mailbox_id, uid, account_id, modseq, createmodseq, flags,
	internal_date, save_date, sent_day, size, blob_id, email_id, thread_id, message_id,
	hdr_from, hdr_to, hdr_cc, hdr_bcc, hdr_subject, envelope, body, preview, line_size)
	VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`

// queueInsert adds one message row's INSERT to a pipelined batch.
func queueInsert(b *pgx.Batch, acct int64, ms mailstore.ModSeq, saved time.Time, r newRow) {
	f := r.f
	sent := f.sentDay
	if sent.IsZero() {
		sent = dayOf(r.internalDate.UTC())
	}
	b.Queue(insertMessageSQL, r.mailbox, int64(r.uid), acct, int64(ms), r.flags,
		r.internalDate, saved, sent, int64(len(f.p.Raw)), f.p.BlobID, f.p.EmailID, f.p.ThreadID, f.messageID,
		f.from, f.to, f.cc, f.bcc, f.subject, f.envelope, f.body, f.preview, f.p.LineSize)
}

// allocUIDs takes n UIDs from a locked mailbox and records the change's
// modseq on it. The mailbox row lock (held since lockMailbox) is what
// keeps two nodes from handing out the same UID.
func allocUIDs(w *wtx, mb *mailstore.Mailbox, n int, ms mailstore.ModSeq) (mailstore.UID, error) {
	first := mb.UIDNext
	if uint64(first)+uint64(n) > uint64(mailstore.MaxUID) {
		return 0, fmt.Errorf("mailbox %s: UIDs exhausted: %w", mb.Name, mailstore.ErrOverQuota)
	}
	mb.UIDNext += mailstore.UID(n)
	mb.HighestModSeq = ms
	if _, err := w.Exec(w.ctx, "UPDATE mailboxes SET uidnext = $2, highestmodseq = $3 WHERE id = $1", mb.ID, int64(mb.UIDNext), int64(ms)); err != nil {
		return 0, fmt.Errorf("postgres: allocate uids: %w", err)
	}
	return first, nil
}

func touchMailbox(w *wtx, mailboxID int64, ms mailstore.ModSeq) error {
	if _, err := w.Exec(w.ctx, "UPDATE mailboxes SET highestmodseq = $2 WHERE id = $1", mailboxID, int64(ms)); err != nil {
		return fmt.Errorf("postgres: mailbox modseq: %w", err)
	}
	return nil
}

func addUsage(w *wtx, acct int64, bytes, msgs int64) error {
	if bytes == 0 && msgs == 0 {
		return nil
	}
	_, err := w.Exec(w.ctx, "UPDATE accounts SET used_bytes = used_bytes + $2, used_messages = used_messages + $3 WHERE id = $1", acct, bytes, msgs)
	if err != nil {
		return fmt.Errorf("postgres: usage: %w", err)
	}
	if u := w.usage[acct]; u != nil {
		u.usedBytes += bytes
		u.usedMessages += msgs
	}
	return nil
}

func (s *Store) Append(ctx context.Context, accountID int64, reqs []mailstore.AppendRequest) ([]mailstore.AppendResult, error) {
	ts := make([]target, len(reqs))
	ids := map[string]int64{} // by name, found once per Append
	for i, r := range reqs {
		if r.MailboxID == 0 && r.MailboxName != "" {
			// The write locks mailboxes by id, after the account row;
			// finding the id first keeps that order.
			id, ok := ids[r.MailboxName]
			if !ok {
				mb, err := s.GetMailbox(ctx, accountID, r.MailboxName)
				if err != nil {
					return nil, err
				}
				id = mb.ID
				ids[r.MailboxName] = id
			}
			r.MailboxID = id
		}
		if r.MailboxID == 0 {
			return nil, fmt.Errorf("mailbox 0: %w", mailstore.ErrNoSuchMailbox)
		}
		f, err := newFacts(r.Raw)
		if err != nil {
			return nil, err
		}
		d := r.InternalDate
		if d.IsZero() {
			d = now()
		}
		ts[i] = target{acct: accountID, mb: r.MailboxID, f: f, flags: cleanFlags(r.Flags), date: d}
	}
	var res []mailstore.AppendResult
	err := s.write(ctx, func(w *wtx) error {
		var err error
		res, err = s.storeMessages(w, ts, true)
		return err
	})
	return res, err
}

type flagRow struct {
	uid    mailstore.UID
	modseq mailstore.ModSeq
	flags  []string
}

func (s *Store) StoreFlags(ctx context.Context, accountID int64, req mailstore.StoreFlagsRequest) (mailstore.StoreFlagsResult, error) {
	flags := cleanFlags(req.Flags)
	var out mailstore.StoreFlagsResult
	err := s.write(ctx, func(w *wtx) error {
		out = mailstore.StoreFlagsResult{}
		if err := w.lockAccounts(accountID); err != nil {
			return err
		}
		mb, err := lockMailbox(w, accountID, req.MailboxID)
		if err != nil {
			return err
		}
		lo, hi := uidRanges(req.UIDs)
		rows, err := w.Query(ctx, `SELECT m.uid, m.modseq, m.flags FROM messages m
			JOIN unnest($2::bigint[], $3::bigint[]) AS r(lo, hi) ON m.uid BETWEEN r.lo AND r.hi
			WHERE m.mailbox_id = $1 ORDER BY m.uid`, mb.ID, lo, hi)
		if err != nil {
			return fmt.Errorf("postgres: store flags: %w", err)
		}
		cur, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (flagRow, error) {
			var fr flagRow
			var u, ms int64
			err := r.Scan(&u, &ms, &fr.flags)
			fr.uid, fr.modseq = mailstore.UID(u), mailstore.ModSeq(ms)
			return fr, err
		})
		if err != nil {
			return fmt.Errorf("postgres: store flags: %w", err)
		}
		var modified []mailstore.UID
		var uids []int64
		var newFlags []string
		var counts mbCounts
		for _, r := range cur {
			// RFC 7162 section 3.1.3: a message whose modseq is above
			// UNCHANGEDSINCE is not touched and is reported MODIFIED.
			if req.UnchangedSince > 0 && r.modseq > req.UnchangedSince {
				modified = append(modified, r.uid)
				continue
			}
			nf := mailstore.ApplyFlags(r.flags, req.Mode, flags)
			if slices.Equal(nf, mailstore.NormalizeFlags(r.flags)) {
				out.Unchanged = append(out.Unchanged, mailstore.Message{MailboxID: mb.ID, UID: r.uid, ModSeq: r.modseq, Flags: nf})
				continue
			}
			uids = append(uids, int64(r.uid))
			newFlags = append(newFlags, strings.Join(nf, " "))
			counts.reflag(r.flags, nf)
			out.Changed = append(out.Changed, mailstore.Message{MailboxID: mb.ID, UID: r.uid, Flags: nf})
		}
		out.Modified = mailstore.CompactUIDs(modified)
		if len(uids) == 0 {
			return nil
		}
		ms, err := w.modseq(accountID)
		if err != nil {
			return err
		}
		_, err = w.Exec(ctx, `UPDATE messages m SET flags = string_to_array(c.f, ' '), modseq = $4
			FROM unnest($2::bigint[], $3::text[]) AS c(uid, f)
			WHERE m.mailbox_id = $1 AND m.uid = c.uid`, mb.ID, uids, newFlags, int64(ms))
		if err != nil {
			return fmt.Errorf("postgres: store flags: %w", err)
		}
		if err := touchMailboxCounts(w, mb.ID, ms, counts); err != nil {
			return err
		}
		for i := range out.Changed {
			out.Changed[i].ModSeq = ms
		}
		out.ModSeq = ms
		return nil
	})
	return out, err
}

const copyColsSQL = `flags, internal_date, sent_day, size, line_size, blob_id, email_id, thread_id, message_id,
	hdr_from, hdr_to, hdr_cc, hdr_bcc, hdr_subject, envelope, body, preview`

// copyRows inserts copies of src's uids into dst under fresh UIDs, over the
// same blobs, keeping flags and internal date (RFC 9051 section 6.4.7).
func copyRows(w *wtx, acct int64, src *mailstore.Mailbox, dst *mailstore.Mailbox, uids []mailstore.UID, ms mailstore.ModSeq) (mailstore.CopyResult, error) {
	res := mailstore.CopyResult{UIDValidity: dst.UIDValidity, ModSeq: ms}
	first, err := allocUIDs(w, dst, len(uids), ms)
	if err != nil {
		return res, err
	}
	dstUIDs := make([]mailstore.UID, len(uids))
	for i := range uids {
		dstUIDs[i] = first + mailstore.UID(i)
	}
	_, err = w.Exec(w.ctx, `WITH ins AS (
			INSERT INTO messages (mailbox_id, uid, account_id, modseq, createmodseq, save_date, `+copyColsSQL+`)
			SELECT $3, c.dst, $4, $5, $5, $6, `+copyColsSQL+`
			FROM messages m JOIN unnest($2::bigint[], $7::bigint[]) AS c(src, dst) ON m.uid = c.src
			WHERE m.mailbox_id = $1
			RETURNING flags, size
		)
		UPDATE mailboxes mb SET `+countsSetSQL("+")+` FROM (`+countsAggSQL+` FROM ins) x WHERE mb.id = $3`, src.ID, toInt64s(uids), dst.ID, acct, int64(ms), now(), toInt64s(dstUIDs))
	if err != nil {
		return res, fmt.Errorf("postgres: copy messages: %w", err)
	}
	res.SrcUIDs, res.DstUIDs = uids, dstUIDs
	return res, nil
}

// lockPair locks the account and both mailboxes, lower id first.
func lockPair(w *wtx, acct, a, b int64) (*mailstore.Mailbox, *mailstore.Mailbox, error) {
	if err := w.lockAccounts(acct); err != nil {
		return nil, nil, err
	}
	first, second := a, b
	if second < first {
		first, second = second, first
	}
	m1, err := lockMailbox(w, acct, first)
	if err != nil {
		return nil, nil, err
	}
	m2 := m1
	if second != first {
		if m2, err = lockMailbox(w, acct, second); err != nil {
			return nil, nil, err
		}
	}
	if first == a {
		return &m1, &m2, nil
	}
	return &m2, &m1, nil
}

func (s *Store) Copy(ctx context.Context, accountID, srcMailbox int64, uids mailstore.UIDSet, dstMailbox int64) (mailstore.CopyResult, error) {
	var out mailstore.CopyResult
	err := s.write(ctx, func(w *wtx) error {
		src, dst, err := lockPair(w, accountID, srcMailbox, dstMailbox)
		if err != nil {
			return err
		}
		found, err := selectUIDs(w, src.ID, uids)
		if err != nil {
			return err
		}
		if len(found) == 0 {
			out = mailstore.CopyResult{UIDValidity: dst.UIDValidity}
			return nil
		}
		var size int64
		var blobs []string
		rows, err := w.Query(ctx, "SELECT size, blob_id FROM messages WHERE mailbox_id = $1 AND uid = ANY($2)", src.ID, toInt64s(found))
		if err != nil {
			return fmt.Errorf("postgres: copy: %w", err)
		}
		for rows.Next() {
			var sz int64
			var b string
			if err := rows.Scan(&sz, &b); err != nil {
				rows.Close()
				return fmt.Errorf("postgres: copy: %w", err)
			}
			size += sz
			blobs = append(blobs, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("postgres: copy: %w", err)
		}
		if err := w.charge(accountID, size, int64(len(found))); err != nil {
			return err
		}
		ms := w.bumped[accountID]
		slices.Sort(blobs)
		if err := changeBlobRefs(w, blobs, 1); err != nil {
			return err
		}
		out, err = copyRows(w, accountID, src, dst, found, ms)
		return err
	})
	return out, err
}

func (s *Store) Move(ctx context.Context, accountID, srcMailbox int64, uids mailstore.UIDSet, dstMailbox int64) (mailstore.CopyResult, error) {
	var out mailstore.CopyResult
	err := s.write(ctx, func(w *wtx) error {
		src, dst, err := lockPair(w, accountID, srcMailbox, dstMailbox)
		if err != nil {
			return err
		}
		found, err := selectUIDs(w, src.ID, uids)
		if err != nil {
			return err
		}
		if len(found) == 0 {
			out = mailstore.CopyResult{UIDValidity: dst.UIDValidity}
			return nil
		}
		ms, err := w.modseq(accountID)
		if err != nil {
			return err
		}
		out, err = s.moveRows(w, accountID, src, dst, found, ms)
		return err
	})
	return out, err
}

// moveRows copies then removes (with tombstones, without retention: the
// messages live on in dst). Usage and blob references do not change.
func (s *Store) moveRows(w *wtx, acct int64, src, dst *mailstore.Mailbox, uids []mailstore.UID, ms mailstore.ModSeq) (mailstore.CopyResult, error) {
	if len(uids) == 0 {
		return mailstore.CopyResult{UIDValidity: dst.UIDValidity, ModSeq: ms}, nil
	}
	res, err := copyRows(w, acct, src, dst, uids, ms)
	if err != nil {
		return res, err
	}
	// When src == dst the move renumbers: the new rows have fresh UIDs and
	// the old UIDs vanish.
	_, err = w.Exec(w.ctx, `WITH gone AS (
			DELETE FROM messages WHERE mailbox_id = $1 AND uid = ANY($2) RETURNING flags, size
		)
		UPDATE mailboxes mb SET `+countsSetSQL("-")+` FROM (`+countsAggSQL+` FROM gone) x WHERE mb.id = $1`,
		src.ID, toInt64s(uids))
	if err != nil {
		return res, fmt.Errorf("postgres: move: %w", err)
	}
	if err := addTombstones(w, acct, src.ID, uids, ms); err != nil {
		return res, err
	}
	if _, err := w.Exec(w.ctx, "DELETE FROM pop_hidden WHERE mailbox_id = $1 AND uid = ANY($2)", src.ID, toInt64s(uids)); err != nil {
		return res, fmt.Errorf("postgres: move: %w", err)
	}
	return res, touchMailbox(w, src.ID, ms)
}

func addTombstones(w *wtx, acct, mailboxID int64, uids []mailstore.UID, ms mailstore.ModSeq) error {
	_, err := w.Exec(w.ctx, `INSERT INTO tombstones (mailbox_id, uid, account_id, modseq, expunged)
		SELECT $1, u, $3, $4, $5 FROM unnest($2::bigint[]) AS u`, mailboxID, toInt64s(uids), acct, int64(ms), now())
	if err != nil {
		return fmt.Errorf("postgres: tombstones: %w", err)
	}
	return nil
}

func (s *Store) Expunge(ctx context.Context, accountID, mailboxID int64, uids mailstore.UIDSet) ([]mailstore.UID, mailstore.ModSeq, error) {
	return s.expunge(ctx, accountID, mailboxID, uids, false)
}

// ExpungeDeleted removes the messages in uids that have \Deleted now,
// as Expunge does (mailstore.Store).
func (s *Store) ExpungeDeleted(ctx context.Context, accountID, mailboxID int64, uids mailstore.UIDSet) ([]mailstore.UID, mailstore.ModSeq, error) {
	return s.expunge(ctx, accountID, mailboxID, uids, true)
}

// expunge removes the messages in uids, only those with \Deleted when
// deletedOnly is set. Every write locks the account row first, so no
// STORE changes \Deleted between the choice and the removal.
func (s *Store) expunge(ctx context.Context, accountID, mailboxID int64, uids mailstore.UIDSet, deletedOnly bool) ([]mailstore.UID, mailstore.ModSeq, error) {
	var gone []mailstore.UID
	var ms mailstore.ModSeq
	err := s.write(ctx, func(w *wtx) error {
		gone, ms = nil, 0
		if err := w.lockAccounts(accountID); err != nil {
			return err
		}
		mb, err := lockMailbox(w, accountID, mailboxID)
		if err != nil {
			return err
		}
		found, err := selectUIDsFlagged(w, mb.ID, uids, deletedOnly)
		if err != nil || len(found) == 0 {
			return err
		}
		if ms, err = w.modseq(accountID); err != nil {
			return err
		}
		gone, err = expungeRows(w, accountID, mb, found, ms, true)
		if err != nil {
			return err
		}
		return touchMailbox(w, mb.ID, ms)
	})
	return gone, ms, err
}

// expungeRows moves messages of mb (all of them when uids is nil) into the
// retention area, with tombstones when tomb is set, and releases their
// quota usage. The blob references move with them.
func expungeRows(w *wtx, acct int64, mb mailstore.Mailbox, uids []mailstore.UID, ms mailstore.ModSeq, tomb bool) ([]mailstore.UID, error) {
	all := uids == nil
	rows, err := w.Query(w.ctx, `WITH gone AS (
			DELETE FROM messages WHERE mailbox_id = $1 AND ($2 OR uid = ANY($3::bigint[]))
			RETURNING uid, flags, internal_date, size, hdr_from, hdr_subject, blob_id
		), kept AS (
			INSERT INTO deleted_messages (account_id, mailbox_id, mailbox_name, uid, flags, internal_date, expunged, size, hdr_from, hdr_subject, blob_id)
			SELECT $4, $1, $5, uid, flags, internal_date, $6, size, hdr_from, hdr_subject, blob_id FROM gone
		), tomb AS (
			INSERT INTO tombstones (mailbox_id, uid, account_id, modseq, expunged)
			SELECT $1, uid, $4, $7, $6 FROM gone WHERE $8
		), counts AS (
			UPDATE mailboxes mb SET `+countsSetSQL("-")+` FROM (`+countsAggSQL+` FROM gone) x WHERE mb.id = $1
		)
		SELECT uid, size FROM gone ORDER BY uid`,
		mb.ID, all, toInt64s(uids), acct, mb.Name, now(), int64(ms), tomb)
	if err != nil {
		return nil, fmt.Errorf("postgres: expunge: %w", err)
	}
	var gone []mailstore.UID
	var size int64
	for rows.Next() {
		var u, sz int64
		if err := rows.Scan(&u, &sz); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: expunge: %w", err)
		}
		gone = append(gone, mailstore.UID(u))
		size += sz
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: expunge: %w", err)
	}
	if len(gone) > 0 {
		if _, err := w.Exec(w.ctx, "DELETE FROM pop_hidden WHERE mailbox_id = $1 AND uid = ANY($2)", mb.ID, toInt64s(gone)); err != nil {
			return nil, fmt.Errorf("postgres: expunge: %w", err)
		}
	}
	return gone, addUsage(w, acct, -size, -int64(len(gone)))
}
