package sqlite

import (
	"strings"

	"github.com/roost-mail/roost/internal/mailstore"
)

// System flags are a bitmask column; keywords a space-separated text
// column (keywords are atoms: RFC 9051 section 9, flag-keyword).
const (
	bitSeen int64 = 1 << iota
	bitAnswered
	bitFlagged
	bitDeleted
	bitDraft
)

var flagBits = []struct {
	name string
	bit  int64
}{
	{mailstore.FlagAnswered, bitAnswered},
	{mailstore.FlagDeleted, bitDeleted},
	{mailstore.FlagDraft, bitDraft},
	{mailstore.FlagFlagged, bitFlagged},
	{mailstore.FlagSeen, bitSeen},
}

// systemBit returns the bit of a system flag, 0 for a keyword.
func systemBit(flag string) int64 {
	for _, f := range flagBits {
		if strings.EqualFold(f.name, flag) {
			return f.bit
		}
	}
	return 0
}

// encodeFlags splits a flag list into the stored bitmask and keywords.
func encodeFlags(flags []string) (int64, string) {
	flags = mailstore.NormalizeFlags(flags)
	var bits int64
	kws := make([]string, 0, len(flags))
	for _, f := range flags {
		if b := systemBit(f); b != 0 {
			bits |= b
			continue
		}
		if strings.HasPrefix(f, `\`) || strings.ContainsAny(f, " \t\r\n") {
			continue // not a system flag, not an atom: nothing a client may set
		}
		kws = append(kws, f)
	}
	return bits, strings.Join(kws, " ")
}

// decodeFlags rebuilds the sorted flag list.
func decodeFlags(bits int64, keywords string) []string {
	out := make([]string, 0, 4)
	for _, f := range flagBits {
		if bits&f.bit != 0 {
			out = append(out, f.name)
		}
	}
	if keywords == "" {
		// flagBits is in sorted order: the list is already canonical.
		return out
	}
	out = append(out, strings.Fields(keywords)...)
	return mailstore.NormalizeFlags(out)
}
