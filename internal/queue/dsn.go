package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/roost-mail/roost/internal/delivery"
	"github.com/roost-mail/roost/internal/mailstore"
)

// DSNRecipient is one recipient's part of a delivery status notification
// (RFC 3464 section 2.3).
type DSNRecipient struct {
	Address string // Final-Recipient
	// ORcpt is the ORCPT parameter given for it (RFC 3461 section 4.2),
	// "addr-type;address", becoming Original-Recipient; "" if none.
	ORcpt string
	// Action is "failed", "delayed", "delivered" or "relayed" (RFC 3464
	// section 2.3.3).
	Action     string
	Status     string // RFC 3463 code, e.g. "5.1.1"
	RemoteMTA  string // host that answered; "" if none
	Diagnostic string // the reply or our reason
	SMTPDiag   bool   // Diagnostic is an SMTP reply ("smtp;" type) rather than text
}

// DSN is the input of BuildDSN.
type DSN struct {
	ReportingMTA string // our hostname
	To           string // the original sender
	Recipients   []DSNRecipient
	Arrival      time.Time // when the message entered the queue
	Date         time.Time
	Delayed      bool      // a warning: the message is still being retried
	RetryUntil   time.Time // for delayed: when we give up
	Original     []byte    // the original message; its header goes in
	// EnvID is the ENVID the message was sent with (RFC 3461 section
	// 4.4), becoming Original-Envelope-Id; "" if none.
	EnvID string
	// Full returns the whole original (message/rfc822) instead of its
	// header (text/rfc822-headers): RET=FULL (RFC 3461 section 4.3).
	Full bool
}

// success reports whether d reports only successes (delivered, relayed).
func (d DSN) success() bool {
	for _, r := range d.Recipients {
		if !isSuccessAction(r.Action) {
			return false
		}
	}
	return len(d.Recipients) > 0
}

func isSuccessAction(a string) bool { return a == "delivered" || a == "relayed" }

