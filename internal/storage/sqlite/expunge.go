package sqlite

import (
	"context"
	"fmt"
	"strconv"

	"github.com/roost-mail/roost/internal/mailstore"
)

// msgRef is what moving or removing a message row needs.
type msgRef struct {
	id       int64
	uid      mailstore.UID
	flags    int64
	keywords string
	internal int64
	size     int64
	from     string
	subject  string
	blobID   string
}

// selectRefs lists the rows of mb with a UID in set, in UID order; a
// non-exact UID set is filtered here.
func (w *wtx) selectRefs(mb *mailstore.Mailbox, set mailstore.UIDSet) ([]msgRef, error) {
	return w.selectRefsFlagged(mb, set, 0)
}

// selectRefsFlagged is selectRefs of the rows with every flag bit of
// bits set (0: every row).
func (w *wtx) selectRefsFlagged(mb *mailstore.Mailbox, set mailstore.UIDSet, bits int64) ([]msgRef, error) {
	cond, args, exact := uidCond("uid", set)
	switch {
	case bits == bitDeleted:
		// A literal, so that SQLite may walk the partial index
		// messages_deleted: only the \Deleted rows of the range.
		cond += " AND flags & " + strconv.FormatInt(bitDeleted, 10) + " <> 0"
	case bits != 0:
		cond += " AND flags & ? = ?"
		args = append(args, bits, bits)
	}
	rows, err := w.query(`SELECT id, uid, flags, keywords, internal_date, size, hdr_from, hdr_subject, blob_id
		FROM messages WHERE mailbox_id = ? AND `+cond+` ORDER BY uid`, append([]any{mb.ID}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("select messages: %w", err)
	}
	defer rows.Close()
	var out []msgRef
	for rows.Next() {
		var r msgRef
		if err := rows.Scan(&r.id, &r.uid, &r.flags, &r.keywords, &r.internal, &r.size, &r.from, &r.subject, &r.blobID); err != nil {
			return nil, fmt.Errorf("select messages: %w", err)
		}
		if (exact || set.Contains(r.uid)) && r.flags&bits == bits {
			out = append(out, r)
		}
	}
	return out, rows.Err()
}

// allUIDs is the set of every UID.
var allUIDs = mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}

