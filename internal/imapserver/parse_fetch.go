package imapserver

import (
	"strconv"
	"strings"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

type fetchArgs struct {
	set             numSet
	items           []fetchItem
	changedSince    uint64
	hasChangedSince bool
	vanished        bool // RFC 7162 section 3.2.6
}

// fetchItem is one fetch-att. Sectioned items are named "BODY[]" and
// "BINARY[]"; section holds the rest.
type fetchItem struct {
	name    string
	peek    bool
	section *section
	partial bool
	offset  int64
	count   int64
}

// section: RFC 9051 section 6.4.5.
type section struct {
	part   []int
	spec   string // "", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
	fields []string
}

// String renders the section the way the response echoes it.
func (s *section) String() string {
	var b strings.Builder
	for i, n := range s.part {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(n))
	}
	if s.spec != "" {
		if len(s.part) > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.spec)
	}
	if strings.HasPrefix(s.spec, "HEADER.FIELDS") {
		b.WriteString(" (")
		for i, f := range s.fields {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(f)
		}
		b.WriteByte(')')
	}
	return b.String()
}

// parseFetch: RFC 9051 section 6.4.5, RFC 7162 section 3.1.4 CHANGEDSINCE
// and section 3.2.6 VANISHED.
func parseFetch(p *parser) (fetchArgs, error) {
	var a fetchArgs
	var err error
	if err = p.sp(); err != nil {
		return a, err
	}
	if a.set, err = p.seqSet(); err != nil {
		return a, err
	}
	if err = p.sp(); err != nil {
		return a, err
	}
	switch {
	// RFC 9051 section 6.4.5: the macros.
	case p.takeWord("ALL"):
		a.items = macro("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE")
	case p.takeWord("FAST"):
		a.items = macro("FLAGS", "INTERNALDATE", "RFC822.SIZE")
	case p.takeWord("FULL"):
		a.items = macro("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY")
	case p.take('('):
		for first := true; !p.take(')'); first = false {
			if !first {
				if err = p.sp(); err != nil {
					return a, err
				}
			}
			it, err := parseFetchItem(p)
			if err != nil {
				return a, err
			}
			a.items = append(a.items, it)
		}
		if len(a.items) == 0 {
			return a, p.errf("empty fetch item list")
		}
	default:
		it, err := parseFetchItem(p)
		if err != nil {
			return a, err
		}
		a.items = []fetchItem{it}
	}
	if p.take(' ') {
		if err = p.expect('('); err != nil {
			return a, err
		}
		for first := true; !p.take(')'); first = false {
			if !first {
				if err = p.sp(); err != nil {
					return a, err
				}
			}
			switch {
			case p.takeWord("CHANGEDSINCE"):
				if err = p.sp(); err != nil {
					return a, err
				}
				if a.changedSince, err = p.number64(); err != nil {
					return a, err
				}
				a.hasChangedSince = true
			case p.takeWord("VANISHED"):
				a.vanished = true
			default:
				return a, p.errf("unknown FETCH modifier")
			}
		}
		if a.vanished && !a.hasChangedSince {
			// RFC 7162 section 3.2.6: VANISHED requires CHANGEDSINCE.
			return a, p.errf("VANISHED without CHANGEDSINCE")
		}
	}
	return a, nil
}

func macro(names ...string) []fetchItem {
	out := make([]fetchItem, len(names))
	for i, n := range names {
		out[i] = fetchItem{name: n}
	}
	return out
}

func parseFetchItem(p *parser) (fetchItem, error) {
	var it fetchItem
	name := strings.ToUpper(p.run(func(c byte) bool {
		return c == '.' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
	}))
	switch name {
	case "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.SIZE", "RFC822.TEXT",
		"BODYSTRUCTURE", "UID", "MODSEQ", "EMAILID", "THREADID", "SAVEDATE":
		it.name = name
		return it, nil
	case "PREVIEW":
		// RFC 8970 section 3.1: PREVIEW [SP "(" "LAZY" ")"].
		it.name = name
		if p.i+1 < len(p.b) && p.b[p.i] == ' ' && p.b[p.i+1] == '(' {
			save := p.i
			p.i += 2
			if p.takeWord("LAZY") && p.take(')') {
				return it, nil
			}
			p.i = save
		}
		return it, nil
	case "BODY":
		if p.peek() != '[' {
			it.name = name
			return it, nil
		}
		it.name = "BODY[]"
	case "BODY.PEEK":
		it.name, it.peek = "BODY[]", true
	case "BINARY", "BINARY.PEEK", "BINARY.SIZE":
		// RFC 3516 section 4.2.
		it.name, it.peek = "BINARY[]", name == "BINARY.PEEK"
		if name == "BINARY.SIZE" {
			it.name = "BINARY.SIZE"
		}
	case "":
		return it, p.errf("expected a fetch item at offset %d", p.i)
	default:
		return it, p.errf("unknown fetch item %s", name)
	}
	var err error
	if it.section, err = parseSection(p, it.name != "BODY[]"); err != nil {
		return it, err
	}
	if it.name != "BINARY.SIZE" && p.take('<') {
		o, err := p.number()
		if err != nil {
			return it, err
		}
		if err = p.expect('.'); err != nil {
			return it, err
		}
		n, err := p.nzNumber()
		if err != nil {
			return it, err
		}
		if err = p.expect('>'); err != nil {
			return it, err
		}
		it.partial, it.offset, it.count = true, int64(o), int64(n)
	}
	return it, nil
}

