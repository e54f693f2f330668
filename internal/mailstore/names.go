package mailstore

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// NormalizeMailboxName checks a mailbox name and returns its canonical form:
// INBOX in any case (and as a hierarchy root) becomes "INBOX" (RFC 9051
// section 5.1: INBOX is case-insensitive), no leading, trailing or doubled
// separators, valid UTF-8 without control characters.
func NormalizeMailboxName(name string) (string, error) {
	if name == "" || !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	if strings.HasPrefix(name, Separator) || strings.HasSuffix(name, Separator) || strings.Contains(name, Separator+Separator) {
		return "", fmt.Errorf("%w: %q: empty hierarchy level", ErrInvalidName, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%w: %q: control character", ErrInvalidName, name)
		}
	}
	if len(name) > 1000 {
		return "", fmt.Errorf("%w: name too long", ErrInvalidName)
	}
	first, rest, hasRest := strings.Cut(name, Separator)
	if strings.EqualFold(first, InboxName) {
		if hasRest {
			return InboxName + Separator + rest, nil
		}
		return InboxName, nil
	}
	return name, nil
}

// MatchPattern reports whether name matches a LIST pattern (RFC 9051
// section 6.3.9): "*" matches any characters, "%" any characters but the
// hierarchy separator. name is a normalised mailbox name.
func MatchPattern(pattern, name string) bool {
	// RFC 9051 section 5.1: INBOX is case-insensitive, so "inb*", "Inbox%"
	// and "inbox/*" must reach INBOX and its inferiors. Folding the
	// pattern cannot do this (which prefix of "inb*" is INBOX?), so the
	// comparison folds case over the INBOX level of the name instead. Any
	// other name, or any later level, stays case-sensitive.
	fold := 0
	if name == InboxName || strings.HasPrefix(name, InboxName+Separator) {
		fold = len(InboxName)
	}
	return match(pattern, name, fold)
}

// match is a dynamic programme over (pattern, name) positions rather than
// backtracking: a client-chosen pattern like "*a*a*a*b" must not cost
// exponential time (LIST patterns come from the network). The first fold
// bytes of s (ASCII) compare ASCII-case-insensitively.
func match(p, s string, fold int) bool {
	// cur[j]: p[:i] matches s[:j].
	cur := make([]bool, len(s)+1)
	next := make([]bool, len(s)+1)
	cur[0] = true
	for i := 0; i < len(p); i++ {
		clear(next)
		switch c := p[i]; c {
		case '*', '%':
			for j := 0; j <= len(s); j++ {
				// Either the wildcard matches nothing, or it extends a
				// match by one character (% stops at the separator).
				next[j] = cur[j] || (j > 0 && next[j-1] && (c == '*' || s[j-1] != Separator[0]))
			}
		default:
			for j := 1; j <= len(s); j++ {
				next[j] = cur[j-1] && (s[j-1] == c || j <= fold && lowerASCII(s[j-1]) == lowerASCII(c))
			}
		}
		cur, next = next, cur
	}
	return cur[len(s)]
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Parent returns the parent name of a hierarchical name ("" at the top).
func Parent(name string) string {
	i := strings.LastIndex(name, Separator)
	if i < 0 {
		return ""
	}
	return name[:i]
}

var systemFlags = []string{FlagAnswered, FlagDeleted, FlagDraft, FlagFlagged, FlagSeen}

// NormalizeFlags canonicalises a flag list: system flags in their standard
// spelling (they are case-insensitive, RFC 9051 section 2.3.2), keywords as
// given, duplicates (case-insensitively) removed, sorted. \Recent is dropped:
// no client may set it.
func NormalizeFlags(flags []string) []string {
	out := make([]string, 0, len(flags))
	seen := make(map[string]bool, len(flags))
	for _, f := range flags {
		if f == "" || strings.EqualFold(f, `\Recent`) {
			continue
		}
		for _, sf := range systemFlags {
			if strings.EqualFold(f, sf) {
				f = sf
				break
			}
		}
		k := strings.ToLower(f)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Keywords keeps the keywords of a list of flags (or of several lists),
// one spelling per keyword (keywords are case-insensitive, RFC 9051
// section 2.3.2: the first in sort order wins), sorted.
func Keywords(flags []string) []string {
	slices.Sort(flags)
	out := make([]string, 0, len(flags))
	seen := make(map[string]bool, len(flags))
	for _, f := range flags {
		if f == "" || strings.HasPrefix(f, `\`) {
			continue
		}
		if k := strings.ToLower(f); !seen[k] {
			seen[k] = true
			out = append(out, f)
		}
	}
	return out
}

// HasFlag reports whether flags holds f, case-insensitively.
func HasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}

// ApplyFlags computes the new flag list for a STORE.
func ApplyFlags(cur []string, mode StoreFlagsMode, flags []string) []string {
	switch mode {
	case FlagsReplace:
		return NormalizeFlags(flags)
	case FlagsAdd:
		return NormalizeFlags(append(slices.Clone(cur), flags...))
	default:
		out := make([]string, 0, len(cur))
		for _, f := range cur {
			if !HasFlag(flags, f) {
				out = append(out, f)
			}
		}
		return NormalizeFlags(out)
	}
}

// IsASCII reports whether s is all ASCII: an address that is not needs
// SMTPUTF8 on the way in and out (RFC 6531).
func IsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// NormalizeAddress lower-cases an address and checks it has a local part
// and a domain.
func NormalizeAddress(addr string) (string, error) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(addr, " \t\r\n<>") || strings.Contains(domain, "@") {
		return "", fmt.Errorf("%w: address %q", ErrInvalidName, addr)
	}
	return addr, nil
}
