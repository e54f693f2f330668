package queue

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/roost-mail/roost/internal/mailstore"
)

// The tests here cover the DSN parameters of RFC 3461 as the queue
// honours them; the SMTP server's side is in internal/smtpserver.

const bodyMarker = "the secret body line"

var dsnMsg = "From: alice@x.test\r\nTo: bob@remote.test\r\nSubject: dsn\r\nMessage-ID: <dsn@x.test>\r\n\r\n" + bodyMarker + "\r\n"

func TestNotifyNeverAndRetFull(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	sk := startSink(t, "")
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": sk.addr}}, testLogger())
	runQueue(t, q)
	env := Envelope{
		From:       "alice@x.test",
		Recipients: []string{"reject-never@remote.test", "reject-asked@remote.test", "bob@remote.test"},
		RcptDSN: []mailstore.RcptDSN{
			{Notify: []string{"NEVER"}},
			{Notify: []string{"FAILURE"}, ORcpt: "rfc822;asked@alias.remote.test"},
			{},
		},
		Ret: "FULL", EnvID: "env-42",
	}
	if err := q.EnqueueEnvelope(context.Background(), env, []byte(dsnMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "empty queue", func() bool { return queueLen(t, st) == 0 })
	msgs := inbox(t, st, alice)
	if len(msgs) != 1 {
		t.Fatalf("INBOX holds %d reports, want 1 (none for NOTIFY=NEVER, none for a delivered recipient without SUCCESS)", len(msgs))
	}
	d := parseDSN(t, msgs[0])
	if len(d.perRcpt) != 1 {
		t.Fatalf("per-recipient blocks %v; want only reject-asked", d.perRcpt)
	}
	r := d.perRcpt[0]
	if r.Get("Final-Recipient") != "rfc822; reject-asked@remote.test" || r.Get("Action") != "failed" ||
		r.Get("Original-Recipient") != "rfc822;asked@alias.remote.test" {
		t.Fatalf("recipient block %v", r)
	}
	if got := d.perMessage.Get("Original-Envelope-Id"); got != "env-42" {
		t.Fatalf("Original-Envelope-Id %q, want env-42 (per-message %v)", got, d.perMessage)
	}
	// RET=FULL: the whole message comes back.
	if d.returned != "message/rfc822" || !strings.Contains(d.full, bodyMarker) {
		t.Fatalf("returned part %s %q; want message/rfc822 with the body", d.returned, d.full)
	}
}

func TestRetHdrsAndDefaultReturnHeaders(t *testing.T) {
	for _, ret := range []string{"HDRS", ""} {
		t.Run("RET="+ret, func(t *testing.T) {
			st, alice := openStore(t, t.TempDir())
			defer st.Close()
			sk := startSink(t, "")
			q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": sk.addr}}, testLogger())
			runQueue(t, q)
			if err := q.EnqueueEnvelope(context.Background(), Envelope{From: "alice@x.test", Recipients: []string{"reject@remote.test"}, Ret: ret}, []byte(dsnMsg), alice.ID); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a bounce", func() bool { return len(inbox(t, st, alice)) == 1 })
			d := parseDSN(t, inbox(t, st, alice)[0])
			if d.returned != "text/rfc822-headers" || strings.Contains(d.headers, bodyMarker) || !strings.Contains(d.headers, "Message-ID: <dsn@x.test>") {
				t.Fatalf("returned %s %q; want the header only", d.returned, d.headers)
			}
			if d.perMessage.Get("Original-Envelope-Id") != "" || d.perRcpt[0].Get("Original-Recipient") != "" {
				t.Fatalf("fields for parameters not given: %v %v", d.perMessage, d.perRcpt[0])
			}
		})
	}
}

func TestRelayedDSN(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	sk := startSink(t, "") // no DSN
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": sk.addr}}, testLogger())
	runQueue(t, q)
	env := Envelope{
		From:       "alice@x.test",
		Recipients: []string{"bob@remote.test", "carol@remote.test"},
		RcptDSN:    []mailstore.RcptDSN{{Notify: []string{"SUCCESS", "FAILURE"}, ORcpt: "rfc822;bob@old.test"}, {Notify: []string{"FAILURE"}}},
		Ret:        "FULL", EnvID: "rel-1",
	}
	if err := q.EnqueueEnvelope(context.Background(), env, []byte(dsnMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	m := sk.wait(t, 1)
	if len(m[0].Rcpts) != 2 {
		t.Fatalf("sink rcpts %v", m[0].Rcpts)
	}
	waitFor(t, "a success report", func() bool { return len(inbox(t, st, alice)) == 1 })
	waitFor(t, "empty queue", func() bool { return queueLen(t, st) == 0 })
	d := parseDSN(t, inbox(t, st, alice)[0])
	if len(d.perRcpt) != 1 {
		t.Fatalf("per-recipient %v; want bob only (carol did not ask for SUCCESS)", d.perRcpt)
	}
	r := d.perRcpt[0]
	if r.Get("Final-Recipient") != "rfc822; bob@remote.test" || r.Get("Action") != "relayed" || r.Get("Status") != "2.0.0" ||
		r.Get("Original-Recipient") != "rfc822;bob@old.test" || !strings.HasPrefix(r.Get("Diagnostic-Code"), "smtp; 250") {
		t.Fatalf("recipient block %v", r)
	}
	if d.perMessage.Get("Original-Envelope-Id") != "rel-1" {
		t.Fatalf("per-message %v", d.perMessage)
	}
	// RFC 3461 section 4.3: RET applies to failures only; a success
	// report returns the header.
	if d.returned != "text/rfc822-headers" {
		t.Fatalf("success report returned %s", d.returned)
	}
	if s := d.header.Get("Subject"); !strings.Contains(s, "Success") {
		t.Fatalf("Subject %q", s)
	}
}

func TestDSNPassedToCapableHop(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	sk := startSinkDSN(t)
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": sk.addr}}, testLogger())
	runQueue(t, q)
	env := Envelope{
		From:       "alice@x.test",
		Recipients: []string{"bob@remote.test", "carol@remote.test", "dave@remote.test"},
		RcptDSN: []mailstore.RcptDSN{
			{Notify: []string{"SUCCESS", "DELAY"}, ORcpt: "rfc822;b+o=b@old.test"},
			{Notify: []string{"NEVER"}, ORcpt: "utf-8;c\u00e4rol@old.test"},
			{},
		},
		Ret: "HDRS", EnvID: "id with space+plus",
	}
	if err := q.EnqueueEnvelope(context.Background(), env, []byte(dsnMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	m := sk.wait(t, 1)[0]
	if m.Mail.Return != smtp.DSNReturnHeaders || m.Mail.EnvelopeID != "id with space+plus" {
		t.Fatalf("MAIL options %+v", m.Mail)
	}
	if !slices.Equal(m.Rcpts, env.Recipients) || len(m.RcptOpts) != 3 {
		t.Fatalf("rcpts %v opts %+v", m.Rcpts, m.RcptOpts)
	}
	b, c, dv := m.RcptOpts[0], m.RcptOpts[1], m.RcptOpts[2]
	if !slices.Equal(b.Notify, []smtp.DSNNotify{smtp.DSNNotifySuccess, smtp.DSNNotifyDelayed}) || b.OriginalRecipientType != smtp.DSNAddressTypeRFC822 || b.OriginalRecipient != "b+o=b@old.test" {
		t.Fatalf("bob's RCPT options %+v", b)
	}
	if !slices.Equal(c.Notify, []smtp.DSNNotify{smtp.DSNNotifyNever}) || c.OriginalRecipientType != smtp.DSNAddressTypeUTF8 || c.OriginalRecipient != "c\u00e4rol@old.test" {
		t.Fatalf("carol's RCPT options %+v", c)
	}
	if dv.Notify != nil || dv.OriginalRecipient != "" {
		t.Fatalf("dave's RCPT options %+v; want none", dv)
	}
	waitFor(t, "empty queue", func() bool { return queueLen(t, st) == 0 })
	// The hop took over reporting (RFC 3461 section 5.2.2): no report
	// from us.
	if n := len(inbox(t, st, alice)); n != 0 {
		t.Fatalf("%d reports; want none", n)
	}
}

func TestDSNFollowsRequeuedRecipients(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	sk := startSink(t, "")
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": sk.addr}, RetryBase: time.Hour}, testLogger())
	runQueue(t, q)
	env := Envelope{
		From:       "alice@x.test",
		Recipients: []string{"bob@remote.test", "defer-1@remote.test", "defer-2@remote.test"},
		RcptDSN: []mailstore.RcptDSN{
			{Notify: []string{"FAILURE"}},
			{Notify: []string{"DELAY"}, ORcpt: "rfc822;d1@old.test"},
			{ORcpt: "rfc822;d2@old.test"},
		},
		Ret: "FULL", EnvID: "rq",
	}
	if err := q.EnqueueEnvelope(context.Background(), env, []byte(dsnMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	var e mailstore.QueueEntry
	waitFor(t, "requeued entry", func() bool {
		es, _ := st.ListQueue(context.Background())
		if len(es) == 1 && es[0].Attempts >= 1 {
			e = es[0]
			return true
		}
		return false
	})
	if !slices.Equal(e.Recipients, []string{"defer-1@remote.test", "defer-2@remote.test"}) || e.Ret != "FULL" || e.EnvID != "rq" || len(e.RcptDSN) != 2 ||
		!slices.Equal(e.RcptDSN[0].Notify, []string{"DELAY"}) || e.RcptDSN[0].ORcpt != "rfc822;d1@old.test" ||
		e.RcptDSN[1].Notify != nil || e.RcptDSN[1].ORcpt != "rfc822;d2@old.test" {
		t.Fatalf("requeued entry %+v", e)
	}
}

func TestDelayWarningHonoursNotify(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	q := expiringQueue(t, st)
	runQueue(t, q)
	env := Envelope{
		From:       "alice@x.test",
		Recipients: []string{"default@remote.test", "failonly@remote.test", "delayonly@remote.test"},
		RcptDSN:    []mailstore.RcptDSN{{}, {Notify: []string{"FAILURE"}}, {Notify: []string{"DELAY"}}},
	}
	if err := q.EnqueueEnvelope(context.Background(), env, []byte(dsnMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "expiry", func() bool { return queueLen(t, st) == 0 })
	msgs := inbox(t, st, alice)
	if len(msgs) != 2 {
		t.Fatalf("want a delay warning and a bounce, got %d messages", len(msgs))
	}
	rcpts := func(d parsedDSN, action string) []string {
		var out []string
		for _, r := range d.perRcpt {
			if r.Get("Action") != action {
				t.Fatalf("block %v; want action %s", r, action)
			}
			out = append(out, strings.TrimPrefix(r.Get("Final-Recipient"), "rfc822; "))
		}
		return out
	}
	if got := rcpts(parseDSN(t, msgs[0]), "delayed"); !slices.Equal(got, []string{"default@remote.test", "delayonly@remote.test"}) {
		t.Fatalf("delay warning for %v", got)
	}
	if got := rcpts(parseDSN(t, msgs[1]), "failed"); !slices.Equal(got, []string{"default@remote.test", "failonly@remote.test"}) {
		t.Fatalf("bounce for %v", got)
	}
}

func TestNotifyDelivered(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	ctx := context.Background()
	now := time.Now()
	// A local sender gets the report in its INBOX.
	env := Envelope{From: "alice@x.test", Recipients: []string{"r1@x.test", "r2@x.test"}, EnvID: "loc",
		RcptDSN: []mailstore.RcptDSN{{Notify: []string{"SUCCESS"}, ORcpt: "rfc822;first@x.test"}, {Notify: []string{"FAILURE"}}}, Ret: "FULL"}
	if err := NotifyDelivered(ctx, st, "mx.x.test", env, []byte(dsnMsg), now, testLogger()); err != nil {
		t.Fatal(err)
	}
	msgs := inbox(t, st, alice)
	if len(msgs) != 1 {
		t.Fatalf("INBOX holds %d", len(msgs))
	}
	d := parseDSN(t, msgs[0])
	if len(d.perRcpt) != 1 || d.perRcpt[0].Get("Action") != "delivered" || d.perRcpt[0].Get("Status") != "2.0.0" ||
		d.perRcpt[0].Get("Original-Recipient") != "rfc822;first@x.test" || d.perMessage.Get("Original-Envelope-Id") != "loc" || d.returned != "text/rfc822-headers" {
		t.Fatalf("report %v %v %s", d.perMessage, d.perRcpt, d.returned)
	}
	// A remote sender's report is queued with a null reverse-path and no
	// DSN parameters (no report on a report).
	env.From = "someone@far.test"
	if err := NotifyDelivered(ctx, st, "mx.x.test", env, []byte(dsnMsg), now, testLogger()); err != nil {
		t.Fatal(err)
	}
	es, err := st.ListQueue(ctx)
	if err != nil || len(es) != 1 {
		t.Fatalf("queue %+v, %v", es, err)
	}
	if e := es[0]; e.From != "" || !slices.Equal(e.Recipients, []string{"someone@far.test"}) || e.RcptDSN != nil || e.Ret != "" || e.EnvID != "" {
		t.Fatalf("queued report %+v", e)
	}
	// Nobody asked, or a null sender: nothing.
	env.RcptDSN[0].Notify = []string{"NEVER"}
	env.From = "alice@x.test"
	if err := NotifyDelivered(ctx, st, "mx.x.test", env, []byte(dsnMsg), now, testLogger()); err != nil {
		t.Fatal(err)
	}
	env.RcptDSN[0].Notify = []string{"SUCCESS"}
	env.From = ""
	if err := NotifyDelivered(ctx, st, "mx.x.test", env, []byte(dsnMsg), now, testLogger()); err != nil {
		t.Fatal(err)
	}
	if n := len(inbox(t, st, alice)); n != 1 {
		t.Fatalf("INBOX holds %d; want the first report only", n)
	}
	if n := queueLen(t, st); n != 1 {
		t.Fatalf("queue holds %d", n)
	}
}

func TestXtextEncoding(t *testing.T) {
	for in, want := range map[string]string{
		"plain@x.test": "plain@x.test",
		"a+b=c d":      "a+2Bb+3Dc+20d",
		"\x01~\x7f":    "+01~+7F",
	} {
		if got := xtext(in); got != want {
			t.Errorf("xtext(%q) = %q, want %q", in, got, want)
		}
	}
	if got := utf8AddrXtext("\u00e4+\\\u4e2d\t"); got != `\x{E4}\x{2B}\x{5C}\x{4E2D}\x{09}` {
		t.Errorf("utf8AddrXtext = %q", got)
	}
	if got := rcptDSNParams(mailstore.RcptDSN{Notify: []string{"success", "bogus", "DELAY"}, ORcpt: "RFC822;a@b"}); got != " NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a@b" {
		t.Errorf("rcptDSNParams = %q", got)
	}
	if got := mailDSNParams(mailstore.QueueEntry{Ret: "weird", EnvID: "e=1"}); got != " ENVID=e+3D1" {
		t.Errorf("mailDSNParams = %q", got)
	}
}
