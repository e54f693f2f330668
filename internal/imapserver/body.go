package imapserver

import (
	"slices"
	"strings"

	"github.com/roost-mail/roost/internal/message"
)

// Rendering of ENVELOPE and BODYSTRUCTURE (RFC 9051 section 7.5.2) from the
// facts stored at delivery, and slicing of body sections from the raw
// message by the part offsets (section 6.4.5).

func appendEnvelope(b []byte, e *message.Envelope, utf8OK bool) []byte {
	if e == nil {
		e = &message.Envelope{}
	}
	b = append(b, '(')
	b = appendNString(b, e.Date, utf8OK)
	b = append(b, ' ')
	b = appendNString(b, e.Subject, utf8OK)
	from := e.From
	sender, replyTo := e.Sender, e.ReplyTo
	// RFC 9051 section 7.5.2: absent Sender and Reply-To default to From.
	if len(sender) == 0 {
		sender = from
	}
	if len(replyTo) == 0 {
		replyTo = from
	}
	for _, l := range [][]message.Address{from, sender, replyTo, e.To, e.Cc, e.Bcc} {
		b = append(b, ' ')
		b = appendAddresses(b, l, utf8OK)
	}
	b = append(b, ' ')
	b = appendNString(b, e.InReplyTo, utf8OK)
	b = append(b, ' ')
	b = appendNString(b, e.MessageID, utf8OK)
	return append(b, ')')
}

func appendAddresses(b []byte, l []message.Address, utf8OK bool) []byte {
	if len(l) == 0 {
		return append(b, "NIL"...)
	}
	b = append(b, '(')
	for _, a := range l {
		b = append(b, '(')
		b = appendNString(b, a.Name, utf8OK)
		b = append(b, ' ')
		b = appendNString(b, a.ADL, utf8OK)
		b = append(b, ' ')
		b = appendNString(b, a.Mailbox, utf8OK)
		b = append(b, ' ')
		b = appendNString(b, a.Host, utf8OK)
		b = append(b, ')')
	}
	return append(b, ')')
}

func appendParams(b []byte, params map[string]string, utf8OK bool) []byte {
	if len(params) == 0 {
		return append(b, "NIL"...)
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '(')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendString(b, strings.ToUpper(k), utf8OK)
		b = append(b, ' ')
		b = appendString(b, params[k], utf8OK)
	}
	return append(b, ')')
}

func isMultipart(p *message.Part) bool { return p.Type == "multipart" }

func isMessagePart(p *message.Part) bool {
	return p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global")
}

var defaultPart = &message.Part{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}}

// appendBodyStructure renders BODY (ext=false) or BODYSTRUCTURE (ext=true).
func appendBodyStructure(b []byte, p *message.Part, ext, utf8OK bool, depth int) []byte {
	if p == nil {
		p = defaultPart
	}
	b = append(b, '(')
	if isMultipart(p) && len(p.Children) > 0 && depth < 100 {
		for _, c := range p.Children {
			b = appendBodyStructure(b, c, ext, utf8OK, depth+1)
		}
		b = append(b, ' ')
		b = appendString(b, strings.ToUpper(p.Subtype), utf8OK)
		if ext {
			b = append(b, ' ')
			b = appendParams(b, p.Params, utf8OK)
			b = appendExt(b, p, utf8OK)
		}
		return append(b, ')')
	}
	typ, sub := p.Type, p.Subtype
	if isMultipart(p) {
		// A multipart without parts cannot be rendered as one.
		typ, sub = "text", "plain"
	}
	b = appendString(b, strings.ToUpper(typ), utf8OK)
	b = append(b, ' ')
	b = appendString(b, strings.ToUpper(sub), utf8OK)
	b = append(b, ' ')
	b = appendParams(b, p.Params, utf8OK)
	b = append(b, ' ')
	b = appendNString(b, p.ID, utf8OK)
	b = append(b, ' ')
	b = appendNString(b, p.Description, utf8OK)
	b = append(b, ' ')
	enc := strings.ToUpper(p.Encoding)
	if enc == "" {
		enc = "7BIT"
	}
	b = appendString(b, enc, utf8OK)
	b = append(b, ' ')
	b = appendUint(b, uint64(max(p.Size, 0)))
	if isMessagePart(p) && depth < 100 {
		// RFC 9051 section 7.5.2: body-type-msg.
		b = append(b, ' ')
		b = appendEnvelope(b, p.Envelope, utf8OK)
		b = append(b, ' ')
		b = appendBodyStructure(b, p.Message, ext, utf8OK, depth+1)
		b = append(b, ' ')
		b = appendUint(b, uint64(max(p.Lines, 0)))
	} else if typ == "text" {
		b = append(b, ' ')
		b = appendUint(b, uint64(max(p.Lines, 0)))
	}
	if ext {
		b = append(b, ' ')
		b = appendNString(b, p.MD5, utf8OK)
		b = appendExt(b, p, utf8OK)
	}
	return append(b, ')')
}

