package message

// Parse computes a message's facts. It never fails: a malformed message
// yields what could be recovered, and the raw bytes are stored regardless.
//
// PLACEHOLDER: minimal so the tree compiles; the real parser replaces it.
func Parse(raw []byte) *Parsed {
	return &Parsed{Body: &Part{Type: "text", Subtype: "plain", Size: int64(len(raw)), BodyEnd: int64(len(raw))}}
}
