package smtpserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// wire is a raw SMTP transcript driver.
type wire struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialWire(t testing.TB, addr string) *wire {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	w := &wire{t: t, c: c, br: bufio.NewReader(c)}
	w.expect("220 ")
	return w
}

// reply reads one (possibly multi-line) reply and returns its last line.
func (w *wire) reply() string {
	w.t.Helper()
	var all []string
	for {
		l, err := w.br.ReadString('\n')
		if err != nil {
			w.t.Fatalf("read: %v (so far %q)", err, all)
		}
		all = append(all, strings.TrimRight(l, "\r\n"))
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(all, "\n")
		}
	}
}

func (w *wire) expect(prefix string) string {
	w.t.Helper()
	r := w.reply()
	last := r[strings.LastIndex(r, "\n")+1:]
	if !strings.HasPrefix(last, prefix) {
		w.t.Fatalf("got %q, want prefix %q", r, prefix)
	}
	return r
}

func (w *wire) send(line string) {
	w.t.Helper()
	if _, err := fmt.Fprintf(w.c, "%s\r\n", line); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wire) cmd(line, prefix string) string {
	w.t.Helper()
	w.send(line)
	return w.expect(prefix)
}

// deliver sends DATA with body, expects it accepted, and says QUIT.
func (w *wire) deliver(body string) {
	w.t.Helper()
	w.cmd("DATA", "354 ")
	w.send(body)
	w.cmd(".", "250 ")
	w.cmd("QUIT", "221 ")
}

func msg(from, to, subject string) string {
	return "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <" + subject + "@test>\r\n\r\nHello.\r\n"
}

func TestMXAcceptAndRefuse(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{}, false)
	w := dialWire(t, addr)
	ehlo := w.cmd("EHLO client.test", "250 ")
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "CHUNKING", "ENHANCEDSTATUSCODES", "SIZE 52428800"} {
		if !strings.Contains(ehlo, ext) {
			t.Errorf("EHLO lacks %s: %q", ext, ehlo)
		}
	}
	if strings.Contains(ehlo, "AUTH") || strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("MX without TLS offers AUTH/STARTTLS: %q", ehlo)
	}
	// Tolerated: a space after the colon (CLIENTS.md).
	w.cmd("MAIL FROM: <sender@remote.test>", "250 ")
	w.cmd("RCPT TO:<nobody@x.test>", "550 5.1.1 ")
	w.cmd("RCPT TO:<someone@elsewhere.test>", "554 5.7.1 ")
	w.cmd("RCPT TO:<Bob@X.test>", "250 ")
	w.deliver(strings.ReplaceAll(msg("sender@remote.test", "bob@x.test", "mx1"), "Hello.", "..dot-stuffed"))

	got := e.mailbox(t, e.bob, "")
	if len(got) != 1 {
		t.Fatalf("bob has %d messages", len(got))
	}
	raw := string(got[0])
	if !strings.HasPrefix(raw, "Received: from client.test ([127.0.0.1])\r\n\tby mx.x.test (Roost) with ESMTP id ") ||
		!strings.Contains(raw, "for <bob@x.test>;") {
		t.Fatalf("Received header: %q", raw)
	}
	if !strings.Contains(raw, "\r\n\r\n.dot-stuffed\r\n") {
		t.Fatalf("body not unstuffed: %q", raw)
	}
}

func TestMXAliasesOneCopyPerAccount(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{}, false)
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := msg("s@remote.test", "alice@x.test", "alias")
	if err := c.SendMail("s@remote.test", []string{"alice@x.test", "al@x.test", "bob@x.test"}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	a, b := e.mailbox(t, e.alice, ""), e.mailbox(t, e.bob, "")
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("alice %d, bob %d messages; want 1 and 1", len(a), len(b))
	}
	if strings.Contains(string(a[0]), "\tfor <") {
		t.Fatalf("for clause with several recipients: %q", a[0])
	}
}

func TestMXSizeLimit(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{MaxMessageBytes: 1000}, false)
	w := dialWire(t, addr)
	w.cmd("EHLO c", "250 ")
	w.cmd("MAIL FROM:<s@r.test> SIZE=5000", "552 5.3.4 ")
	w.cmd("MAIL FROM:<s@r.test> SIZE=500", "250 ")
	w.cmd("RCPT TO:<bob@x.test>", "250 ")
	w.cmd("DATA", "354 ")
	w.send(msg("s@r.test", "bob@x.test", "big") + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 20))
	w.cmd(".", "552 5.3.4 ")
	// The session is still usable and nothing was stored.
	w.cmd("NOOP", "250 ")
	if n := len(e.mailbox(t, e.bob, "")); n != 0 {
		t.Fatalf("oversized message stored (%d)", n)
	}
}

