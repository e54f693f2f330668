package pop3server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// A session's maildrop lock is a store lease, so it holds across nodes
// (RFC 1939 section 4: "the POP3 server then acquires an exclusive-access
// lock on the maildrop"). It is renewed at commands, without a goroutine:
// it lasts the idle timeout plus leaseMargin, and a command renews it when
// less than the idle timeout plus leaseMargin/2 is left, so it cannot lapse
// while the session waits for the client. If a node dies its locks lapse
// after at most that long.
const leaseMargin = 2 * time.Minute

// storeTimeout bounds the store calls that run after a session ended
// (releasing its lease).
const storeTimeout = 10 * time.Second

// popMessage is one message of the snapshot.
type popMessage struct {
	uid     mailstore.UID
	blobID  string
	size    int64 // octets in wire form (see wire.go); -1 until known
	deleted bool  // DELE'd in this session
}

// maildrop is a session's view of INBOX: the snapshot taken at login
// (RFC 1939 section 5: message numbers are fixed for the session), the
// lease that locks it and what DELE marked.
type maildrop struct {
	srv    *Server
	acct   mailstore.Account
	view   string // "" the account's own view, else a device name
	inbox  mailstore.Mailbox
	msgs   []popMessage
	owner  string
	lease  string
	until  time.Time
	closed bool
}

// leaseFor is how long a maildrop lease lasts from its last renewal.
func (s *Server) leaseFor() time.Duration { return s.cfg.IdleTimeout + leaseMargin }

// openMaildrop locks the view's maildrop and takes its snapshot: the UIDs
// of INBOX minus those hidden from the view. Errors: errInUse,
// errLoginDelay, or a store error.
func openMaildrop(ctx context.Context, srv *Server, owner string, acct mailstore.Account, view string) (*maildrop, error) {
	d := &maildrop{
		srv:   srv,
		acct:  acct,
		view:  view,
		owner: owner,
		lease: "pop3:" + strconv.FormatInt(acct.ID, 10) + ":" + view,
	}
	now := time.Now()
	got, err := srv.store.AcquireLease(ctx, d.lease, owner, now.Add(srv.leaseFor()))
	if err != nil {
		return nil, fmt.Errorf("lock maildrop of account %d: %w", acct.ID, err)
	}
	if !got {
		// RFC 2449 section 8.1.2: IN-USE, "the maildrop is currently
		// locked".
		return nil, errInUse
	}
	d.until = now.Add(srv.leaseFor())
	ok := false
	defer func() {
		// RFC 1939 section 4: "If a lock was acquired but the POP3
		// server intends to respond with a negative status indicator,
		// the POP3 server must release the lock prior to rejecting the
		// command."
		if !ok {
			d.close()
		}
	}()
	if delay := srv.cfg.LoginDelay; delay > 0 {
		// RFC 2449 section 8.1.1: a second login within the delay gets
		// [LOGIN-DELAY]. A lease that is never released and lapses by
		// itself marks the last login, for every node.
		got, err := srv.store.AcquireLease(ctx, "pop3-login:"+strconv.FormatInt(acct.ID, 10)+":"+view, owner, now.Add(delay))
		if err != nil {
			return nil, fmt.Errorf("check login delay of account %d: %w", acct.ID, err)
		}
		if !got {
			return nil, errLoginDelay
		}
	}
	if err := d.snapshot(ctx); err != nil {
		return nil, err
	}
	ok = true
	return d, nil
}

