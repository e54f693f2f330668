package message

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// maxParamSections caps how many RFC 2231 sections (name*0 .. name*99)
// are joined into one value, so a hostile header cannot make one huge
// value out of many small parameters; sections past it stay as sent.
const maxParamSections = 100

// paramSection is one "name*N" or "name*N*" parameter.
type paramSection struct {
	name     string
	n        int
	key      string // the parameter as sent, removed once joined
	value    string
	extended bool // "name*N*": charset'language' prefix (N == 0) and %XX octets
}

// joinRFC2231 decodes RFC 2231 parameter value continuations in params
// (whose names are lower-cased), as RFC 9051 section 7.5.2 says a server
// SHOULD for body-fld-param: the sections name*0, name*1 ... (RFC 2231
// section 3) become one parameter "name", and when any section is
// extended (name*0*, name*1* ...: RFC 2231 section 4.1) one parameter
// "name*". A single "name*" parameter (RFC 2231 section 4) is kept as
// sent.
//
// The value of a joined "name*" stays in RFC 2231 form: charset'language'
// followed by the joined octets, percent-encoded where RFC 2231 section 7
// requires. Decoding it to text (as RFC 9051 section 7.5.2 also suggests)
// would put 8-bit text into a structure computed once at delivery and
// sent to every session, including those that have not enabled UTF-8
// (RFC 9051 section 6.3.1, RFC 6855); the encoded form is ASCII, which
// any client can receive, and clients that understand "name*" read it.
//
// Sections that cannot be joined are left as sent: numbers past
// maxParamSections, those after a gap in the numbering (RFC 2231 section
// 3 numbers them from 0 without gaps), a number sent both plain and
// extended, a joined name that is already a parameter, or a first
// extended section without its charset'language' prefix.
func joinRFC2231(params map[string]string) {
	var secs []paramSection
	for k, v := range params {
		if name, n, ext, ok := sectionOf(k); ok {
			secs = append(secs, paramSection{name, n, k, v, ext})
		}
	}
	if len(secs) == 0 {
		return
	}
	slices.SortFunc(secs, func(a, b paramSection) int {
		return cmp.Or(strings.Compare(a.name, b.name), a.n-b.n)
	})
	for len(secs) > 0 {
		end := 1
		for end < len(secs) && secs[end].name == secs[0].name {
			end++
		}
		joinSections(params, secs[:end])
		secs = secs[end:]
	}
}

// joinSections joins one name's sections, sorted by number.
func joinSections(params map[string]string, g []paramSection) {
	n := 0
	extended := false
	for n < len(g) && g[n].n == n {
		extended = extended || g[n].extended
		n++
	}
	if n == 0 || n < len(g) && g[n].n == n-1 {
		return // no section 0, or "name*N" and "name*N*" both sent
	}
	g = g[:n]
	key, value := g[0].name, ""
	if extended {
		key += "*"
		v, ok := joinExtended(g)
		if !ok {
			return
		}
		value = v
	} else {
		var sb strings.Builder
		for _, s := range g {
			sb.WriteString(s.value)
		}
		value = sb.String()
	}
	if _, dup := params[key]; dup {
		return
	}
	params[key] = value
	for _, s := range g {
		delete(params, s.key)
	}
}

// sectionOf splits a parameter name "name*N" or "name*N*" (RFC 2231
// section 3 and 4.1: N is 0 or a number without leading zeros).
func sectionOf(k string) (name string, n int, extended bool, ok bool) {
	if strings.HasSuffix(k, "*") {
		k, extended = k[:len(k)-1], true
	}
	star := strings.LastIndexByte(k, '*')
	if star <= 0 {
		return "", 0, false, false
	}
	digits := k[star+1:]
	if digits == "" || len(digits) > 2 || digits[0] == '0' && len(digits) > 1 {
		return "", 0, false, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || n >= maxParamSections {
		return "", 0, false, false
	}
	name = k[:star]
	if strings.IndexByte(name, '*') >= 0 {
		return "", 0, false, false
	}
	return name, n, extended, true
}

// joinExtended joins the sections of an extended value into RFC 2231
// form: the charset and language of section 0 (empty when it is not
// extended: RFC 2231 section 4.1 puts them only there), then every
// section's octets (%XX undone in extended sections), percent-encoded
// again as RFC 2231 section 7's extended-other-values.
func joinExtended(secs []paramSection) (string, bool) {
	var b strings.Builder
	first := secs[0].value
	if secs[0].extended {
		cs, rest, ok1 := strings.Cut(first, "'")
		lang, text, ok2 := strings.Cut(rest, "'")
		if !ok1 || !ok2 {
			return "", false
		}
		b.WriteString(cs + "'" + lang + "'")
		first = text
	} else {
		b.WriteString("''")
	}
	for i, s := range secs {
		v := s.value
		if i == 0 {
			v = first
		}
		for j := 0; j < len(v); j++ {
			c := v[j]
			if s.extended && c == '%' && j+2 < len(v) {
				if o, ok := unhex(v[j+1], v[j+2]); ok {
					c = o
					j += 2
				}
			}
			if isAttrChar(c) {
				b.WriteByte(c)
			} else {
				b.WriteByte('%')
				b.WriteByte("0123456789ABCDEF"[c>>4])
				b.WriteByte("0123456789ABCDEF"[c&15])
			}
		}
	}
	return b.String(), true
}

// isAttrChar reports whether c is an RFC 2231 section 7 attribute-char:
// US-ASCII except controls, space, "*", "'", "%" and the tspecials.
func isAttrChar(c byte) bool {
	return c > ' ' && c < 0x7f && strings.IndexByte(`*'%()<>@,;:\"/[]?=`, c) < 0
}
