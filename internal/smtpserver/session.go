package smtpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/roost-mail/roost/internal/delivery"
	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/queue"
)

type backend struct{ s *Server }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, conn: c, id: delivery.NewID()}, nil
}

// session is one SMTP connection's state between EHLO (or STARTTLS) and
// QUIT. go-smtp calls its methods from the connection's goroutine (BDAT
// runs Data in another goroutine, but never concurrently with Mail/Rcpt).
type session struct {
	s    *Server
	conn *smtp.Conn
	id   string

	account *mailstore.Account // authenticated submitter (submission)

	// inMail is true from an accepted MAIL to the end of its transaction
	// (DATA, RSET, EHLO, STARTTLS: go-smtp calls Reset for each), exactly
	// when go-smtp's own transaction is open.
	inMail      bool
	smtputf8    bool // the open transaction's MAIL named SMTPUTF8 (RFC 6531)
	from        string
	local       []string // local recipients
	accounts    []int64  // their accounts, resolved at RCPT
	remote      []string // remote recipients (submission only)
	transaction int

	// RFC 3461 DSN parameters: RET and ENVID of the transaction, NOTIFY
	// and ORCPT of each recipient (aligned with local and remote).
	ret, envID string
	localDSN   []mailstore.RcptDSN
	remoteDSN  []mailstore.RcptDSN
}

func (ss *session) ctx() (context.Context, context.CancelFunc) {
	// Bounded so a wedged store cannot hold a connection forever; the
	// client's own timeout for the final reply is 10 minutes (RFC 5321
	// section 4.5.3.2.6).
	return context.WithTimeout(context.Background(), 5*time.Minute)
}

func (ss *session) Reset() {
	ss.inMail = false
	ss.smtputf8 = false
	ss.from = ""
	ss.local = nil
	ss.accounts = nil
	ss.remote = nil
	ss.ret, ss.envID = "", ""
	ss.localDSN, ss.remoteDSN = nil, nil
}

func (ss *session) Logout() error { return nil }

// Mail starts a transaction. Every refusal returns before the state is
// touched: after a refused MAIL the server "MUST stay in the same state"
// (RFC 5321 section 3.3), and go-smtp keeps its own transaction (the
// earlier MAIL and its recipients) when Mail fails, so a reset here would
// let DATA run with a sender and recipients the client never had
// accepted together.
func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	smtputf8 := opts != nil && opts.UTF8
	if !smtputf8 && !mailstore.IsASCII(from) {
		// RFC 6531 section 3.4: UTF-8 in the envelope only after MAIL
		// has named SMTPUTF8.
		return errNeedsSMTPUTF8
	}
	if ss.s.cfg.Submission {
		if ss.account == nil {
			return errAuthRequired
		}
		// RFC 6409 section 6.1: the MSA may refuse a reverse-path the
		// authenticated user is not entitled to use.
		if from == "" {
			return errSenderNotOwned
		}
		ctx, cancel := ss.ctx()
		defer cancel()
		if err := ss.ownsAddress(ctx, from); err != nil {
			return reply(ss.s.log, err)
		}
	}
	if ss.inMail {
		// RFC 5321 section 4.1.4: MAIL "MUST NOT be sent if a mail
		// transaction is already open" (503, section 4.3.2). Accepting it
		// would leave the two states apart: go-smtp keeps the earlier
		// recipients across an accepted MAIL, where section 4.1.1.2 has
		// MAIL clear them.
		return errNestedMail
	}
	ss.Reset()
	ss.inMail = true
	ss.smtputf8 = smtputf8
	ss.from = from
	if opts != nil {
		// go-smtp has checked RET's value and ENVID's xtext (RFC 3461
		// sections 4.3, 4.4) and answered 501 to bad ones.
		ss.ret, ss.envID = string(opts.Return), opts.EnvelopeID
	}
	return nil
}

// ownsAddress checks that addr is the account's own address or one of its
// aliases.
func (ss *session) ownsAddress(ctx context.Context, addr string) error {
	acct, err := ss.s.deliver.Resolve(ctx, addr)
	if errors.Is(err, mailstore.ErrNoSuchAccount) {
		return errSenderNotOwned
	}
	if err != nil {
		return err
	}
	if acct.ID != ss.account.ID {
		return errSenderNotOwned
	}
	return nil
}

