package queue

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/roost-mail/roost/internal/delivery"
	"github.com/roost-mail/roost/internal/mailstore"
)

// limitServer is a remote MX that takes one recipient per transaction and
// answers 552 to the next ones, as servers following RFC 821's reply
// table do for "too many recipients"; it records who it delivered to.
// With tooBig it refuses every message at the end of DATA with 552.
type limitServer struct {
	addr   string
	tooBig bool

	mu        sync.Mutex
	delivered []string
}

func startLimitServer(t *testing.T, tooBig bool) *limitServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ls := &limitServer{addr: ln.Addr().String(), tooBig: tooBig}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &limitSession{s: ls}, nil }))
	srv.Domain = "limit.test"
	srv.ErrorLog = slogPrinter{}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ls
}

func (ls *limitServer) rcpts() []string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return append([]string(nil), ls.delivered...)
}

type limitSession struct {
	s     *limitServer
	rcpts []string
}

func (ss *limitSession) Reset()                               { ss.rcpts = nil }
func (ss *limitSession) Logout() error                        { return nil }
func (ss *limitSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *limitSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if len(ss.rcpts) >= 1 {
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 5, 3}, Message: "Too many recipients"}
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}
func (ss *limitSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if ss.s.tooBig {
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message too big"}
	}
	ss.s.mu.Lock()
	ss.s.delivered = append(ss.s.delivered, ss.rcpts...)
	ss.s.mu.Unlock()
	return nil
}

