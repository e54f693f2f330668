// Package delivery owns local delivery: it resolves envelope recipients
// (accounts and aliases) to accounts, stamps the Received: trace field,
// refuses mail loops, stores a message for all its local recipients in one
// durable store transaction, files copies of submitted mail in the sender's
// Sent mailbox, and completes submitted messages (Message-ID:, Date:).
//
// It speaks no protocol: the SMTP server and the outbound queue (for
// bounces) call it, and map its errors to their replies.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// DefaultMaxHops is the Received: count above which a message is taken to
// be looping. RFC 5321 section 6.3 asks for a limit of at least 100 in
// general; common practice (Postfix, Exim) is 50, well above any real path.
const DefaultMaxHops = 50

var (
	// ErrLoop: the message has passed through too many hops (RFC 5321
	// section 6.3); the SMTP reply is 554 5.4.6 (RFC 3463).
	ErrLoop = errors.New("mail loop detected: too many Received: fields")
	// ErrNoRecipients: a delivery named no recipient.
	ErrNoRecipients = errors.New("no recipients")
)

// Deliverer stores inbound mail. Safe for concurrent use.
type Deliverer struct {
	store    mailstore.Store
	hostname string
	log      *slog.Logger
	// MaxHops overrides DefaultMaxHops when > 0.
	MaxHops int
	now     func() time.Time
}

// New makes a Deliverer stamping Received: fields with hostname.
func New(store mailstore.Store, hostname string, log *slog.Logger) *Deliverer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Deliverer{store: store, hostname: hostname, log: log, now: time.Now}
}

// Hostname is the name this deliverer stamps into trace fields.
func (d *Deliverer) Hostname() string { return d.hostname }

// Envelope is one inbound SMTP transaction.
type Envelope struct {
	From       string   // reverse-path; "" is the null sender
	Recipients []string // forward-paths, each local
	// Accounts, when set, are the recipients' accounts as resolved at RCPT
	// time (the SMTP server resolves each to answer 550 or 250); Deliver
	// then skips resolving them again.
	Accounts []int64
	// Trace describes the hop for the Received: field; nil adds none
	// (the caller stamped the message already, or it is generated here).
	Trace *Trace
	// Queue holds outbound entries for the remote recipients of a
	// submission, committed with the local copies (mailstore.Delivery).
	Queue []mailstore.QueueEntry
}

// Resolve maps a recipient address to its local account through the
// store's accounts and aliases. The error wraps mailstore.ErrNoSuchAccount
// for an unknown address.
func (d *Deliverer) Resolve(ctx context.Context, addr string) (mailstore.Account, error) {
	norm, err := mailstore.NormalizeAddress(addr)
	if err != nil {
		return mailstore.Account{}, fmt.Errorf("resolve %q: %w", addr, mailstore.ErrNoSuchAccount)
	}
	acct, err := d.store.ResolveAddress(ctx, norm)
	if err != nil {
		return mailstore.Account{}, fmt.Errorf("resolve %q: %w", norm, err)
	}
	return acct, nil
}

// Stamp prepends the Received: field for this hop.
func (d *Deliverer) Stamp(raw []byte, t Trace, rcpts []string) []byte {
	h := ReceivedHeader(t, d.hostname, rcpts, d.now())
	out := make([]byte, 0, len(h)+len(raw))
	out = append(out, h...)
	return append(out, raw...)
}

// CheckLoop returns ErrLoop when raw carries more Received: fields than
// the hop limit.
func (d *Deliverer) CheckLoop(raw []byte) error {
	max := d.MaxHops
	if max <= 0 {
		max = DefaultMaxHops
	}
	if n := CountReceived(raw); n > max {
		return fmt.Errorf("%w (%d > %d)", ErrLoop, n, max)
	}
	return nil
}

// Deliver stores raw in the INBOX of every account the envelope's
// recipients resolve to, each account once however many of its addresses
// were named, with env.Queue's outbound entries, in ONE store
// transaction: when it returns nil every recipient has the message
// durably; otherwise none does.
func (d *Deliverer) Deliver(ctx context.Context, env Envelope, raw []byte) ([]mailstore.AppendResult, error) {
	if len(env.Recipients) == 0 && len(env.Queue) == 0 {
		return nil, ErrNoRecipients
	}
	if err := d.CheckLoop(raw); err != nil {
		return nil, err
	}
	ids := env.Accounts
	if ids == nil {
		for _, rcpt := range env.Recipients {
			acct, err := d.Resolve(ctx, rcpt)
			if err != nil {
				return nil, err
			}
			ids = append(ids, acct.ID)
		}
	}
	seen := make(map[int64]bool, len(ids))
	targets := make([]mailstore.DeliveryTarget, 0, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		targets = append(targets, mailstore.DeliveryTarget{AccountID: id})
	}
	if env.Trace != nil {
		raw = d.Stamp(raw, *env.Trace, env.Recipients)
	}
	res, err := d.store.Deliver(ctx, mailstore.Delivery{Raw: raw, Recipients: targets, Queue: env.Queue})
	if err != nil {
		return nil, fmt.Errorf("deliver to %d account(s) and %d queue entries: %w", len(targets), len(env.Queue), err)
	}
	d.log.Debug("delivered", "from", env.From, "rcpts", len(env.Recipients), "accounts", len(targets), "size", len(raw))
	return res, nil
}

// FileSent appends raw, flagged \Seen, to the account's \Sent mailbox
// (DESIGN section 4). The store recognises a message already in Sent by
// its Message-ID, so a client's later IMAP APPEND of the same message is
// not stored twice; that de-duplication is the store's, not ours.
func (d *Deliverer) FileSent(ctx context.Context, accountID int64, raw []byte) (mailstore.AppendResult, error) {
	mb, err := d.store.MailboxBySpecialUse(ctx, accountID, mailstore.SpecialSent)
	if err != nil {
		return mailstore.AppendResult{}, fmt.Errorf("file in Sent: find \\Sent of account %d: %w", accountID, err)
	}
	res, err := d.store.Append(ctx, accountID, []mailstore.AppendRequest{{
		MailboxID: mb.ID,
		Raw:       raw,
		Flags:     []string{mailstore.FlagSeen},
	}})
	if err != nil {
		return mailstore.AppendResult{}, fmt.Errorf("file in Sent of account %d: %w", accountID, err)
	}
	if len(res) != 1 {
		return mailstore.AppendResult{}, fmt.Errorf("file in Sent of account %d: store returned %d results", accountID, len(res))
	}
	return res[0], nil
}

// Domain returns the lower-cased domain of an address ("" if none).
func Domain(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
}
