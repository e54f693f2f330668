package message

import "strings"

// parseMIMEValue splits a structured MIME field value such as a
// Content-Type or Content-Disposition into its value and parameters
// (RFC 2045 section 5.1, RFC 2183 section 2). It is lenient: comments are
// dropped (RFC 2045 allows them wherever RFC 822 did), parameter names are
// lower-cased, the first of duplicate parameters wins, quoted values are
// unquoted, and junk between parameters is skipped. RFC 2231 sections are
// joined (joinRFC2231); values are kept as written otherwise.
func parseMIMEValue(s string) (value string, params map[string]string) {
	i := 0
	var v strings.Builder
	for i < len(s) && s[i] != ';' {
		switch s[i] {
		case '(':
			i = skipComment(s, i)
		case '"':
			q, n := readQuoted(s, i)
			v.WriteString(q)
			i = n
		default:
			v.WriteByte(s[i])
			i++
		}
	}
	value = strings.TrimSpace(v.String())
	for i < len(s) {
		if s[i] == ';' {
			i++
		}
		i = skipCFWS(s, i)
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ';' && s[i] != '(' && !isWSP(s[i]) {
			i++
		}
		attr := strings.ToLower(s[start:i])
		i = skipCFWS(s, i)
		if i >= len(s) || s[i] != '=' {
			// Not attribute=value: skip to the next parameter.
			for i < len(s) && s[i] != ';' {
				i++
			}
			continue
		}
		i = skipCFWS(s, i+1)
		var val string
		if i < len(s) && s[i] == '"' {
			val, i = readQuoted(s, i)
		} else {
			start := i
			for i < len(s) && s[i] != ';' && s[i] != '(' && !isWSP(s[i]) {
				i++
			}
			val = s[start:i]
		}
		// Anything after the value up to the next ';' is junk.
		for i < len(s) && s[i] != ';' {
			if s[i] == '(' {
				i = skipComment(s, i)
				continue
			}
			i++
		}
		if attr == "" {
			continue
		}
		if params == nil {
			params = make(map[string]string)
		}
		if _, dup := params[attr]; !dup {
			params[attr] = val
		}
	}
	joinRFC2231(params)
	return value, params
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// skipCFWS skips white space and comments from i.
func skipCFWS(s string, i int) int {
	for i < len(s) {
		switch {
		case isWSP(s[i]):
			i++
		case s[i] == '(':
			i = skipComment(s, i)
		default:
			return i
		}
	}
	return i
}

// skipComment skips the (possibly nested, RFC 5322 section 3.2.2) comment
// opening at s[i]; an unterminated comment runs to the end.
func skipComment(s string, i int) int {
	_, n := readComment(s, i)
	return n
}

// readComment returns the text of the comment opening at s[i] (nested
// comments included as written, quoted-pairs undone) and the index after it.
func readComment(s string, i int) (string, int) {
	depth := 0
	var sb strings.Builder
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			sb.WriteByte(s[i])
			continue
		case c == '(':
			depth++
			if depth == 1 {
				continue
			}
		case c == ')':
			depth--
			if depth == 0 {
				return sb.String(), i + 1
			}
		}
		sb.WriteByte(c)
	}
	return sb.String(), i
}

// readQuoted returns the content of the quoted-string opening at s[i]
// (RFC 5322 section 3.2.4: quoted-pairs undone) and the index after it; an
// unterminated string runs to the end.
func readQuoted(s string, i int) (string, int) {
	var sb strings.Builder
	for i++; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			sb.WriteByte(s[i])
		case c == '"':
			return sb.String(), i + 1
		case c == '\r' || c == '\n':
			// Folding inside a quoted string: the line end goes, WSP stays.
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String(), i
}

// parseContentType returns the lower-cased media type and subtype of a
// Content-Type value and its parameters; ok is false when the value is not
// a type "/" subtype pair of RFC 2045 tokens.
func parseContentType(s string) (typ, sub string, params map[string]string, ok bool) {
	v, params := parseMIMEValue(s)
	slash := strings.IndexByte(v, '/')
	if slash < 0 {
		return "", "", nil, false
	}
	typ = strings.ToLower(strings.TrimSpace(v[:slash]))
	sub = strings.ToLower(strings.TrimSpace(v[slash+1:]))
	if !isToken(typ) || !isToken(sub) {
		return "", "", nil, false
	}
	return typ, sub, params, true
}

// isToken reports whether s is an RFC 2045 section 5.1 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}
