package queue

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// send delivers raw for entry e and returns one result per recipient,
// aligned with e.Recipients. RFC 5321 section 5.1: the client tries each
// of the domain's MX hosts in order "until a delivery attempt succeeds".
// A host that answers but refuses some recipients for now (4xx to MAIL,
// RCPT or DATA: greylisting, overload, a 421 shutdown) has not succeeded
// for them, so, as Postfix does, they are offered to the next host; its
// successes and permanent failures stand. A recipient still waiting after
// the last host keeps that host's reply, which becomes the entry's last
// error. A transport-map or smarthost route is one hop, tried once.
func (q *Queue) send(ctx context.Context, e mailstore.QueueEntry, raw []byte) []rcptResult {
	hops, rerr := q.route(ctx, e.Domain)
	if rerr != nil {
		return allResults(e.Recipients, rerr.perm, rerr.status, rerr.msg, "", false)
	}
	final := make([]rcptResult, len(e.Recipients))
	pending := make([]int, len(e.Recipients)) // indexes into e.Recipients
	for i := range pending {
		pending[i] = i
	}
	for _, h := range hops {
		sub := pendingEntry(e, pending)
		res, err := q.deliverTo(ctx, h, sub, raw, false)
		var tlsErr *tlsFailure
		if errors.As(err, &tlsErr) {
			// RFC 7435 section 3 (opportunistic security): a failed
			// STARTTLS falls back to cleartext rather than not delivering.
			q.log.Info("STARTTLS failed, retrying in cleartext", "host", h.host, "err", tlsErr.err)
			res, err = q.deliverTo(ctx, h, sub, raw, true)
		}
		if err != nil {
			q.log.Info("connection to next hop failed", "entry", e.ID, "host", h.addr, "err", err)
			// RFC 5321 section 4.4.1 / RFC 3463 X.4.1: no answer from host.
			res = allResults(sub.Recipients, false, "4.4.1", "connection to "+h.host+" failed: "+shortNetError(err), "", false)
		}
		var still []int
		for j, i := range pending {
			final[i] = res[j]
			if !res[j].ok && !res[j].perm {
				still = append(still, i)
			}
		}
		pending = still
		if len(pending) == 0 || ctx.Err() != nil {
			break
		}
		if err == nil {
			q.log.Info("next hop deferred recipients, trying the next", "entry", e.ID, "host", h.addr, "rcpts", len(pending), "reply", final[pending[0]].diag)
		}
	}
	return final
}

// pendingEntry is e narrowed to the recipients at idx, each with its DSN
// parameters (RFC 3461 section 5.2.1: they go with the recipient to
// whichever hop takes it).
func pendingEntry(e mailstore.QueueEntry, idx []int) mailstore.QueueEntry {
	if len(idx) == len(e.Recipients) {
		return e
	}
	sub := e
	sub.Recipients, sub.RcptDSN = make([]string, len(idx)), nil
	for j, i := range idx {
		sub.Recipients[j] = e.Recipients[i]
	}
	if len(e.RcptDSN) == len(e.Recipients) {
		sub.RcptDSN = make([]mailstore.RcptDSN, len(idx))
		for j, i := range idx {
			sub.RcptDSN[j] = e.RcptDSN[i]
		}
	}
	return sub
}

// tlsFailure marks a STARTTLS handshake failure (the connection is gone).
type tlsFailure struct{ err error }

func (t *tlsFailure) Error() string { return "STARTTLS: " + t.err.Error() }

// smtpConn is one client connection.
type smtpConn struct {
	nc      net.Conn
	text    *textproto.Conn
	timeout time.Duration
}

type smtpReply struct {
	code  int
	msg   string   // lines joined by spaces, cleaned
	lines []string // the reply's text lines as received
}

func (r smtpReply) String() string { return strconv.Itoa(r.code) + " " + r.msg }

// status is the reply's enhanced status code (RFC 2034) or one derived
// from the basic code.
func (r smtpReply) status() string {
	// RFC 3463 section 2 / RFC 2034 section 4: the enhanced code's class
	// must agree with the reply code's; a disagreeing one is ignored.
	if f, _, _ := strings.Cut(r.msg, " "); len(f) >= 5 && len(f) <= 11 && f[0] == byte('0'+r.code/100) && f[1] == '.' {
		parts := strings.Split(f, ".")
		if len(parts) == 3 {
			ok := true
			for _, p := range parts {
				if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
					ok = false
				}
			}
			if ok {
				return f
			}
		}
	}
	return strconv.Itoa(r.code/100) + ".0.0"
}

func (c *smtpConn) deadline(d time.Duration) { c.nc.SetDeadline(time.Now().Add(d)) }