// removeRefs moves rows into the retention area (their blob reference
// goes with them) and, with tombstones, records the expunge for the change
// feed and QRESYNC (RFC 7162 section 3.2.10: VANISHED comes from these).
func (s *Store) removeRefs(w *wtx, mb *mailstore.Mailbox, refs []msgRef, m mailstore.ModSeq, tombstones bool) error {
	var bytes int64
	for _, r := range refs {
		if _, err := w.exec(`INSERT INTO deleted_messages (account_id, mailbox_id, mailbox_name, uid, flags, keywords,
				internal_date, expunged, size, hdr_from, hdr_subject, blob_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			mb.AccountID, mb.ID, mb.Name, r.uid, r.flags, r.keywords, r.internal, nanos(w.now), r.size, r.from, r.subject, r.blobID); err != nil {
			return fmt.Errorf("retain message: %w", err)
		}
		if tombstones {
			if err := w.tombstone(mb, r.uid, m); err != nil {
				return err
			}
		}
		// The blob's full-text entry stays: the retention row keeps the
		// blob (and other rows may share it).
		if _, err := w.exec(`DELETE FROM messages WHERE id = ?`, r.id); err != nil {
			return fmt.Errorf("delete message: %w", err)
		}
		bytes += r.size
	}
	return w.addUsage(mb.AccountID, -bytes, -int64(len(refs)), false)
}

func (w *wtx) tombstone(mb *mailstore.Mailbox, uid mailstore.UID, m mailstore.ModSeq) error {
	if _, err := w.exec(`INSERT INTO tombstones (account_id, mailbox_id, uid, modseq, expunged) VALUES (?, ?, ?, ?, ?)`,
		mb.AccountID, mb.ID, uid, m, nanos(w.now)); err != nil {
		return fmt.Errorf("tombstone: %w", err)
	}
	return nil
}

// expungeAll empties mb into the retention area without tombstones (the
// mailbox itself is going away).
func (s *Store) expungeAll(w *wtx, mb *mailstore.Mailbox, m mailstore.ModSeq) error {
	refs, err := w.selectRefs(mb, allUIDs)
	if err != nil {
		return err
	}
	return s.removeRefs(w, mb, refs, m, false)
}

// Expunge removes the messages in uids, leaving tombstones and keeping
// them recoverable (RFC 9051 section 6.4.3 for the caller's selection).
func (s *Store) Expunge(ctx context.Context, accountID, mailboxID int64, uids mailstore.UIDSet) ([]mailstore.UID, mailstore.ModSeq, error) {
	return s.expunge(ctx, s.update, accountID, mailboxID, uids, 0)
}

// ExpungeDeleted removes the messages in uids that have \Deleted now,
// as Expunge does (mailstore.Store). With Options.DeferFlagSync it is
// answered before its commit is synced, like the STORE of \Deleted it
// completes: a power cut that undoes it puts the messages back in their
// mailbox (their blobs stay while anything refers to them), and the
// recovery gives them new modseqs, so every client sees them again
// (flagsync.go). Expunge, POP3's, keeps the sync: DELE asks for no flag.
func (s *Store) ExpungeDeleted(ctx context.Context, accountID, mailboxID int64, uids mailstore.UIDSet) ([]mailstore.UID, mailstore.ModSeq, error) {
	return s.expunge(ctx, s.updateFlags, accountID, mailboxID, uids, bitDeleted)
}

// expunge removes the messages in uids with every flag bit of bits, as
// one write made by write (update or updateFlags: when it is synced).
func (s *Store) expunge(ctx context.Context, write func(context.Context, func(*wtx) error) error, accountID, mailboxID int64, uids mailstore.UIDSet, bits int64) ([]mailstore.UID, mailstore.ModSeq, error) {
	var out []mailstore.UID
	var mod mailstore.ModSeq
	err := write(ctx, func(w *wtx) error {
		out, mod = nil, 0
		mb, err := getMailboxByID(w.ctx, w, accountID, mailboxID)
		if err != nil {
			return err
		}
		refs, err := w.selectRefsFlagged(&mb, uids, bits)
		if err != nil || len(refs) == 0 {
			return err
		}
		m, err := w.nextModSeq(accountID)
		if err != nil {
			return err
		}
		if err := s.removeRefs(w, &mb, refs, m, true); err != nil {
			return err
		}
		if err := w.touchHighest(mb.ID, m); err != nil {
			return err
		}
		for _, r := range refs {
			out = append(out, r.uid)
		}
		mod = m
		return nil
	})
	return out, mod, err
}

func (w *wtx) touchHighest(mailboxID int64, m mailstore.ModSeq) error {
	if _, err := w.exec(`UPDATE mailboxes SET highestmodseq = max(highestmodseq, ?) WHERE id = ?`, m, mailboxID); err != nil {
		return fmt.Errorf("update mailbox: %w", err)
	}
	return nil
}

// Copy copies messages under new UIDs over the same blobs (RFC 9051
// section 6.4.7; RFC 4315 COPYUID from the result).
func (s *Store) Copy(ctx context.Context, accountID, srcMailbox int64, uids mailstore.UIDSet, dstMailbox int64) (mailstore.CopyResult, error) {
	var res mailstore.CopyResult
	err := s.update(ctx, func(w *wtx) error {
		res = mailstore.CopyResult{}
		src, err := getMailboxByID(w.ctx, w, accountID, srcMailbox)
		if err != nil {
			return err
		}
		boxes := newMailboxCache(w)
		dst, err := boxes.get(accountID, dstMailbox)
		if err != nil {
			return err
		}
		res.UIDValidity = dst.UIDValidity
		refs, err := w.selectRefs(&src, uids)
		if err != nil || len(refs) == 0 {
			return err
		}
		m, err := w.nextModSeq(accountID)
		if err != nil {
			return err
		}
		var bytes int64
		deltas := map[string]int{}
		for _, r := range refs {
			uid := dst.UIDNext
			dst.UIDNext++
			// The copy shares the blob and so its full-text entry.
			id := rowID(dst.ID, uid)
			_, err := w.exec(`INSERT INTO messages (id, account_id, mailbox_id, uid, modseq, createmodseq, flags, keywords,
					internal_date, save_date, sent_day, size, line_size, blob_id, text_id, email_id, thread_id, message_id,
					hdr_from, hdr_to, hdr_cc, hdr_bcc, hdr_subject)
				SELECT ?, account_id, ?, ?, ?, ?, flags, keywords,
					internal_date, ?, sent_day, size, line_size, blob_id, text_id, email_id, thread_id, message_id,
					hdr_from, hdr_to, hdr_cc, hdr_bcc, hdr_subject
				FROM messages WHERE id = ?`, id, dst.ID, uid, m, m, nanos(w.now), r.id)
			if err != nil {
				return fmt.Errorf("copy message: %w", err)
			}
			if _, err := w.exec(`INSERT INTO message_meta (id, envelope, body, preview)
				SELECT ?, envelope, body, preview FROM message_meta WHERE id = ?`, id, r.id); err != nil {
				return fmt.Errorf("copy message: %w", err)
			}
			deltas[r.blobID]++
			bytes += r.size
			res.SrcUIDs = append(res.SrcUIDs, r.uid)
			res.DstUIDs = append(res.DstUIDs, uid)
		}
		boxes.changed(dst, m)
		if err := boxes.flush(); err != nil {
			return err
		}
		if err := s.refBlobs(w, deltas); err != nil {
			return err
		}
		res.ModSeq = m
		return w.addUsage(accountID, bytes, int64(len(refs)), true)
	})
	return res, err
}

// Move moves messages atomically (RFC 6851): the rows change mailbox and
// UID in place, the source keeps tombstones, all at one modseq.
func (s *Store) Move(ctx context.Context, accountID, srcMailbox int64, uids mailstore.UIDSet, dstMailbox int64) (mailstore.CopyResult, error) {
	var res mailstore.CopyResult
	err := s.update(ctx, func(w *wtx) error {
		res = mailstore.CopyResult{}
		src, err := getMailboxByID(w.ctx, w, accountID, srcMailbox)
		if err != nil {
			return err
		}
		dst, err := getMailboxByID(w.ctx, w, accountID, dstMailbox)
		if err != nil {
			return err
		}
		res.UIDValidity = dst.UIDValidity
		refs, err := w.selectRefs(&src, uids)
		if err != nil || len(refs) == 0 {
			return err
		}
		m, err := w.nextModSeq(accountID)
		if err != nil {
			return err
		}
		res, err = s.moveRefs(w, &src, &dst, refs, m)
		return err
	})
	return res, err
}

// moveAll moves every message of src into dst (INBOX rename).
func (s *Store) moveAll(w *wtx, _ int64, src, dst mailstore.Mailbox, m mailstore.ModSeq) (mailstore.CopyResult, error) {
	refs, err := w.selectRefs(&src, allUIDs)
	if err != nil || len(refs) == 0 {
		return mailstore.CopyResult{UIDValidity: dst.UIDValidity}, err
	}
	return s.moveRefs(w, &src, &dst, refs, m)
}

func (s *Store) moveRefs(w *wtx, src, dst *mailstore.Mailbox, refs []msgRef, m mailstore.ModSeq) (mailstore.CopyResult, error) {
	res := mailstore.CopyResult{UIDValidity: dst.UIDValidity, ModSeq: m}
	// Moving within one mailbox must see its own UIDNEXT advance.
	next := dst.UIDNext
	if src.ID == dst.ID {
		next = src.UIDNext
	}
	for _, r := range refs {
		uid := next
		next++
		if _, err := w.exec(`UPDATE messages SET mailbox_id = ?, uid = ?, modseq = ?, createmodseq = ?, save_date = ? WHERE id = ?`,
			dst.ID, uid, m, m, nanos(w.now), r.id); err != nil {
			return res, fmt.Errorf("move message: %w", err)
		}
		if err := w.tombstone(src, r.uid, m); err != nil {
			return res, err
		}
		res.SrcUIDs = append(res.SrcUIDs, r.uid)
		res.DstUIDs = append(res.DstUIDs, uid)
	}
	if _, err := w.exec(`UPDATE mailboxes SET uidnext = ?, highestmodseq = max(highestmodseq, ?) WHERE id = ?`, next, m, dst.ID); err != nil {
		return res, fmt.Errorf("update mailbox: %w", err)
	}
	if err := w.touchHighest(src.ID, m); err != nil {
		return res, err
	}
	dst.UIDNext = next
	return res, nil
}