// BuildDSN renders a multipart/report delivery status notification (RFC
// 3464 with RFC 6522's multipart/report, report-type=delivery-status): a
// human-readable part, the message/delivery-status part with per-message
// and per-recipient fields, and the original's header as
// text/rfc822-headers (or the whole original as message/rfc822 when
// d.Full). Every value that came from outside (addresses,
// remote replies) is reduced to one printable line so it cannot inject
// fields or MIME structure.
func BuildDSN(d DSN) []byte {
	host := oneLine(d.ReportingMTA, 255)
	if host == "" {
		host = "localhost"
	}
	boundary := "=_roost_" + delivery.NewID() + delivery.NewID()
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	subject := "Undelivered Mail Returned to Sender"
	success := d.success()
	switch {
	case d.Delayed:
		subject = "Delayed Mail (still being retried)"
	case success:
		subject = "Successful Mail Delivery Report"
	}
	w("From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", host)
	w("To: <%s>\r\n", oneLine(d.To, 320))
	w("Subject: %s\r\n", subject)
	w("Date: %s\r\n", d.Date.Format(time.RFC1123Z))
	w("Message-ID: %s\r\n", delivery.NewMessageID(host))
	// RFC 3834 section 5: automatic responses are marked so that other
	// responders do not answer them.
	w("Auto-Submitted: auto-replied\r\n")
	w("MIME-Version: 1.0\r\n")
	w("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n", boundary)
	w("\r\n")
	w("This is a MIME-encapsulated message.\r\n\r\n")

	w("--%s\r\n", boundary)
	w("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	switch {
	case success:
		w("This is the mail system at %s.\r\n\r\nYour message was delivered to the recipients below, or passed on to\r\na mail system that does not report on delivery.\r\n", host)
	case d.Delayed:
		w("This is the mail system at %s.\r\n\r\nYour message could not be delivered yet to the recipients below.\r\nIt is still being retried; you do not need to send it again.\r\n", host)
		if !d.RetryUntil.IsZero() {
			w("Retries continue until %s.\r\n", d.RetryUntil.Format(time.RFC1123Z))
		}
	default:
		w("This is the mail system at %s.\r\n\r\nYour message could not be delivered to the recipients below.\r\n", host)
	}
	w("\r\n")
	for _, r := range d.Recipients {
		note := oneLine(r.Diagnostic, 500)
		if note == "" {
			note = r.Action
		}
		w("<%s>: %s\r\n", oneLine(r.Address, 320), note)
	}
	w("\r\n")

	w("--%s\r\n", boundary)
	w("Content-Type: message/delivery-status\r\n\r\n")
	// RFC 3464 section 2.2: per-message fields.
	// RFC 3464 section 2.2.1: Original-Envelope-Id comes first when the
	// message had an ENVID (RFC 3461 section 4.4).
	if envid := oneLine(d.EnvID, 100); envid != "" {
		w("Original-Envelope-Id: %s\r\n", envid)
	}
	w("Reporting-MTA: dns; %s\r\n", host)
	if !d.Arrival.IsZero() {
		w("Arrival-Date: %s\r\n", d.Arrival.Format(time.RFC1123Z))
	}
	for _, r := range d.Recipients {
		w("\r\n")
		// RFC 3464 section 2.3: per-recipient fields.
		addr := oneLine(r.Address, 320)
		typ := "rfc822"
		if !mailstore.IsASCII(addr) {
			typ = "utf-8" // RFC 6533 section 3
		}
		// RFC 3464 section 2.3.1: the ORCPT parameter, xtext-decoded,
		// as Original-Recipient (RFC 3461 section 6.3).
		if atype, oaddr, ok := strings.Cut(oneLine(r.ORcpt, 500), ";"); ok && strings.TrimSpace(atype) != "" && strings.TrimSpace(oaddr) != "" {
			w("Original-Recipient: %s;%s\r\n", strings.ToLower(strings.TrimSpace(atype)), strings.TrimSpace(oaddr))
		}
		w("Final-Recipient: %s; %s\r\n", typ, addr)
		action := r.Action
		switch action {
		case "delayed", "delivered", "relayed":
		default:
			action = "failed"
		}
		w("Action: %s\r\n", action)
		w("Status: %s\r\n", validStatus(r.Status, action))
		if mta := oneLine(r.RemoteMTA, 255); mta != "" {
			w("Remote-MTA: dns; %s\r\n", mta)
		}
		if diag := oneLine(r.Diagnostic, 500); diag != "" {
			if r.SMTPDiag {
				w("Diagnostic-Code: smtp; %s\r\n", diag)
			} else {
				w("Diagnostic-Code: x-roost; %s\r\n", diag)
			}
		}
		w("Last-Attempt-Date: %s\r\n", d.Date.Format(time.RFC1123Z))
		if action == "delayed" && !d.RetryUntil.IsZero() {
			w("Will-Retry-Until: %s\r\n", d.RetryUntil.Format(time.RFC1123Z))
		}
	}
	w("\r\n")

	w("--%s\r\n", boundary)
	var hs string
	if d.Full {
		// RFC 3461 section 4.3 / RFC 3464 section 2: RET=FULL returns
		// the whole message as message/rfc822 (RFC 6522 section 3).
		w("Content-Type: message/rfc822\r\n\r\n")
		hs = string(d.Original)
	} else {
		// RFC 6522 section 4 / RFC 3462: the third part carries the
		// original's header only.
		w("Content-Type: text/rfc822-headers\r\n\r\n")
		hdr := d.Original[:delivery.HeaderEnd(d.Original)]
		if len(hdr) > 64<<10 {
			hdr = hdr[:64<<10]
		}
		hs = string(hdr)
	}
	// The boundary is random, but a header could still hold a line that
	// looks like one; breaking it keeps the structure intact.
	hs = strings.ReplaceAll(hs, "--"+boundary, "- -"+boundary)
	hs = strings.ReplaceAll(strings.ReplaceAll(hs, "\r\n", "\n"), "\n", "\r\n")
	b.WriteString(hs)
	if !strings.HasSuffix(hs, "\r\n") {
		w("\r\n")
	}
	w("\r\n--%s--\r\n", boundary)
	return []byte(b.String())
}

