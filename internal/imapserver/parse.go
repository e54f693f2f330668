package imapserver

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// The reader (conn.go) hands the parser one complete command: every line
// of it with literal data inlined after its "{n}" marker and CRLF, the final
// CRLF removed. Parsing is therefore a pure function of bytes, which is what
// the fuzz test exercises.

// parseError is a syntax error: the command is answered with BAD.
type parseError struct{ msg string }

func (e *parseError) Error() string { return e.msg }

type parser struct {
	b []byte
	i int
}

func (p *parser) errf(format string, args ...any) error {
	return &parseError{msg: fmt.Sprintf(format, args...)}
}

func (p *parser) eof() bool { return p.i >= len(p.b) }

func (p *parser) peek() byte {
	if p.i >= len(p.b) {
		return 0
	}
	return p.b[p.i]
}

func (p *parser) take(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) expect(c byte) error {
	if !p.take(c) {
		if p.eof() {
			return p.errf("expected %q, got end of command", c)
		}
		return p.errf("expected %q at offset %d", c, p.i)
	}
	return nil
}

func (p *parser) sp() error { return p.expect(' ') }

func (p *parser) end() error {
	if !p.eof() {
		return p.errf("unexpected characters at end of command")
	}
	return nil
}

// takeWord consumes a case-insensitive keyword when it is followed by a
// delimiter (or the end).
func (p *parser) takeWord(w string) bool {
	n := len(w)
	if p.i+n > len(p.b) || !strings.EqualFold(string(p.b[p.i:p.i+n]), w) {
		return false
	}
	if p.i+n < len(p.b) && isAtomChar(p.b[p.i+n]) {
		return false
	}
	p.i += n
	return true
}

// RFC 9051 section 9: ATOM-CHAR is any CHAR (%x01-7F) except
// atom-specials. Bytes above 0x7f are nevertheless accepted in atoms and
// astrings in general: RFC 6855 puts UTF-8 only in quoted strings and
// literals, but clients do send a UTF-8 mailbox name or user name
// unquoted, and refusing it would break them for no gain, since such a
// name goes back to clients quoted (or in modified UTF-7). Flags are the
// exception (flagAtom): a keyword is sent back as an atom to every client
// of the mailbox, so an 8-bit one would reach strict IMAP4rev1 parsers.
func isAtomChar(c byte) bool {
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return c > 0x1f && c != 0x7f
}

func isAstringChar(c byte) bool { return isAtomChar(c) || c == ']' }

func isListChar(c byte) bool { return isAtomChar(c) || c == ']' || c == '%' || c == '*' }

func (p *parser) run(ok func(byte) bool) string {
	start := p.i
	for p.i < len(p.b) && ok(p.b[p.i]) {
		p.i++
	}
	return string(p.b[start:p.i])
}

func (p *parser) atom() (string, error) {
	s := p.run(isAtomChar)
	if s == "" {
		return "", p.errf("expected an atom at offset %d", p.i)
	}
	return s, nil
}

// tag: RFC 9051 section 9, 1*<any ASTRING-CHAR except "+">.
func (p *parser) tag() (string, error) {
	s := p.run(func(c byte) bool { return isAstringChar(c) && c != '+' })
	if s == "" {
		return "", p.errf("missing tag")
	}
	return s, nil
}

// quoted: RFC 9051 section 4.3, DQUOTE *QUOTED-CHAR DQUOTE.
func (p *parser) quoted() ([]byte, error) {
	if err := p.expect('"'); err != nil {
		return nil, err
	}
	var out []byte
	for {
		if p.eof() {
			return nil, p.errf("unterminated quoted string")
		}
		c := p.b[p.i]
		p.i++
		switch c {
		case '"':
			return out, nil
		case '\\':
			if p.eof() || (p.b[p.i] != '"' && p.b[p.i] != '\\') {
				return nil, p.errf("bad escape in quoted string")
			}
			out = append(out, p.b[p.i])
			p.i++
		case '\r', '\n', 0:
			return nil, p.errf("CR, LF or NUL in quoted string")
		default:
			out = append(out, c)
		}
	}
}

// literal parses "{n}", "{n+}", "{n-}" (RFC 7888) or "~{n}" (literal8,
// RFC 3516) followed by CRLF and n octets.
func (p *parser) literal() (data []byte, binary bool, err error) {
	binary = p.take('~')
	if err := p.expect('{'); err != nil {
		return nil, false, err
	}
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	n, err := strconv.ParseInt(string(p.b[start:p.i]), 10, 64)
	if err != nil || n < 0 {
		return nil, false, p.errf("bad literal length")
	}
	if !p.take('+') {
		p.take('-')
	}
	if err := p.expect('}'); err != nil {
		return nil, false, err
	}
	if !p.take('\r') || !p.take('\n') {
		return nil, false, p.errf("literal length not followed by CRLF")
	}
	if int64(len(p.b)-p.i) < n {
		return nil, false, p.errf("literal shorter than announced")
	}
	data = p.b[p.i : p.i+int(n)]
	p.i += int(n)
	if !binary {
		// RFC 9051 section 4.3: a literal (not literal8) holds no NUL.
		for _, c := range data {
			if c == 0 {
				return nil, false, p.errf("NUL in literal (use literal8)")
			}
		}
	}
	return data, binary, nil
}