func (c *smtpConn) read() (smtpReply, error) {
	c.deadline(c.timeout)
	code, msg, err := c.text.ReadResponse(0)
	if err != nil {
		var te *textproto.Error
		if !errors.As(err, &te) {
			return smtpReply{}, err
		}
	}
	return smtpReply{code: code, msg: cleanReply(msg), lines: strings.Split(msg, "\n")}, nil
}

func (c *smtpConn) cmd(format string, args ...any) (smtpReply, error) {
	c.deadline(c.timeout)
	if err := c.text.PrintfLine(format, args...); err != nil {
		return smtpReply{}, err
	}
	return c.read()
}

// ehlo says EHLO (HELO if refused, RFC 5321 section 4.1.1.1) and returns
// the extensions, keyed upper case.
func (c *smtpConn) ehlo(name string) (map[string]string, error) {
	r, err := c.cmd("EHLO %s", name)
	if err != nil {
		return nil, err
	}
	if r.code != 250 {
		r, err = c.cmd("HELO %s", name)
		if err != nil {
			return nil, err
		}
		if r.code != 250 {
			return nil, fmt.Errorf("HELO refused: %s", r)
		}
		return map[string]string{}, nil
	}
	return parseExtensions(r.lines), nil
}

// parseExtensions reads an EHLO reply's lines (RFC 5321 section 4.1.1.1:
// the first is the greeting, each other an ehlo-keyword with parameters).
func parseExtensions(lines []string) map[string]string {
	ext := map[string]string{}
	for i, l := range lines {
		if i == 0 {
			continue
		}
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		if k != "" {
			ext[strings.ToUpper(k)] = strings.TrimSpace(v)
		}
	}
	return ext
}

// cleanReply makes a remote reply safe to log and to quote in a DSN: one
// line, printable ASCII, bounded.
func cleanReply(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			r = ' '
		case r < ' ' || r > '~':
			continue
		}
		if b.Len() >= 500 {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

func shortNetError(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		if op.Timeout() {
			return op.Op + ": timeout"
		}
		if op.Err != nil {
			return op.Op + ": " + cleanReply(op.Err.Error())
		}
	}
	return cleanReply(err.Error())
}

