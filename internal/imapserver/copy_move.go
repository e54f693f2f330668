package imapserver

import (
	"errors"
	"fmt"

	"github.com/roost-mail/roost/internal/mailstore"
)

// cmdCopy serves COPY, MOVE and their UID forms: RFC 9051 sections 6.4.7,
// 6.4.8; RFC 4315 section 3 (COPYUID); RFC 6851 (MOVE).
func (s *session) cmdCopy(c *command) error {
	a := c.args.(copyArgs)
	sel := s.sel
	move := c.name == "MOVE"
	if move && sel.readOnly {
		return no("", "Mailbox is read-only")
	}
	uids, err := s.resolve(a.set, c.uid)
	if err != nil {
		return err
	}
	name, err := s.mailboxName(a.mailbox)
	if err != nil {
		return err
	}
	dst, err := s.srv.store.GetMailbox(s.ctx(), s.acct.ID, name)
	if errors.Is(err, mailstore.ErrNoSuchMailbox) {
		// RFC 9051 section 6.4.7: TRYCREATE.
		return no("TRYCREATE", "No such mailbox")
	}
	if err != nil {
		return err
	}
	if len(uids) == 0 {
		return nil
	}
	set := mailstore.CompactUIDs(uids)
	var res mailstore.CopyResult
	if move {
		res, err = s.srv.store.Move(s.ctx(), s.acct.ID, sel.mb.ID, set, dst.ID)
	} else {
		res, err = s.srv.store.Copy(s.ctx(), s.acct.ID, sel.mb.ID, set, dst.ID)
	}
	if err != nil {
		return err
	}
	if len(res.SrcUIDs) == 0 {
		return nil
	}
	if dst.ID == sel.mb.ID {
		sel.mustRead = true
	}
	code := fmt.Sprintf("COPYUID %d %s %s", res.UIDValidity,
		mailstore.CompactUIDs(res.SrcUIDs).String(), mailstore.CompactUIDs(res.DstUIDs).String())
	if move {
		// RFC 6851 section 4.3: COPYUID in an untagged OK before the
		// expunges.
		s.writef("* OK [%s] Moved\r\n", code)
		s.expunged(res.SrcUIDs)
		return nil
	}
	c.okCode = code
	return nil
}