// parseSection parses "[" section-spec "]"; binary sections (RFC 3516
// section-binary) are part numbers only.
func parseSection(p *parser, binary bool) (*section, error) {
	if err := p.expect('['); err != nil {
		return nil, err
	}
	s := &section{}
	for p.peek() >= '0' && p.peek() <= '9' {
		n, err := p.nzNumber()
		if err != nil {
			return nil, err
		}
		if len(s.part) > 100 {
			return nil, p.errf("section too deep")
		}
		s.part = append(s.part, int(n))
		if !p.take('.') {
			break
		}
		if c := p.peek(); c < '0' || c > '9' {
			p.i-- // the dot belongs to a section-text
			break
		}
	}
	if binary {
		return s, p.expect(']')
	}
	if p.peek() != ']' {
		if len(s.part) > 0 && !p.take('.') {
			return nil, p.errf("bad section")
		}
		spec := strings.ToUpper(p.run(func(c byte) bool {
			return c == '.' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
		}))
		switch spec {
		case "HEADER", "TEXT":
		case "MIME":
			if len(s.part) == 0 {
				return nil, p.errf("MIME needs a part number")
			}
		case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
			if err := p.sp(); err != nil {
				return nil, err
			}
			if err := p.expect('('); err != nil {
				return nil, err
			}
			for first := true; !p.take(')'); first = false {
				if !first {
					if err := p.sp(); err != nil {
						return nil, err
					}
				}
				f, err := p.astring()
				if err != nil {
					return nil, err
				}
				s.fields = append(s.fields, strings.ToUpper(f))
			}
			if len(s.fields) == 0 {
				return nil, p.errf("empty header list")
			}
		default:
			return nil, p.errf("bad section %q", spec)
		}
		s.spec = spec
	}
	return s, p.expect(']')
}

// Private search ops: sequence sets, UID sets and "$" are resolved against
// the session's view before the key reaches the store.
const (
	searchSeqSet mailstore.SearchOp = 200 + iota
	searchUIDSet
	searchSaved
)

type searchArgs struct {
	hasReturn bool
	ret       []string // RFC 4731 return options, upper case
	charset   string
	key       *mailstore.SearchKey
	// sets holds, for each searchSeqSet and searchUIDSet key, the set as
	// the client wrote it: a mailstore.UIDSet has no way to mark "*".
	sets map[*mailstore.SearchKey]numSet
}

// parseSearch: RFC 9051 section 6.4.4, RFC 4731 RETURN, RFC 5182 SAVE.
func parseSearch(p *parser) (searchArgs, error) {
	var a searchArgs
	var err error
	if err = p.sp(); err != nil {
		return a, err
	}
	if p.takeWord("RETURN") {
		a.hasReturn = true
		if err = p.sp(); err != nil {
			return a, err
		}
		if a.ret, err = p.atomList(); err != nil {
			return a, err
		}
		for _, r := range a.ret {
			switch r {
			case "MIN", "MAX", "ALL", "COUNT", "SAVE":
			default:
				return a, p.errf("unknown RETURN option %s", r)
			}
		}
		if err = p.sp(); err != nil {
			return a, err
		}
	}
	if p.takeWord("CHARSET") {
		if err = p.sp(); err != nil {
			return a, err
		}
		if a.charset, err = p.astring(); err != nil {
			return a, err
		}
		if err = p.sp(); err != nil {
			return a, err
		}
	}
	root := &mailstore.SearchKey{Op: mailstore.SearchAnd}
	a.sets = map[*mailstore.SearchKey]numSet{}
	for {
		k, err := parseSearchKey(p, 0, a.sets)
		if err != nil {
			return a, err
		}
		root.Children = append(root.Children, k)
		if !p.take(' ') {
			break
		}
	}
	a.key = root
	if len(root.Children) == 1 {
		a.key = root.Children[0]
	}
	return a, nil
}

