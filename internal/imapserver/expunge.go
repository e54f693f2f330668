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
	// The store removes, in one write, those of the given messages that
	// have \Deleted then, finding them from an index: every message the
	// session knows, or for UID EXPUNGE those of them in its set (RFC
	// 4315 section 2.1). No search first: under the IMAP mix that read
	// was a transaction of its own. A message this session has not been
	// told of stays: its expunge could not be reported by number.
	known := sel.uids
	if c.uid {
		want, err := s.resolve(c.args.(uidExpungeArgs).set, true)
		if err != nil {
			return err
		}
		known = want
	}
	if len(known) == 0 {
		return nil
	}
	removed, modseq, err := s.srv.store.ExpungeDeleted(s.ctx(), s.acct.ID, sel.mb.ID, mailstore.CompactUIDs(known))
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
