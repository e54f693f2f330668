// # Sections
//
// IMAP section specifiers (RFC 9051 section 6.4.5) map onto this package
// as follows, with raw the stored message and root = Parsed.Body:
//
//	BODY[]                   raw
//	BODY[HEADER]             HeaderBytes(raw, root)
//	BODY[HEADER.FIELDS (l)]  HeaderFields(HeaderBytes(raw, root), l, false)
//	BODY[HEADER.FIELDS.NOT]  HeaderFields(HeaderBytes(raw, root), l, true)
//	BODY[TEXT]               BodyBytes(raw, root)
//	BODY[n]                  BodyBytes(raw, PartAt(root, n))
//	BODY[n.MIME]             HeaderBytes(raw, PartAt(root, n))
//	BODY[n.HEADER]           HeaderBytes(raw, PartAt(root, n).Message)
//	BODY[n.HEADER.FIELDS...] HeaderFields(HeaderBytes(raw, PartAt(root, n).Message), ...)
//	BODY[n.TEXT]             BodyBytes(raw, PartAt(root, n).Message)
//	BINARY[n]                DecodeBody(PartAt(root, n), raw)
//
// n.HEADER and n.TEXT are only valid when part n is message/rfc822 or
// message/global (Message != nil). In a message that is not multipart,
// part 1 is the root itself, so BODY[1] equals BODY[TEXT] and BODY[1.MIME]
// is the message header. For a message/rfc822 part n, BODY[n] is the
// whole enclosed message (its header and text).
//
// # Choices
//
// Choices where the RFCs leave room:
//   - A multipart without a boundary parameter is invalid (RFC 2046
//     section 5.1.1); RFC 2045 section 5.2's default text/plain;
//     charset=us-ascii applies to it, so its body is one text part.
//   - A multipart whose boundary never appears gets one empty text/plain
//     child so that BODYSTRUCTURE stays valid.
//   - Lines counts line ends plus an unterminated last line.
//   - An address without a host gets ".MISSING-HOST-NAME.", one without a
//     local part "MISSING_MAILBOX", so neither reads as group syntax.
//   - 8-bit header octets that are not UTF-8 are read as Windows-1252.
//   - Parts nested deeper than 64 levels, or beyond 10,000 parts, are not
//     split further and are reported as application/octet-stream.
package message
