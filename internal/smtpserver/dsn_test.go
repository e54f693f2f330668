package smtpserver

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/queue"
)

// These tests cover the DSN extension (RFC 3461) at the SMTP server: the
// parameters are accepted, stored with the queue entries, and a local
// delivery that asked for NOTIFY=SUCCESS is reported. How the queue
// honours them is tested in internal/queue.

func authPlain(w *wire, user string) {
	w.t.Helper()
	w.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+testPassword)), "235 ")
}

func TestDSNAdvertised(t *testing.T) {
	e := newEnv(t)
	q := queue.New(e.store, queue.Config{Hostname: "mx.x.test"}, testLogger(t))
	_, mx := e.start(t, nil, Config{}, false)
	_, sub := e.start(t, q, Config{Submission: true}, false)
	for _, c := range []struct {
		addr string
		want bool
	}{{sub, true}, {mx, false}} {
		w := dialWire(t, c.addr)
		ehlo := w.cmd("EHLO client.test", "250 ")
		has := slices.Contains(strings.Split(ehlo, "\n"), "250-DSN") || strings.HasSuffix(ehlo, "250 DSN")
		if has != c.want {
			t.Errorf("EHLO lists DSN: %v, want %v: %q", has, c.want, ehlo)
		}
	}
}

// TestDSNParametersQueued: a submission's RET/ENVID and NOTIFY/ORCPT end up
// in the queue entries with their recipients; a local recipient that asked
// for SUCCESS gets the sender a "delivered" report.
func TestDSNParametersQueued(t *testing.T) {
	e := newEnv(t)
	q := queue.New(e.store, queue.Config{Hostname: "mx.x.test"}, testLogger(t)) // not running: entries stay
	_, addr := e.start(t, q, Config{Submission: true}, false)
	w := dialWire(t, addr)
	w.cmd("EHLO client.test", "250 ")
	authPlain(w, "alice@x.test")
	w.cmd("MAIL FROM:<alice@x.test> RET=FULL ENVID=QQ+2B314", "250 ")
	w.cmd("RCPT TO:<a@one.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b", "250 ")
	w.cmd("RCPT TO:<b@one.test>", "250 ")
	w.cmd("RCPT TO:<c@two.test> NOTIFY=NEVER", "250 ")
	w.cmd("RCPT TO:<bob@x.test> notify=success ORCPT=rfc822;Bobby@x.test", "250 ")
	w.deliver(msg("alice@x.test", "a@one.test", "dsn-sub"))

	es, err := e.store.ListQueue(context.Background())
	if err != nil || len(es) != 2 {
		t.Fatalf("queue %+v, %v", es, err)
	}
	byDomain := map[string]mailstore.QueueEntry{}
	for _, en := range es {
		byDomain[en.Domain] = en
		if en.Ret != "FULL" || en.EnvID != "QQ+314" {
			t.Errorf("entry %d: Ret %q EnvID %q", en.ID, en.Ret, en.EnvID)
		}
	}
	one, two := byDomain["one.test"], byDomain["two.test"]
	if !slices.Equal(one.Recipients, []string{"a@one.test", "b@one.test"}) || len(one.RcptDSN) != 2 ||
		!slices.Equal(one.RcptDSN[0].Notify, []string{"SUCCESS", "FAILURE"}) || one.RcptDSN[0].ORcpt != "rfc822;a@b" ||
		one.RcptDSN[1].Notify != nil || one.RcptDSN[1].ORcpt != "" {
		t.Fatalf("one.test entry %+v", one)
	}
	if !slices.Equal(two.Recipients, []string{"c@two.test"}) || len(two.RcptDSN) != 1 || !slices.Equal(two.RcptDSN[0].Notify, []string{"NEVER"}) {
		t.Fatalf("two.test entry %+v", two)
	}
	// Bob got the message; Alice got the "delivered" report for him.
	if n := len(e.mailbox(t, e.bob, "")); n != 1 {
		t.Fatalf("bob has %d messages", n)
	}
	reports := e.mailbox(t, e.alice, "")
	if len(reports) != 1 {
		t.Fatalf("alice has %d messages, want the success report", len(reports))
	}
	r := string(reports[0])
	for _, want := range []string{"report-type=delivery-status", "Original-Envelope-Id: QQ+314", "Original-Recipient: rfc822;Bobby@x.test",
		"Final-Recipient: rfc822; bob@x.test", "Action: delivered", "Status: 2.0.0", "Content-Type: text/rfc822-headers"} {
		if !strings.Contains(r, want) {
			t.Errorf("report lacks %q:\n%s", want, r)
		}
	}
	if strings.Contains(r, "Hello.") {
		t.Errorf("a success report returned the body (RFC 3461 section 4.3: headers only):\n%s", r)
	}
}

