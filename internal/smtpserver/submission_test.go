package smtpserver

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/queue"
)

func plainIR(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

func TestSubmissionAuthRequired(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{Submission: true}, false)
	w := dialWire(t, addr)
	ehlo := w.cmd("EHLO c", "250 ")
	// Loopback: AUTH is offered without TLS.
	if !strings.Contains(ehlo, "AUTH ") || !strings.Contains(ehlo, "PLAIN") {
		t.Fatalf("EHLO on loopback lacks AUTH: %q", ehlo)
	}
	w.cmd("MAIL FROM:<alice@x.test>", "530 5.7.0 ")
	w.cmd("AUTH PLAIN "+plainIR("alice@x.test", "wrong"), "535 5.7.8 ")
	w.cmd("AUTH PLAIN "+plainIR("nobody@x.test", testPassword), "535 5.7.8 ")
	w.cmd("AUTH PLAIN "+plainIR("alice@x.test", testPassword), "235 ")
	w.cmd("AUTH PLAIN "+plainIR("alice@x.test", testPassword), "503 ")
	w.cmd("MAIL FROM:<alice@x.test>", "250 ")
	w.cmd("RCPT TO:<bob@x.test>", "250 ")
	// No queue: remote recipients are refused.
	w.cmd("RCPT TO:<x@remote.test>", "554 5.7.1 ")
}

func TestSubmissionAuthLogin(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{Submission: true}, false)
	w := dialWire(t, addr)
	w.cmd("EHLO c", "250 ")
	w.cmd("AUTH LOGIN", "334 ")
	w.cmd(base64.StdEncoding.EncodeToString([]byte("al@x.test")), "334 ")
	w.cmd(base64.StdEncoding.EncodeToString([]byte(testPassword)), "235 ")
}

func TestSubmissionSCRAM(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{Submission: true}, false)
	w := dialWire(t, addr)
	if ehlo := w.cmd("EHLO c", "250 "); !strings.Contains(ehlo, "SCRAM-SHA-256") {
		t.Skipf("auth offers no SCRAM-SHA-256: %q", ehlo)
	}
	scramLogin(t, w, "alice@x.test", testPassword)
	w.cmd("MAIL FROM:<alice@x.test>", "250 ")
}

func TestSubmissionSenderChecks(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{Submission: true}, false)
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice@x.test", testPassword)); err != nil {
		t.Fatal(err)
	}
	wantCode := func(err error, code int, enh smtp.EnhancedCode) {
		t.Helper()
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != code || se.EnhancedCode != enh {
			t.Fatalf("got %v, want %d %v", err, code, enh)
		}
	}
	// Envelope sender of another account.
	wantCode(c.Mail("bob@x.test", nil), 550, smtp.EnhancedCode{5, 7, 1})
	wantCode(c.Mail("", nil), 550, smtp.EnhancedCode{5, 7, 1})
	// From: header of another account.
	err = c.SendMail("alice@x.test", []string{"bob@x.test"}, strings.NewReader(msg("bob@x.test", "bob@x.test", "forged")))
	wantCode(err, 550, smtp.EnhancedCode{5, 7, 1})
	// No From: at all.
	err = c.SendMail("alice@x.test", []string{"bob@x.test"}, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
	wantCode(err, 550, smtp.EnhancedCode{5, 6, 0})
	// The alias is alice's own.
	if err := c.SendMail("al@x.test", []string{"bob@x.test"}, strings.NewReader(msg("Alice <al@x.test>", "bob@x.test", "alias-ok"))); err != nil {
		t.Fatal(err)
	}
	if n := len(e.mailbox(t, e.bob, "")); n != 1 {
		t.Fatalf("bob has %d messages, want 1", n)
	}
}

