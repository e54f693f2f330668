package imapserver

import (
	"strconv"

	"github.com/roost-mail/roost/internal/mailstore"
)

// cmdExpunge serves EXPUNGE (RFC 9051 section 6.4.3) and UID EXPUNGE
// (RFC 4315 section 2.1).
func (s *session) cmdExpunge(c *command) error {
	sel := s.sel
	if sel.readOnly {
		return no("", "Mailbox is read-only")
	}
	del, err := s.srv.store.Search(s.ctx(), s.acct.ID, sel.mb.ID, &mailstore.SearchKey{Op: mailstore.SearchFlag, Flag: mailstore.FlagDeleted})
	if err != nil {
		return err
	}
	del = sel.known(del)
	if c.uid {
		want, err := s.resolve(c.args.(uidExpungeArgs).set, true)
		if err != nil {
			return err
		}
		kept := del[:0]
		for _, u := range del {
			if containsUID(want, u) {
				kept = append(kept, u)
			}
		}
		del = kept
	}
	if len(del) == 0 {
		return nil
	}
	// The search runs on a reader, in parallel with other sessions'
	// work; the store then removes those still \Deleted in the
	// transaction that checks, so a message another session has just
	// undeleted stays.
	removed, modseq, err := s.srv.store.ExpungeDeleted(s.ctx(), s.acct.ID, sel.mb.ID, mailstore.CompactUIDs(del))
	if err != nil {
		return err
	}
	s.expunged(removed)
	sel.ownWrite(modseq)
	if s.qresync && modseq > 0 {
		// RFC 7162 section 3.2.10: the new HIGHESTMODSEQ with the OK.
		c.okCode = "HIGHESTMODSEQ " + strconv.FormatUint(uint64(modseq), 10)
	}
	return nil
}
