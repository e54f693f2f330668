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
	LineSize int64  // see Message.LineSize
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
	return &Prepared{Raw: raw, BlobID: id, LineSize: LineSize(raw), EmailID: "M" + id[:24], ThreadID: "T" + thread[:24], Parsed: p}
}

// LineSize is the size of raw with every bare LF counted as CRLF and a
// final CRLF added when missing: the octets POP3 reports (RFC 1939 section
// 11: sizes are of the message as sent, with CRLF line ends).
func LineSize(raw []byte) int64 {
	n := int64(len(raw))
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') {
			n++
		}
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		n += 2
	}
	return n
}
