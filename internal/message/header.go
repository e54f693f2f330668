package message

import (
	"bytes"
	"strings"
)

// field is one header field as it sits in the raw bytes.
type field struct {
	name  string // as written, without the colon and trailing white space
	raw   []byte // the whole field: first line and continuation lines, with their line ends
	value []byte // everything after the colon, still folded
}

// header is a parsed header block, fields in their order.
type header []field

// get returns the first field called name (RFC 5322 section 1.2.2: field
// names are case-insensitive), unfolded and trimmed; "" when absent.
func (h header) get(name string) string {
	v, _ := h.lookup(name)
	return v
}

// lookup is get that also tells whether the field exists.
func (h header) lookup(name string) (string, bool) {
	for i := range h {
		if strings.EqualFold(h[i].name, name) {
			return unfold(h[i].value), true
		}
	}
	return "", false
}

// headerEnd returns where the body of the entity b[start:end] starts: just
// after the first empty line (RFC 5322 section 2.1: the header is separated
// from the body by an empty line). A bare LF counts as a line end so that
// LF-only messages parse the same; without an empty line the whole entity
// is header and the body is empty.
func headerEnd(b []byte, start, end int) int {
	pos := start
	for pos < end {
		i := bytes.IndexByte(b[pos:end], '\n')
		if i < 0 {
			return end
		}
		if i == 0 || (i == 1 && b[pos] == '\r') {
			return pos + i + 1
		}
		pos += i + 1
	}
	return end
}

// parseHeader splits a header block (which may end with the empty line)
// into fields. Lines that are neither a field nor a continuation (no
// colon, or a name with white space or control characters inside, like an
// mbox "From " line) are skipped, as are continuation lines with no field
// to continue.
func parseHeader(b []byte) header {
	var h header
	cur := -1
	rawStart, valStart := 0, 0
	pos := 0
	for pos < len(b) {
		next := len(b)
		if i := bytes.IndexByte(b[pos:], '\n'); i >= 0 {
			next = pos + i + 1
		}
		line := b[pos:next]
		switch {
		case isBlankLine(line):
			return h
		case line[0] == ' ' || line[0] == '\t':
			// RFC 5322 section 2.2.3: a line starting with WSP continues the field.
			if cur >= 0 {
				h[cur].raw = b[rawStart:next]
				h[cur].value = b[valStart:next]
			}
		default:
			cur = -1
			if c := bytes.IndexByte(line, ':'); c > 0 {
				name := bytes.TrimRight(line[:c], " \t")
				if validFieldName(name) {
					h = append(h, field{name: string(name), raw: line, value: line[c+1:]})
					cur = len(h) - 1
					rawStart, valStart = pos, pos+c+1
				}
			}
		}
		pos = next
	}
	return h
}

func isBlankLine(line []byte) bool {
	return len(line) == 0 || line[0] == '\n' || (line[0] == '\r' && (len(line) == 1 || line[1] == '\n'))
}

// validFieldName reports whether n is an RFC 5322 section 3.6.8 field-name:
// printable US-ASCII except colon.
func validFieldName(n []byte) bool {
	if len(n) == 0 {
		return false
	}
	for _, c := range n {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// unfold undoes RFC 5322 section 2.2.3 folding (it removes the line ends and
// keeps the white space after them) and trims the value.
func unfold(v []byte) string {
	v = bytes.Trim(v, " \t\r\n")
	if bytes.IndexByte(v, '\n') < 0 {
		return string(v)
	}
	var sb strings.Builder
	sb.Grow(len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\n' || (c == '\r' && i+1 < len(v) && v[i+1] == '\n') {
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// HeaderFields returns the header lines (with folded continuation lines) of
// a header block whose names are in names (or not in names when not==true),
// then the blank line (CRLF). Names match case-insensitively (RFC 5322
// section 1.2.2). This is RFC 9051 section 6.4.5's HEADER.FIELDS and
// HEADER.FIELDS.NOT: the lines are returned byte for byte as stored; a last
// field that lacks a line end gets a CRLF so the empty line stays empty.
func HeaderFields(header []byte, names []string, not bool) []byte {
	var out []byte
	for _, f := range parseHeader(header) {
		match := false
		for _, n := range names {
			if strings.EqualFold(f.name, n) {
				match = true
				break
			}
		}
		if match == not {
			continue
		}
		out = append(out, f.raw...)
		if out[len(out)-1] != '\n' {
			out = append(out, '\r', '\n')
		}
	}
	return append(out, '\r', '\n')
}