func (d *maildrop) snapshot(ctx context.Context) error {
	st := d.srv.store
	inbox, err := st.GetMailbox(ctx, d.acct.ID, mailstore.InboxName)
	if err != nil {
		return fmt.Errorf("open INBOX of account %d: %w", d.acct.ID, err)
	}
	d.inbox = inbox
	uids, _, err := st.UIDs(ctx, d.acct.ID, inbox.ID)
	if err != nil {
		return fmt.Errorf("list INBOX of account %d: %w", d.acct.ID, err)
	}
	hidden, err := st.PopHidden(ctx, d.acct.ID, inbox.ID, d.view)
	if err != nil {
		return fmt.Errorf("list hidden messages of account %d view %q: %w", d.acct.ID, d.view, err)
	}
	hide := make(map[mailstore.UID]bool, len(hidden))
	for _, u := range hidden {
		hide[u] = true
	}
	visible := make([]mailstore.UID, 0, len(uids))
	for _, u := range uids {
		if !hide[u] {
			visible = append(visible, u)
		}
	}
	if len(visible) == 0 {
		return nil
	}
	d.msgs = make([]popMessage, 0, len(visible))
	// A message expunged between UIDs and Fetch is simply not returned:
	// it is not part of the snapshot.
	err = st.Fetch(ctx, d.acct.ID, inbox.ID, mailstore.CompactUIDs(visible), mailstore.FetchSize|mailstore.FetchIDs, 0, func(m *mailstore.Message) error {
		// The size stored at delivery saves reading every blob at
		// login; a store that does not know it (0) leaves it to be
		// computed from the blob when first asked.
		size := int64(-1)
		if m.LineSize > 0 {
			size = m.LineSize
		} else if n, ok := d.srv.sizes.get(m.BlobID); ok {
			size = n
		}
		d.msgs = append(d.msgs, popMessage{uid: m.UID, blobID: m.BlobID, size: size})
		return nil
	})
	if err != nil {
		return fmt.Errorf("fetch INBOX of account %d: %w", d.acct.ID, err)
	}
	return nil
}

// renew extends the lease when it runs low (see leaseMargin). A lost lease
// is errInUse: some other session may now own the maildrop.
func (d *maildrop) renew(ctx context.Context) error {
	now := time.Now()
	if d.until.Sub(now) > d.srv.cfg.IdleTimeout+leaseMargin/2 {
		return nil
	}
	err := d.renewNow(ctx, now)
	if err != nil && !errors.Is(err, errLockLost) && d.until.Sub(now) > leaseMargin/2 {
		// A passing store failure: the lease still has time; the next
		// command tries again.
		d.srv.log.Warn("renew maildrop lock; will retry", "lease", d.lease, "err", err)
		return nil
	}
	return err
}

func (d *maildrop) renewNow(ctx context.Context, now time.Time) error {
	got, err := d.srv.store.AcquireLease(ctx, d.lease, d.owner, now.Add(d.srv.leaseFor()))
	if err != nil {
		return fmt.Errorf("renew maildrop lock %s: %w", d.lease, err)
	}
	if !got {
		return errLockLost
	}
	d.until = now.Add(d.srv.leaseFor())
	return nil
}

var errLockLost = &replyError{"IN-USE", "Maildrop lock lost to another session; no changes made"}

// close releases the lease. Safe to call twice.
func (d *maildrop) close() {
	if d.closed {
		return
	}
	d.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := d.srv.store.ReleaseLease(ctx, d.lease, d.owner); err != nil {
		// The lease lapses by itself; a new login waits at most until
		// then.
		d.srv.log.Warn("release maildrop lock", "lease", d.lease, "err", err)
	}
}

// count is the number of messages not marked deleted.
func (d *maildrop) count() int {
	n := 0
	for i := range d.msgs {
		if !d.msgs[i].deleted {
			n++
		}
	}
	return n
}

// get returns message number n (1-based) if it exists and is not marked
// deleted (RFC 1939 section 5: a command "may NOT refer to a message
// marked as deleted").
func (d *maildrop) get(arg string) (int, *popMessage, error) {
	n, ok := parseMsgNumber(arg)
	if !ok || n > len(d.msgs) {
		return 0, nil, errNoSuchMsg
	}
	m := &d.msgs[n-1]
	if m.deleted {
		return 0, nil, &replyError{text: fmt.Sprintf("Message %d already deleted", n)}
	}
	return n, m, nil
}

// read returns the raw bytes of a message and fills in its wire size.
func (d *maildrop) read(ctx context.Context, m *popMessage) ([]byte, error) {
	raw, err := d.srv.store.ReadBlob(ctx, m.blobID)
	if err != nil {
		if errors.Is(err, mailstore.ErrNoSuchMessage) {
			// Gone from the store meanwhile (purged): the snapshot
			// still lists it, but it cannot be sent.
			return nil, &replyError{text: "Message is no longer available"}
		}
		return nil, fmt.Errorf("read blob %s: %w", m.blobID, err)
	}
	if m.size < 0 {
		m.size = wireSize(raw)
		d.srv.sizes.put(m.blobID, m.size)
	}
	return raw, nil
}

