package imapserver

import (
	"slices"

	"github.com/roost-mail/roost/internal/mailstore"
)

// cmdStore serves STORE and UID STORE: RFC 9051 section 6.4.6, RFC 7162
// section 3.1.3 (UNCHANGEDSINCE, MODIFIED).
func (s *session) cmdStore(c *command) error {
	a := c.args.(storeArgs)
	sel := s.sel
	if sel.readOnly {
		return no("", "Mailbox is read-only")
	}
	for _, f := range a.flags {
		if f == `\*` {
			return bad("", `\* is not a flag`)
		}
	}
	if a.hasUnchanged {
		s.condstore = true
	}
	uids, err := s.resolve(a.set, c.uid)
	if err != nil {
		return err
	}
	if len(uids) == 0 {
		return nil
	}
	set := mailstore.CompactUIDs(uids)
	req := mailstore.StoreFlagsRequest{MailboxID: sel.mb.ID, UIDs: set, Mode: a.mode, Flags: a.flags}
	if a.hasUnchanged {
		req.UnchangedSince = mailstore.ModSeq(a.unchangedSince)
	}
	var res mailstore.StoreFlagsResult
	if a.hasUnchanged && a.unchangedSince == 0 {
		// RFC 7162 section 3.1.3: UNCHANGEDSINCE 0 fails for every
		// existing message (all have a modseq of at least 1); the store
		// reads 0 as "no condition", so it is answered here.
		res.Modified = set
	} else if res, err = s.srv.store.StoreFlags(s.ctx(), s.acct.ID, req); err != nil {
		return err
	}
	own := sel.ownWrite(res.ModSeq)
	for _, m := range res.Changed {
		if !own {
			// The feed will bring this change: it was reported here.
			sel.reported[m.UID] = m.ModSeq
		}
		seq := sel.seqOf(m.UID)
		if seq == 0 {
			continue
		}
		if !a.silent {
			s.writeStoreFetch(seq, m.UID, m.Flags, m.ModSeq, c.uid, true)
		} else if s.condstore {
			// RFC 7162 section 3.1.3: .SILENT still reports the new
			// MODSEQ to a CONDSTORE client.
			s.writeStoreFetch(seq, m.UID, nil, m.ModSeq, c.uid, false)
		}
	}
	if !a.silent {
		// RFC 9051 section 6.4.6: the flags of every message in the set,
		// changed by this STORE or not (the store read the others).
		for _, m := range res.Unchanged {
			if seq := sel.seqOf(m.UID); seq > 0 {
				s.writeStoreFetch(seq, m.UID, m.Flags, m.ModSeq, c.uid, true)
			}
		}
	}
	if len(res.Modified) > 0 {
		var mod []mailstore.UID
		for _, u := range uids {
			if !res.Modified.Contains(u) {
				continue
			}
			if c.uid {
				mod = append(mod, u)
			} else {
				mod = append(mod, mailstore.UID(sel.seqOf(u)))
			}
		}
		slices.Sort(mod)
		// RFC 7162 section 3.1.3: sequence numbers for STORE, UIDs for UID STORE.
		c.okCode = "MODIFIED " + mailstore.CompactUIDs(mod).String()
		c.okText = "Conditional STORE failed for some messages"
	}
	return nil
}

func (s *session) writeStoreFetch(seq int, uid mailstore.UID, flags []string, modseq mailstore.ModSeq, withUID, withFlags bool) {
	if withFlags {
		s.announceKeywords(flags)
	}
	b := make([]byte, 0, 96)
	b = append(b, "* "...)
	b = appendUint(b, uint64(seq))
	b = append(b, " FETCH ("...)
	sep := ""
	if withUID || s.condstore {
		// RFC 7162 section 3.1 (erratum 1807): once CONDSTORE is on, a
		// client matches flag updates by UID, so every FETCH a STORE
		// causes names it (and section 3.2.4 says the same of QRESYNC).
		b = append(b, "UID "...)
		b = appendUint(b, uint64(uid))
		sep = " "
	}
	if withFlags {
		b = append(b, sep...)
		b = append(b, "FLAGS "...)
		b = appendFlags(b, flags)
		sep = " "
	}
	if s.condstore {
		s.sentModSeq(modseq)
		b = append(b, sep...)
		b = append(b, "MODSEQ ("...)
		b = appendUint(b, uint64(modseq))
		b = append(b, ')')
	}
	b = append(b, ")\r\n"...)
	s.bw.Write(b)
}