func TestMXChunking(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{}, false)
	w := dialWire(t, addr)
	w.cmd("EHLO c", "250 ")
	w.cmd("MAIL FROM:<s@r.test> BODY=8BITMIME", "250 ")
	w.cmd("RCPT TO:<bob@x.test>", "250 ")
	body := msg("s@r.test", "bob@x.test", "bdat") + "Gr\xc3\xbc\xc3\x9fe\r\n.no stuffing in BDAT\r\n"
	half := len(body) / 2
	w.send(fmt.Sprintf("BDAT %d", half))
	w.c.Write([]byte(body[:half]))
	w.expect("250 ")
	w.send(fmt.Sprintf("BDAT %d LAST", len(body)-half))
	w.c.Write([]byte(body[half:]))
	w.expect("250 ")
	got := e.mailbox(t, e.bob, "")
	if len(got) != 1 || !strings.HasSuffix(string(got[0]), body) {
		t.Fatalf("BDAT message: %q", got)
	}
}

func TestMXLoopRefused(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{}, false)
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hops := strings.Repeat("Received: from a by b; Wed, 25 Nov 2026 10:00:00 +0000\r\n", 51)
	err = c.SendMail("s@r.test", []string{"bob@x.test"}, strings.NewReader(hops+msg("s@r.test", "bob@x.test", "loop")))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 554 || se.EnhancedCode != (smtp.EnhancedCode{5, 4, 6}) {
		t.Fatalf("loop: %v", err)
	}
	// 50 hops are fine.
	hops = strings.Repeat("Received: from a by b; Wed, 25 Nov 2026 10:00:00 +0000\r\n", 50)
	if err := c.SendMail("s@r.test", []string{"bob@x.test"}, strings.NewReader(hops+msg("s@r.test", "bob@x.test", "noloop"))); err != nil {
		t.Fatal(err)
	}
}

func TestMXRecipientLimit(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{MaxRecipients: 2}, false)
	w := dialWire(t, addr)
	w.cmd("EHLO c", "250 ")
	w.cmd("MAIL FROM:<s@r.test>", "250 ")
	w.cmd("RCPT TO:<bob@x.test>", "250 ")
	w.cmd("RCPT TO:<alice@x.test>", "250 ")
	w.cmd("RCPT TO:<al@x.test>", "452 4.5.3 ")
}

func TestMXConnsPerIP(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{MaxConnsPerIP: 2}, false)
	w1, w2 := dialWire(t, addr), dialWire(t, addr)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "421 4.7.0 ") {
		t.Fatalf("third connection: %q", line)
	}
	w1.cmd("QUIT", "221 ")
	w1.c.Close()
	// The slot frees when the connection ends.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.HasPrefix(line, "220 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed: %q", line)
		}
		time.Sleep(20 * time.Millisecond)
	}
	w2.cmd("NOOP", "250 ")
}

func TestShutdownSays421(t *testing.T) {
	e := newEnv(t)
	s, addr := e.start(t, nil, Config{}, false)
	w := dialWire(t, addr)
	w.cmd("EHLO c", "250 ")
	go s.Shutdown(t.Context())
	w.expect("421 ")
}

func TestSTARTTLS(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{TLS: selfSigned(t)}, false)
	c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail("s@r.test", []string{"bob@x.test"}, strings.NewReader(msg("s@r.test", "bob@x.test", "tls"))); err != nil {
		t.Fatal(err)
	}
	got := e.mailbox(t, e.bob, "")
	if len(got) != 1 || !strings.Contains(string(got[0]), "with ESMTPS id") {
		t.Fatalf("TLS delivery: %q", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{ReadTimeout: 300 * time.Millisecond}, false)
	w := dialWire(t, addr)
	w.cmd("EHLO c", "250 ")
	// RFC 5321 section 4.5.3.2: the server may close an idle session.
	w.expect("421 4.4.2 ")
}

func TestLongLineInData(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{}, false)
	w := dialWire(t, addr)
	w.cmd("EHLO c", "250 ")
	w.cmd("MAIL FROM:<s@r.test>", "250 ")
	w.cmd("RCPT TO:<bob@x.test>", "250 ")
	w.cmd("DATA", "354 ")
	w.send("Subject: x\r\n\r\n" + strings.Repeat("x", 3000))
	w.send(".")
	w.expect("554 5.6.0 ")
	if n := len(e.mailbox(t, e.bob, "")); n != 0 {
		t.Fatalf("stored %d", n)
	}
}

// TestLastReplyNotReset: a client pipelines more after QUIT. The server
// reads no further, yet the client must read the 221 and then the end of
// the stream, not a reset that can destroy the reply (the unread input
// would make a plain close send one; linger).
func TestLastReplyNotReset(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{}, false)
	w := dialWire(t, addr)
	w.cmd("EHLO c", "250 ")
	junk := strings.Repeat("NOOP\r\n", 32<<10)
	go func() { _, _ = io.WriteString(w.c, "QUIT\r\n"+junk) }()
	out, err := io.ReadAll(w.br)
	if err != nil || !strings.HasPrefix(string(out), "221 ") || strings.Count(string(out), "\r\n") != 1 {
		t.Fatalf("after QUIT and more: %q, %v; want one 221 line and the end", out, err)
	}
}

