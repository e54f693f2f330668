package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/roost-mail/roost/internal/mailstore"
)

// SASL is the server side of one SASL exchange (RFC 4422 section 3).
type SASL interface {
	// Next takes the client's response (nil before the first one when
	// the client sent no initial response) and returns the next
	// challenge; done=true when finished successfully (challenge may
	// still hold final server data, e.g. SCRAM's v=...).
	Next(response []byte) (challenge []byte, done bool, err error)
	// Account is the authenticated account, after done.
	Account() mailstore.Account
	// Username is the authentication identity as the client gave it (it
	// may carry a POP3 "#device" suffix).
	Username() string
}

// maxField bounds each identity and password. RFC 4616 section 2 asks
// servers to accept at least 255 octets; four times that is generous and
// keeps hostile input cheap.
const maxField = 1024

// errFinished is returned by Next after the exchange ended.
var errFinished = errors.New("SASL exchange already finished")

// NewSASL starts a server-side exchange of mech (case-insensitive, RFC 4422
// section 3.1). ctx bounds the directory lookups and the failure delay.
func (a *Authenticator) NewSASL(ctx context.Context, mech string) (SASL, error) {
	switch strings.ToUpper(mech) {
	case "PLAIN":
		return &plainServer{finish: finish{a: a, ctx: ctx}}, nil
	case "LOGIN":
		return &loginServer{finish: finish{a: a, ctx: ctx}}, nil
	case "SCRAM-SHA-256":
		return &scramServer{finish: finish{a: a, ctx: ctx}}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrNoMechanism, mech)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", ErrAuthFailed, ErrMalformed, fmt.Sprintf(format, args...))
}

// finish is the common end of an exchange: on error it waits the failure
// delay.
type finish struct {
	a        *Authenticator
	ctx      context.Context
	ended    bool
	acct     mailstore.Account
	username string
}

func (f *finish) Account() mailstore.Account { return f.acct }
func (f *finish) Username() string           { return f.username }

func (f *finish) fail(err error) ([]byte, bool, error) {
	f.ended = true
	return nil, false, f.a.fail(f.ctx, err)
}

// login checks a plaintext identity and password, stripping a "#device"
// suffix for the lookup.
func (f *finish) login(username, password string) ([]byte, bool, error) {
	f.username = username
	acct, err := f.a.verifyPassword(f.ctx, stripDevice(username), password)
	if err != nil {
		return f.fail(err)
	}
	f.ended = true
	f.acct = acct
	return nil, true, nil
}

// plainServer is PLAIN (RFC 4616).
type plainServer struct {
	finish
	asked bool
}

func (s *plainServer) Next(resp []byte) ([]byte, bool, error) {
	if s.ended {
		return nil, false, errFinished
	}
	if resp == nil && !s.asked {
		// RFC 4616 section 2: without an initial response the server
		// sends an empty challenge and the client answers with the
		// message.
		s.asked = true
		return []byte{}, false, nil
	}
	authzid, authcid, passwd, err := ParsePlain(resp)
	if err != nil {
		return s.fail(err)
	}
	s.username = authcid
	// RFC 4616 section 2: the server MUST verify that the authcid may
	// act as authzid; Roost allows nobody to act as someone else, so
	// authzid must be empty or name the same user.
	if authzid != "" && !strings.EqualFold(authzid, authcid) && !strings.EqualFold(stripDevice(authzid), stripDevice(authcid)) {
		return s.fail(fmt.Errorf("%w: authorization identity %q differs from %q", ErrAuthFailed, authzid, authcid))
	}
	return s.login(authcid, passwd)
}

// ParsePlain splits a PLAIN message (RFC 4616 section 2):
// message = [authzid] UTF8NUL authcid UTF8NUL passwd.
func ParsePlain(msg []byte) (authzid, authcid, passwd string, err error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return "", "", "", malformed("PLAIN message needs exactly two NULs")
	}
	for i, p := range parts {
		if len(p) > maxField {
			return "", "", "", malformed("PLAIN field too long")
		}
		if !utf8.Valid(p) {
			return "", "", "", malformed("PLAIN field not UTF-8")
		}
		if i > 0 && len(p) == 0 {
			// RFC 4616 section 2: authcid and passwd are 1*SAFE.
			return "", "", "", malformed("PLAIN empty authcid or passwd")
		}
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), nil
}

// loginServer is LOGIN (draft-murchison-sasl-login-00 section 2): the
// server prompts "Username:" then "Password:". A client's initial
// response, if any, is the username.
type loginServer struct {
	finish
	step int // 0: start; 1: waiting for username; 2: waiting for password
}

func (s *loginServer) Next(resp []byte) ([]byte, bool, error) {
	if s.ended {
		return nil, false, errFinished
	}
	switch s.step {
	case 0:
		if resp == nil {
			s.step = 1
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		if err := checkLoginField(resp); err != nil {
			return s.fail(err)
		}
		s.username = string(resp)
		s.step = 2
		return []byte("Password:"), false, nil
	default:
		if err := checkLoginField(resp); err != nil {
			return s.fail(err)
		}
		return s.login(s.username, string(resp))
	}
}

func checkLoginField(b []byte) error {
	if len(b) == 0 || len(b) > maxField || !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		return malformed("LOGIN field empty, too long, NUL or not UTF-8")
	}
	return nil
}
