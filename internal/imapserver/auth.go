package imapserver

import (
	"encoding/base64"
	"errors"
	"strings"

	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/mailstore"
)

// Any-state and not-authenticated-state commands: CAPABILITY, NOOP,
// LOGOUT, ID, STARTTLS, LOGIN, AUTHENTICATE, and ENABLE.

// capabilities lists what this session may use now (RFC 9051 section
// 6.1.1): authentication offers only before login, and only where
// passwords may be sent.
func (s *session) capabilities() string {
	var b strings.Builder
	// IMAP4rev1 must stay: interimap aborts without it.
	b.WriteString("IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE" +
		" SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED LIST-STATUS CHILDREN ESEARCH SEARCHRES" +
		" STATUS=SIZE MULTIAPPEND BINARY CONDSTORE QRESYNC OBJECTID SAVEDATE PREVIEW UTF8=ACCEPT")
	b.WriteByte(' ')
	b.WriteString(s.appendLimitCapability())
	if s.state != stateNotAuth && s.deflate == nil {
		// RFC 4978 section 5: COMPRESS is a command-auth (valid once
		// authenticated), and it can be used once per connection.
		b.WriteString(" COMPRESS=DEFLATE")
	}
	if s.state == stateNotAuth {
		if s.srv.cfg.TLS != nil && !s.isTLS {
			b.WriteString(" STARTTLS")
		}
		if s.plaintextOK() {
			for _, m := range s.srv.authn.Mechanisms() {
				b.WriteString(" AUTH=")
				b.WriteString(m)
			}
		} else {
			// RFC 9051 section 6.2.3: LOGINDISABLED.
			b.WriteString(" LOGINDISABLED")
		}
	}
	return b.String()
}

func (s *session) cmdCapability(c *command) error {
	if s.state != stateNotAuth {
		// The APPENDLIMIT form depends on the account's current quota.
		if _, _, err := s.appendLimit(); err != nil {
			return err
		}
	}
	s.writef("* CAPABILITY %s\r\n", s.capabilities())
	return nil
}

// cmdNoop serves NOOP and CHECK: the sync after every command does the
// work (RFC 9051 section 6.1.2).
func (s *session) cmdNoop(c *command) error { return nil }

func (s *session) cmdLogout(c *command) error {
	// RFC 9051 section 6.1.3: BYE, then the tagged OK.
	s.writef("* BYE Logging out\r\n%s OK LOGOUT completed\r\n", c.tag)
	s.state = stateLogout
	return nil
}

func (s *session) cmdID(c *command) error {
	// RFC 2971 section 3.2.
	s.writef("* ID (\"name\" \"Roost\")\r\n")
	return nil
}

func (s *session) cmdStartTLS(c *command) error {
	if s.srv.cfg.TLS == nil || s.isTLS {
		return bad("", "STARTTLS not available")
	}
	// RFC 9051 section 6.2.1: the OK, then the handshake. Anything the
	// client pipelined after STARTTLS is discarded, not run under TLS
	// (a command-injection defence).
	s.writef("%s OK Begin TLS negotiation now\r\n", c.tag)
	if err := s.flush(); err != nil {
		return err
	}
	if n := s.br.Buffered(); n > 0 {
		_, _ = s.br.Discard(n)
	}
	if err := s.startTLS(); err != nil {
		s.logger().Debug("starttls failed", "err", err)
		s.state = stateLogout
		return nil
	}
	s.state = stateNotAuth
	// The tagged reply is already out.
	c.okText = ""
	s.suppressReply = true
	return nil
}

func (s *session) cmdLogin(c *command) error {
	a := c.args.(loginArgs)
	if !s.plaintextOK() {
		// RFC 9051 section 6.2.3: LOGINDISABLED means NO.
		return no("PRIVACYREQUIRED", "LOGIN is disabled on an unencrypted connection")
	}
	acct, err := s.srv.authn.Authenticate(s.ctx(), a.user, a.pass)
	if err != nil {
		return s.authFailed(err)
	}
	s.loggedIn(acct, c)
	return nil
}

