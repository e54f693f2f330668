package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// lazyModSeq takes the account's next modseq on first use, so an operation
// that turns out to change nothing raises nothing.
type lazyModSeq struct {
	w       *wtx
	account int64
	m       mailstore.ModSeq
}

func (l *lazyModSeq) get() (mailstore.ModSeq, error) {
	if l.m == 0 {
		m, err := l.w.nextModSeq(l.account)
		if err != nil {
			return 0, err
		}
		l.m = m
	}
	return l.m, nil
}

// mailboxes caches the mailboxes one write touches and writes their
// UIDNEXT and HIGHESTMODSEQ back at the end.
type mailboxCache struct {
	w     *wtx
	boxes map[int64]*mailstore.Mailbox
	dirty map[int64]bool
}

func newMailboxCache(w *wtx) *mailboxCache {
	return &mailboxCache{w: w, boxes: map[int64]*mailstore.Mailbox{}, dirty: map[int64]bool{}}
}

// lookup finds the mailbox of an append request, by id or else by name.
func (c *mailboxCache) lookup(accountID int64, r mailstore.AppendRequest) (*mailstore.Mailbox, error) {
	if r.MailboxID != 0 {
		return c.get(accountID, r.MailboxID)
	}
	n, err := mailstore.NormalizeMailboxName(r.MailboxName)
	if err != nil {
		return nil, fmt.Errorf("mailbox %q: %w", r.MailboxName, mailstore.ErrNoSuchMailbox)
	}
	return c.byName(accountID, n)
}

// byName finds a mailbox by its normalized name. A mailbox already in the
// cache (found by id or by name) is returned as it is there: it may hold
// changes (UIDNEXT) not yet flushed, which a second read would lose.
func (c *mailboxCache) byName(accountID int64, name string) (*mailstore.Mailbox, error) {
	for _, mb := range c.boxes {
		if mb.AccountID == accountID && mb.Name == name {
			return mb, nil
		}
	}
	mb, err := getMailbox(c.w.ctx, c.w, accountID, name)
	if err != nil {
		return nil, err
	}
	c.boxes[mb.ID] = &mb
	return &mb, nil
}

func (c *mailboxCache) get(accountID, id int64) (*mailstore.Mailbox, error) {
	if mb, ok := c.boxes[id]; ok && mb.AccountID == accountID {
		return mb, nil
	}
	mb, err := getMailboxByID(c.w.ctx, c.w, accountID, id)
	if err != nil {
		return nil, err
	}
	c.boxes[id] = &mb
	return &mb, nil
}

func (c *mailboxCache) inbox(accountID int64) (*mailstore.Mailbox, error) {
	return c.byName(accountID, mailstore.InboxName)
}

// changed records a change of modseq m in mb.
func (c *mailboxCache) changed(mb *mailstore.Mailbox, m mailstore.ModSeq) {
	mb.HighestModSeq = max(mb.HighestModSeq, m)
	c.dirty[mb.ID] = true
}

func (c *mailboxCache) flush() error {
	for id := range c.dirty {
		mb := c.boxes[id]
		if _, err := c.w.exec(`UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?`, mb.UIDNext, mb.HighestModSeq, id); err != nil {
			return fmt.Errorf("update mailbox: %w", err)
		}
	}
	clear(c.dirty)
	return nil
}

// addUsage adjusts an account's usage. With enforce, growing past a quota
// fails with ErrOverQuota (and the caller's savepoint undoes the write).
func (w *wtx) addUsage(accountID, bytes, msgs int64, enforce bool) error {
	if bytes == 0 && msgs == 0 {
		return nil
	}
	var ub, um, qb, qm int64
	err := w.queryRow(`UPDATE accounts SET used_bytes = used_bytes + ?, used_messages = used_messages + ? WHERE id = ?
		RETURNING used_bytes, used_messages, quota_bytes, quota_messages`, bytes, msgs, accountID).Scan(&ub, &um, &qb, &qm)
	if err != nil {
		return accountNotFound(err, fmt.Sprint("#", accountID))
	}
	if enforce && ((bytes > 0 && qb > 0 && ub > qb) || (msgs > 0 && qm > 0 && um > qm)) {
		return fmt.Errorf("account #%d: %w", accountID, mailstore.ErrOverQuota)
	}
	return nil
}

// dayNumber is a calendar day as yyyymmdd, for the SENT* search keys.
func dayNumber(t time.Time) int64 {
	y, m, d := t.Date()
	return int64(y)*10000 + int64(m)*100 + int64(d)
}

// prepared is a message made ready outside the writer: parsed, and its
// ENVELOPE and BODYSTRUCTURE encoded for their columns, once however many
// rows it becomes (a delivery to ten recipients encoded them ten times in
// the writer's critical section).
type prepared struct {
	*mailstore.Prepared
	envelope, body string
}