// Mail for alice and bob, with bob's mailbox full, reaches alice: bob's
// RCPT alone is refused with 452 4.2.2 (RFC 5321 section 4.5.3.1.10, RFC
// 3463 X.2.2), so the sending MTA keeps trying bob later. Before, DATA got
// "552 5.2.2 Mailbox full" and the sender bounced the message for alice
// too. Both kinds of quota count, reached exactly or exceeded.
func TestMXFullRecipientRefusedAlone(t *testing.T) {
	for _, c := range []struct {
		name                 string
		quotaBytes, quotaMsg func(used int64) int64 // from bob's usage after one message
	}{
		{"messages reached", func(int64) int64 { return 0 }, func(int64) int64 { return 1 }},
		{"bytes reached", func(u int64) int64 { return u }, func(int64) int64 { return 0 }},
		{"bytes exceeded", func(int64) int64 { return 1 }, func(int64) int64 { return 0 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			_, addr := e.start(t, nil, Config{}, false)
			w := dialWire(t, addr)
			w.cmd("EHLO client.test", "250 ")
			w.cmd("MAIL FROM:<s@r.test>", "250 ")
			w.cmd("RCPT TO:<bob@x.test>", "250 ")
			w.deliver(msg("s@r.test", "bob@x.test", "fills-bob"))
			bob, err := e.store.GetAccount(ctx, "bob@x.test")
			if err != nil {
				t.Fatal(err)
			}
			if err := e.store.SetQuota(ctx, "bob@x.test", c.quotaBytes(bob.UsedBytes), c.quotaMsg(bob.UsedMessages)); err != nil {
				t.Fatal(err)
			}
			w = dialWire(t, addr)
			w.cmd("EHLO client.test", "250 ")
			w.cmd("MAIL FROM:<s@r.test>", "250 ")
			w.cmd("RCPT TO:<alice@x.test>", "250 ")
			w.cmd("RCPT TO:<bob@x.test>", "452 4.2.2 ")
			w.deliver(msg("s@r.test", "alice@x.test, bob@x.test", "both"))
			if n := len(e.mailbox(t, e.alice, "")); n != 1 {
				t.Fatalf("alice has %d messages, want 1", n)
			}
			if n := len(e.mailbox(t, e.bob, "")); n != 1 {
				t.Fatalf("bob has %d messages, want 1", n)
			}
		})
	}
}

// RFC 6531 section 3.4: a UTF-8 address in the envelope only after MAIL
// named SMTPUTF8; without it the sender gets 553 5.6.7, and a server that
// accepted it would pass on an envelope the next hop may not handle.
func TestMXUTF8AddressNeedsSMTPUTF8(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{}, false)
	w := dialWire(t, addr)
	w.cmd("EHLO client.test", "250 ")
	w.cmd("MAIL FROM:<jürgen@remote.test>", "553 5.6.7 ")
	w.cmd("MAIL FROM:<s@remote.test>", "250 ")
	w.cmd("RCPT TO:<jörg@x.test>", "553 5.6.7 ")
	w.cmd("RSET", "250 ")
	w.cmd("MAIL FROM:<jürgen@remote.test> SMTPUTF8", "250 ")
	w.cmd("RCPT TO:<bob@x.test>", "250 ")
	w.cmd("RSET", "250 ")
	// The flag belongs to the transaction: after RSET it is gone.
	w.cmd("MAIL FROM:<s@remote.test>", "250 ")
	w.cmd("RCPT TO:<jörg@x.test>", "553 5.6.7 ")
}

// A message whose bytes arrive steadily but slowly must not time out as a
// whole: the read timeout is per read (RFC 5321 sections 4.5.3.2.6-7
// time each block), not per DATA command, or a big message on a slow
// link could never be delivered.
func TestMXSlowDataWithinReadTimeout(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{ReadTimeout: time.Second}, false)
	w := dialWire(t, addr)
	w.cmd("EHLO client.test", "250 ")
	w.cmd("MAIL FROM:<s@remote.test>", "250 ")
	w.cmd("RCPT TO:<bob@x.test>", "250 ")
	w.cmd("DATA", "354 ")
	w.send("Subject: slow\r\n")
	for range 10 { // 2 s in all, a line every 200 ms
		time.Sleep(200 * time.Millisecond)
		w.send("line")
	}
	w.cmd(".", "250 ")
	if n := len(e.mailbox(t, e.bob, "")); n != 1 {
		t.Fatalf("bob has %d messages, want the slow one", n)
	}
}
