package smtpserver

import (
	"context"
	"errors"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/roost-mail/roost/internal/auth"
)

// authAllowed: passwords only over TLS or from loopback (RFC 8314 section
// 3; RFC 4954 section 4 lets a server refuse AUTH without TLS).
func (ss *session) authAllowed() bool {
	if !ss.s.cfg.Submission || ss.s.authn == nil {
		return false
	}
	if _, isTLS := ss.conn.TLSConnectionState(); isTLS {
		return true
	}
	return isLoopback(ss.conn.Conn().RemoteAddr())
}

// AuthMechanisms is what EHLO advertises: none on MX, none before TLS
// (RFC 4954 section 4: mechanisms needing a protected channel are not
// listed without one).
func (ss *session) AuthMechanisms() []string {
	if !ss.authAllowed() {
		return nil
	}
	return ss.s.authn.Mechanisms()
}

// Auth starts a SASL exchange through our auth package; go-smtp drives it.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if !ss.s.cfg.Submission || ss.s.authn == nil {
		return nil, smtp.ErrAuthUnsupported
	}
	if !ss.authAllowed() {
		return nil, errEncryptionRequired
	}
	if ss.account != nil {
		return nil, errAlreadyAuthed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	ex, err := ss.s.authn.NewSASL(ctx, mech)
	if err != nil {
		cancel()
		if errors.Is(err, auth.ErrNoMechanism) {
			return nil, smtp.ErrAuthUnknownMechanism
		}
		return nil, reply(ss.s.log, err)
	}
	return &saslBridge{ss: ss, ex: ex, cancel: cancel}, nil
}

// saslBridge adapts auth.SASL to go-sasl's Server as go-smtp uses it.
// go-smtp's 235 reply carries no data, so a final server message (SCRAM's
// "v=...") goes out as one more 334 challenge whose empty answer ends the
// exchange (RFC 4954 section 4: additional data with success).
type saslBridge struct {
	ss      *session
	ex      auth.SASL
	cancel  context.CancelFunc
	pending bool // final data sent; the next (empty) response finishes
}

func (b *saslBridge) Next(resp []byte) ([]byte, bool, error) {
	if b.pending {
		b.pending = false
		b.cancel()
		if len(resp) != 0 {
			return nil, false, smtp.ErrAuthFailed
		}
		return b.succeed()
	}
	chal, done, err := b.ex.Next(resp)
	if err != nil {
		b.cancel()
		if errors.Is(err, auth.ErrAuthFailed) {
			b.ss.s.log.Info("authentication failed", "session", b.ss.id, "ip", remoteIP(b.ss.conn.Conn().RemoteAddr()), "user", b.ex.Username())
			return nil, false, smtp.ErrAuthFailed
		}
		if errors.Is(err, auth.ErrMalformed) {
			return nil, false, errAuthMalformed
		}
		return nil, false, reply(b.ss.s.log, err)
	}
	if !done {
		return chal, false, nil
	}
	if len(chal) > 0 {
		b.pending = true
		return chal, false, nil
	}
	b.cancel()
	return b.succeed()
}

func (b *saslBridge) succeed() ([]byte, bool, error) {
	acct := b.ex.Account()
	b.ss.account = &acct
	b.ss.s.log.Info("authenticated", "session", b.ss.id, "account", acct.Name)
	return nil, true, nil
}