func TestSubmissionSentFiledOnce(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{Submission: true, SaveSent: true}, false)
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice@x.test", testPassword)); err != nil {
		t.Fatal(err)
	}
	raw := msg("alice@x.test", "bob@x.test", "sent-once")
	if err := c.SendMail("alice@x.test", []string{"bob@x.test"}, strings.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	sent := e.mailbox(t, e.alice, mailstore.SpecialSent)
	if len(sent) != 1 || string(sent[0]) != raw {
		t.Fatalf("Sent: %q", sent)
	}
	if strings.HasPrefix(string(sent[0]), "Received:") {
		t.Fatal("Sent copy carries our Received: field")
	}
	// The client's own IMAP APPEND of the same message is a no-op.
	mb, err := e.store.MailboxBySpecialUse(context.Background(), e.alice.ID, mailstore.SpecialSent)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.store.Append(context.Background(), e.alice.ID, []mailstore.AppendRequest{{MailboxID: mb.ID, Raw: []byte(raw), Flags: []string{mailstore.FlagSeen}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !res[0].Existing {
		t.Fatalf("Append into Sent: %+v, want Existing", res)
	}
	if n := len(e.mailbox(t, e.alice, mailstore.SpecialSent)); n != 1 {
		t.Fatalf("Sent has %d messages after APPEND", n)
	}
	// Bob got it, with a trace field naming the authenticated protocol.
	inbox := e.mailbox(t, e.bob, "")
	if len(inbox) != 1 || !strings.Contains(string(inbox[0]), "with ESMTPA id") {
		t.Fatalf("bob: %q", inbox)
	}

	// A message without Message-ID/Date gets both, in Sent and at Bob's.
	if err := c.SendMail("alice@x.test", []string{"bob@x.test"}, strings.NewReader("From: alice@x.test\r\nSubject: bare\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	sent = e.mailbox(t, e.alice, mailstore.SpecialSent)
	if len(sent) != 2 || !strings.Contains(string(sent[1]), "Message-ID: <") || !strings.Contains(string(sent[1]), "Date: ") {
		t.Fatalf("completed message: %q", sent)
	}
}

func TestSubmissionQueuesRemote(t *testing.T) {
	e := newEnv(t)
	addr := e.startHeldQueue(t, Config{Submission: true, SaveSent: true})
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice@x.test", testPassword)); err != nil {
		t.Fatal(err)
	}
	rcpts := []string{"a@one.test", "bob@x.test", "b@two.test", "c@one.test"}
	if err := c.SendMail("alice@x.test", rcpts, strings.NewReader(msg("alice@x.test", "a@one.test", "remote"))); err != nil {
		t.Fatal(err)
	}
	es := e.queued(t)
	got := map[string]string{}
	for _, en := range es {
		got[en.Domain] = strings.Join(en.Recipients, ",")
		if en.From != "alice@x.test" || en.AccountID != e.alice.ID {
			t.Errorf("entry %+v", en)
		}
	}
	if len(es) != 2 || got["one.test"] != "a@one.test,c@one.test" || got["two.test"] != "b@two.test" {
		t.Fatalf("queue: %v", got)
	}
	if n := len(e.mailbox(t, e.bob, "")); n != 1 {
		t.Fatalf("local recipient got %d", n)
	}
	if n := len(e.mailbox(t, e.alice, mailstore.SpecialSent)); n != 1 {
		t.Fatalf("Sent has %d", n)
	}
}

// TestSubmissionAllOrNothing: the local copies and the queue entries of a
// submission commit together. With the local recipient over quota the
// message is refused and nothing is queued, so the client's resend after
// the quota is raised delivers exactly one copy to everyone.
func TestSubmissionAllOrNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	addr := e.startHeldQueue(t, Config{Submission: true})
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice@x.test", testPassword)); err != nil {
		t.Fatal(err)
	}
	if err := e.store.SetQuota(ctx, "bob@x.test", 1, 0); err != nil {
		t.Fatal(err)
	}
	rcpts := []string{"bob@x.test", "a@one.test"}
	body := msg("alice@x.test", "bob@x.test", "all or nothing")
	if err := c.SendMail("alice@x.test", rcpts, strings.NewReader(body)); err == nil {
		t.Fatal("submission to an over-quota local recipient was accepted")
	}
	if es, err := e.store.ListQueue(ctx); err != nil || len(es) != 0 {
		t.Fatalf("a refused submission queued %+v, %v", es, err)
	}
	if err := e.store.SetQuota(ctx, "bob@x.test", 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("alice@x.test", rcpts, strings.NewReader(body)); err != nil {
		t.Fatalf("resend: %v", err)
	}
	if es, err := e.store.ListQueue(ctx); err != nil || len(es) != 1 {
		t.Fatalf("queue after the resend: %+v, %v; want 1 entry", es, err)
	}
	if n := len(e.mailbox(t, e.bob, "")); n != 1 {
		t.Fatalf("local recipient got %d copies, want 1", n)
	}
}

func TestSubmissionImplicitTLS(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{Submission: true, TLS: selfSigned(t)}, true)
	c, err := smtp.DialTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Fatal("STARTTLS offered inside TLS")
	}
	if err := c.Auth(sasl.NewPlainClient("", "bob@x.test", testPassword)); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("bob@x.test", []string{"alice@x.test"}, strings.NewReader(msg("bob@x.test", "alice@x.test", "tls465"))); err != nil {
		t.Fatal(err)
	}
	got := e.mailbox(t, e.alice, "")
	if len(got) != 1 || !strings.Contains(string(got[0]), "with ESMTPSA id") {
		t.Fatalf("alice: %q", got)
	}
}

// nonLoopbackIP returns an IPv4 address of this host that is not loopback,
// or skips.
func nonLoopbackIP(t *testing.T) net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("no interface addresses: %v", err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP
		}
	}
	t.Skip("no non-loopback IPv4 address to test the plaintext AUTH refusal")
	return nil
}

