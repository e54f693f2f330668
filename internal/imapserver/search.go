package imapserver

import (
	"slices"
	"strings"

	"github.com/roost-mail/roost/internal/mailstore"
)

// cmdSearch serves SEARCH and UID SEARCH: RFC 9051 section 6.4.4, RFC 4731
// (ESEARCH), RFC 5182 (SEARCHRES), RFC 7162 section 3.1.5 (MODSEQ).
func (s *session) cmdSearch(c *command) error {
	a := c.args.(searchArgs)
	sel := s.sel
	switch strings.ToUpper(a.charset) {
	case "", "UTF-8", "US-ASCII":
	default:
		// RFC 9051 section 6.4.4: BADCHARSET lists what is supported.
		return no("BADCHARSET (UTF-8 US-ASCII)", "Unsupported charset")
	}
	key, err := s.resolveSearch(a.key, a.sets)
	if err != nil {
		return err
	}
	withModSeq := searchUsesModSeq(key)
	if withModSeq {
		s.condstore = true
	}
	found, err := s.srv.store.Search(s.ctx(), s.acct.ID, sel.mb.ID, key)
	if err != nil {
		return err
	}
	// Messages the client has not been told of yet are not results.
	found = sel.known(found)
	var highest mailstore.ModSeq
	if withModSeq && len(found) > 0 {
		err := s.srv.store.Fetch(s.ctx(), s.acct.ID, sel.mb.ID, mailstore.CompactUIDs(found), 0, 0, func(m *mailstore.Message) error {
			highest = max(highest, m.ModSeq)
			return nil
		})
		if err != nil {
			return err
		}
	}
	nums := make([]mailstore.UID, len(found))
	for i, u := range found {
		if c.uid {
			nums[i] = u
		} else {
			nums[i] = mailstore.UID(sel.seqOf(u))
		}
	}
	ret := a.ret
	if a.hasReturn && len(ret) == 0 {
		ret = []string{"ALL"} // RFC 4731 section 3.1: RETURN () is RETURN (ALL)
	}
	save := false
	for _, r := range ret {
		if r == "SAVE" {
			save = true
		}
	}
	if save {
		s.saved = savedResult(found, ret)
	}
	if !a.hasReturn && !s.rev2 {
		// RFC 3501 section 7.2.5.
		b := []byte("* SEARCH")
		for _, n := range nums {
			b = append(b, ' ')
			b = appendUint(b, uint64(n))
		}
		if withModSeq && len(nums) > 0 {
			b = append(b, " (MODSEQ "...)
			b = appendUint(b, uint64(highest))
			b = append(b, ')')
		}
		s.bw.Write(append(b, "\r\n"...))
		return nil
	}
	if !a.hasReturn {
		ret = []string{"ALL"}
	}
	if save && len(ret) == 1 {
		// RFC 5182 section 2.4: SAVE alone returns no ESEARCH.
		return nil
	}
	// RFC 4731 section 3.1 / RFC 9051 section 7.3.4: ESEARCH.
	b := []byte(`* ESEARCH (TAG `)
	b = appendString(b, c.tag, false)
	b = append(b, ')')
	if c.uid {
		b = append(b, " UID"...)
	}
	for _, r := range ret {
		switch r {
		case "MIN":
			if len(nums) > 0 {
				b = append(b, " MIN "...)
				b = appendUint(b, uint64(nums[0]))
			}
		case "MAX":
			if len(nums) > 0 {
				b = append(b, " MAX "...)
				b = appendUint(b, uint64(nums[len(nums)-1]))
			}
		case "COUNT":
			b = append(b, " COUNT "...)
			b = appendUint(b, uint64(len(nums)))
		case "ALL":
			if len(nums) > 0 {
				b = append(b, " ALL "...)
				b = append(b, mailstore.CompactUIDs(nums).String()...)
			}
		}
	}
	if withModSeq && len(nums) > 0 {
		b = append(b, " MODSEQ "...)
		b = appendUint(b, uint64(highest))
	}
	s.bw.Write(append(b, "\r\n"...))
	return nil
}

// savedResult returns what SAVE remembers as "$" from the result found
// (in ascending UID order, so MIN is first and MAX is last).
func savedResult(found []mailstore.UID, ret []string) []mailstore.UID {
	var minMax, whole bool
	for _, r := range ret {
		switch r {
		case "MIN", "MAX":
			minMax = true
		case "ALL", "COUNT":
			whole = true
		}
	}
	if !minMax || whole || len(found) == 0 {
		return found
	}
	// RFC 5182 section 2.1 (and RFC 9051 section 6.4.4.1): SAVE with MIN
	// and/or MAX but neither ALL nor COUNT makes "$" hold only the message(s)
	// the MIN/MAX return items name, so a following FETCH $ or STORE $
	// touches just those.
	var out []mailstore.UID
	for _, r := range ret {
		switch r {
		case "MIN":
			out = append(out, found[0])
		case "MAX":
			out = append(out, found[len(found)-1])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// resolveSearch replaces sequence sets, "$" and "*" in a program with the
// UIDs they stand for in this session's view.
func (s *session) resolveSearch(k *mailstore.SearchKey, sets map[*mailstore.SearchKey]numSet) (*mailstore.SearchKey, error) {
	out := *k
	switch k.Op {
	case searchSeqSet:
		uids, err := s.resolve(sets[k], false)
		if err != nil {
			return nil, err
		}
		out.Op, out.UIDs = mailstore.SearchUIDs, mailstore.CompactUIDs(uids)
	case searchSaved:
		out.Op, out.UIDs = mailstore.SearchUIDs, mailstore.CompactUIDs(s.sel.known(s.saved))
	case searchUIDSet:
		uids, err := s.resolve(sets[k], true)
		if err != nil {
			return nil, err
		}
		out.Op, out.UIDs = mailstore.SearchUIDs, mailstore.CompactUIDs(uids)
	}
	if len(k.Children) > 0 {
		out.Children = make([]*mailstore.SearchKey, len(k.Children))
		for i, ch := range k.Children {
			r, err := s.resolveSearch(ch, sets)
			if err != nil {
				return nil, err
			}
			out.Children[i] = r
		}
	}
	return &out, nil
}
