package postgres

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
)

// The write path shared by Append, Deliver (batched) and RestoreDeleted.
// It is the delivery hot path, so it is set-based: for any number of
// messages it costs one round trip to lock the accounts, one to lock the
// mailboxes, and one pipelined batch for blobs, rows, mailbox and account
// updates. Quotas are checked in Go against the usage read under the
// account row locks, so a batch of deliveries can accept or refuse each
// one without a savepoint.

// target is one message going into one mailbox.
type target struct {
	acct  int64
	mb    int64 // 0: the account's INBOX
	f     *facts
	flags []string
	date  time.Time
}

type mbKey struct{ acct, id int64 }

// lockMailboxes locks the live mailboxes the targets name (INBOX for
// mb == 0) in one statement, after the account rows; the order among
// mailbox rows cannot deadlock since whoever locks one holds its
// account's row already. Missing mailboxes are simply absent from the map.
func lockMailboxes(w *wtx, ts []target) (map[mbKey]*mailstore.Mailbox, map[int64]int64, error) {
	var accts, ids, inboxAccts []int64
	for _, t := range ts {
		if t.mb == 0 {
			inboxAccts = append(inboxAccts, t.acct)
		} else {
			accts, ids = append(accts, t.acct), append(ids, t.mb)
		}
	}
	rows, err := w.Query(w.ctx, `SELECT `+mailboxCols+` FROM mailboxes
		WHERE NOT deleted AND (
			(account_id, id) IN (SELECT a, i FROM unnest($1::bigint[], $2::bigint[]) AS x(a, i))
			OR (account_id = ANY($3) AND name = $4))
		ORDER BY id FOR UPDATE`, accts, ids, inboxAccts, mailstore.InboxName)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: lock mailboxes: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mailstore.Mailbox, error) { return scanMailbox(r) })
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: lock mailboxes: %w", err)
	}
	mbs := make(map[mbKey]*mailstore.Mailbox, len(list))
	inbox := map[int64]int64{}
	for i := range list {
		mb := &list[i]
		mbs[mbKey{mb.AccountID, mb.ID}] = mb
		if mb.Name == mailstore.InboxName {
			inbox[mb.AccountID] = mb.ID
		}
	}
	return mbs, inbox, nil
}

// storeMessages stores every target or none: lock, skip \Sent duplicates
// (when dedupSent), check quotas, then write. Results are in ts order.
func (s *Store) storeMessages(w *wtx, ts []target, dedupSent bool) ([]mailstore.AppendResult, error) {
	accts := make([]int64, 0, len(ts))
	for _, t := range ts {
		accts = append(accts, t.acct)
	}
	if err := w.lockAccounts(accts...); err != nil {
		return nil, err
	}
	mbs, inbox, err := lockMailboxes(w, ts)
	if err != nil {
		return nil, err
	}
	for i, t := range ts {
		if t.mb == 0 {
			if ts[i].mb = inbox[t.acct]; ts[i].mb == 0 {
				return nil, fmt.Errorf("account %d: mailbox %s: %w", t.acct, mailstore.InboxName, mailstore.ErrNoSuchMailbox)
			}
		} else if mbs[mbKey{t.acct, t.mb}] == nil {
			return nil, fmt.Errorf("mailbox %d: %w", t.mb, mailstore.ErrNoSuchMailbox)
		}
	}

	res := make([]mailstore.AppendResult, len(ts))
	store := make([]bool, len(ts))
	type sentKey struct {
		mb  int64
		mid string
	}
	first := map[sentKey]int{}
	need := map[int64][2]int64{}
	for i, t := range ts {
		mb := mbs[mbKey{t.acct, t.mb}]
		if dedupSent && mb.SpecialUse == mailstore.SpecialSent && t.f.messageID != "" {
			k := sentKey{mb.ID, t.f.messageID}
			if j, ok := first[k]; ok {
				res[i] = mailstore.AppendResult{Existing: true, UID: mailstore.UID(j)} // resolved below
				continue
			}
			var uid, ms int64
			err := w.QueryRow(w.ctx, "SELECT uid, modseq FROM messages WHERE mailbox_id = $1 AND message_id = $2 ORDER BY uid LIMIT 1", mb.ID, t.f.messageID).Scan(&uid, &ms)
			if err == nil {
				res[i] = mailstore.AppendResult{MailboxID: mb.ID, UIDValidity: mb.UIDValidity, UID: mailstore.UID(uid), ModSeq: mailstore.ModSeq(ms), Existing: true}
				continue
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return nil, fmt.Errorf("postgres: sent lookup: %w", err)
			}
			first[k] = i
		}
		store[i] = true
		n := need[t.acct]
		n[0] += int64(len(t.f.p.Raw))
		n[1]++
		need[t.acct] = n
	}
	for acct, n := range need {
		if !w.usage[acct].fits(n[0], n[1]) {
			return nil, fmt.Errorf("account %d: %w", acct, mailstore.ErrOverQuota)
		}
	}
	var todo []target
	var idx []int
	for i, t := range ts {
		if store[i] {
			todo = append(todo, t)
			idx = append(idx, i)
		}
	}
	out, err := s.writeTargets(w, todo, mbs)
	if err != nil {
		return nil, err
	}
	for k, i := range idx {
		res[i] = out[k]
	}
	for i := range res {
		if res[i].Existing && res[i].MailboxID == 0 {
			res[i] = res[int(res[i].UID)]
			res[i].Existing = true
		}
	}
	return res, nil
}

