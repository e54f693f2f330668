package message

import "strings"

// Placeholders for the parts of an address that a broken header lacks, in
// the style of UW-IMAP's c-client: an ENVELOPE address with a NIL host
// would read as group syntax (RFC 9051 section 7.5.2), so a missing host
// cannot be left empty.
const (
	missingHost    = ".MISSING-HOST-NAME."
	missingMailbox = "MISSING_MAILBOX"
)

// Bounds on one address field: far above any real recipient list, they
// keep a hostile header from costing more than a few milliseconds. What
// lies beyond them is not reported in the ENVELOPE (the raw header is
// still there for BODY[HEADER] and SEARCH).
const (
	maxAddrTokens = 20000
	maxAddresses  = 2000
)

// tokKind classifies the lexical tokens of an RFC 5322 section 3.4 address.
type tokKind uint8

const (
	tkAtom    tokKind = iota // atext run (8-bit octets count as atext, RFC 6532)
	tkQuoted                 // quoted-string, content unquoted
	tkLiteral                // domain-literal, "[...]" as written
	tkSpecial                // one of < > @ : ; , .
)

type addrTok struct {
	kind  tokKind
	text  string
	space bool   // white space or a comment came before it
	cmt   string // the last comment right before it
}

// lexAddress splits an address header into tokens; comments are dropped
// but remembered (an old-style "user@host (Full Name)" names the mailbox
// in its comment). Returns the tokens and the comment after the last one.
func lexAddress(s string) ([]addrTok, string) {
	var toks []addrTok
	space := false
	cmt := ""
	for i := 0; i < len(s) && len(toks) < maxAddrTokens; {
		c := s[i]
		switch {
		case isWSP(c):
			space = true
			i++
			continue
		case c == '(':
			cmt, i = readComment(s, i)
			cmt = strings.TrimSpace(cmt)
			space = true
			continue
		case c == '"':
			var q string
			q, i = readQuoted(s, i)
			toks = append(toks, addrTok{kind: tkQuoted, text: q, space: space, cmt: cmt})
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				j = len(s) - i - 1
			}
			toks = append(toks, addrTok{kind: tkLiteral, text: s[i : i+j+1], space: space, cmt: cmt})
			i += j + 1
		case strings.IndexByte("<>@:;,.", c) >= 0:
			toks = append(toks, addrTok{kind: tkSpecial, text: s[i : i+1], space: space, cmt: cmt})
			i++
		default:
			j := i
			for j < len(s) && !isWSP(s[j]) && strings.IndexByte("()<>@:;,.\"[]", s[j]) < 0 {
				j++
			}
			if j == i { // a stray ']' or ')'
				j++
			}
			toks = append(toks, addrTok{kind: tkAtom, text: s[i:j], space: space, cmt: cmt})
			i = j
		}
		space, cmt = false, ""
	}
	return toks, cmt
}

// addrParser is a recursive-descent parser over address tokens that never
// fails: anything it cannot make sense of is skipped up to the next comma.
type addrParser struct {
	toks    []addrTok
	i       int
	lastCmt string // the comment after the last token
}

func (p *addrParser) peek() (addrTok, bool) {
	if p.i < len(p.toks) {
		return p.toks[p.i], true
	}
	return addrTok{}, false
}

func (p *addrParser) isSpecial(c string) bool {
	t, ok := p.peek()
	return ok && t.kind == tkSpecial && t.text == c
}

// parseAddressList parses an address-list (RFC 5322 section 3.4, with the
// obsolete forms of section 4.4: empty list elements, route-addrs, phrases
// with dots) into ENVELOPE address structures (RFC 9051 section 7.5.2).
// A group becomes a start marker (Mailbox = group name, no Host), its
// members, then an end marker (all empty). Strings stay as written: RFC
// 2047 encoded words are not decoded (RFC 9051 section 7.5.2 wants the
// raw header content).
func parseAddressList(s string) []Address {
	toks, last := lexAddress(s)
	p := &addrParser{toks: toks, lastCmt: last}
	var out []Address
	for p.i < len(p.toks) && len(out) < maxAddresses {
		if p.isSpecial(",") || p.isSpecial(";") || p.isSpecial(">") {
			p.i++
			continue
		}
		out = p.address(out, false)
	}
	return out
}