func (ss *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if !ss.smtputf8 && !mailstore.IsASCII(to) {
		return errNeedsSMTPUTF8 // RFC 6531 section 3.4, as in Mail
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	addr, err := mailstore.NormalizeAddress(to)
	if err != nil {
		return errBadAddress
	}
	dsn := rcptDSN(opts)
	// Accounts and aliases exist only in served domains, so an address
	// that resolves is local; the domain list is read only for one that
	// does not (an unknown user, or another domain).
	acct, err := ss.s.deliver.Resolve(ctx, addr)
	if err == nil {
		// A full mailbox refuses its own RCPT only, with 452 4.2.2, so the
		// message still reaches the other recipients and the client
		// retries this one later (RFC 5321 section 3.3: each RCPT has its
		// own reply). Accepting it would fail the whole message at DATA,
		// as Store.Deliver is all or nothing. Deliver stays so: an account
		// that fills between RCPT and DATA still fails the whole message
		// (552 5.2.2), which loses nothing, since the client keeps the
		// message, and no resend can duplicate copies already stored.
		if acct.Full() {
			return errMailboxFull
		}
		ss.local = append(ss.local, addr)
		ss.accounts = append(ss.accounts, acct.ID)
		ss.localDSN = append(ss.localDSN, dsn)
		return nil
	}
	if !errors.Is(err, mailstore.ErrNoSuchAccount) {
		return reply(ss.s.log, err)
	}
	served, serr := ss.servedDomain(ctx, delivery.Domain(addr))
	if serr != nil {
		return reply(ss.s.log, serr)
	}
	if served && ss.s.cfg.Postmaster != "" && strings.EqualFold(localPart(addr), "postmaster") {
		// RFC 5321 section 4.5.1: every served domain has a postmaster
		// ("a case-insensitive local name"); one without its own goes to
		// the configured one.
		pm, perr := ss.s.deliver.Resolve(ctx, ss.s.cfg.Postmaster)
		if perr != nil {
			ss.s.log.Error("configured postmaster does not resolve", "postmaster", ss.s.cfg.Postmaster, "err", perr)
			return reply(ss.s.log, err)
		}
		if pm.Full() { // as for an account's own address above
			return errMailboxFull
		}
		ss.local = append(ss.local, addr)
		ss.accounts = append(ss.accounts, pm.ID)
		ss.localDSN = append(ss.localDSN, dsn)
		return nil
	}
	if served {
		// RFC 5321 section 3.6.2 / 4.2.2: 550 for a mailbox we do not have.
		return reply(ss.s.log, err)
	}
	// RFC 5321 section 3.6.2 and 7.1: relay only for authenticated
	// submitters; an MX serves its own domains only.
	if !ss.s.cfg.Submission || ss.account == nil || ss.s.queue == nil {
		return errRelayDenied
	}
	ss.remote = append(ss.remote, addr)
	ss.remoteDSN = append(ss.remoteDSN, dsn)
	return nil
}

// rcptDSN is a RCPT's NOTIFY and ORCPT (RFC 3461 sections 4.1, 4.2),
// which go-smtp has parsed and checked (501 for a bad combination or
// xtext), in the store's form.
func rcptDSN(opts *smtp.RcptOptions) mailstore.RcptDSN {
	var d mailstore.RcptDSN
	if opts == nil {
		return d
	}
	for _, n := range opts.Notify {
		d.Notify = append(d.Notify, strings.ToUpper(string(n)))
	}
	if opts.OriginalRecipient != "" {
		d.ORcpt = strings.ToLower(string(opts.OriginalRecipientType)) + ";" + opts.OriginalRecipient
	}
	return d
}

// dsnOrNil is ds, or nil when no recipient gave a DSN parameter (the
// queue entry then records none).
func dsnOrNil(ds []mailstore.RcptDSN) []mailstore.RcptDSN {
	for _, d := range ds {
		if len(d.Notify) > 0 || d.ORcpt != "" {
			return ds
		}
	}
	return nil
}

// envelope is the transaction's envelope for the queue package: its
// sender, the given recipients and their DSN parameters.
func (ss *session) envelope(rcpts []string, dsn []mailstore.RcptDSN) queue.Envelope {
	return queue.Envelope{From: ss.from, Recipients: rcpts, RcptDSN: dsnOrNil(dsn), Ret: ss.ret, EnvID: ss.envID}
}

// notifyDelivered sends the "delivered" DSN for local recipients that
// asked for one (RFC 3461 section 5.2.2). The message is accepted
// already: a failure is logged, not answered.
func (ss *session) notifyDelivered(ctx context.Context, raw []byte) {
	env := ss.envelope(ss.local, ss.localDSN)
	if env.RcptDSN == nil {
		return
	}
	if err := queue.NotifyDelivered(ctx, ss.s.store, ss.s.cfg.Hostname, env, raw, time.Now(), ss.s.log); err != nil {
		ss.s.log.Error("success DSN failed; message accepted", "session", ss.id, "err", err)
	}
}

func (ss *session) servedDomain(ctx context.Context, domain string) (bool, error) {
	if domain == "" {
		return false, nil
	}
	domains, err := ss.s.store.ListDomains(ctx)
	if err != nil {
		return false, fmt.Errorf("list domains: %w", err)
	}
	for _, d := range domains {
		if strings.EqualFold(d.Name, domain) {
			return true, nil
		}
	}
	return false, nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		// go-smtp's size limit and aborted transfers arrive as errors
		// here; reply maps them.
		return reply(ss.s.log, err)
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	if ss.s.cfg.Submission {
		return reply(ss.s.log, ss.submit(ctx, raw))
	}
	_, err = ss.s.deliver.Deliver(ctx, delivery.Envelope{
		From: ss.from, Recipients: ss.local, Accounts: ss.accounts, Trace: ss.trace(),
	}, raw)
	if err == nil {
		// No success report here: the MX does not offer DSN (server.go).
		ss.s.log.Info("delivered", "session", ss.id, "from", ss.from, "rcpts", len(ss.local), "size", len(raw))
	}
	return reply(ss.s.log, err)
}

// submit handles a submitted message: completes its header, checks the
// From: field, delivers the local copies and queues the remote ones in
// one store transaction (all recipients or none: a client resending after
// a failure never duplicates a copy), then files the Sent copy, which is
// logged but does not fail an accepted message.
func (ss *session) submit(ctx context.Context, raw []byte) error {
	if err := ss.s.deliver.CheckLoop(raw); err != nil {
		return err
	}
	raw = delivery.CompleteSubmission(raw, ss.s.cfg.Hostname, time.Now())
	froms, ok := delivery.FromAddresses(raw)
	if !ok {
		return errNoFrom
	}
	for _, f := range froms {
		if err := ss.ownsAddress(ctx, f); err != nil {
			return err
		}
	}
	all := append(append([]string(nil), ss.local...), ss.remote...)
	stamped := ss.s.deliver.Stamp(raw, *ss.trace(), all)
	env := delivery.Envelope{From: ss.from, Recipients: ss.local, Accounts: ss.accounts}
	if len(ss.remote) > 0 {
		entries, err := ss.s.queue.EnvelopeEntries(ss.envelope(ss.remote, ss.remoteDSN), int64(len(stamped)), ss.account.ID)
		if err != nil {
			return err
		}
		env.Queue = entries
	}
	if _, err := ss.s.deliver.Deliver(ctx, env, stamped); err != nil {
		return err
	}
	if len(ss.remote) > 0 {
		ss.s.queue.Wake()
	}
	ss.notifyDelivered(ctx, stamped)
	ss.s.log.Info("submitted", "session", ss.id, "account", ss.account.Name, "local", len(ss.local), "remote", len(ss.remote), "size", len(raw))
	if ss.s.cfg.SaveSent {
		if _, err := ss.s.deliver.FileSent(ctx, ss.account.ID, raw); err != nil {
			ss.s.log.Error("filing in Sent failed; message accepted", "session", ss.id, "account", ss.account.Name, "err", err)
		}
	}
	return nil
}

// trace describes this hop for the Received: field.
func (ss *session) trace() *delivery.Trace {
	t := &delivery.Trace{
		Helo:     ss.conn.Hostname(),
		RemoteIP: remoteIP(ss.conn.Conn().RemoteAddr()),
		// RFC 5321 section 4.4: the id is an Atom (no dots).
		ID: fmt.Sprintf("%s%02x", ss.id, ss.transaction),
	}
	ss.transaction++
	// RFC 3848: ESMTP, plus S for TLS and A for an authenticated client.
	t.Protocol = "ESMTP"
	state, isTLS := ss.conn.TLSConnectionState()
	if isTLS {
		t.Protocol += "S"
		t.TLS = tls.VersionName(state.Version) + " " + tls.CipherSuiteName(state.CipherSuite)
	}
	if ss.account != nil {
		t.Protocol += "A"
	}
	return t
}

// localPart is the part of an address before its last "@".
func localPart(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[:i]
	}
	return addr
}
