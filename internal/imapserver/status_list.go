package imapserver

import (
	"slices"
	"strings"

	"github.com/roost-mail/roost/internal/mailstore"
)

// LIST (with LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, CHILDREN), LSUB,
// NAMESPACE and STATUS.

// cmdNamespace: RFC 2342 section 5; one personal namespace, "/" separated.
func (s *session) cmdNamespace(c *command) error {
	s.writef("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n")
	return nil
}

// cmdList serves LIST and LSUB: RFC 9051 section 6.3.9, RFC 5258 (LIST-
// EXTENDED), RFC 5819 (LIST-STATUS), RFC 6154 section 2 (SPECIAL-USE),
// RFC 3348 (CHILDREN), RFC 3501 section 6.3.9 (LSUB).
func (s *session) cmdList(c *command) error {
	a := c.args.(listArgs)
	var selSubscribed, selSpecial, recursive bool
	for _, o := range a.selOpts {
		switch o {
		case "SUBSCRIBED":
			selSubscribed = true
		case "SPECIAL-USE":
			selSpecial = true
		case "RECURSIVEMATCH":
			recursive = true
		case "REMOTE":
			// RFC 5258 section 3.1: no remote mailboxes here.
		default:
			return bad("", "Unknown LIST selection option "+o)
		}
	}
	if recursive && !selSubscribed {
		// RFC 5258 section 3.1: RECURSIVEMATCH needs another option.
		return bad("", "RECURSIVEMATCH needs SUBSCRIBED")
	}
	retSubscribed := selSubscribed
	var statusItems []string
	var limit int64
	var err error
	for _, o := range a.retOpts {
		switch o {
		case "SUBSCRIBED":
			retSubscribed = true
		case "CHILDREN", "SPECIAL-USE":
			// Always returned.
		case "STATUS":
			statusItems = a.statusArgs
			if err := checkStatusItems(statusItems); err != nil {
				return err
			}
			if slices.Contains(statusItems, "APPENDLIMIT") {
				// RFC 7889 section 3.2: LIST-STATUS answers APPENDLIMIT
				// for each mailbox; one account, one limit.
				if limit, _, err = s.appendLimit(); err != nil {
					return err
				}
			}
		default:
			return bad("", "Unknown LIST return option "+o)
		}
	}
	if a.lsub {
		selSubscribed = true
	}
	verb := "LIST"
	if a.lsub {
		verb = "LSUB"
	}
	if len(a.patterns) == 1 && a.patterns[0] == "" && !a.extended {
		// RFC 9051 section 6.3.9: an empty pattern asks for the hierarchy
		// delimiter and the root of ref.
		s.writef("* %s (\\Noselect) \"/\" \"\"\r\n", verb)
		return nil
	}
	boxes, err := s.srv.store.ListMailboxes(s.ctx(), s.acct.ID)
	if err != nil {
		return err
	}
	var patterns []string
	for _, p := range a.patterns {
		full := a.ref + p
		if !s.utf8 && !s.rev2 {
			if d, err := decodeMUTF7(full); err == nil {
				full = d
			}
		}
		patterns = append(patterns, full)
	}
	matches := func(name string) bool {
		for _, p := range patterns {
			if mailstore.MatchPattern(p, name) {
				return true
			}
		}
		return false
	}
	// One pass over the ancestors of each name (not a scan per mailbox):
	// subChild marks names with a subscribed descendant, hiddenSub those
	// with a subscribed descendant that the patterns do not list.
	hasChild := make(map[string]bool)
	subChild := make(map[string]bool)
	hiddenSub := make(map[string]bool)
	matched := make([]bool, len(boxes))
	for i, mb := range boxes {
		matched[i] = matches(mb.Name)
		hidden := mb.Subscribed && !matched[i]
		for p := mailstore.Parent(mb.Name); p != ""; p = mailstore.Parent(p) {
			hasChild[p] = true
			if mb.Subscribed {
				subChild[p] = true
			}
			if hidden {
				hiddenSub[p] = true
			}
		}
	}
	for i, mb := range boxes {
		if !matched[i] {
			continue
		}
		childInfo, noselect := false, false
		if selSubscribed && !mb.Subscribed {
			switch {
			case a.lsub && hiddenSub[mb.Name]:
				// RFC 3501 section 6.3.9: LSUB "%" must return the
				// unsubscribed parent of a subscribed foo/bar as foo,
				// flagged \Noselect, or a client browsing level by level
				// never reaches foo/bar. A descendant the pattern lists
				// itself needs no such parent.
				noselect = true
			case recursive && hiddenSub[mb.Name]:
				// RFC 5258 section 3.5: a non-matching parent comes with
				// CHILDINFO only if a matching child is not also returned.
				childInfo = true
			default:
				continue
			}
		} else if recursive && subChild[mb.Name] {
			childInfo = true
		}
		if selSpecial && mb.SpecialUse == "" {
			continue
		}
		var attrs []string
		if noselect {
			attrs = append(attrs, `\Noselect`)
		}
		if hasChild[mb.Name] {
			attrs = append(attrs, `\HasChildren`)
		} else {
			attrs = append(attrs, `\HasNoChildren`)
		}
		if mb.SpecialUse != "" && !a.lsub {
			attrs = append(attrs, mb.SpecialUse)
		}
		if retSubscribed && mb.Subscribed && !a.lsub {
			attrs = append(attrs, `\Subscribed`)
		}
		b := append([]byte("* "), verb...)
		b = append(b, " ("...)
		b = append(b, strings.Join(attrs, " ")...)
		b = append(b, `) "/" `...)
		b = s.appendMailbox(b, mb.Name)
		if childInfo {
			// RFC 5258 section 3.5: CHILDINFO extended data.
			b = append(b, ` ("CHILDINFO" ("SUBSCRIBED"))`...)
		}
		s.bw.Write(append(b, "\r\n"...))
		if statusItems != nil {
			st, err := s.srv.store.Status(s.ctx(), s.acct.ID, mb.ID)
			if err != nil {
				return err
			}
			s.writeStatus(st, statusItems, limit)
		}
	}
	return nil
}

