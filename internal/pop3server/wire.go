package pop3server

import (
	"bufio"
	"bytes"

	"github.com/roost-mail/roost/internal/mailstore"
)

// The wire form of a stored message is what RETR sends before
// dot-stuffing: every line ends in CRLF, whether it was stored with CRLF or
// a bare LF, and a last line without a line end gets one. RFC 1939
// section 11: "if the POP3 server host internally represents end-of-line as
// a single character, then the POP3 server simply counts each occurrence of
// this character in a message as two octets" and "lines in the message
// which start with the termination octet need not (and must not) be counted
// twice". The store records this size at delivery (mailstore.LineSize,
// Message.LineSize); wireSize is the same count for a message whose size
// the store does not know. FuzzWriteMessage checks that the count matches
// what writeMessage sends, so LIST and STAT report what RETR sends.

// eachLine calls fn with every line of raw without its line end (LF, or
// CRLF). A final line without LF is passed whole (a trailing bare CR stays
// part of it). fn returns false to stop.
func eachLine(raw []byte, fn func(line []byte) bool) {
	for len(raw) > 0 {
		var line []byte
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			line, raw = raw, nil
		} else {
			line, raw = raw[:i], raw[i+1:]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
		}
		if !fn(line) {
			return
		}
	}
}

// wireSize is the octet count of raw in wire form.
func wireSize(raw []byte) int64 { return mailstore.LineSize(raw) }

// writeMessage writes raw in wire form, dot-stuffed (RFC 1939 section 3:
// "If any line of the multi-line response begins with the termination
// octet, the line is 'byte-stuffed' by pre-pending the termination octet to
// that line"), followed by the terminating ".\r\n". bodyLines < 0 sends the
// whole message; otherwise only the header, the blank line and that many
// body lines (RFC 1939 section 7, TOP). Errors are the writer's; bufio
// keeps the first and the caller checks it at Flush.
func writeMessage(w *bufio.Writer, raw []byte, bodyLines int) {
	inBody := false
	eachLine(raw, func(line []byte) bool {
		if inBody {
			if bodyLines == 0 {
				return false
			}
			bodyLines--
		} else if len(line) == 0 {
			inBody = true
		}
		if len(line) > 0 && line[0] == '.' {
			w.WriteByte('.')
		}
		w.Write(line)
		w.WriteString("\r\n")
		return true
	})
	w.WriteString(".\r\n")
}
