package imapserver

import (
	"errors"
	"fmt"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// cmdAppend: RFC 9051 section 6.3.12, RFC 3502 (MULTIAPPEND: all or none),
// RFC 4315 section 3 (APPENDUID), RFC 3516 section 4.4 (literal8), RFC
// 7889 section 4 (TOOBIG over the APPENDLIMIT), RFC 9208 section 4.3.1
// (OVERQUOTA).
func (s *session) cmdAppend(c *command) error {
	a := c.args.(appendArgs)
	name, err := s.mailboxName(a.mailbox)
	if err != nil {
		return err
	}
	// readCommand refused over-limit literals before reading them, with
	// the limit it read then; a command without literals (BAD later in
	// parsing) or one whose limit was not read gets it now. Quota used by
	// a delivery meanwhile is the store's to refuse (OVERQUOTA).
	limit, byQuota := s.cmdAppendLimit, s.cmdAppendByQuota
	if !s.cmdAppendKnown {
		var err error
		if limit, byQuota, err = s.appendLimit(); err != nil {
			return err
		}
	}
	reqs := make([]mailstore.AppendRequest, 0, len(a.msgs))
	for _, m := range a.msgs {
		if int64(len(m.data)) > limit {
			return tooBig(byQuota)
		}
		for _, f := range m.flags {
			if f == `\*` {
				return bad("", `\* is not a flag`)
			}
		}
		date := m.date
		if date.IsZero() {
			date = time.Now()
		}
		// The store finds the mailbox by name inside its write: no read
		// before it.
		reqs = append(reqs, mailstore.AppendRequest{MailboxName: name, Raw: m.data, Flags: mailstore.NormalizeFlags(m.flags), InternalDate: date})
	}
	// MULTIAPPEND messages that fit one by one but not together, and a
	// message-count quota, fail in the store with ErrOverQuota: mapError
	// answers NO [OVERQUOTA].
	res, err := s.srv.store.Append(s.ctx(), s.acct.ID, reqs)
	if errors.Is(err, mailstore.ErrNoSuchMailbox) {
		// RFC 9051 section 6.3.12: TRYCREATE.
		return no("TRYCREATE", "No such mailbox")
	}
	if err != nil {
		return err
	}
	if len(res) == 0 {
		return nil
	}
	if s.sel != nil {
		s.appended(res[0].MailboxID, res)
	}
	uids := make([]mailstore.UID, len(res))
	for i, r := range res {
		uids[i] = r.UID
	}
	// RFC 4315 section 3: APPENDUID uidvalidity uid-set.
	set := mailstore.CompactUIDs(uids)
	if len(set) == 0 || !isAscending(uids) {
		set = nil
		for _, u := range uids {
			set = append(set, mailstore.UIDRange{Lo: u, Hi: u})
		}
	}
	c.okCode = fmt.Sprintf("APPENDUID %d %s", res[0].UIDValidity, set.String())
	return nil
}

func isAscending(u []mailstore.UID) bool {
	for i := 1; i < len(u); i++ {
		if u[i] <= u[i-1] {
			return false
		}
	}
	return true
}

// appended brings the selected view up to date after this session's
// APPEND: from the result itself when it is the only change since the
// view was last synchronised, else from the feed at the next sync.
func (s *session) appended(mailboxID int64, res []mailstore.AppendResult) {
	sel := s.sel
	into := sel.mb.ID == mailboxID
	last := lastUID(sel.uids)
	local := true
	for _, r := range res {
		// One operation has one modseq; a de-duplicated \Sent message
		// (Existing) changed nothing and says nothing about the order.
		if r.Existing || r.ModSeq != res[0].ModSeq || (into && r.UID <= last) {
			local = false
			break
		}
		last = r.UID
	}
	if local && sel.ownWrite(res[0].ModSeq) {
		if into {
			for _, r := range res {
				sel.uids = append(sel.uids, r.UID)
			}
			// RFC 9051 section 6.3.12: EXISTS for an APPEND to the
			// selected mailbox.
			s.writef("* %d EXISTS\r\n", len(sel.uids))
		}
		return
	}
	if into {
		// RFC 9051 section 6.3.12: the feed read at the next sync sends
		// the EXISTS.
		sel.mustRead = true
	}
}