// str parses a string: quoted or literal.
func (p *parser) str() ([]byte, error) {
	switch p.peek() {
	case '"':
		return p.quoted()
	case '{':
		d, _, err := p.literal()
		return d, err
	}
	return nil, p.errf("expected a string at offset %d", p.i)
}

func (p *parser) astring() (string, error) {
	switch p.peek() {
	case '"', '{':
		b, err := p.str()
		return string(b), err
	}
	s := p.run(isAstringChar)
	if s == "" {
		return "", p.errf("expected an astring at offset %d", p.i)
	}
	return s, nil
}

// nstring accepts NIL as well; ok is false for NIL.
func (p *parser) nstring() (s string, ok bool, err error) {
	if p.takeWord("NIL") {
		return "", false, nil
	}
	b, err := p.str()
	return string(b), true, err
}

// listMailbox: RFC 9051 section 9, 1*list-char / string.
func (p *parser) listMailbox() (string, error) {
	switch p.peek() {
	case '"', '{':
		b, err := p.str()
		return string(b), err
	}
	s := p.run(isListChar)
	if s == "" {
		return "", p.errf("expected a mailbox pattern at offset %d", p.i)
	}
	return s, nil
}

func (p *parser) digits() (string, error) {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	if p.i == start {
		return "", p.errf("expected a number at offset %d", p.i)
	}
	return string(p.b[start:p.i]), nil
}

func (p *parser) number() (uint32, error) {
	d, err := p.digits()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(d, 10, 32)
	if err != nil {
		return 0, p.errf("number out of range")
	}
	return uint32(n), nil
}

func (p *parser) nzNumber() (uint32, error) {
	n, err := p.number()
	if err == nil && n == 0 {
		return 0, p.errf("zero where a non-zero number is required")
	}
	return n, err
}

// number64: RFC 9051 section 9, 63-bit.
func (p *parser) number64() (uint64, error) {
	d, err := p.digits()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(d, 10, 63)
	if err != nil {
		return 0, p.errf("number out of range")
	}
	return n, nil
}

// seqRange is one range of a sequence set as the client wrote it, ends in
// any order. "*" has its own flag: 4294967295 is a valid nz-number (RFC
// 9051 section 9), so no number may stand for "*".
type seqRange struct {
	lo, hi         mailstore.UID
	loStar, hiStar bool
}

// numSet is a sequence set as the client wrote it, or "$" (RFC 5182
// SEARCHRES). Whether the numbers are sequence numbers or UIDs depends on
// the command.
type numSet struct {
	ranges []seqRange
	dollar bool
}

// withStar is the set with "*" replaced by star, each range ordered:
// RFC 9051 section 9, "*" is the largest number in use, and "a:b" is the
// same range as "b:a".
func (s numSet) withStar(star mailstore.UID) mailstore.UIDSet {
	out := make(mailstore.UIDSet, len(s.ranges))
	for i, r := range s.ranges {
		if r.loStar {
			r.lo = star
		}
		if r.hiStar {
			r.hi = star
		}
		out[i] = mailstore.UIDRange{Lo: min(r.lo, r.hi), Hi: max(r.lo, r.hi)}
	}
	return out
}

// seqSet: RFC 9051 section 9 sequence-set, or "$" (RFC 5182 section 2.1).
func (p *parser) seqSet() (numSet, error) {
	if p.take('$') {
		return numSet{dollar: true}, nil
	}
	var s numSet
	for {
		var r seqRange
		var err error
		if r.lo, r.loStar, err = p.seqNumber(); err != nil {
			return s, err
		}
		r.hi, r.hiStar = r.lo, r.loStar
		if p.take(':') {
			if r.hi, r.hiStar, err = p.seqNumber(); err != nil {
				return s, err
			}
		}
		s.ranges = append(s.ranges, r)
		if len(s.ranges) > 100000 {
			return s, p.errf("sequence set too long")
		}
		if !p.take(',') {
			return s, nil
		}
	}
}

func (p *parser) seqNumber() (n mailstore.UID, star bool, err error) {
	if p.take('*') {
		return 0, true, nil
	}
	u, err := p.nzNumber()
	return mailstore.UID(u), false, err
}