// TestMXNoDSN: the MX does not offer DSN (backscatter: server.go), so it
// refuses the parameters with 504 (RFC 3461 section 4: they need the
// extension), delivers the message and reports nothing.
func TestMXNoDSN(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{}, false)
	w := dialWire(t, addr)
	w.cmd("EHLO client.test", "250 ")
	w.cmd("MAIL FROM:<sender@remote.test> RET=FULL", "504 ")
	w.cmd("MAIL FROM:<sender@remote.test>", "250 ")
	w.cmd("RCPT TO:<bob@x.test> NOTIFY=SUCCESS", "504 ")
	w.cmd("RCPT TO:<bob@x.test>", "250 ")
	w.deliver(msg("sender@remote.test", "bob@x.test", "mx-no-dsn"))
	if n := len(e.mailbox(t, e.bob, "")); n != 1 {
		t.Fatalf("bob has %d messages, want 1", n)
	}
	if es, _ := e.store.ListQueue(context.Background()); len(es) != 0 {
		t.Fatalf("the MX queued %+v", es)
	}
}

// TestDSNBadParameters: go-smtp refuses a bad RET, a malformed ENVID or
// ORCPT and an invalid NOTIFY combination with 501 (RFC 3461 sections
// 4.1-4.4); the session goes on and delivers.
func TestDSNBadParameters(t *testing.T) {
	e := newEnv(t)
	q := queue.New(e.store, queue.Config{Hostname: "mx.x.test"}, testLogger(t)) // not running
	_, addr := e.start(t, q, Config{Submission: true}, false)
	w := dialWire(t, addr)
	w.cmd("EHLO client.test", "250 ")
	authPlain(w, "alice@x.test")
	w.cmd("MAIL FROM:<alice@x.test> RET=BODY", "501 ")
	w.cmd("MAIL FROM:<alice@x.test> ENVID=bad+ZZ", "501 ")
	w.cmd("MAIL FROM:<alice@x.test> RET=HDRS ENVID=ok", "250 ")
	w.cmd("RCPT TO:<bob@x.test> NOTIFY=NEVER,SUCCESS", "501 ")
	w.cmd("RCPT TO:<bob@x.test> NOTIFY=SOMETIMES", "501 ")
	w.cmd("RCPT TO:<bob@x.test> ORCPT=rfc822;a+ZZb", "501 ")
	w.cmd("RCPT TO:<bob@x.test> ORCPT=x400;whatever", "501 ")
	w.cmd("RCPT TO:<bob@x.test> NOTIFY=NEVER", "250 ")
	w.deliver(msg("alice@x.test", "bob@x.test", "bad-params"))
	if n := len(e.mailbox(t, e.bob, "")); n != 1 {
		t.Fatalf("bob has %d messages", n)
	}
	if es, _ := e.store.ListQueue(context.Background()); len(es) != 0 {
		t.Fatalf("NOTIFY=NEVER queued a report: %+v", es)
	}
}

// TestDSNAcrossRoosts: a submission asking NOTIFY=SUCCESS goes through the
// queue to another Roost's MX, which does not offer DSN: the sending queue
// reports "relayed" (RFC 3461 section 5.2.3) with the parameters given.
func TestDSNAcrossRoosts(t *testing.T) {
	a, b, carol, q := twoRoosts(t)
	_, sub := a.start(t, q, Config{Submission: true}, false)

	c, err := smtp.Dial(sub)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice@x.test", testPassword)); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("alice@x.test", &smtp.MailOptions{Return: smtp.DSNReturnFull, EnvelopeID: "cross-1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("carol@y.test", &smtp.RcptOptions{Notify: []smtp.DSNNotify{smtp.DSNNotifySuccess}, OriginalRecipientType: smtp.DSNAddressTypeRFC822, OriginalRecipient: "c@old.test"}); err != nil {
		t.Fatal(err)
	}
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	wc.Write([]byte(msg("alice@x.test", "carol@y.test", "cross-dsn")))
	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(a.mailbox(t, a.alice, "")) == 0 || len(b.mailbox(t, carol, "")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("alice has %d reports, carol %d messages", len(a.mailbox(t, a.alice, "")), len(b.mailbox(t, carol, "")))
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := string(a.mailbox(t, a.alice, "")[0])
	if !strings.Contains(r, "Original-Envelope-Id: cross-1") || !strings.Contains(r, "Original-Recipient: rfc822;c@old.test") ||
		!strings.Contains(r, "Action: relayed") || !strings.Contains(r, "Reporting-MTA: dns; mx.x.test") {
		t.Fatalf("A's report:\n%s", r)
	}
	waitQueueEmpty(t, a.store)
	// B's fixture serves x.test too: nothing may have come from B.
	if n := len(b.mailbox(t, b.alice, "")); n != 0 {
		t.Fatalf("alice got %d reports from the receiving MX, want none", n)
	}
}

func waitQueueEmpty(t *testing.T, st mailstore.Store) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		es, err := st.ListQueue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue still holds %+v", es)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