func TestSubmissionNoPasswordsInClear(t *testing.T) {
	ip := nonLoopbackIP(t)
	e := newEnv(t)
	s := New(e.store, e.authn, nil, Config{Hostname: "mx.x.test", Submission: true, TLS: selfSigned(t)}, testLogger(t))
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	go s.Serve(ln, false)
	defer s.Shutdown(context.Background())
	w := dialWire(t, ln.Addr().String())
	ehlo := w.cmd("EHLO c", "250 ")
	if strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("plaintext non-loopback EHLO: %q", ehlo)
	}
	w.cmd("AUTH PLAIN "+plainIR("alice@x.test", testPassword), "538 5.7.11 ")
	w.cmd("MAIL FROM:<alice@x.test>", "530 5.7.0 ")
	// After STARTTLS AUTH is offered and works.
	c, err := smtp.DialStartTLS(ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("AUTH"); !ok {
		t.Fatal("AUTH not offered after STARTTLS")
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice@x.test", testPassword)); err != nil {
		t.Fatal(err)
	}
}

// twoRoosts is two servers on loopback: a, whose queue runs (until the
// test ends) and routes y.test by transport map to b's MX, where carol
// has an account.
func twoRoosts(t *testing.T) (a, b *env, carol mailstore.Account, q *queue.Queue) {
	t.Helper()
	a, b = newEnv(t), newEnv(t)
	ctx := context.Background()
	if err := b.store.AddDomain(ctx, "y.test"); err != nil {
		t.Fatal(err)
	}
	carol, err := b.store.AddAccount(ctx, "carol@y.test", "x")
	if err != nil {
		t.Fatal(err)
	}
	_, mxB := b.start(t, nil, Config{Hostname: "mx.y.test"}, false)
	q = queue.New(a.store, queue.Config{Hostname: "mx.x.test", Transport: map[string]string{"y.test": mxB}}, testLogger(t))
	qctx, cancel := context.WithCancel(ctx)
	qdone := make(chan error, 1)
	go func() { qdone <- q.Run(qctx) }()
	t.Cleanup(func() { cancel(); <-qdone })
	return a, b, carol, q
}

// TestSubmissionToRemoteRoost wires what the app wires: a submission
// server with a running queue on one store delivers, through the transport
// map, to an MX server over another store (a second "node" serving y.test),
// and a refused recipient there comes back as a DSN in the sender's INBOX.
func TestSubmissionToRemoteRoost(t *testing.T) {
	a, b, carol, q := twoRoosts(t)
	_, sub := a.start(t, q, Config{Submission: true, SaveSent: true}, false)

	c, err := smtp.Dial(sub)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice@x.test", testPassword)); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("alice@x.test", []string{"carol@y.test", "nobody@y.test"}, strings.NewReader(msg("alice@x.test", "carol@y.test", "cross"))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(b.mailbox(t, carol, "")) == 0 || len(a.mailbox(t, a.alice, "")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("carol %d, alice's INBOX %d", len(b.mailbox(t, carol, "")), len(a.mailbox(t, a.alice, "")))
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := string(b.mailbox(t, carol, "")[0])
	// Two hops: the submission server's and the remote MX's.
	if strings.Count(got, "Received: ") != 2 || !strings.Contains(got, "by mx.x.test (Roost) with ESMTPA") {
		t.Fatalf("carol's copy: %q", got)
	}
	bounce := string(a.mailbox(t, a.alice, "")[0])
	if !strings.Contains(bounce, "report-type=delivery-status") || !strings.Contains(bounce, "Final-Recipient: rfc822; nobody@y.test") ||
		!strings.Contains(bounce, "Status: 5.1.1") {
		t.Fatalf("bounce: %q", bounce)
	}
}

