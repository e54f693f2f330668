package mailstore

import (
	"slices"
	"strconv"
	"strings"
)

// UIDRange is an inclusive range Lo..Hi; Hi == MaxUID stands for "*".
type UIDRange struct{ Lo, Hi UID }

// UIDSet is a list of ranges. Normalize sorts and merges them.
type UIDSet []UIDRange

// UIDSetOf builds a set from individual UIDs.
func UIDSetOf(uids ...UID) UIDSet {
	s := make(UIDSet, 0, len(uids))
	for _, u := range uids {
		s = append(s, UIDRange{u, u})
	}
	return s.Normalize()
}

// Contains reports whether u is in the set.
func (s UIDSet) Contains(u UID) bool {
	for _, r := range s {
		if u >= r.Lo && u <= r.Hi {
			return true
		}
	}
	return false
}

// Normalize returns the set sorted with overlapping and adjacent ranges
// merged, each with Lo <= Hi.
func (s UIDSet) Normalize() UIDSet {
	if len(s) == 0 {
		return nil
	}
	out := make(UIDSet, len(s))
	for i, r := range s {
		if r.Lo > r.Hi {
			r.Lo, r.Hi = r.Hi, r.Lo
		}
		out[i] = r
	}
	slices.SortFunc(out, func(a, b UIDRange) int {
		switch {
		case a.Lo < b.Lo:
			return -1
		case a.Lo > b.Lo:
			return 1
		}
		return 0
	})
	merged := out[:1]
	for _, r := range out[1:] {
		last := &merged[len(merged)-1]
		if last.Hi == MaxUID || r.Lo <= last.Hi+1 {
			if r.Hi > last.Hi {
				last.Hi = r.Hi
			}
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// String renders the set in IMAP sequence-set syntax ("1:3,7,9:*").
func (s UIDSet) String() string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		writeUID(&b, r.Lo)
		if r.Hi != r.Lo {
			b.WriteByte(':')
			writeUID(&b, r.Hi)
		}
	}
	return b.String()
}

func writeUID(b *strings.Builder, u UID) {
	if u == MaxUID {
		b.WriteByte('*')
		return
	}
	b.WriteString(strconv.FormatUint(uint64(u), 10))
}

// CompactUIDs turns an ascending list into ranges (for COPYUID, VANISHED).
func CompactUIDs(uids []UID) UIDSet {
	var s UIDSet
	for _, u := range uids {
		if n := len(s); n > 0 && s[n-1].Hi+1 == u {
			s[n-1].Hi = u
			continue
		}
		s = append(s, UIDRange{u, u})
	}
	return s
}
