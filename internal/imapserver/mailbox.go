package imapserver

import (
	"strings"

	"github.com/roost-mail/roost/internal/mailstore"
)

// Mailbox management: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE.

var specialUses = []string{mailstore.SpecialSent, mailstore.SpecialTrash, mailstore.SpecialDrafts,
	mailstore.SpecialJunk, mailstore.SpecialArchive, mailstore.SpecialAll, mailstore.SpecialFlagged}

// cmdCreate: RFC 9051 section 6.3.4; RFC 6154 section 3 (USE).
func (s *session) cmdCreate(c *command) error {
	a := c.args.(createArgs)
	// RFC 9051 section 6.3.4: a trailing separator only says that
	// inferior names are intended.
	raw := strings.TrimSuffix(a.mailbox, mailstore.Separator)
	name, err := s.mailboxName(raw)
	if err != nil {
		return err
	}
	use := ""
	if a.use != "" {
		for _, u := range specialUses {
			if strings.EqualFold(u, a.use) {
				use = u
			}
		}
		if use == "" {
			// RFC 6154 section 3: an unknown attribute is USEATTR.
			return no("USEATTR", "Unsupported special-use attribute")
		}
	}
	_, err = s.srv.store.CreateMailbox(s.ctx(), s.acct.ID, name, use)
	return err
}

// cmdDelete: RFC 9051 section 6.3.5.
func (s *session) cmdDelete(c *command) error {
	name, err := s.mailboxName(c.args.(string))
	if err != nil {
		return err
	}
	selected := false
	if s.sel != nil {
		// By ID, not by name: the selected mailbox may have been renamed
		// since SELECT (here or by another session), and another mailbox
		// may now bear its old name.
		mb, err := s.srv.store.GetMailbox(s.ctx(), s.acct.ID, name)
		if err != nil {
			return err
		}
		selected = mb.ID == s.sel.mb.ID
	}
	if err := s.srv.store.DeleteMailbox(s.ctx(), s.acct.ID, name); err != nil {
		// RFC 9051 section 6.3.5: a NO deletes nothing, so the
		// selection stays as it was.
		return err
	}
	if selected {
		// The mailbox went away under this session's own feet: leave it
		// as if by UNSELECT, before sync would take the deletion for
		// another session's and end the connection.
		s.deselect()
	}
	return nil
}

// cmdRename: RFC 9051 section 6.3.6.
func (s *session) cmdRename(c *command) error {
	a := c.args.(renameArgs)
	from, err := s.mailboxName(a.from)
	if err != nil {
		return err
	}
	to, err := s.mailboxName(a.to)
	if err != nil {
		return err
	}
	if err := s.srv.store.RenameMailbox(s.ctx(), s.acct.ID, from, to); err != nil {
		return err
	}
	if s.sel == nil || from == mailstore.InboxName {
		// RFC 9051 section 6.3.6: renaming INBOX moves its messages to a
		// new mailbox and leaves INBOX, and its inferiors, where they
		// are: a selected INBOX stays INBOX.
		return nil
	}
	// RFC 9051 section 6.3.6: inferior names are renamed too.
	switch cur := s.sel.mb.Name; {
	case cur == from:
		s.sel.mb.Name = to
	case strings.HasPrefix(cur, from+mailstore.Separator):
		s.sel.mb.Name = to + cur[len(from):]
	}
	return nil
}

// cmdSubscribe serves SUBSCRIBE and UNSUBSCRIBE: RFC 9051 sections 6.3.7, 6.3.8.
func (s *session) cmdSubscribe(c *command) error {
	name, err := s.mailboxName(c.args.(string))
	if err != nil {
		return err
	}
	return s.srv.store.SetSubscribed(s.ctx(), s.acct.ID, name, c.name == "SUBSCRIBE")
}