// submitWire opens a submission session authenticated as alice.
func submitWire(t *testing.T, addr string) *wire {
	t.Helper()
	w := dialWire(t, addr)
	w.cmd("EHLO c", "250 ")
	w.cmd("AUTH PLAIN "+plainIR("alice@x.test", testPassword), "235 ")
	return w
}

// A user whose mail program encodes the From: display name in a legacy
// charset (iso-2022-jp here; Outlook's windows-1252, gb2312, koi8-r are
// the same case) can send: before, every such message got "550 5.6.0
// Message has no valid From: header". The address is still checked.
func TestSubmissionFromDisplayNameInLegacyCharset(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{Submission: true}, false)
	w := submitWire(t, addr)
	w.cmd("MAIL FROM:<alice@x.test>", "250 ")
	w.cmd("RCPT TO:<bob@x.test>", "250 ")
	w.cmd("DATA", "354 ")
	w.send("From: =?iso-2022-jp?B?GyRCJUYlOSVIGyhC?= <alice@x.test>\r\nTo: bob@x.test\r\nSubject: hi\r\n\r\nbody")
	w.cmd(".", "250 ")
	if n := len(e.mailbox(t, e.bob, "")); n != 1 {
		t.Fatalf("bob has %d messages, want 1", n)
	}
	// The display name does not excuse someone else's address.
	w.cmd("MAIL FROM:<alice@x.test>", "250 ")
	w.cmd("RCPT TO:<bob@x.test>", "250 ")
	w.cmd("DATA", "354 ")
	w.send("From: =?iso-2022-jp?B?GyRCJUYlOSVIGyhC?= <bob@x.test>\r\nTo: bob@x.test\r\nSubject: hi\r\n\r\nbody")
	w.cmd(".", "550 5.7.1 ")
}

// Alice cannot appear as bob by adding a second From: field after her own
// (mail programs differ in which one they show): the message is refused
// with 550 5.6.0, as RFC 5322 section 3.6 allows exactly one From:.
func TestSubmissionSecondFromRefused(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{Submission: true}, false)
	w := submitWire(t, addr)
	w.cmd("MAIL FROM:<alice@x.test>", "250 ")
	w.cmd("RCPT TO:<bob@x.test>", "250 ")
	w.cmd("DATA", "354 ")
	w.send("From: alice@x.test\r\nFrom: bob@x.test\r\nTo: bob@x.test\r\nSubject: hi\r\n\r\nbody")
	w.cmd(".", "550 5.6.0 ")
	if n := len(e.mailbox(t, e.bob, "")); n != 0 {
		t.Fatalf("bob got %d messages from a forged second From:", n)
	}
}

// A refused MAIL leaves the transaction as it was (RFC 5321 section
// 3.3): a user cannot get around the refusal of the null reverse-path
// (RFC 6409 section 6.1) by sending MAIL FROM:<> after an accepted MAIL,
// which used to queue mail that no bounce could ever come back from; and
// recipients accepted before the refused MAIL still get the message
// (before, DATA then failed with 451).
func TestSubmissionRefusedMailKeepsTransaction(t *testing.T) {
	e := newEnv(t)
	addr := e.startHeldQueue(t, Config{Submission: true})
	w := submitWire(t, addr)
	w.cmd("MAIL FROM:<alice@x.test>", "250 ")
	w.cmd("RCPT TO:<bob@x.test>", "250 ")
	w.cmd("MAIL FROM:<>", "550 5.7.1 ")
	w.cmd("MAIL FROM:<bob@x.test>", "550 5.7.1 ")
	w.cmd("RCPT TO:<x@remote.test>", "250 ")
	w.cmd("DATA", "354 ")
	w.send("From: alice@x.test\r\nSubject: hi\r\n\r\nbody")
	w.cmd(".", "250 ")
	es := e.queued(t)
	if len(es) != 1 || es[0].From != "alice@x.test" || strings.Join(es[0].Recipients, ",") != "x@remote.test" {
		t.Fatalf("queue %+v, want one entry from alice@x.test to x@remote.test", es)
	}
	if n := len(e.mailbox(t, e.bob, "")); n != 1 {
		t.Fatalf("bob, accepted before the refused MAIL, has %d messages, want 1", n)
	}
}

