package pop3server

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/mailstore"
)

// handler runs one command. A returned error is answered by reply.
type handler func(s *session, cmd command) error

// Commands by state. CAPA is valid in both (RFC 2449 section 5), QUIT too
// with a different meaning (RFC 1939 sections 4 and 6).
var (
	authorizationCommands = map[string]handler{
		"USER": (*session).cmdUser,
		"PASS": (*session).cmdPass,
		"AUTH": (*session).cmdAuth,
		"STLS": (*session).cmdStls,
		"CAPA": (*session).cmdCapa,
		"QUIT": (*session).cmdQuitAuthorization,
	}
	transactionCommands = map[string]handler{
		"STAT": (*session).cmdStat,
		"LIST": (*session).cmdList,
		"RETR": (*session).cmdRetr,
		"DELE": (*session).cmdDele,
		"NOOP": (*session).cmdNoop,
		"RSET": (*session).cmdRset,
		"TOP":  (*session).cmdTop,
		"UIDL": (*session).cmdUidl,
		"CAPA": (*session).cmdCapa,
		"QUIT": (*session).cmdQuitTransaction,
	}
)

func (s *session) dispatch(cmd command) {
	table, other := authorizationCommands, transactionCommands
	if s.state == stateTransaction {
		table, other = other, table
	}
	h, ok := table[cmd.Name]
	if !ok {
		if _, valid := other[cmd.Name]; valid {
			s.reply(errWrongState)
		} else {
			// APOP lands here: it is not offered (no timestamp in the
			// greeting, RFC 1939 section 7).
			s.reply(errUnknown)
		}
		return
	}
	if err := h(s, cmd); err != nil {
		s.reply(err)
	}
}

// cleartextAllowed says whether credentials may be sent on this
// connection: never over a network connection without TLS.
func (s *session) cleartextAllowed() bool { return s.isTLS || s.loopback }

// cmdCapa lists capabilities (RFC 2449 section 5). USER and SASL are left
// out where logging in is refused (no TLS, not loopback) so that clients
// go for STLS first; STLS only where it can work (RFC 2595 section 4).
func (s *session) cmdCapa(cmd command) error {
	if len(cmd.Args) != 0 {
		return syntaxError("CAPA takes no argument")
	}
	s.ok("Capability list follows")
	s.line("TOP")  // RFC 2449 section 6.1
	s.line("UIDL") // RFC 2449 section 6.8
	if s.state == stateAuthorization && s.cleartextAllowed() {
		s.line("USER") // RFC 2449 section 6.2
		// RFC 5034 section 3 (updating RFC 2449 section 6.3).
		s.line("SASL " + strings.Join(s.srv.authn.Mechanisms(), " "))
	}
	if s.state == stateAuthorization && s.srv.cfg.TLS != nil && !s.isTLS {
		s.line("STLS") // RFC 2595 section 4
	}
	s.line("RESP-CODES")     // RFC 2449 section 6.4
	s.line("AUTH-RESP-CODE") // RFC 3206 section 6
	s.line("PIPELINING")     // RFC 2449 section 6.6
	// RFC 2449 section 6.7: EXPIRE is about messages a client retrieved
	// and left on the server. Roost never removes those on its own, in
	// any delete mode: only DELE (and the operator) removes mail.
	s.line("EXPIRE NEVER")
	if d := s.srv.cfg.LoginDelay; d > 0 {
		// RFC 2449 section 6.5: the minimum seconds between logins.
		s.line(fmt.Sprintf("LOGIN-DELAY %d", int64((d+999_999_999)/1_000_000_000)))
	}
	s.line("IMPLEMENTATION Roost") // RFC 2449 section 6.9
	s.end()
	return nil
}

// cmdUser takes the name for PASS (RFC 1939 section 7, USER). It answers
// +OK for every name: telling which names exist would help an attacker,
// and RFC 1939 leaves the server free to accept any name here.
func (s *session) cmdUser(cmd command) error {
	if len(cmd.Args) != 1 {
		return syntaxError("USER takes one argument: the login name")
	}
	if !s.cleartextAllowed() {
		return errCleartext
	}
	s.user = cmd.Args[0]
	s.ok("Send PASS")
	return nil
}

// cmdPass completes USER/PASS (RFC 1939 section 7, PASS).
func (s *session) cmdPass(cmd command) error {
	if s.user == "" {
		return syntaxError("Send USER first")
	}
	login := s.user
	// RFC 1939 section 7, PASS: after a failed PASS the client starts
	// again with USER.
	s.user = ""
	if !s.cleartextAllowed() {
		return errCleartext
	}
	if cmd.Rest == "" {
		return syntaxError("PASS takes one argument: the password")
	}
	name, device, deviceOK := splitDevice(login)
	acct, err := s.srv.authn.Authenticate(s.ctx(), name, cmd.Rest)
	if err != nil {
		return s.authFailed(err)
	}
	if !deviceOK {
		return s.authFailed(fmt.Errorf("device name in %q: %w", login, auth.ErrAuthFailed))
	}
	return s.login(acct, device)
}