func checkStatusItems(items []string) error {
	for _, it := range items {
		switch it {
		case "MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "HIGHESTMODSEQ", "RECENT", "APPENDLIMIT":
		default:
			return bad("", "Unknown STATUS item "+it)
		}
	}
	return nil
}

// cmdStatus: RFC 9051 section 6.3.11, RFC 8438 (SIZE), RFC 7162 section
// 3.1.6 (HIGHESTMODSEQ), RFC 7889 (APPENDLIMIT).
func (s *session) cmdStatus(c *command) error {
	a := c.args.(statusArgs)
	if err := checkStatusItems(a.items); err != nil {
		return err
	}
	name, err := s.mailboxName(a.mailbox)
	if err != nil {
		return err
	}
	mb, err := s.srv.store.GetMailbox(s.ctx(), s.acct.ID, name)
	if err != nil {
		return err
	}
	st, err := s.srv.store.Status(s.ctx(), s.acct.ID, mb.ID)
	if err != nil {
		return err
	}
	var limit int64
	if slices.Contains(a.items, "APPENDLIMIT") {
		if limit, _, err = s.appendLimit(); err != nil {
			return err
		}
	}
	s.writeStatus(st, a.items, limit)
	return nil
}

// writeStatus writes a STATUS response; limit is the APPENDLIMIT value,
// used only when items asks for it.
func (s *session) writeStatus(st mailstore.MailboxStatus, items []string, limit int64) {
	b := s.appendMailbox([]byte("* STATUS "), st.Name)
	b = append(b, " ("...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, it...)
		b = append(b, ' ')
		switch it {
		case "MESSAGES":
			b = appendUint(b, uint64(st.Messages))
		case "UIDNEXT":
			b = appendUint(b, uint64(st.UIDNext))
		case "UIDVALIDITY":
			b = appendUint(b, uint64(st.UIDValidity))
		case "UNSEEN":
			b = appendUint(b, uint64(st.Unseen))
		case "DELETED":
			b = appendUint(b, uint64(st.Deleted))
		case "SIZE":
			b = appendUint(b, uint64(st.Size))
		case "HIGHESTMODSEQ":
			s.condstore = true // RFC 7162 section 3.1: a CONDSTORE-enabling command
			b = appendUint(b, uint64(max(st.HighestModSeq, 1)))
		case "RECENT":
			// RFC 3501 section 6.3.10; Roost has no \Recent.
			b = append(b, '0')
		case "APPENDLIMIT":
			// RFC 7889 section 3.1 and 5: a number, or NIL for no limit;
			// Roost always has one (AppendLimit bounds the memory an
			// APPEND literal takes), so never NIL. 0 says no APPEND
			// can succeed (a full quota).
			b = appendUint(b, uint64(limit))
		}
	}
	s.bw.Write(append(b, ")\r\n"...))
}