func needsSMTPUTF8(from string, rcpts []string) bool {
	if !mailstore.IsASCII(from) {
		return true
	}
	for _, r := range rcpts {
		if !mailstore.IsASCII(r) {
			return true
		}
	}
	return false
}

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// deliverTo runs one SMTP transaction with one host (RFC 5321 section
// 3.3). An error means the host could not be used (connection, greeting,
// EHLO, TLS, I/O): the caller tries the next one. Replies to MAIL, RCPT and
// DATA become per-recipient results.
func (q *Queue) deliverTo(ctx context.Context, h hop, e mailstore.QueueEntry, raw []byte, noTLS bool) (_ []rcptResult, err error) {
	from, rcpts := e.From, e.Recipients
	key := h.addr + "|" + strconv.FormatBool(noTLS)
	c, ext := q.conns.get(key)
	if c != nil {
		// A connection kept from an earlier delivery (connpool.go):
		// RSET clears it and shows that it is still alive. A peer that
		// vanished without closing gets rsetWait, not a command's
		// five minutes.
		stopRSET := context.AfterFunc(ctx, func() { c.nc.Close() })
		c.timeout = min(q.cfg.CommandTimeout, rsetWait)
		rep, err := c.cmd("RSET")
		c.timeout = q.cfg.CommandTimeout
		if !stopRSET() || err != nil || rep.code != 250 {
			c.nc.Close()
			c = nil
		}
	}
	if c == nil {
		if c, ext, err = q.dial(ctx, h, noTLS); err != nil {
			return nil, err
		}
	}
	stop := context.AfterFunc(ctx, func() { c.nc.Close() })
	// reuse is set where a transaction has ended cleanly: the connection
	// then waits for the next delivery to this hop instead of closing.
	reuse := false
	// closing: the host answered 421, RFC 5321 section 3.8: it is closing
	// the transmission channel, so the connection cannot be kept.
	closing := false
	defer func() {
		if stop() && reuse && !closing {
			q.conns.put(key, c, ext)
			return
		}
		c.nc.Close()
	}()

	results := make([]rcptResult, len(rcpts))
	for i, r := range rcpts {
		results[i] = rcptResult{rcpt: r, remoteMTA: h.host, smtpDiag: true}
	}
	setAll := func(idx []int, rep smtpReply) {
		if rep.code == 421 {
			closing = true
		}
		for _, i := range idx {
			results[i].ok = rep.code/100 == 2
			results[i].perm = rep.code/100 == 5
			results[i].status = rep.status()
			results[i].diag = rep.String()
		}
	}
	all := make([]int, len(rcpts))
	for i := range all {
		all[i] = i
	}

	utf8 := needsSMTPUTF8(from, rcpts)
	if _, ok := ext["SMTPUTF8"]; utf8 && !ok {
		// RFC 6531 section 3.2: without SMTPUTF8 the message cannot be
		// relayed; X.6.7 (RFC 6531 section 3.6).
		for i := range results {
			results[i] = rcptResult{rcpt: rcpts[i], perm: true, status: "5.6.7", diag: "next hop " + h.host + " does not support SMTPUTF8", remoteMTA: h.host}
		}
		reuse = true
		return results, nil
	}
	if v, ok := ext["SIZE"]; ok {
		if max, err := strconv.ParseInt(v, 10, 64); err == nil && max > 0 && int64(len(raw)) > max {
			// RFC 1870 section 6.
			for i := range results {
				results[i] = rcptResult{rcpt: rcpts[i], perm: true, status: "5.3.4", diag: fmt.Sprintf("message size %d exceeds the fixed limit %d of %s", len(raw), max, h.host), remoteMTA: h.host}
			}
			reuse = true
			return results, nil
		}
	}
	mail := "MAIL FROM:<" + from + ">"
	if _, ok := ext["8BITMIME"]; ok && has8bit(raw) {
		mail += " BODY=8BITMIME" // RFC 6152
	}
	if _, ok := ext["SIZE"]; ok {
		mail += " SIZE=" + strconv.Itoa(len(raw)) // RFC 1870
	}
	if utf8 {
		mail += " SMTPUTF8" // RFC 6531 section 3.4
	}
	// RFC 3461 section 5.2.1 (relay to a DSN-capable hop): RET and ENVID
	// go on with MAIL, NOTIFY and ORCPT with each RCPT, so the next hop
	// reports as the sender asked. Without DSN there, they are dropped and
	// we report success ourselves ("relayed", section 5.2.3).
	_, dsn := ext["DSN"]
	if dsn {
		mail += mailDSNParams(e)
	}
	rcptCmd := func(i int) string {
		cmd := "RCPT TO:<" + rcpts[i] + ">"
		if dsn {
			cmd += rcptDSNParams(rcptDSN(e, i))
		}
		return cmd
	}
	_, pipelining := ext["PIPELINING"]
	var mailRep smtpReply
	rcptReps := make([]smtpReply, len(rcpts))
	if pipelining {
		// RFC 2920 section 3.1: MAIL and the RCPTs go in one group.
		c.deadline(q.cfg.CommandTimeout)
		w := c.text.W
		w.WriteString(mail + "\r\n")
		for i := range rcpts {
			w.WriteString(rcptCmd(i) + "\r\n")
		}
		if err := w.Flush(); err != nil {
			return nil, err
		}
		if mailRep, err = c.read(); err != nil {
			return nil, err
		}
		for i := range rcpts {
			if rcptReps[i], err = c.read(); err != nil {
				return nil, err
			}
		}
	} else {
		if mailRep, err = c.cmd("%s", mail); err != nil {
			return nil, err
		}
		if mailRep.code/100 == 2 {
			for i := range rcpts {
				if rcptReps[i], err = c.cmd("%s", rcptCmd(i)); err != nil {
					return nil, err
				}
			}
		}
	}
	if mailRep.code/100 != 2 {
		setAll(all, mailRep)
		reuse = true
		return results, nil
	}
	var accepted []int
	for i, rep := range rcptReps {
		if rep.code/100 == 2 {
			accepted = append(accepted, i)
			results[i].dsnRelayed = dsn
			continue
		}
		setAll([]int{i}, rep)
		if rep.code == 552 {
			// RFC 5321 section 4.5.3.1.10: 552 to RCPT is RFC 821's
			// "too many recipients", which clients SHOULD treat as
			// temporary: the recipient waits for the next attempt,
			// as after 452. Its status takes class 4 so that a delay
			// report agrees with it (RFC 3463 section 2: class 4 is a
			// persistent transient failure; section 3.6: X.5.3 is too
			// many recipients).
			results[i].perm = false
			if st := results[i].status; strings.HasPrefix(st, "5.") {
				results[i].status = "4." + st[2:]
			}
		}
	}
	if len(accepted) == 0 {
		reuse = true
		return results, nil
	}
	rep, err := c.cmd("DATA")
	if err != nil {
		return nil, err
	}
	if rep.code != 354 {
		setAll(accepted, rep)
		reuse = true
		return results, nil
	}
	c.deadline(q.cfg.DataTimeout)
	// RFC 5321 section 4.5.2: dot-stuffing; the DotWriter also ends
	// lines with CRLF and writes the final ".".
	dw := c.text.DotWriter()
	if _, err := dw.Write(raw); err != nil {
		return nil, err
	}
	if err := dw.Close(); err != nil {
		return nil, err
	}
	c.timeout = q.cfg.DataTimeout
	rep, err = c.read()
	c.timeout = q.cfg.CommandTimeout
	if err != nil {
		return nil, err
	}
	setAll(accepted, rep)
	reuse = true
	return results, nil
}