// maxAuthFailures bounds password guesses per connection; each also costs
// the guesser auth's failure delay.
const maxAuthFailures = 5

// authFailed counts a failed login toward the connection's limit. Only
// credentials the auth package refused count: a store that cannot
// answer is no guess, and mapError tells the client UNAVAILABLE.
func (s *session) authFailed(err error) error {
	if !errors.Is(err, auth.ErrAuthFailed) {
		return err
	}
	s.authFailures++
	if s.authFailures >= maxAuthFailures {
		s.byeAfterReply = "Too many authentication failures"
	}
	return err
}

func (s *session) loggedIn(acct mailstore.Account, c *command) {
	s.acct = acct
	s.state = stateAuth
	// RFC 9051 section 6.2.3: capabilities may change after login.
	c.okCode = "CAPABILITY " + s.capabilities()
	c.okText = "Logged in"
}

func (s *session) cmdAuthenticate(c *command) error {
	a := c.args.(authArgs)
	if !s.plaintextOK() {
		return no("PRIVACYREQUIRED", "Authentication is disabled on an unencrypted connection")
	}
	sasl, err := s.srv.authn.NewSASL(s.ctx(), a.mech)
	if err != nil {
		if errors.Is(err, auth.ErrNoMechanism) {
			return no("CANNOT", "Unsupported mechanism")
		}
		return err
	}
	// RFC 4959 section 3: SASL-IR; nil means "no initial response".
	resp := a.ir
	if a.hasIR && resp == nil {
		resp = []byte{}
	}
	for {
		chal, done, err := sasl.Next(resp)
		if err != nil {
			// auth wraps ErrAuthFailed in every refusal of the client's
			// data (malformed ones too); anything else is the store's
			// trouble and is mapped as such (mapError).
			return s.authFailed(err)
		}
		if done && len(chal) == 0 {
			break
		}
		// RFC 9051 section 6.2.2: challenges are base64 continuation requests.
		s.writef("+ %s\r\n", base64.StdEncoding.EncodeToString(chal))
		if err := s.flush(); err != nil {
			return err
		}
		line, err := s.readLine(nil, s.srv.cfg.MaxLineBytes)
		if err != nil {
			if err == errLineTooLong {
				return bad("", "Response too long")
			}
			return err
		}
		if string(line) == "*" {
			return bad("", "Authentication cancelled")
		}
		if resp, err = base64.StdEncoding.DecodeString(string(line)); err != nil {
			return bad("", "Response is not base64")
		}
		if done {
			// The client acknowledged the final server data (SCRAM's
			// v=...); RFC 4422 section 3.6 allows it to be sent as a
			// last challenge.
			break
		}
	}
	s.loggedIn(sasl.Account(), c)
	return nil
}

func (s *session) cmdEnable(c *command) error {
	// RFC 5161 section 3.1: list only what became enabled.
	var enabled []string
	for _, name := range c.args.([]string) {
		switch name {
		case "IMAP4REV2":
			if !s.rev2 {
				s.rev2 = true
				enabled = append(enabled, "IMAP4rev2")
			}
		case "CONDSTORE":
			if !s.condstore {
				s.condstore = true
				enabled = append(enabled, "CONDSTORE")
			}
		case "QRESYNC":
			// RFC 7162 section 3.2.3: QRESYNC implies CONDSTORE.
			if !s.qresync {
				s.qresync, s.condstore = true, true
				enabled = append(enabled, "QRESYNC")
			}
		case "UTF8=ACCEPT":
			if !s.utf8 {
				s.utf8 = true
				enabled = append(enabled, "UTF8=ACCEPT")
			}
		}
	}
	s.writef("* ENABLED")
	for _, e := range enabled {
		s.writef(" %s", e)
	}
	s.writef("\r\n")
	return nil
}