// cmdAuth runs a SASL exchange (RFC 5034 section 4).
func (s *session) cmdAuth(cmd command) error {
	mechs := s.srv.authn.Mechanisms()
	if len(cmd.Args) == 0 {
		// "AUTH" alone lists the mechanisms, as RFC 1734 had it; some
		// clients (fetchmail) still probe this way.
		s.ok("Methods supported:")
		for _, m := range mechs {
			s.line(m)
		}
		s.end()
		return nil
	}
	if !s.cleartextAllowed() {
		return errCleartext
	}
	s.user = ""
	mech := strings.ToUpper(cmd.Args[0])
	if !slices.Contains(mechs, mech) {
		return syntaxError("Unsupported authentication mechanism")
	}
	var resp []byte
	if len(cmd.Args) == 2 {
		// RFC 5034 section 4: an initial response of "=" is an empty
		// one, distinct from no initial response (nil).
		resp = []byte{}
		if cmd.Args[1] != "=" {
			var err error
			if resp, err = base64.StdEncoding.DecodeString(cmd.Args[1]); err != nil {
				return syntaxError("Invalid base64 in initial response")
			}
		}
	}
	sasl, err := s.srv.authn.NewSASL(s.ctx(), mech)
	if err != nil {
		return fmt.Errorf("start SASL %s: %w", mech, err)
	}
	for {
		challenge, done, err := sasl.Next(resp)
		if err != nil {
			return s.authFailed(err)
		}
		if done && len(challenge) == 0 {
			break
		}
		// RFC 5034 section 4: a challenge is "+" SP base64. Data the
		// mechanism sends with its success (SCRAM's server signature)
		// goes the same way and the client answers with an empty line
		// (RFC 4422 section 5, for profiles without additional data
		// with success in the final response).
		s.w.WriteString("+ ")
		s.w.WriteString(base64.StdEncoding.EncodeToString(challenge))
		s.w.WriteString("\r\n")
		if err := s.w.Flush(); err != nil {
			return fmt.Errorf("send SASL challenge: %w", err)
		}
		line, err := s.readLine()
		if errors.Is(err, errLineTooLong) {
			return syntaxError("SASL response too long")
		}
		if err != nil {
			s.readFailed(err)
			return nil
		}
		// RFC 5034 section 4: "*" cancels; the server MUST answer -ERR.
		if line == "*" {
			return syntaxError("Authentication cancelled")
		}
		if done {
			if line != "" {
				return s.authFailed(fmt.Errorf("SASL %s: data after success: %w", mech, auth.ErrAuthFailed))
			}
			break
		}
		// RFC 5034 section 4: an undecodable response MUST be rejected.
		if resp, err = base64.StdEncoding.DecodeString(line); err != nil {
			return syntaxError("Invalid base64 in SASL response")
		}
	}
	_, device, deviceOK := splitDevice(sasl.Username())
	if !deviceOK {
		return s.authFailed(fmt.Errorf("device name in %q: %w", sasl.Username(), auth.ErrAuthFailed))
	}
	return s.login(sasl.Account(), device)
}

// authFailed counts a failed login and ends the session after too many.
// Failures of the system (not of the credentials) are not counted.
func (s *session) authFailed(err error) error {
	s.log.Info("login failed", "err", err)
	if !isAuthFailure(err) {
		return err
	}
	s.authFails++
	if s.authFails >= maxAuthFailures {
		s.done = true
		return &replyError{"AUTH", "Authentication failed; too many failures, closing connection"}
	}
	return err
}

func isAuthFailure(err error) bool {
	var re *replyError
	if errors.As(err, &re) {
		return re.code == "AUTH"
	}
	return errors.Is(err, auth.ErrAuthFailed)
}

// login enters the TRANSACTION state (RFC 1939 section 4): it takes the
// maildrop lock and the snapshot.
func (s *session) login(acct mailstore.Account, view string) error {
	drop, err := openMaildrop(s.ctx(), s.srv, s.id, acct, view)
	if err != nil {
		return err
	}
	s.drop = drop
	s.state = stateTransaction
	s.log = s.log.With("account", acct.Name, "view", view)
	s.log.Info("logged in", "messages", len(drop.msgs))
	s.ok("Logged in, %s", plural(drop.count(), "message"))
	return nil
}

// cmdStls starts TLS (RFC 2595 section 4).
func (s *session) cmdStls(cmd command) error {
	if len(cmd.Args) != 0 {
		return syntaxError("STLS takes no argument")
	}
	if s.isTLS {
		return syntaxError("TLS already active")
	}
	if s.srv.cfg.TLS == nil {
		return syntaxError("TLS not available")
	}
	s.ok("Begin TLS negotiation")
	if err := s.w.Flush(); err != nil {
		s.done = true
		return nil
	}
	tc := tls.Server(s.raw, s.srv.cfg.TLS)
	if err := s.handshake(tc); err != nil {
		s.log.Info("STLS handshake failed", "err", err)
		s.done = true
		return nil
	}
	// A new reader drops anything the client sent in clear after STLS
	// (command injection before the handshake); RFC 2595 section 4: the
	// client MUST discard its earlier knowledge, and so does the server.
	s.setConn(tc)
	s.isTLS = true
	s.user = ""
	return nil
}

// cmdQuitAuthorization ends a session that never logged in (RFC 1939
// section 4, QUIT).
func (s *session) cmdQuitAuthorization(cmd command) error {
	s.ok("%s signing off", s.srv.cfg.Hostname)
	s.done = true
	return nil
}
