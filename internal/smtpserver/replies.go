package smtpserver

import (
	"context"
	"errors"
	"log/slog"

	"github.com/emersion/go-smtp"

	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/delivery"
	"github.com/roost-mail/roost/internal/mailstore"
)

// Policy replies. Enhanced codes are RFC 3463's.
var (
	errAuthRequired       = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"} // RFC 4954 section 6
	errEncryptionRequired = &smtp.SMTPError{Code: 538, EnhancedCode: smtp.EnhancedCode{5, 7, 11}, Message: "Encryption required for authentication"}
	errAlreadyAuthed      = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Already authenticated"}
	errAuthMalformed      = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Malformed authentication data"}
	errSenderNotOwned     = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Sender address not owned by the authenticated user"}
	errNoFrom             = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message needs exactly one valid From: header"}          // RFC 5322 section 3.6
	errNestedMail         = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Sender already given; RSET to start a new transaction"} // RFC 5321 section 4.1.4
	errNeedsSMTPUTF8      = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7}, Message: "Non-ASCII address requires SMTPUTF8"}                   // RFC 6531 section 3.4; X.6.7 is RFC 6533's code for it
	errRelayDenied        = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relaying denied"}
	errBadAddress         = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad recipient address syntax"}
	errNoSuchUser         = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	errLoop               = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 4, 6}, Message: "Too many hops, mail loop detected"}
	errOverQuota          = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "Mailbox full"}
	errMailboxFull        = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full, try again later"} // RFC 5321 section 4.2.3 (452: insufficient storage), RFC 3463 section 3.3 (X.2.2)
	errTooBig             = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message too big"}
	errLineTooLong        = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Line too long"} // RFC 5321 section 4.5.3.1.6
	errAborted            = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Transfer aborted"}
	errTemporary          = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary local problem, try again later"}
)

// reply is THE place where internal errors become SMTP replies. Anything
// unrecognised is a temporary local failure (451 4.3.0): the client keeps
// the message and retries, and the details stay in our log, never on the
// wire.
func reply(log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var se *smtp.SMTPError
	switch {
	case errors.As(err, &se):
		return se
	case errors.Is(err, smtp.ErrTooLongLine):
		return errLineTooLong
	case errors.Is(err, smtp.ErrDataReset):
		return errAborted
	case errors.Is(err, mailstore.ErrNoSuchAccount):
		return errNoSuchUser
	case errors.Is(err, delivery.ErrLoop):
		return errLoop
	case errors.Is(err, mailstore.ErrOverQuota):
		return errOverQuota
	case errors.Is(err, mailstore.ErrTooBig):
		return errTooBig
	case errors.Is(err, auth.ErrAuthFailed):
		return smtp.ErrAuthFailed
	case errors.Is(err, mailstore.ErrInvalidName):
		return errBadAddress
	}
	if !errors.Is(err, context.Canceled) {
		log.Error("temporary failure", "err", err)
	}
	return errTemporary
}
