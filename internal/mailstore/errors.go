package mailstore

import "errors"

// Sentinel errors. Backends wrap them with %w and context; front ends test
// with errors.Is and map each to a protocol reply in one place.
var (
	ErrNoSuchDomain  = errors.New("no such domain")
	ErrNoSuchAccount = errors.New("no such account")
	ErrNoSuchMailbox = errors.New("no such mailbox")
	ErrNoSuchMessage = errors.New("no such message") // also: unknown blob or queue entry
	ErrNoSuchAlias   = errors.New("no such alias")
	ErrExists        = errors.New("already exists")
	ErrNotEmpty      = errors.New("still in use")
	ErrHasChildren   = errors.New("mailbox has children")
	ErrCannotDelete  = errors.New("mailbox cannot be deleted")
	ErrInvalidName   = errors.New("invalid name")
	ErrOverQuota     = errors.New("over quota")
	ErrTooBig        = errors.New("message too big")
	ErrClosed        = errors.New("store closed")
	ErrLeaseHeld     = errors.New("lease held by another owner")
)
