package mailstore

import "time"

// SearchOp is the kind of a search key node. The IMAP server translates its
// SEARCH program into this tree (sequence sets already turned into UIDs);
// backends translate the tree into their query language.
type SearchOp uint8

const (
	SearchAll    SearchOp = iota + 1 // matches every message
	SearchAnd                        // every child matches
	SearchOr                         // some child matches
	SearchNot                        // the single child does not match
	SearchUIDs                       // UID in UIDs
	SearchFlag                       // has Flag (system flag or keyword; case-insensitive)
	SearchNoFlag                     // lacks Flag
	// Internal date (the time's calendar day in the server's zone, per
	// RFC 9051 section 6.4.4: "disregarding time and timezone"):
	SearchBefore // internal date < Date (day)
	SearchOn     // same day
	SearchSince  // >= day
	// Date: header, same day rules:
	SearchSentBefore
	SearchSentOn
	SearchSentSince
	SearchLarger  // size > Size
	SearchSmaller // size < Size
	// Substring matches, case-insensitive:
	SearchHeader // Header field Name contains Value ("" matches any message having the field)
	SearchBody   // body text contains Value
	SearchText   // header or body contains Value
	SearchModSeq // modseq >= ModSeq (RFC 7162)
	// Save date, same day rules (RFC 8514):
	SearchSavedBefore
	SearchSavedOn
	SearchSavedSince
	// Relative age, seconds (RFC 5032): internal date older/younger.
	SearchOlder
	SearchYounger
	SearchEmailID  // RFC 8474
	SearchThreadID // RFC 8474
)

// SearchKey is a node of a search program.
type SearchKey struct {
	Op       SearchOp
	Children []*SearchKey
	UIDs     UIDSet
	Flag     string
	Date     time.Time // calendar day in Date.Location()
	Size     int64
	Name     string // header field name
	Value    string
	ModSeq   ModSeq
	Seconds  int64
}