// A remote that answers RCPT with 552 "too many recipients" takes the
// rest of the recipients later: the sender must not get a bounce for
// them, and they wait in the queue for the next attempt.
func TestRcpt552TooManyRecipientsIsRetried(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	ls := startLimitServer(t, false)
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": ls.addr}, RetryBase: time.Hour}, testLogger())
	runQueue(t, q)
	ctx := context.Background()
	if err := q.Enqueue(ctx, "alice@x.test", []string{"a@remote.test", "b@remote.test"}, []byte(testMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	// The attempt has ended when the queue holds one counted entry (a
	// requeue adds the new entry before removing the old) or none.
	var es []mailstore.QueueEntry
	waitFor(t, "the first attempt", func() bool {
		es, _ = st.ListQueue(ctx)
		return len(es) == 0 || len(es) == 1 && es[0].Attempts >= 1
	})
	if n := len(inbox(t, st, alice)); n != 0 {
		t.Fatalf("sender got %d bounce(s) after a 552 \"too many recipients\" to RCPT", n)
	}
	if got := strings.Join(ls.rcpts(), ","); got != "a@remote.test" {
		t.Fatalf("remote delivered to %q, want a@remote.test", got)
	}
	if len(es) != 1 || strings.Join(es[0].Recipients, ",") != "b@remote.test" {
		t.Fatalf("queue holds %+v, want b@remote.test waiting", es)
	}
	if !strings.Contains(es[0].LastError, "552") {
		t.Fatalf("last error %q does not show the remote's 552", es[0].LastError)
	}
}

// A 552 to DATA's end ("message too big") is still permanent: the sender
// learns at once that the message was refused.
func TestData552Bounces(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	ls := startLimitServer(t, true)
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": ls.addr}, RetryBase: time.Hour}, testLogger())
	runQueue(t, q)
	if err := q.Enqueue(context.Background(), "alice@x.test", []string{"bob@remote.test"}, []byte(testMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "empty queue", func() bool { return queueLen(t, st) == 0 })
	msgs := inbox(t, st, alice)
	if len(msgs) != 1 {
		t.Fatalf("sender got %d messages, want one bounce", len(msgs))
	}
	if r := parseDSN(t, msgs[0]).perRcpt[0]; r.Get("Action") != "failed" || r.Get("Status") != "5.3.4" || !strings.HasPrefix(r.Get("Diagnostic-Code"), "smtp; 552") {
		t.Fatalf("DSN recipient: %v", r)
	}
}

// When the bounce for a permanent failure cannot be stored (here the
// sender's mailbox is full), the failed recipient stays queued instead of
// vanishing; once there is room, the next attempt delivers the bounce,
// exactly once, and the recipient that was delivered is not sent again.
func TestBounceKeptUntilStored(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	ctx := context.Background()
	if err := st.SetQuota(ctx, "alice@x.test", 0, 1); err != nil {
		t.Fatal(err)
	}
	q0 := New(st, Config{Hostname: "mx.x.test"}, testLogger())
	if _, err := q0.deliver.Deliver(ctx, delivery.Envelope{From: "s@r.test", Recipients: []string{"alice@x.test"}}, []byte(testMsg)); err != nil {
		t.Fatal(err)
	}
	sk := startSink(t, "")
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": sk.addr}, RetryBase: time.Hour, WarnAfter: -1}, testLogger())
	runQueue(t, q)
	if err := q.Enqueue(ctx, "alice@x.test", []string{"reject@remote.test", "bob@remote.test"}, []byte(testMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	var es []mailstore.QueueEntry
	waitFor(t, "the first attempt", func() bool {
		es, _ = st.ListQueue(ctx)
		return len(es) == 0 || len(es) == 1 && es[0].Attempts >= 1
	})
	if len(es) != 1 || strings.Join(es[0].Recipients, ",") != "reject@remote.test" {
		t.Fatalf("bounce could not be stored and the entry is gone: queue %+v", es)
	}
	if !strings.Contains(es[0].LastError, "failure report") || !strings.Contains(es[0].LastError, "over quota") {
		t.Fatalf("last error %q does not say why the bounce failed", es[0].LastError)
	}
	if n := len(inbox(t, st, alice)); n != 1 {
		t.Fatalf("INBOX holds %d messages, want only the one filling it", n)
	}

	if err := st.SetQuota(ctx, "alice@x.test", 0, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Retry(ctx, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "empty queue", func() bool { return queueLen(t, st) == 0 })
	if m := sk.messages(); len(m) != 1 || strings.Join(m[0].Rcpts, ",") != "bob@remote.test" {
		t.Fatalf("remote got %+v, want one message for bob@remote.test", m)
	}
	msgs := inbox(t, st, alice)
	if len(msgs) != 2 {
		t.Fatalf("INBOX holds %d messages, want the first and one bounce", len(msgs))
	}
	if r := parseDSN(t, msgs[1]).perRcpt[0]; r.Get("Final-Recipient") != "rfc822; reject@remote.test" || r.Get("Status") != "5.1.1" {
		t.Fatalf("DSN recipient: %v", r)
	}
}

// The bounce for a message that waited too long explains the expiry; its
// Diagnostic-Code must not claim to be an SMTP reply (RFC 3464 section
// 2.3.6), which "delivery time expired; ..." is not.
func TestExpiryDiagnosticIsNotSMTP(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	sk := startSink(t, "")
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": sk.addr},
		RetryBase: 100 * time.Millisecond, RetryMax: 100 * time.Millisecond, WarnAfter: -1, MaxAge: 500 * time.Millisecond}, testLogger())
	runQueue(t, q)
	if err := q.Enqueue(context.Background(), "alice@x.test", []string{"defer@remote.test"}, []byte(testMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "expiry", func() bool { return queueLen(t, st) == 0 })
	msgs := inbox(t, st, alice)
	if len(msgs) != 1 {
		t.Fatalf("sender got %d messages, want one bounce", len(msgs))
	}
	r := parseDSN(t, msgs[0]).perRcpt[0]
	diag := r.Get("Diagnostic-Code")
	if r.Get("Status") != "5.4.7" || strings.HasPrefix(strings.ToLower(diag), "smtp;") || !strings.Contains(diag, "451") {
		t.Fatalf("expiry DSN recipient: %v", r)
	}
}