func prepare(raw []byte) (*prepared, error) {
	p := mailstore.Prepare(raw)
	env, err := json.Marshal(p.Parsed.Envelope)
	if err != nil {
		return nil, fmt.Errorf("encode envelope: %w", err)
	}
	body, err := json.Marshal(p.Parsed.Body)
	if err != nil {
		return nil, fmt.Errorf("encode body structure: %w", err)
	}
	return &prepared{Prepared: p, envelope: string(env), body: string(body)}, nil
}

// insertMessage stores one prepared message as the next UID of mb.
func (s *Store) insertMessage(w *wtx, mb *mailstore.Mailbox, p *prepared, flags []string, internal time.Time, m mailstore.ModSeq) (mailstore.UID, error) {
	if internal.IsZero() {
		internal = w.now
	}
	if mb.UIDNext >= mailstore.MaxUID {
		// RFC 9051 section 2.3.1.1: UIDs are 32-bit; a full mailbox needs
		// a new UIDVALIDITY, which only a recreate gives.
		return 0, fmt.Errorf("mailbox %q: UIDs exhausted: %w", mb.Name, mailstore.ErrOverQuota)
	}
	uid := mb.UIDNext
	mb.UIDNext++
	bits, kws := encodeFlags(flags)
	pd := p.Parsed
	sent := pd.Date
	if sent.IsZero() {
		sent = internal.UTC()
	}
	known, err := s.blobs.put(w.ctx, w, p.BlobID, p.Raw)
	if err != nil {
		return 0, err
	}
	text, err := w.textID(p.Prepared, known)
	if err != nil {
		return 0, err
	}
	sh := pd.SearchHeaders
	id := rowID(mb.ID, uid)
	_, err = w.exec(`INSERT INTO messages (id, account_id, mailbox_id, uid, modseq, createmodseq, flags, keywords,
			internal_date, save_date, sent_day, size, line_size, blob_id, text_id, email_id, thread_id, message_id,
			hdr_from, hdr_to, hdr_cc, hdr_bcc, hdr_subject)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, mb.AccountID, mb.ID, uid, m, m, bits, kws,
		nanos(internal), nanos(w.now), dayNumber(sent), len(p.Raw), p.LineSize, p.BlobID, text, p.EmailID, p.ThreadID, sh.MessageID,
		sh.From, sh.To, sh.Cc, sh.Bcc, sh.Subject)
	if err != nil {
		return 0, fmt.Errorf("insert message: %w", err)
	}
	// What only FETCH reads lives in message_meta (migration 0014).
	if _, err := w.exec(`INSERT INTO message_meta (id, envelope, body, preview) VALUES (?, ?, ?, ?)`, id, p.envelope, p.body, pd.Preview); err != nil {
		return 0, fmt.Errorf("insert message: %w", err)
	}
	return uid, nil
}

// sentDuplicate finds a message with the same Message-ID in a \Sent
// mailbox (DESIGN section 4: a client's APPEND of mail the server already
// filed is not stored twice).
func (w *wtx) sentDuplicate(mb *mailstore.Mailbox, p *prepared) (mailstore.UID, mailstore.ModSeq, bool, error) {
	msgid := p.Parsed.SearchHeaders.MessageID
	if mb.SpecialUse != mailstore.SpecialSent || msgid == "" {
		return 0, 0, false, nil
	}
	var uid mailstore.UID
	var m mailstore.ModSeq
	err := w.queryRow(`SELECT uid, modseq FROM messages WHERE mailbox_id = ? AND message_id = ? ORDER BY uid LIMIT 1`, mb.ID, msgid).Scan(&uid, &m)
	if err != nil {
		if isNoRows(err) {
			return 0, 0, false, nil
		}
		return 0, 0, false, fmt.Errorf("find duplicate: %w", err)
	}
	return uid, m, true, nil
}

func (s *Store) checkSize(raw []byte) error {
	if s.maxSize > 0 && int64(len(raw)) > s.maxSize {
		return fmt.Errorf("message of %d bytes, limit %d: %w", len(raw), s.maxSize, mailstore.ErrTooBig)
	}
	return nil
}

// Append stores messages, all or none (RFC 3502 MULTIAPPEND).
func (s *Store) Append(ctx context.Context, accountID int64, reqs []mailstore.AppendRequest) ([]mailstore.AppendResult, error) {
	preps := make([]*prepared, len(reqs))
	for i, r := range reqs {
		if err := s.checkSize(r.Raw); err != nil {
			return nil, err
		}
		// Parse outside the writer: its critical section holds no parsing.
		p, err := prepare(r.Raw)
		if err != nil {
			return nil, err
		}
		preps[i] = p
	}
	var out []mailstore.AppendResult
	err := s.update(ctx, func(w *wtx) error {
		out = make([]mailstore.AppendResult, len(reqs))
		boxes := newMailboxCache(w)
		ms := &lazyModSeq{w: w, account: accountID}
		var bytes, msgs int64
		for i, r := range reqs {
			mb, err := boxes.lookup(accountID, r)
			if err != nil {
				return err
			}
			res, added, err := s.storeOne(w, boxes, ms, mb, preps[i], r.Flags, r.InternalDate)
			if err != nil {
				return err
			}
			out[i] = res
			if added {
				bytes += int64(len(preps[i].Raw))
				msgs++
			}
		}
		if err := boxes.flush(); err != nil {
			return err
		}
		return w.addUsage(accountID, bytes, msgs, true)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// storeOne files p in mb unless it is a \Sent duplicate.
func (s *Store) storeOne(w *wtx, boxes *mailboxCache, ms *lazyModSeq, mb *mailstore.Mailbox, p *prepared, flags []string, internal time.Time) (mailstore.AppendResult, bool, error) {
	res := mailstore.AppendResult{MailboxID: mb.ID, UIDValidity: mb.UIDValidity}
	uid, m, dup, err := w.sentDuplicate(mb, p)
	if err != nil {
		return res, false, err
	}
	if dup {
		res.UID, res.ModSeq, res.Existing = uid, m, true
		return res, false, nil
	}
	m, err = ms.get()
	if err != nil {
		return res, false, err
	}
	uid, err = s.insertMessage(w, mb, p, flags, internal, m)
	if err != nil {
		return res, false, err
	}
	boxes.changed(mb, m)
	res.UID, res.ModSeq = uid, m
	return res, true, nil
}

// Deliver stores one inbound message for all its recipients in one
// transaction: every recipient has it, or none does.
func (s *Store) Deliver(ctx context.Context, d mailstore.Delivery) ([]mailstore.AppendResult, error) {
	if err := s.checkSize(d.Raw); err != nil {
		return nil, err
	}
	if len(d.Recipients) == 0 && len(d.Queue) == 0 {
		return nil, nil
	}
	var p *prepared
	var err error
	if len(d.Recipients) > 0 {
		if p, err = prepare(d.Raw); err != nil {
			return nil, err
		}
	}
	var q *queued
	if len(d.Queue) > 0 {
		if q, err = newQueued(d.Raw, d.Queue); err != nil {
			return nil, err
		}
	}
	var out []mailstore.AppendResult
	err = s.update(ctx, func(w *wtx) error {
		if q != nil {
			if _, err := s.enqueueIn(w, q); err != nil {
				return err
			}
		}
		out = make([]mailstore.AppendResult, len(d.Recipients))
		boxes := newMailboxCache(w)
		mods := map[int64]*lazyModSeq{}
		added := map[int64]int64{}
		for i, rc := range d.Recipients {
			var mb *mailstore.Mailbox
			var err error
			if rc.MailboxID == 0 {
				mb, err = boxes.inbox(rc.AccountID)
			} else {
				mb, err = boxes.get(rc.AccountID, rc.MailboxID)
			}
			if err != nil {
				if errors.Is(err, mailstore.ErrNoSuchMailbox) && rc.MailboxID == 0 {
					return fmt.Errorf("account #%d has no INBOX: %w", rc.AccountID, mailstore.ErrNoSuchAccount)
				}
				return err
			}
			ms := mods[rc.AccountID]
			if ms == nil {
				ms = &lazyModSeq{w: w, account: rc.AccountID}
				mods[rc.AccountID] = ms
			}
			res, ok, err := s.storeOne(w, boxes, ms, mb, p, rc.Flags, time.Time{})
			if err != nil {
				return err
			}
			out[i] = res
			if ok {
				added[rc.AccountID]++
			}
		}
		if err := boxes.flush(); err != nil {
			return err
		}
		for a, n := range added {
			if err := w.addUsage(a, n*int64(len(d.Raw)), n, true); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// rowID is a message row's id: its mailbox in the high bits, its UID in
// the low 32 (UIDs are 32-bit: RFC 9051 section 2.3.1.1). A rowid table
// keeps rows in id order, so a mailbox's messages sit together in UID
// order, the order every FETCH, SEARCH and EXPUNGE walks them: a read
// after a commit (which empties each reader's page cache) loads a few
// pages per mailbox instead of one page per message (migration 0008).
func rowID(mailboxID int64, uid mailstore.UID) int64 {
	return mailboxID<<32 | int64(uid)
}