// A MAIL inside an open transaction gets 503 and changes nothing (RFC 5321
// section 4.1.4: MAIL "MUST NOT be sent if a mail transaction is already
// open"). go-smtp keeps the transaction's recipients across a second
// MAIL, so accepting it would leave Roost and go-smtp disagreeing on who
// the recipients are; the client resets with RSET, as Postfix and Exim
// also require.
func TestSubmissionNestedMailRefused(t *testing.T) {
	e := newEnv(t)
	addr := e.startHeldQueue(t, Config{Submission: true})
	w := submitWire(t, addr)
	w.cmd("MAIL FROM:<alice@x.test>", "250 ")
	w.cmd("RCPT TO:<x@remote.test>", "250 ")
	w.cmd("MAIL FROM:<al@x.test>", "503 5.5.1 ")
	w.cmd("DATA", "354 ")
	w.send("From: alice@x.test\r\nSubject: hi\r\n\r\nbody")
	w.cmd(".", "250 ")
	// After RSET a new MAIL is accepted and starts afresh.
	w.cmd("MAIL FROM:<alice@x.test>", "250 ")
	w.cmd("RCPT TO:<y@remote.test>", "250 ")
	w.cmd("RSET", "250 ")
	w.cmd("MAIL FROM:<al@x.test>", "250 ")
	w.cmd("RCPT TO:<z@remote.test>", "250 ")
	w.cmd("DATA", "354 ")
	w.send("From: al@x.test\r\nSubject: hi\r\n\r\nbody")
	w.cmd(".", "250 ")
	es := e.queued(t)
	got := map[string]string{}
	for _, en := range es {
		got[strings.Join(en.Recipients, ",")] = en.From
	}
	if len(es) != 2 || got["x@remote.test"] != "alice@x.test" || got["z@remote.test"] != "al@x.test" {
		t.Fatalf("queue %+v; want x@remote.test from alice@x.test and z@remote.test from al@x.test", es)
	}
}

// A full local mailbox refuses only its own RCPT (452 4.2.2, so the
// client may retry it later); the other recipients, local and remote,
// still get the message. Before, the whole submission failed at DATA.
func TestSubmissionFullLocalRecipientRefusedAlone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	addr := e.startHeldQueue(t, Config{Submission: true})
	if err := e.store.SetQuota(ctx, "bob@x.test", 0, 1); err != nil {
		t.Fatal(err)
	}
	w := submitWire(t, addr)
	w.cmd("MAIL FROM:<alice@x.test>", "250 ")
	w.cmd("RCPT TO:<bob@x.test>", "250 ")
	w.deliver(msg("alice@x.test", "bob@x.test", "fills-bob"))
	w = submitWire(t, addr)
	w.cmd("MAIL FROM:<alice@x.test>", "250 ")
	w.cmd("RCPT TO:<bob@x.test>", "452 4.2.2 ")
	w.cmd("RCPT TO:<al@x.test>", "250 ")
	w.cmd("RCPT TO:<a@one.test>", "250 ")
	w.deliver(msg("alice@x.test", "bob@x.test, a@one.test", "bob-full"))
	if n := len(e.mailbox(t, e.alice, "")); n != 1 {
		t.Fatalf("alice has %d messages, want 1", n)
	}
	if n := len(e.mailbox(t, e.bob, "")); n != 1 {
		t.Fatalf("bob has %d messages, want only the one that filled his quota", n)
	}
	if es, err := e.store.ListQueue(ctx); err != nil || len(es) != 1 {
		t.Fatalf("queue %+v, %v; want the remote recipient's entry", es, err)
	}
}