// appendExt renders body-fld-dsp SP body-fld-lang SP body-fld-loc.
func appendExt(b []byte, p *message.Part, utf8OK bool) []byte {
	b = append(b, ' ')
	if p.Disposition == "" {
		b = append(b, "NIL"...)
	} else {
		b = append(b, '(')
		b = appendString(b, strings.ToUpper(p.Disposition), utf8OK)
		b = append(b, ' ')
		b = appendParams(b, p.DispParams, utf8OK)
		b = append(b, ')')
	}
	b = append(b, ' ')
	switch len(p.Language) {
	case 0:
		b = append(b, "NIL"...)
	case 1:
		b = appendString(b, p.Language[0], utf8OK)
	default:
		b = append(b, '(')
		for i, l := range p.Language {
			if i > 0 {
				b = append(b, ' ')
			}
			b = appendString(b, l, utf8OK)
		}
		b = append(b, ')')
	}
	b = append(b, ' ')
	return appendNString(b, p.Location, utf8OK)
}

// sectionData returns the bytes of a BODY[section] (RFC 9051 section
// 6.4.5), sliced from the raw message by the part offsets.
func sectionData(raw []byte, root *message.Part, s *section) []byte {
	if root == nil {
		return nil
	}
	msg := root // the message whose HEADER/TEXT is asked for
	if len(s.part) > 0 {
		p := message.PartAt(root, s.part)
		if p == nil {
			return nil
		}
		switch s.spec {
		case "":
			return message.BodyBytes(raw, p)
		case "MIME":
			return message.HeaderBytes(raw, p)
		}
		if !isMessagePart(p) || p.Message == nil {
			return nil
		}
		msg = p.Message
	}
	switch s.spec {
	case "":
		if msg == root {
			return raw
		}
		return slice(raw, msg.HeaderStart, msg.BodyEnd)
	case "HEADER":
		return message.HeaderBytes(raw, msg)
	case "TEXT":
		return message.BodyBytes(raw, msg)
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		return message.HeaderFields(message.HeaderBytes(raw, msg), s.fields, s.spec == "HEADER.FIELDS.NOT")
	}
	return nil
}

func slice(raw []byte, lo, hi int64) []byte {
	lo, hi = max(lo, 0), min(hi, int64(len(raw)))
	if lo >= hi {
		return nil
	}
	return raw[lo:hi]
}

// binaryData returns a BINARY[section] with its transfer encoding undone
// (RFC 3516 section 4.2). Multiparts and enclosed messages have no
// encoding of their own to undo.
func binaryData(raw []byte, root *message.Part, path []int) ([]byte, error) {
	if len(path) == 0 || root == nil {
		return raw, nil
	}
	p := message.PartAt(root, path)
	if p == nil {
		return nil, nil
	}
	if isMultipart(p) || isMessagePart(p) {
		return message.BodyBytes(raw, p), nil
	}
	return message.DecodeBody(p, raw)
}