// validStatus keeps a class.subject.detail code consistent with the action.
func validStatus(s, action string) string {
	parts := strings.Split(s, ".")
	ok := len(parts) == 3
	for _, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			ok = false
		}
	}
	// RFC 3463 section 3.1: class 2 is success, 4 persistent transient
	// failure, 5 permanent failure; the class must fit the action.
	success := isSuccessAction(action)
	if ok && (success && parts[0] == "2" || !success && (parts[0] == "4" || parts[0] == "5")) {
		return s
	}
	switch {
	case success:
		return "2.0.0"
	case action == "delayed":
		return "4.0.0"
	}
	return "5.0.0"
}

// oneLine reduces a value to one line of printable characters.
func oneLine(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if r == '\r' || r == '\n' || r == '\t' {
			r = ' '
		}
		if r < ' ' || r == 0x7f || r == 0xfffd {
			continue
		}
		if b.Len() >= max {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// bouncer sends DSNs into local senders' INBOXes, and success reports
// to remote senders through the queue.
type bouncer struct {
	store    mailstore.Store
	deliver  *delivery.Deliverer
	hostname string
	log      *slog.Logger
	maxAge   time.Duration
}

func (q *Queue) bouncer() *bouncer {
	return &bouncer{store: q.store, deliver: q.deliver, hostname: q.cfg.Hostname, log: q.log, maxAge: q.cfg.MaxAge}
}

// RFC 3461 section 4.1 NOTIFY keywords.
const (
	notifyNever   = "NEVER"
	notifySuccess = "SUCCESS"
	notifyFailure = "FAILURE"
	notifyDelay   = "DELAY"
)

// wants reports whether a recipient's NOTIFY asks for a report of the
// kind keyword (SUCCESS, FAILURE or DELAY). RFC 3461 section 4.1: without
// NOTIFY the MTA behaves as for NOTIFY=FAILURE,DELAY; NEVER asks for none.
func wants(d mailstore.RcptDSN, keyword string) bool {
	if len(d.Notify) == 0 {
		return keyword == notifyFailure || keyword == notifyDelay
	}
	for _, n := range d.Notify {
		if strings.EqualFold(n, keyword) {
			return true
		}
	}
	return false
}

// rcptDSN is the DSN parameters of e's i-th recipient.
func rcptDSN(e mailstore.QueueEntry, i int) mailstore.RcptDSN {
	if len(e.RcptDSN) == len(e.Recipients) && i < len(e.RcptDSN) {
		return e.RcptDSN[i]
	}
	return mailstore.RcptDSN{}
}

// notifyKeyword is the NOTIFY keyword asking for a report with action.
func notifyKeyword(action string) string {
	switch action {
	case "delayed":
		return notifyDelay
	case "delivered", "relayed":
		return notifySuccess
	}
	return notifyFailure
}

// bounce tells e's sender about rs, each recipient's report with action
// ("failed", "delayed" or "relayed"), leaving out recipients whose NOTIFY
// does not ask for it (RFC 3461 section 5). Never a report for a bounce
// (RFC 5321 section 6.1 / RFC 3461 section 5.1: no DSN for a null
// reverse-path). A failure or delay report to a sender that is not a
// local account is dropped (the queue only holds submitted mail, and
// backscatter to forged senders is worse than a log line); a success
// report was asked for, and goes to a remote sender through the queue.
func (b *bouncer) bounce(ctx context.Context, e mailstore.QueueEntry, rs []rcptResult, action string, now time.Time) error {
	keyword := notifyKeyword(action)
	var wanted []rcptResult
	for _, r := range rs {
		if wants(r.dsn, keyword) {
			wanted = append(wanted, r)
		}
	}
	if len(wanted) == 0 {
		if len(rs) > 0 {
			b.log.Info("no DSN asked for", "entry", e.ID, "action", action, "rcpts", len(rs))
		}
		return nil
	}
	if e.From == "" {
		b.log.Info("not bouncing a bounce", "entry", e.ID, "rcpts", len(wanted))
		return nil
	}
	local, err := senderIsLocal(ctx, b.deliver, e.From)
	if err != nil {
		return err
	}
	if !local && keyword != notifySuccess {
		b.log.Warn("sender is not local; DSN dropped", "entry", e.ID, "from", e.From, "rcpts", len(wanted))
		return nil
	}
	raw, err := b.store.ReadBlob(ctx, e.BlobID)
	if err != nil {
		return fmt.Errorf("read original: %w", err)
	}
	d := DSN{ReportingMTA: b.hostname, To: e.From, Arrival: e.Created, Date: now, Delayed: action == "delayed", Original: raw,
		EnvID: e.EnvID, Full: returnFull(e.Ret, action)}
	if d.Delayed && b.maxAge > 0 {
		d.RetryUntil = e.Created.Add(b.maxAge)
	}
	for _, r := range wanted {
		status := r.status
		if keyword == notifySuccess {
			status = "2.0.0" // RFC 3463 X.0.0: success, nothing more to say
		}
		d.Recipients = append(d.Recipients, DSNRecipient{Address: r.rcpt, ORcpt: r.dsn.ORcpt, Action: action, Status: status,
			RemoteMTA: r.remoteMTA, Diagnostic: r.diag, SMTPDiag: r.smtpDiag})
	}
	return sendReport(ctx, b.store, b.deliver, e.From, local, BuildDSN(d), now)
}

// returnFull decides the returned content of a report (RFC 3461 section
// 4.3): RET=FULL returns the whole message, RET=HDRS its header. RET
// applies only to reports of a failure; one without a failure returns
// the header only ("SHOULD"). Without RET the choice is the MTA's: the
// header only, as before DSN support (the sender has the message, and a
// full copy of a large one is a burden on the sender's mailbox).
func returnFull(ret, action string) bool {
	return action == "failed" && strings.EqualFold(ret, "FULL")
}

// senderIsLocal reports whether a reverse-path is an address of an
// account here (its reports go straight into that INBOX).
func senderIsLocal(ctx context.Context, d *delivery.Deliverer, from string) (bool, error) {
	if _, err := d.Resolve(ctx, from); err != nil {
		if errors.Is(err, mailstore.ErrNoSuchAccount) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// sendReport delivers a DSN to its recipient: into the INBOX of a local
// sender, or, for a remote one, through the queue with a null
// reverse-path and no DSN parameters (RFC 3461 section 6.2: a DSN is sent
// with a null reverse-path, and asks for no DSN itself, so that reports
// never loop).
func sendReport(ctx context.Context, store mailstore.Store, d *delivery.Deliverer, to string, local bool, msg []byte, now time.Time) error {
	if local {
		if _, err := d.Deliver(ctx, delivery.Envelope{From: "", Recipients: []string{to}}, msg); err != nil {
			return fmt.Errorf("deliver DSN to %s: %w", to, err)
		}
		return nil
	}
	if _, err := enqueue(ctx, store, "", []string{to}, msg, 0, now); err != nil {
		return fmt.Errorf("queue DSN to %s: %w", to, err)
	}
	return nil
}

// NotifyDelivered sends the "delivered" DSN (RFC 3461 section 5.2.2: a
// final delivery to a recipient whose NOTIFY has SUCCESS) for a message
// delivered here to env's recipients, all local. Recipients that did not
// ask are left out; nothing is sent when none asked, or for a null
// reverse-path. The report goes into a local sender's INBOX, or through
// the queue to a remote one.
func NotifyDelivered(ctx context.Context, store mailstore.Store, hostname string, env Envelope, raw []byte, now time.Time, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if env.From == "" || len(env.RcptDSN) != len(env.Recipients) {
		return nil
	}
	d := DSN{ReportingMTA: hostname, To: env.From, Arrival: now, Date: now, Original: raw, EnvID: env.EnvID}
	for i, r := range env.Recipients {
		rd := env.RcptDSN[i]
		if !wants(rd, notifySuccess) {
			continue
		}
		d.Recipients = append(d.Recipients, DSNRecipient{Address: r, ORcpt: rd.ORcpt, Action: "delivered", Status: "2.0.0"})
	}
	if len(d.Recipients) == 0 {
		return nil
	}
	deliver := delivery.New(store, hostname, log)
	local, err := senderIsLocal(ctx, deliver, env.From)
	if err != nil {
		return fmt.Errorf("queue: success DSN: %w", err)
	}
	if err := sendReport(ctx, store, deliver, env.From, local, BuildDSN(d), now); err != nil {
		return fmt.Errorf("queue: success DSN: %w", err)
	}
	log.Info("success DSN sent", "to", env.From, "rcpts", len(d.Recipients))
	return nil
}