// address parses one address (mailbox or group) and appends it.
func (p *addrParser) address(out []Address, inGroup bool) []Address {
	start := p.i
	phrase := p.phrase()
	t, ok := p.peek()
	switch {
	case ok && t.kind == tkSpecial && t.text == ":" && !inGroup:
		// RFC 5322 section 3.4: group = display-name ":" [group-list] ";".
		p.i++
		name := phraseText(phrase)
		// A nameless group would render as a lone group end marker:
		// report its members without the markers.
		if name != "" {
			out = append(out, Address{Mailbox: name})
		}
		for p.i < len(p.toks) && !p.isSpecial(";") && len(out) < maxAddresses {
			if p.isSpecial(",") || p.isSpecial(">") || p.isSpecial(":") {
				p.i++
				continue
			}
			out = p.address(out, true)
		}
		p.i++ // the ";" (or past the end)
		if name != "" {
			out = append(out, Address{})
		}
		return out
	case ok && t.kind == tkSpecial && t.text == "<":
		p.i++
		a := p.angleAddr()
		a.Name = phraseText(phrase)
		if a.Name == "" {
			a.Name = p.trailingComment()
		}
		out = append(out, a)
	case ok && t.kind == tkSpecial && t.text == "@":
		// addr-spec: the phrase was the local part.
		p.i++
		a := Address{Mailbox: localText(phrase), Host: p.domain()}
		a.Name = p.trailingComment()
		out = append(out, fillMissing(a))
	default:
		if len(phrase) > 0 {
			// A lone word: a local part without a domain.
			a := Address{Mailbox: localText(phrase), Name: p.trailingComment()}
			out = append(out, fillMissing(a))
		}
	}
	// Recovery: skip whatever is left of this element. A ";" ends it too,
	// also outside a group, so that "a@x; b@y" keeps both mailboxes.
	for p.i < len(p.toks) && !p.isSpecial(",") && !p.isSpecial(";") {
		p.i++
	}
	if p.i == start { // guarantee progress
		p.i++
	}
	return out
}

// phrase collects the words and dots up to the next special that ends a
// display-name or local part.
func (p *addrParser) phrase() []addrTok {
	start := p.i
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		if t.kind == tkSpecial && t.text != "." {
			break
		}
		p.i++
	}
	return p.toks[start:p.i]
}

// angleAddr parses what follows "<": an optional obsolete route
// (RFC 5322 section 4.4, obs-route), then an addr-spec, up to ">".
func (p *addrParser) angleAddr() Address {
	var a Address
	if p.isSpecial("@") {
		start := p.i
		var adl strings.Builder
		for p.i < len(p.toks) && !p.isSpecial(":") && !p.isSpecial(">") {
			adl.WriteString(p.toks[p.i].text)
			p.i++
		}
		if p.isSpecial(":") {
			p.i++
			a.ADL = adl.String()
		} else {
			p.i = start // no route after all: "<@host>" lacks a local part
		}
	}
	local := p.phrase()
	a.Mailbox = localText(local)
	if p.isSpecial("@") {
		p.i++
		a.Host = p.domain()
	}
	for p.i < len(p.toks) && !p.isSpecial(">") && !p.isSpecial(",") {
		p.i++
	}
	if p.isSpecial(">") {
		p.i++
	}
	return fillMissing(a)
}

// domain reads a dot-atom or domain-literal (and the obsolete forms with
// white space between the dots), written without the white space.
func (p *addrParser) domain() string {
	var sb strings.Builder
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		if t.kind == tkSpecial && t.text != "." {
			break
		}
		sb.WriteString(t.text)
		p.i++
	}
	return sb.String()
}

// trailingComment returns the comment that follows the current position,
// used as the display name when there is none (old "addr (Name)" style).
func (p *addrParser) trailingComment() string {
	if p.i < len(p.toks) {
		return p.toks[p.i].cmt
	}
	return p.lastCmt
}

// fillMissing puts the placeholders in for a missing mailbox or host so
// that a mailbox never looks like a group marker.
func fillMissing(a Address) Address {
	if a.Mailbox == "" {
		a.Mailbox = missingMailbox
	}
	if a.Host == "" {
		a.Host = missingHost
	}
	return a
}

// phraseText renders a display-name: quoted strings unquoted, words joined
// by one space where the source had white space, dots kept where they were.
func phraseText(toks []addrTok) string {
	var sb strings.Builder
	for i, t := range toks {
		if i > 0 && t.space {
			sb.WriteByte(' ')
		}
		sb.WriteString(t.text)
	}
	return sb.String()
}

// localText renders a local part without its quoting (RFC 9051 section
// 9: addr-mailbox is the local-part "after removing [RFC-5322] quoting").
func localText(toks []addrTok) string {
	var sb strings.Builder
	for _, t := range toks {
		sb.WriteString(t.text)
	}
	return sb.String()
}