// size returns a message's wire size, reading it if not known yet.
func (d *maildrop) size(ctx context.Context, m *popMessage) (int64, error) {
	if m.size < 0 {
		if _, err := d.read(ctx, m); err != nil {
			return 0, err
		}
	}
	return m.size, nil
}

// totals counts and sizes the messages not marked deleted.
func (d *maildrop) totals(ctx context.Context) (n int, octets int64, err error) {
	for i := range d.msgs {
		m := &d.msgs[i]
		if m.deleted {
			continue
		}
		sz, err := d.size(ctx, m)
		if err != nil {
			return 0, 0, err
		}
		n++
		octets += sz
	}
	return n, octets, nil
}

// uidl is a message's unique-id: UIDVALIDITY and UID, which together never
// name another message of INBOX, now or later. RFC 1939 section 7, UIDL:
// 1 to 70 characters in the range 0x21 to 0x7E, "persistent across
// sessions".
func (d *maildrop) uidl(m *popMessage) string {
	return strconv.FormatUint(uint64(d.inbox.UIDValidity), 10) + "." + strconv.FormatUint(uint64(m.uid), 10)
}

// update applies the deletions marked in this session, atomically: each
// mode is one store call, one transaction (RFC 1939 section 6, the UPDATE
// state). It returns how many messages were marked.
func (d *maildrop) update(ctx context.Context) (int, error) {
	var uids []mailstore.UID
	for _, m := range d.msgs {
		if m.deleted {
			uids = append(uids, m.uid)
		}
	}
	if len(uids) == 0 {
		return 0, nil
	}
	// Make sure the lock is still ours before changing anything.
	if err := d.renewNow(ctx, time.Now()); err != nil {
		return 0, err
	}
	st, acct, inbox := d.srv.store, d.acct.ID, d.inbox.ID
	mode := d.srv.cfg.Delete
	if d.view != "" {
		// A device only hides mail from itself: no device steals mail
		// from another, and IMAP keeps everything (DESIGN section 4).
		mode = DeleteHide
	}
	switch mode {
	case DeleteHide:
		if err := st.PopHide(ctx, acct, inbox, d.view, uids); err != nil {
			return 0, fmt.Errorf("hide %d messages from view %q: %w", len(uids), d.view, err)
		}
	case DeleteTrash:
		trash, err := d.trash(ctx)
		if err != nil {
			return 0, err
		}
		if _, err := st.Move(ctx, acct, inbox, mailstore.UIDSetOf(uids...), trash.ID); err != nil {
			return 0, fmt.Errorf("move %d messages to %s: %w", len(uids), trash.Name, err)
		}
	default:
		if _, _, err := st.Expunge(ctx, acct, inbox, mailstore.UIDSetOf(uids...)); err != nil {
			return 0, fmt.Errorf("expunge %d messages: %w", len(uids), err)
		}
	}
	return len(uids), nil
}

// trash finds the account's \Trash mailbox, making one when the user
// deleted it, so that trash mode never loses the message it moves.
func (d *maildrop) trash(ctx context.Context) (mailstore.Mailbox, error) {
	st := d.srv.store
	mb, err := st.MailboxBySpecialUse(ctx, d.acct.ID, mailstore.SpecialTrash)
	if err == nil {
		return mb, nil
	}
	if !errors.Is(err, mailstore.ErrNoSuchMailbox) {
		return mb, fmt.Errorf("find Trash: %w", err)
	}
	mb, err = st.CreateMailbox(ctx, d.acct.ID, "Trash", mailstore.SpecialTrash)
	if errors.Is(err, mailstore.ErrExists) {
		// A "Trash" without the attribute: use it.
		mb, err = st.GetMailbox(ctx, d.acct.ID, "Trash")
	}
	if err != nil {
		return mb, fmt.Errorf("make Trash: %w", err)
	}
	return mb, nil
}