// writeTargets writes checked targets whose accounts and mailboxes are
// locked (ts[i].mb resolved): modseqs, UIDs, usage, blob references and
// rows, pipelined.
func (s *Store) writeTargets(w *wtx, ts []target, mbs map[mbKey]*mailstore.Mailbox) ([]mailstore.AppendResult, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	b := &pgx.Batch{}
	saved := now()
	res := make([]mailstore.AppendResult, len(ts))
	used := map[int64][2]int64{}
	var acctOrder []int64
	for _, t := range ts {
		if _, ok := used[t.acct]; !ok {
			acctOrder = append(acctOrder, t.acct)
		}
		u := used[t.acct]
		u[0] += int64(len(t.f.p.Raw))
		u[1]++
		used[t.acct] = u
	}
	slices.Sort(acctOrder)
	for _, acct := range acctOrder {
		ms, ok := w.bumped[acct]
		if !ok {
			ms = w.locked[acct] + 1
			w.bumped[acct] = ms
		}
		u := used[acct]
		b.Queue("UPDATE accounts SET used_bytes = used_bytes + $2, used_messages = used_messages + $3, modseq = $4 WHERE id = $1",
			acct, u[0], u[1], int64(ms))
		if a := w.usage[acct]; a != nil {
			a.usedBytes += u[0]
			a.usedMessages += u[1]
		}
	}
	blobRefs := map[string]int{}
	blobFacts := map[string]*facts{}
	var blobOrder []string
	// Every mailbox receiving rows gets one UPDATE: its new uidnext and
	// modseq, and its counts' delta (counts.go).
	var touched []*mailstore.Mailbox
	counts := map[*mailstore.Mailbox]*mbCounts{}
	for i, t := range ts {
		ms := w.bumped[t.acct]
		mb := mbs[mbKey{t.acct, t.mb}]
		if mb.UIDNext >= mailstore.MaxUID {
			// RFC 9051 section 2.3.1.1: UIDs are 32-bit; a full mailbox
			// needs a new UIDVALIDITY, which only a recreate gives.
			return nil, fmt.Errorf("mailbox %s: UIDs exhausted: %w", mb.Name, mailstore.ErrOverQuota)
		}
		uid := mb.UIDNext
		mb.UIDNext++
		mb.HighestModSeq = ms
		c := counts[mb]
		if c == nil {
			c = &mbCounts{}
			counts[mb] = c
			touched = append(touched, mb)
		}
		c.add(t.flags, int64(len(t.f.p.Raw)), 1)
		res[i] = mailstore.AppendResult{MailboxID: mb.ID, UIDValidity: mb.UIDValidity, UID: uid, ModSeq: ms}
		queueInsert(b, t.acct, ms, saved, newRow{f: t.f, mailbox: mb.ID, uid: uid, flags: t.flags, internalDate: t.date})
		id := t.f.p.BlobID
		if blobRefs[id] == 0 {
			blobOrder = append(blobOrder, id)
			blobFacts[id] = t.f
		}
		blobRefs[id]++
	}
	for _, mb := range touched {
		c := counts[mb]
		b.Queue(`UPDATE mailboxes SET uidnext = $2, highestmodseq = $3, n_messages = n_messages + $4,
			n_unseen = n_unseen + $5, n_deleted = n_deleted + $6, n_size = n_size + $7 WHERE id = $1`,
			mb.ID, int64(mb.UIDNext), int64(mb.HighestModSeq), c.n, c.unseen, c.deleted, c.size)
	}
	slices.Sort(blobOrder)
	for _, id := range blobOrder {
		f := blobFacts[id]
		if err := s.addBlobRef(w, b, id, f.p.Raw, blobRefs[id]); err != nil {
			return nil, err
		}
		// The text search tests, once per blob (migration 0007). Every
		// message write makes sure it is there, not only the first
		// reference: a blob first stored for the outbound queue, or kept
		// only by retention rows, has none yet.
		b.Queue(`INSERT INTO blob_text (id, header_text, body_text) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`,
			id, f.headerText, f.bodyText)
	}
	if err := w.SendBatch(w.ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("postgres: store messages: %w", err)
	}
	return res, nil
}
