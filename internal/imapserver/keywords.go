package imapserver

import "strings"

// The mailbox's keywords in the FLAGS and PERMANENTFLAGS responses.
// RFC 9051 section 7.3.5: FLAGS lists the flags "applicable for this
// mailbox"; clients (Thunderbird's tags, for one) take the keywords they
// offer from it. SELECT lists the keywords in use, and a session that
// meets a keyword it has not announced yet (set by itself or by another
// device) sends FLAGS and PERMANENTFLAGS again before the FETCH that
// carries it, so the client never sees a flag outside the list.

// systemFlagList is the system flags as FLAGS lists them (RFC 9051
// section 2.3.2).
const systemFlagList = `\Answered \Flagged \Deleted \Seen \Draft`

// keywordSet is the keywords a selection has announced.
type keywordSet struct {
	list []string        // in announcement order, one spelling each
	has  map[string]bool // lower-cased
}

func (k *keywordSet) add(kw string) bool {
	l := strings.ToLower(kw)
	if k.has[l] {
		return false
	}
	if k.has == nil {
		k.has = map[string]bool{}
	}
	k.has[l] = true
	k.list = append(k.list, kw)
	return true
}

// writeFlagLists sends FLAGS and PERMANENTFLAGS for the selection.
func (s *session) writeFlagLists(sel *selection) {
	b := make([]byte, 0, 128)
	b = append(b, "* FLAGS ("+systemFlagList...)
	for _, k := range sel.keywords.list {
		b = append(b, ' ')
		b = append(b, k...)
	}
	b = append(b, ")\r\n"...)
	if sel.readOnly {
		b = append(b, "* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n"...)
	} else {
		b = append(b, "* OK [PERMANENTFLAGS ("+systemFlagList...)
		for _, k := range sel.keywords.list {
			b = append(b, ' ')
			b = append(b, k...)
		}
		// "\*": clients may create keywords (RFC 9051 section 7.1).
		b = append(b, " \\*)] Flags permitted\r\n"...)
	}
	s.bw.Write(b)
}

// announceKeywords is called before a FETCH response carrying flags: a
// keyword the selection has not announced yet is announced first.
func (s *session) announceKeywords(flags []string) {
	sel := s.sel
	if sel == nil {
		return
	}
	added := false
	for _, f := range flags {
		if f != "" && f[0] != '\\' && sel.keywords.add(f) {
			added = true
		}
	}
	if added {
		s.writeFlagLists(sel)
	}
}