// flag: RFC 9051 section 9, "\" atom or a keyword atom.
func (p *parser) flag() (string, error) {
	if p.take('\\') {
		if p.take('*') {
			return `\*`, nil
		}
		a, err := p.flagAtom()
		return `\` + a, err
	}
	return p.flagAtom()
}

// flagAtom is an atom of ASCII only, as RFC 9051 section 9 defines
// ATOM-CHAR. Unlike other atoms (see isAtomChar) a flag is stored and then
// sent to every client as an atom, so an 8-bit keyword is refused (BAD)
// rather than passed on. A keyword stored before this check can still be
// cleared with STORE FLAGS, which replaces the whole list.
func (p *parser) flagAtom() (string, error) {
	s, err := p.atom()
	if err != nil {
		return "", err
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return "", p.errf("flag with a non-ASCII character")
		}
	}
	return s, nil
}

// flagList parses "(" [flag *(SP flag)] ")".
func (p *parser) flagList() ([]string, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	var flags []string
	for !p.take(')') {
		if len(flags) > 0 {
			if err := p.sp(); err != nil {
				return nil, err
			}
		}
		f, err := p.flag()
		if err != nil {
			return nil, err
		}
		flags = append(flags, f)
	}
	return flags, nil
}

// atomList parses "(" atom *(SP atom) ")" (also empty), upper-cased.
func (p *parser) atomList() ([]string, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	var out []string
	for !p.take(')') {
		if len(out) > 0 {
			if err := p.sp(); err != nil {
				return nil, err
			}
		}
		a, err := p.atom()
		if err != nil {
			return nil, err
		}
		out = append(out, strings.ToUpper(a))
	}
	return out, nil
}

var months = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// date: RFC 9051 section 9, date-text or DQUOTE date-text DQUOTE, in the
// server's zone (SEARCH dates disregard time and zone, section 6.4.4).
func (p *parser) date() (time.Time, error) {
	q := p.take('"')
	day, err := p.number()
	if err != nil || day < 1 || day > 31 {
		return time.Time{}, p.errf("bad day in date")
	}
	if err := p.expect('-'); err != nil {
		return time.Time{}, err
	}
	mon, err := p.month()
	if err != nil {
		return time.Time{}, err
	}
	if err := p.expect('-'); err != nil {
		return time.Time{}, err
	}
	year, err := p.number()
	if err != nil || year < 1000 || year > 9999 {
		return time.Time{}, p.errf("bad year in date")
	}
	if q {
		if err := p.expect('"'); err != nil {
			return time.Time{}, err
		}
	}
	return time.Date(int(year), mon, int(day), 0, 0, 0, 0, time.Local), nil
}

func (p *parser) month() (time.Month, error) {
	if p.i+3 > len(p.b) {
		return 0, p.errf("bad month in date")
	}
	m := strings.ToLower(string(p.b[p.i : p.i+3]))
	for i, name := range months {
		if m == name {
			p.i += 3
			return time.Month(i + 1), nil
		}
	}
	return 0, p.errf("bad month in date")
}

// dateTime: RFC 9051 section 9, DQUOTE date-day-fixed "-" date-month "-"
// date-year SP time SP zone DQUOTE.
func (p *parser) dateTime() (time.Time, error) {
	if err := p.expect('"'); err != nil {
		return time.Time{}, err
	}
	p.take(' ') // date-day-fixed may be SP DIGIT
	day, err := p.number()
	if err != nil || day < 1 || day > 31 {
		return time.Time{}, p.errf("bad day in date-time")
	}
	if err := p.expect('-'); err != nil {
		return time.Time{}, err
	}
	mon, err := p.month()
	if err != nil {
		return time.Time{}, err
	}
	if err := p.expect('-'); err != nil {
		return time.Time{}, err
	}
	year, err := p.number()
	if err != nil || year < 1000 || year > 9999 {
		return time.Time{}, p.errf("bad year in date-time")
	}
	if err := p.sp(); err != nil {
		return time.Time{}, err
	}
	var hms [3]uint32
	for i := range hms {
		if i > 0 {
			if err := p.expect(':'); err != nil {
				return time.Time{}, err
			}
		}
		if p.i+2 > len(p.b) {
			return time.Time{}, p.errf("bad time")
		}
		n, err := strconv.ParseUint(string(p.b[p.i:p.i+2]), 10, 8)
		if err != nil {
			return time.Time{}, p.errf("bad time")
		}
		hms[i] = uint32(n)
		p.i += 2
	}
	if hms[0] > 23 || hms[1] > 59 || hms[2] > 60 {
		return time.Time{}, p.errf("bad time")
	}
	if err := p.sp(); err != nil {
		return time.Time{}, err
	}
	sign := 1
	switch {
	case p.take('+'):
	case p.take('-'):
		sign = -1
	default:
		return time.Time{}, p.errf("bad zone")
	}
	if p.i+4 > len(p.b) {
		return time.Time{}, p.errf("bad zone")
	}
	z, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 10, 16)
	if err != nil || z%100 > 59 {
		return time.Time{}, p.errf("bad zone")
	}
	p.i += 4
	if err := p.expect('"'); err != nil {
		return time.Time{}, err
	}
	off := sign * (int(z/100)*3600 + int(z%100)*60)
	return time.Date(int(year), mon, int(day), int(hms[0]), int(hms[1]), int(hms[2]), 0, time.FixedZone("", off)), nil
}
