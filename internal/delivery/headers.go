package delivery

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"
)

// HeaderEnd returns the offset of the blank line that ends the header
// section (RFC 5322 section 2.1), or len(raw) when there is none (a message
// that is all header). The returned offset is where the body separator
// starts, so raw[:HeaderEnd(raw)] is the header block with its last CRLF.
func HeaderEnd(raw []byte) int {
	off := 0
	for off < len(raw) {
		if raw[off] == '\n' || (raw[off] == '\r' && off+1 < len(raw) && raw[off+1] == '\n') {
			return off
		}
		i := bytes.IndexByte(raw[off:], '\n')
		if i < 0 {
			return len(raw)
		}
		off += i + 1
	}
	return len(raw)
}

// headerFields calls fn for each header field of raw's header section with
// its name and unfolded value; fn returns false to stop.
func headerFields(raw []byte, fn func(name, value string) bool) {
	hdr := raw[:HeaderEnd(raw)]
	var name string
	var val strings.Builder
	have := false
	flush := func() bool {
		if !have {
			return true
		}
		have = false
		return fn(name, strings.TrimSpace(val.String()))
	}
	for len(hdr) > 0 {
		line := hdr
		if i := bytes.IndexByte(hdr, '\n'); i >= 0 {
			line, hdr = hdr[:i], hdr[i+1:]
		} else {
			hdr = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			// RFC 5322 section 2.2.3: a folded continuation line.
			if have {
				val.WriteByte(' ')
				val.Write(bytes.TrimSpace(line))
			}
			continue
		}
		if !flush() {
			return
		}
		n, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue // not a field; tolerated, never refused
		}
		name = string(bytes.TrimSpace(n))
		val.Reset()
		val.Write(v)
		have = true
	}
	flush()
}

// CountReceived counts the Received: fields of the header, the hop count
// RFC 5321 section 6.3 uses to detect mail loops.
func CountReceived(raw []byte) int {
	n := 0
	headerFields(raw, func(name, _ string) bool {
		if strings.EqualFold(name, "Received") {
			n++
		}
		return true
	})
	return n
}

// HeaderValue returns the unfolded value of the first field named name.
func HeaderValue(raw []byte, name string) (string, bool) {
	var out string
	found := false
	headerFields(raw, func(n, v string) bool {
		if strings.EqualFold(n, name) {
			out, found = v, true
			return false
		}
		return true
	})
	return out, found
}

// fromParser reads only the addresses of a From: field. net/mail decodes
// RFC 2047 encoded words in display names and, with no CharsetReader for
// the charset, fails the whole list, so a display name in windows-1252 or
// iso-2022-jp would hide a perfectly good address. The display name is
// never used, so its bytes are passed through undecoded.
var fromParser = &mail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
}}

// FromAddresses returns the addresses of the From: field (RFC 5322 section
// 3.6.2), lower-cased. ok is false when the field is missing, does not
// parse as an address list, or appears more than once.
func FromAddresses(raw []byte) (addrs []string, ok bool) {
	var v string
	n := 0
	headerFields(raw, func(name, value string) bool {
		if strings.EqualFold(name, "From") {
			v = value
			n++
		}
		return n < 2
	})
	// RFC 5322 section 3.6: exactly one From: field. A second one is
	// refused, not ignored: mail programs differ in which one they show,
	// so checking only the first would let a submitter appear as someone
	// else (RFC 7489 section 6.6.1 names it a spoofing vector).
	if n != 1 {
		return nil, false
	}
	list, err := fromParser.ParseList(v)
	if err != nil || len(list) == 0 {
		return nil, false
	}
	for _, a := range list {
		addrs = append(addrs, strings.ToLower(a.Address))
	}
	return addrs, true
}

// Trace is what a Received: field records about the hop (RFC 5321 section
// 4.4).
type Trace struct {
	Helo     string // the client's EHLO/HELO argument
	RemoteIP string // the client's IP address
	// Protocol is the "with" keyword: SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA
	// (RFC 3848).
	Protocol string
	TLS      string // e.g. "TLS1.3 TLS_AES_128_GCM_SHA256"; "" without TLS
	ID       string // the transaction id; "" makes a random one
}