func parseSearchKey(p *parser, depth int, sets map[*mailstore.SearchKey]numSet) (*mailstore.SearchKey, error) {
	if depth > 50 {
		return nil, p.errf("search program nested too deeply")
	}
	if p.take('(') {
		k := &mailstore.SearchKey{Op: mailstore.SearchAnd}
		for first := true; !p.take(')'); first = false {
			if !first {
				if err := p.sp(); err != nil {
					return nil, err
				}
			}
			c, err := parseSearchKey(p, depth+1, sets)
			if err != nil {
				return nil, err
			}
			k.Children = append(k.Children, c)
		}
		if len(k.Children) == 0 {
			return nil, p.errf("empty search key list")
		}
		return k, nil
	}
	if c := p.peek(); c >= '0' && c <= '9' || c == '*' || c == '$' {
		s, err := p.seqSet()
		if err != nil {
			return nil, err
		}
		if s.dollar {
			return &mailstore.SearchKey{Op: searchSaved}, nil
		}
		k := &mailstore.SearchKey{Op: searchSeqSet}
		sets[k] = s
		return k, nil
	}
	word, err := p.atom()
	if err != nil {
		return nil, err
	}
	word = strings.ToUpper(word)
	flag := func(op mailstore.SearchOp, f string) (*mailstore.SearchKey, error) {
		return &mailstore.SearchKey{Op: op, Flag: f}, nil
	}
	arg := func() (string, error) {
		if err := p.sp(); err != nil {
			return "", err
		}
		return p.astring()
	}
	dateKey := func(op mailstore.SearchOp) (*mailstore.SearchKey, error) {
		if err := p.sp(); err != nil {
			return nil, err
		}
		d, err := p.date()
		return &mailstore.SearchKey{Op: op, Date: d}, err
	}
	header := func(name string) (*mailstore.SearchKey, error) {
		v, err := arg()
		return &mailstore.SearchKey{Op: mailstore.SearchHeader, Name: name, Value: v}, err
	}
	num := func() (uint64, error) {
		if err := p.sp(); err != nil {
			return 0, err
		}
		return p.number64()
	}
	switch word {
	case "ALL":
		return &mailstore.SearchKey{Op: mailstore.SearchAll}, nil
	case "ANSWERED":
		return flag(mailstore.SearchFlag, mailstore.FlagAnswered)
	case "DELETED":
		return flag(mailstore.SearchFlag, mailstore.FlagDeleted)
	case "DRAFT":
		return flag(mailstore.SearchFlag, mailstore.FlagDraft)
	case "FLAGGED":
		return flag(mailstore.SearchFlag, mailstore.FlagFlagged)
	case "SEEN":
		return flag(mailstore.SearchFlag, mailstore.FlagSeen)
	case "UNANSWERED":
		return flag(mailstore.SearchNoFlag, mailstore.FlagAnswered)
	case "UNDELETED":
		return flag(mailstore.SearchNoFlag, mailstore.FlagDeleted)
	case "UNDRAFT":
		return flag(mailstore.SearchNoFlag, mailstore.FlagDraft)
	case "UNFLAGGED":
		return flag(mailstore.SearchNoFlag, mailstore.FlagFlagged)
	case "UNSEEN":
		return flag(mailstore.SearchNoFlag, mailstore.FlagSeen)
	case "NEW", "RECENT":
		// RFC 9051 section 6.4.4 dropped \Recent; Roost never sets it
		// (RFC 3501 section 2.3.2 allows that), so NEW and RECENT match
		// nothing: NOT ALL.
		return &mailstore.SearchKey{Op: mailstore.SearchNot, Children: []*mailstore.SearchKey{{Op: mailstore.SearchAll}}}, nil
	case "OLD":
		return &mailstore.SearchKey{Op: mailstore.SearchAll}, nil
	case "KEYWORD", "UNKEYWORD":
		if err := p.sp(); err != nil {
			return nil, err
		}
		f, err := p.flag()
		if err != nil {
			return nil, err
		}
		if word == "KEYWORD" {
			return flag(mailstore.SearchFlag, f)
		}
		return flag(mailstore.SearchNoFlag, f)
	case "BEFORE":
		return dateKey(mailstore.SearchBefore)
	case "ON":
		return dateKey(mailstore.SearchOn)
	case "SINCE":
		return dateKey(mailstore.SearchSince)
	case "SENTBEFORE":
		return dateKey(mailstore.SearchSentBefore)
	case "SENTON":
		return dateKey(mailstore.SearchSentOn)
	case "SENTSINCE":
		return dateKey(mailstore.SearchSentSince)
	case "SAVEDBEFORE":
		// RFC 8514 section 4.
		return dateKey(mailstore.SearchSavedBefore)
	case "SAVEDON":
		return dateKey(mailstore.SearchSavedOn)
	case "SAVEDSINCE":
		return dateKey(mailstore.SearchSavedSince)
	case "SAVEDATESUPPORTED":
		return &mailstore.SearchKey{Op: mailstore.SearchAll}, nil
	case "BCC", "CC", "FROM", "SUBJECT", "TO":
		return header(strings.ToLower(word[:1]) + strings.ToLower(word[1:]))
	case "HEADER":
		name, err := arg()
		if err != nil {
			return nil, err
		}
		return header(name)
	case "BODY", "TEXT":
		v, err := arg()
		op := mailstore.SearchBody
		if word == "TEXT" {
			op = mailstore.SearchText
		}
		return &mailstore.SearchKey{Op: op, Value: v}, err
	case "LARGER", "SMALLER":
		n, err := num()
		op := mailstore.SearchLarger
		if word == "SMALLER" {
			op = mailstore.SearchSmaller
		}
		return &mailstore.SearchKey{Op: op, Size: int64(n)}, err
	case "OLDER", "YOUNGER":
		// RFC 5032 section 3.
		if err := p.sp(); err != nil {
			return nil, err
		}
		n, err := p.nzNumber()
		op := mailstore.SearchOlder
		if word == "YOUNGER" {
			op = mailstore.SearchYounger
		}
		return &mailstore.SearchKey{Op: op, Seconds: int64(n)}, err
	case "UID":
		if err := p.sp(); err != nil {
			return nil, err
		}
		s, err := p.seqSet()
		if err != nil {
			return nil, err
		}
		if s.dollar {
			return &mailstore.SearchKey{Op: searchSaved}, nil
		}
		k := &mailstore.SearchKey{Op: searchUIDSet}
		sets[k] = s
		return k, nil
	case "NOT":
		if err := p.sp(); err != nil {
			return nil, err
		}
		c, err := parseSearchKey(p, depth+1, sets)
		return &mailstore.SearchKey{Op: mailstore.SearchNot, Children: []*mailstore.SearchKey{c}}, err
	case "OR":
		if err := p.sp(); err != nil {
			return nil, err
		}
		a, err := parseSearchKey(p, depth+1, sets)
		if err != nil {
			return nil, err
		}
		if err := p.sp(); err != nil {
			return nil, err
		}
		b, err := parseSearchKey(p, depth+1, sets)
		return &mailstore.SearchKey{Op: mailstore.SearchOr, Children: []*mailstore.SearchKey{a, b}}, err
	case "MODSEQ":
		// RFC 7162 section 3.1.5: MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer.
		if err := p.sp(); err != nil {
			return nil, err
		}
		if p.peek() == '"' {
			if _, err := p.quoted(); err != nil {
				return nil, err
			}
			if err := p.sp(); err != nil {
				return nil, err
			}
			t, err := p.atom()
			if err != nil {
				return nil, err
			}
			switch strings.ToLower(t) {
			case "priv", "shared", "all":
			default:
				return nil, p.errf("bad MODSEQ entry type")
			}
			if err := p.sp(); err != nil {
				return nil, err
			}
		}
		n, err := p.number64()
		return &mailstore.SearchKey{Op: mailstore.SearchModSeq, ModSeq: mailstore.ModSeq(n)}, err
	case "EMAILID", "THREADID":
		// RFC 8474 section 6.
		v, err := arg()
		op := mailstore.SearchEmailID
		if word == "THREADID" {
			op = mailstore.SearchThreadID
		}
		return &mailstore.SearchKey{Op: op, Value: v}, err
	}
	return nil, p.errf("unknown search key %s", word)
}

// searchUsesModSeq reports whether a program has a MODSEQ key (RFC 7162
// section 3.1.5: then the response carries the highest modseq).
func searchUsesModSeq(k *mailstore.SearchKey) bool {
	if k.Op == mailstore.SearchModSeq {
		return true
	}
	for _, c := range k.Children {
		if searchUsesModSeq(c) {
			return true
		}
	}
	return false
}

// imapDate renders an INTERNALDATE (RFC 9051 section 9 date-time).
func imapDate(t time.Time) string {
	return t.Format(`"02-Jan-2006 15:04:05 -0700"`)
}
