package mailstore

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/roost-mail/roost/internal/message"
)

// Prepared is a message parsed once, before it enters a transaction, so
// the writer's critical section holds no parsing.
type Prepared struct {
	Raw      []byte
	BlobID   string // hex SHA-256 of Raw
	EmailID  string
	ThreadID string
	Parsed   *message.Parsed
}

// Prepare hashes and parses a raw message. Malformed messages are stored
// byte for byte all the same: parsing is best effort and never refuses.
func Prepare(raw []byte) *Prepared {
	sum := sha256.Sum256(raw)
	id := hex.EncodeToString(sum[:])
	p := message.Parse(raw)
	root := p.SearchHeaders.MessageID
	if len(p.References) > 0 {
		root = p.References[0]
	}
	thread := id
	if root != "" {
		s := sha256.Sum256([]byte(strings.ToLower(root)))
		thread = hex.EncodeToString(s[:])
	}
	// RFC 8474 section 5.1: object IDs are 1-255 of [A-Za-z0-9_-].
	return &Prepared{Raw: raw, BlobID: id, EmailID: "M" + id[:24], ThreadID: "T" + thread[:24], Parsed: p}
}
