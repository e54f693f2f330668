package imapserver

import (
	"strconv"

	"github.com/roost-mail/roost/internal/mailstore"
)

// Rendering of IMAP data items into a byte slice (RFC 9051 section 4).

// appendString renders s as a quoted string when it can be one, else as a
// literal. 8-bit text goes quoted only to UTF-8 clients (RFC 9051 section
// 4.3, RFC 6855 section 3).
func appendString(b []byte, s string, utf8OK bool) []byte {
	if canQuote(s, utf8OK) {
		b = append(b, '"')
		for i := 0; i < len(s); i++ {
			if s[i] == '"' || s[i] == '\\' {
				b = append(b, '\\')
			}
			b = append(b, s[i])
		}
		return append(b, '"')
	}
	b = append(b, '{')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, "}\r\n"...)
	return append(b, s...)
}

func canQuote(s string, utf8OK bool) bool {
	if len(s) > 1024 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' || c == 0 || (c >= 0x80 && !utf8OK) {
			return false
		}
	}
	return true
}

// appendNString renders "" as NIL.
func appendNString(b []byte, s string, utf8OK bool) []byte {
	if s == "" {
		return append(b, "NIL"...)
	}
	return appendString(b, s, utf8OK)
}

// appendLiteral renders data as a literal, or as literal8 when it holds
// NUL (RFC 3516 section 4.3).
func appendLiteral(b []byte, data []byte) []byte {
	for _, c := range data {
		if c == 0 {
			b = append(b, '~')
			break
		}
	}
	b = append(b, '{')
	b = strconv.AppendInt(b, int64(len(data)), 10)
	b = append(b, "}\r\n"...)
	return append(b, data...)
}

// appendMailbox renders a mailbox name: UTF-8 for clients that enabled
// IMAP4rev2 or UTF8=ACCEPT, modified UTF-7 otherwise (RFC 3501 section
// 5.1.3).
func (s *session) appendMailbox(b []byte, name string) []byte {
	if !s.utf8 && !s.rev2 {
		name = encodeMUTF7(name)
	}
	return appendString(b, name, true)
}

func appendFlags(b []byte, flags []string) []byte {
	b = append(b, '(')
	for i, f := range flags {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, f...)
	}
	return append(b, ')')
}

func appendUIDSet(b []byte, uids []mailstore.UID) []byte {
	return append(b, mailstore.CompactUIDs(uids).String()...)
}

func appendUint(b []byte, n uint64) []byte { return strconv.AppendUint(b, n, 10) }
