// Package message owns everything Roost knows about the inside of an RFC 5322
// message: MIME parsing, the IMAP ENVELOPE and BODYSTRUCTURE facts (RFC 9051
// section 7.5.2), the headers that SEARCH and SORT need, a text extract for
// full-text search, a preview, and extraction of body sections by part number.
//
// It is protocol-neutral data: the IMAP server renders these structs on the
// wire, the store serialises them (JSON) beside each message row so that FETCH
// and SEARCH never re-parse on the hot path.
package message

import "time"

// Address is one mailbox of an address list, split as IMAP's ENVELOPE wants
// it (RFC 9051 section 7.5.2: addr-name, addr-adl, addr-mailbox, addr-host).
// A group start has Host == "" and Mailbox == group name; a group end has
// both empty (RFC 9051 section 9, "addr-host ... NIL indicates group syntax").
type Address struct {
	Name    string `json:"n,omitempty"`
	ADL     string `json:"a,omitempty"`
	Mailbox string `json:"m,omitempty"`
	Host    string `json:"h,omitempty"`
}

// Envelope is the parsed ENVELOPE of a message. Strings are the raw header
// values (RFC 2047 encoded words are left as they are, as IMAP requires);
// an empty string renders as NIL.
type Envelope struct {
	Date      string    `json:"date,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	From      []Address `json:"from,omitempty"`
	Sender    []Address `json:"sender,omitempty"`
	ReplyTo   []Address `json:"replyto,omitempty"`
	To        []Address `json:"to,omitempty"`
	Cc        []Address `json:"cc,omitempty"`
	Bcc       []Address `json:"bcc,omitempty"`
	InReplyTo string    `json:"inreplyto,omitempty"`
	MessageID string    `json:"messageid,omitempty"`
}

// Part is one node of a BODYSTRUCTURE tree (RFC 9051 section 7.5.2).
// Multipart nodes have Children; message/rfc822 (and message/global) nodes
// have Envelope and Message set to the enclosed message's facts.
type Part struct {
	Type        string            `json:"type"`              // lower case, e.g. "text"
	Subtype     string            `json:"subtype"`           // lower case, e.g. "plain"
	Params      map[string]string `json:"params,omitempty"`  // Content-Type parameters, keys lower case
	ID          string            `json:"id,omitempty"`      // Content-ID
	Description string            `json:"desc,omitempty"`    // Content-Description
	Encoding    string            `json:"enc,omitempty"`     // Content-Transfer-Encoding, as given; "" = 7BIT
	Size        int64             `json:"size"`              // body octets (encoded, as on the wire)
	Lines       int64             `json:"lines"`             // text/* and message/rfc822: body lines
	MD5         string            `json:"md5,omitempty"`     // Content-MD5
	Disposition string            `json:"disp,omitempty"`    // Content-Disposition value, lower case
	DispParams  map[string]string `json:"dparams,omitempty"` // its parameters
	Language    []string          `json:"lang,omitempty"`    // Content-Language
	Location    string            `json:"loc,omitempty"`     // Content-Location

	Children []*Part   `json:"children,omitempty"` // multipart/*
	Envelope *Envelope `json:"env,omitempty"`      // message/rfc822
	Message  *Part     `json:"msg,omitempty"`      // message/rfc822: the enclosed body

	// Byte offsets into the raw message, so a BODY[section] fetch slices
	// instead of re-parsing. HeaderStart..BodyStart is the part's MIME header
	// (empty for a multipart child without one), BodyStart..BodyEnd its body.
	HeaderStart int64 `json:"hs"`
	BodyStart   int64 `json:"bs"`
	BodyEnd     int64 `json:"be"`
}

// Parsed is everything computed once at delivery.
type Parsed struct {
	Envelope      Envelope `json:"envelope"`
	Body          *Part    `json:"body"`
	Date          time.Time
	SearchHeaders SearchHeaders
	// HeaderText is the whole top-level header, unfolded and with encoded
	// words decoded, for SEARCH HEADER.
	HeaderText string
	// BodyText is the decoded text of the text/* parts (HTML stripped to
	// text), bounded in size, for SEARCH BODY/TEXT.
	BodyText string
	// Preview is the first ~200 characters of body text (RFC 8970).
	Preview string
	// References lists the Message-IDs of References then In-Reply-To, used
	// to derive a THREADID.
	References []string
}

// SearchHeaders are the decoded header fields SEARCH and SORT use directly.
type SearchHeaders struct {
	From      string
	To        string
	Cc        string
	Bcc       string
	Subject   string
	MessageID string // without angle brackets
}