// rsetWait bounds the RSET that checks a kept connection.
const rsetWait = 30 * time.Second

// dial connects to hop h, reads its greeting, says EHLO and, unless noTLS,
// starts TLS where offered. An error means the host could not be used.
func (q *Queue) dial(ctx context.Context, h hop, noTLS bool) (*smtpConn, map[string]string, error) {
	d := net.Dialer{Timeout: q.cfg.DialTimeout, Resolver: q.resolver()}
	nc, err := d.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return nil, nil, err
	}
	c := &smtpConn{nc: nc, text: textproto.NewConn(nc), timeout: q.cfg.CommandTimeout}
	stop := context.AfterFunc(ctx, func() { c.nc.Close() })
	defer stop()
	ext, err := q.greet(ctx, c, h, noTLS)
	if err != nil {
		c.nc.Close()
		return nil, nil, err
	}
	return c, ext, nil
}

// greet runs a new connection up to its first transaction.
func (q *Queue) greet(ctx context.Context, c *smtpConn, h hop, noTLS bool) (map[string]string, error) {
	greet, err := c.read()
	if err != nil {
		return nil, err
	}
	if greet.code != 220 {
		// RFC 5321 section 3.1: a 554 greeting refuses service; try the
		// next host.
		return nil, fmt.Errorf("greeting: %s", greet)
	}
	ext, err := c.ehlo(q.cfg.Hostname)
	if err != nil {
		return nil, err
	}
	if _, ok := ext["STARTTLS"]; ok && !noTLS {
		r, err := c.cmd("STARTTLS")
		if err != nil {
			return nil, err
		}
		if r.code == 220 {
			// RFC 7435 / RFC 3207 section 4.1: opportunistic TLS to an
			// MX authenticates nothing (MX names are not authenticated
			// without DNSSEC/MTA-STS), so the certificate is not
			// verified; TLS still protects against passive listeners.
			tc := tls.Client(c.nc, &tls.Config{ServerName: h.host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
			c.deadline(q.cfg.CommandTimeout)
			if err := tc.HandshakeContext(ctx); err != nil {
				return nil, &tlsFailure{err}
			}
			c.nc = tc
			c.text = textproto.NewConn(tc)
			// RFC 3207 section 4.2: forget what was learned before TLS.
			if ext, err = c.ehlo(q.cfg.Hostname); err != nil {
				return nil, err
			}
		}
	}
	return ext, nil
}

// mailDSNParams is MAIL's RET and ENVID parameters for e (RFC 3461
// sections 4.3, 4.4), each with a leading space; "" when it has none.
func mailDSNParams(e mailstore.QueueEntry) string {
	var p string
	if ret := strings.ToUpper(e.Ret); ret == "FULL" || ret == "HDRS" {
		p += " RET=" + ret
	}
	if e.EnvID != "" {
		p += " ENVID=" + xtext(e.EnvID)
	}
	return p
}

// rcptDSNParams is RCPT's NOTIFY and ORCPT parameters (RFC 3461
// sections 4.1, 4.2), each with a leading space; "" when it has none.
func rcptDSNParams(d mailstore.RcptDSN) string {
	var p string
	var notify []string
	for _, n := range d.Notify {
		switch n = strings.ToUpper(n); n {
		case notifyNever, notifySuccess, notifyFailure, notifyDelay:
			notify = append(notify, n)
		}
	}
	if len(notify) > 0 {
		p += " NOTIFY=" + strings.Join(notify, ",")
	}
	if atype, addr, ok := strings.Cut(d.ORcpt, ";"); ok && addr != "" {
		switch strings.ToLower(atype) {
		case "rfc822":
			p += " ORCPT=rfc822;" + xtext(addr)
		case "utf-8":
			// RFC 6533 section 3: utf-8-addr-xtext.
			p += " ORCPT=utf-8;" + utf8AddrXtext(addr)
		}
	}
	return p
}

// xtext encodes s as RFC 3461 section 4 xtext: "+" and two upper-case hex
// digits for every byte outside "!".."~" and for "+" and "=".
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			fmt.Fprintf(&b, "+%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// utf8AddrXtext encodes s as RFC 6533 section 3 utf-8-addr-xtext:
// "\x{HEX}" for non-ASCII characters, controls, space, "+", "=" and "\".
func utf8AddrXtext(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < '!' || r > '~' || r == '+' || r == '=' || r == '\\' {
			fmt.Fprintf(&b, "\\x{%02X}", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
