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
	Address    string // Final-Recipient
	Action     string // "failed" or "delayed" (RFC 3464 section 2.3.3)
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
}

// BuildDSN renders a multipart/report delivery status notification (RFC
// 3464 with RFC 6522's multipart/report, report-type=delivery-status): a
// human-readable part, the message/delivery-status part with per-message
// and per-recipient fields, and the original's header as
// text/rfc822-headers. Every value that came from outside (addresses,
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
	if d.Delayed {
		subject = "Delayed Mail (still being retried)"
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
	if d.Delayed {
		w("This is the mail system at %s.\r\n\r\nYour message could not be delivered yet to the recipients below.\r\nIt is still being retried; you do not need to send it again.\r\n", host)
		if !d.RetryUntil.IsZero() {
			w("Retries continue until %s.\r\n", d.RetryUntil.Format(time.RFC1123Z))
		}
	} else {
		w("This is the mail system at %s.\r\n\r\nYour message could not be delivered to the recipients below.\r\n", host)
	}
	w("\r\n")
	for _, r := range d.Recipients {
		w("<%s>: %s\r\n", oneLine(r.Address, 320), oneLine(r.Diagnostic, 500))
	}
	w("\r\n")

	w("--%s\r\n", boundary)
	w("Content-Type: message/delivery-status\r\n\r\n")
	// RFC 3464 section 2.2: per-message fields.
	w("Reporting-MTA: dns; %s\r\n", host)
	if !d.Arrival.IsZero() {
		w("Arrival-Date: %s\r\n", d.Arrival.Format(time.RFC1123Z))
	}
	for _, r := range d.Recipients {
		w("\r\n")
		// RFC 3464 section 2.3: per-recipient fields.
		addr := oneLine(r.Address, 320)
		typ := "rfc822"
		if !isASCII(addr) {
			typ = "utf-8" // RFC 6533 section 3
		}
		w("Final-Recipient: %s; %s\r\n", typ, addr)
		action := r.Action
		if action != "delayed" {
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
	// RFC 6522 section 4 / RFC 3462: the third part carries the
	// original's header only.
	w("Content-Type: text/rfc822-headers\r\n\r\n")
	hdr := d.Original[:delivery.HeaderEnd(d.Original)]
	if len(hdr) > 64<<10 {
		hdr = hdr[:64<<10]
	}
	hs := string(hdr)
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
	if ok && (parts[0] == "4" || parts[0] == "5") {
		return s
	}
	if action == "delayed" {
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

// bouncer sends DSNs into local senders' INBOXes.
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

// bounce tells e's sender about rs. Never a bounce for a bounce (RFC 5321
// section 6.1 / RFC 3464 section 1: no DSN for a null reverse-path); a
// sender that is not a local account is not bounced to (the queue only
// holds submitted mail, and backscatter to forged senders is worse than a
// log line).
func (b *bouncer) bounce(ctx context.Context, e mailstore.QueueEntry, rs []rcptResult, delayed bool, now time.Time) error {
	if e.From == "" {
		b.log.Info("not bouncing a bounce", "entry", e.ID, "rcpts", len(rs))
		return nil
	}
	if _, err := b.deliver.Resolve(ctx, e.From); err != nil {
		if errors.Is(err, mailstore.ErrNoSuchAccount) {
			b.log.Warn("sender is not local; DSN dropped", "entry", e.ID, "from", e.From, "rcpts", len(rs))
			return nil
		}
		return err
	}
	raw, err := b.store.ReadBlob(ctx, e.BlobID)
	if err != nil {
		return fmt.Errorf("read original: %w", err)
	}
	d := DSN{ReportingMTA: b.hostname, To: e.From, Arrival: e.Created, Date: now, Delayed: delayed, Original: raw}
	if delayed && b.maxAge > 0 {
		d.RetryUntil = e.Created.Add(b.maxAge)
	}
	for _, r := range rs {
		action := "failed"
		if delayed {
			action = "delayed"
		}
		d.Recipients = append(d.Recipients, DSNRecipient{Address: r.rcpt, Action: action, Status: r.status, RemoteMTA: r.remoteMTA, Diagnostic: r.diag, SMTPDiag: r.smtpDiag})
	}
	msg := BuildDSN(d)
	if _, err := b.deliver.Deliver(ctx, delivery.Envelope{From: "", Recipients: []string{e.From}}, msg); err != nil {
		return fmt.Errorf("deliver DSN to %s: %w", e.From, err)
	}
	return nil
}