// ReceivedHeader renders a Received: field with its CRLF. The "for" clause
// names the recipient only when there is exactly one, so a message to
// several recipients does not disclose the others (RFC 5321 section 4.4
// and section 7.2).
func ReceivedHeader(t Trace, hostname string, rcpts []string, now time.Time) string {
	var b strings.Builder
	b.WriteString("Received: from ")
	helo := sanitizeToken(t.Helo, 255)
	if helo == "" {
		helo = "unknown"
	}
	b.WriteString(helo)
	if ip := sanitizeToken(t.RemoteIP, 64); ip != "" {
		// RFC 5321 section 4.4: TCP-info is the address literal, which
		// for IPv6 carries its tag (section 4.1.3: "[IPv6:" addr "]").
		if strings.Contains(ip, ":") {
			ip = "IPv6:" + ip
		}
		fmt.Fprintf(&b, " ([%s])", ip)
	}
	b.WriteString("\r\n\tby ")
	b.WriteString(sanitizeToken(hostname, 255))
	b.WriteString(" (Roost)")
	proto := sanitizeToken(t.Protocol, 16)
	if proto == "" {
		proto = "ESMTP"
	}
	b.WriteString(" with ")
	b.WriteString(proto)
	id := sanitizeToken(t.ID, 64)
	if id == "" {
		id = NewID()
	}
	b.WriteString(" id ")
	b.WriteString(id)
	if tls := sanitizeComment(t.TLS, 100); tls != "" {
		fmt.Fprintf(&b, "\r\n\t(%s)", tls)
	}
	if len(rcpts) == 1 {
		if r := sanitizeToken(rcpts[0], 320); r != "" {
			fmt.Fprintf(&b, "\r\n\tfor <%s>", r)
		}
	}
	b.WriteString("; ")
	b.WriteString(now.Format(time.RFC1123Z))
	b.WriteString("\r\n")
	return b.String()
}

// sanitizeToken keeps a client-supplied value from breaking the header:
// only printable non-space characters (UTF-8 allowed, RFC 6532) with
// structure characters that would end the token removed, bounded in length.
func sanitizeToken(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '(' || r == ')' || r == ';' || r == '<' || r == '>' || r == '\\' || r == '"' || r == 0xfffd {
			continue
		}
		if b.Len() >= max {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// sanitizeComment is sanitizeToken for text inside a comment: spaces are
// kept, parentheses are not.
func sanitizeComment(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if r < ' ' || r == 0x7f || r == '(' || r == ')' || r == '\\' || r == 0xfffd {
			continue
		}
		if b.Len() >= max {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// NewID returns a random transaction/queue id.
func NewID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewMessageID returns a Message-ID value (with angle brackets) under
// hostname (RFC 5322 section 3.6.4).
func NewMessageID(hostname string) string {
	var b [16]byte
	rand.Read(b[:])
	h := sanitizeToken(hostname, 255)
	if h == "" {
		h = "localhost"
	}
	return "<" + hex.EncodeToString(b[:]) + "@" + h + ">"
}

// CompleteSubmission adds the Message-ID: and Date: fields a submitted
// message lacks. RFC 6409 section 8.3 and 8.4 let a Message Submission
// Agent add them; RFC 5322 section 3.6 requires Date: and recommends
// Message-ID:. The original bytes are kept; new fields go in front.
func CompleteSubmission(raw []byte, hostname string, now time.Time) []byte {
	var add strings.Builder
	if _, ok := HeaderValue(raw, "Date"); !ok {
		add.WriteString("Date: " + now.Format(time.RFC1123Z) + "\r\n")
	}
	if _, ok := HeaderValue(raw, "Message-ID"); !ok {
		add.WriteString("Message-ID: " + NewMessageID(hostname) + "\r\n")
	}
	if add.Len() == 0 {
		return raw
	}
	out := make([]byte, 0, add.Len()+len(raw))
	out = append(out, add.String()...)
	return append(out, raw...)
}
