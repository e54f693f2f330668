package imapserver

import (
	"fmt"
	"strconv"
)

// APPENDLIMIT (RFC 7889): the largest message APPEND accepts, from the
// configured limit and the account's remaining quota.

// appendLimit is the largest message the logged-in account may APPEND now,
// into any of its mailboxes: the configured AppendLimit, lowered to the
// bytes left under the account's quota when it has one. byQuota says the
// quota is what sets it.
//
// RFC 7889 section 3.3 suggests not taking quotas into account; Roost does
// (issue 3, "Limits and hygiene") so that a client learns before uploading
// that a message cannot fit, and refuses it before reading the literal.
// The account is re-read: usage changes with every delivery and the quota
// may have been changed since login.
func (s *session) appendLimit() (limit int64, byQuota bool, err error) {
	limit = s.srv.cfg.AppendLimit
	a, err := s.srv.store.GetAccountByID(s.ctx(), s.acct.ID)
	if err != nil {
		return 0, false, fmt.Errorf("read account #%d: %w", s.acct.ID, err)
	}
	s.acct = a
	if a.QuotaBytes > 0 {
		// The store refuses a write that takes usage past the quota, so a
		// message of exactly the remaining bytes still fits.
		if left := max(a.QuotaBytes-a.UsedBytes, 0); left < limit {
			return left, true, nil
		}
	}
	return limit, false, nil
}

// appendLimitCapability is the APPENDLIMIT capability. RFC 7889 section 2:
// "APPENDLIMIT=n" says every mailbox has the same limit n; the bare form
// says limits must be discovered per mailbox (STATUS, LIST-STATUS). An
// account with a byte quota has a limit that moves with its usage, so
// after login it gets the bare form; before login, and for accounts
// without a quota, the configured limit holds for every mailbox. (RFC 9051
// section 6.2.3 lets capabilities change after login; LOGIN and
// AUTHENTICATE send the new list in their OK.)
func (s *session) appendLimitCapability() string {
	if s.state != stateNotAuth && s.acct.QuotaBytes > 0 {
		return "APPENDLIMIT"
	}
	return "APPENDLIMIT=" + strconv.FormatInt(s.srv.cfg.AppendLimit, 10)
}

// literalLimit is the largest literal of an APPEND command readCommand
// accepts: the append limit once logged in, the configured one before
// (where APPEND fails anyway, BAD for the state). A store failure here
// falls back to the configured limit: the APPEND itself then meets the
// same store and reports the failure.
func (s *session) literalLimit() (limit int64, byQuota bool) {
	if s.state == stateNotAuth {
		return s.srv.cfg.AppendLimit, false
	}
	limit, byQuota, err := s.appendLimit()
	if err != nil {
		s.logger().Warn("imap append limit", "err", err)
		return s.srv.cfg.AppendLimit, false
	}
	return limit, byQuota
}

// tooBig is the refusal of a message over the append limit. RFC 7889
// section 4: a message larger than the mailbox's limit gets a tagged NO
// with the TOOBIG response code (defined by RFC 4469 section 4.2); the
// text says when the quota is the cause, so that a user knows deleting
// mail helps.
func tooBig(byQuota bool) *respErr {
	if byQuota {
		return no("TOOBIG", "Message larger than the space left in your quota")
	}
	return no("TOOBIG", "Message too big")
}
