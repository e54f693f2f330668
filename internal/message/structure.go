package message

import (
	"bytes"
	"strings"
)

// Limits that keep a hostile message from costing more than a sane one.
// Beyond them parts are not split further; see leafOverLimit.
const (
	maxDepth = 64    // nesting of multipart and message/rfc822 parts
	maxParts = 10000 // body parts in one message
)

// parser builds the BODYSTRUCTURE tree of one raw message.
type parser struct {
	raw   []byte
	parts int
}

// entity parses raw[start:end] as a MIME entity (RFC 2045 section 2.4:
// header, empty line, body). digest says the entity is a child of a
// multipart/digest, whose default type is message/rfc822 (RFC 2046
// section 5.1.5). It returns the part and the entity's parsed header.
func (p *parser) entity(start, end int, digest bool, depth int) (*Part, header) {
	p.parts++
	bs := headerEnd(p.raw, start, end)
	h := parseHeader(p.raw[start:bs])
	part := &Part{
		HeaderStart: int64(start),
		BodyStart:   int64(bs),
		BodyEnd:     int64(end),
		Size:        int64(end - bs),
	}

	typ, sub, params, ok := "", "", map[string]string(nil), false
	if ct, present := h.lookup("content-type"); present {
		typ, sub, params, ok = parseContentType(ct)
	} else if digest {
		typ, sub, ok = "message", "rfc822", true
	}
	if !ok {
		// RFC 2045 section 5.2: no Content-Type, or a syntactically invalid
		// one, means text/plain; charset=us-ascii.
		typ, sub, params = "text", "plain", nil
	}
	if typ == "multipart" && params["boundary"] == "" {
		// RFC 2046 section 5.1.1 makes boundary mandatory: a multipart
		// without one cannot be split, so its Content-Type is invalid and
		// RFC 2045 section 5.2's default applies. The body stays readable
		// as one text part instead of vanishing from the structure.
		typ, sub, params = "text", "plain", nil
	}
	container := typ == "multipart" || typ == "message" && (sub == "rfc822" || sub == "global")
	if container && (depth >= maxDepth || p.parts >= maxParts) {
		typ, sub, params = leafOverLimit()
	}

	part.Type, part.Subtype, part.Params = typ, sub, params
	if typ == "text" && part.Params["charset"] == "" {
		// RFC 2046 section 4.1.2: the charset of text without one is US-ASCII.
		if part.Params == nil {
			part.Params = make(map[string]string, 1)
		}
		part.Params["charset"] = "us-ascii"
	}
	part.ID = sanitize(h.get("content-id"))
	part.Description = sanitize(h.get("content-description"))
	if enc, present := h.lookup("content-transfer-encoding"); present {
		part.Encoding, _ = parseMIMEValue(enc)
		part.Encoding = sanitize(part.Encoding)
	}
	part.MD5 = sanitize(h.get("content-md5"))
	if d, present := h.lookup("content-disposition"); present {
		// RFC 2183 section 2: the disposition type is case-insensitive.
		v, dp := parseMIMEValue(d)
		part.Disposition = strings.ToLower(sanitize(v))
		part.DispParams = sanitizeMap(dp)
	}
	if l := h.get("content-language"); l != "" {
		// RFC 3282 section 2: a comma-separated list of language tags.
		v, _ := parseMIMEValue(l) // drops comments
		for _, tag := range strings.Split(v, ",") {
			if tag = strings.TrimSpace(tag); tag != "" {
				part.Language = append(part.Language, sanitize(tag))
			}
		}
	}
	part.Location = sanitize(h.get("content-location"))
	part.Params = sanitizeMap(part.Params)

	switch {
	case typ == "multipart":
		part.Children = p.multipart(bs, end, params["boundary"], sub == "digest", depth+1)
		if len(part.Children) == 0 {
			// RFC 9051 section 9's body-type-mpart needs at least one
			// body: a multipart whose boundary never shows up reads as
			// one empty text/plain part.
			part.Children = []*Part{emptyPart(end)}
		}
	case typ == "message" && (sub == "rfc822" || sub == "global"):
		part.Lines = countLines(p.raw[bs:end])
		if identityEncoding(part.Encoding) {
			// RFC 9051 section 7.5.2: a message/rfc822 body carries the
			// enclosed message's envelope and body structure.
			msg, mh := p.entity(bs, end, false, depth+1)
			env := buildEnvelope(mh)
			part.Envelope, part.Message = &env, msg
		} else {
			// RFC 6532 section 3.5 lets message/global be encoded. Its
			// inner offsets cannot index the raw bytes, so the envelope
			// comes from the decoded message and the body is reported as
			// one empty text part; BODY[n] and BINARY[n] still return it all.
			dec, _ := DecodeBody(part, p.raw)
			inner := headerEnd(dec, 0, len(dec))
			env := buildEnvelope(parseHeader(dec[:inner]))
			part.Envelope, part.Message = &env, emptyPart(end)
		}
	case typ == "text":
		part.Lines = countLines(p.raw[bs:end])
	}
	return part, h
}

// leafOverLimit is the type given to a container part beyond maxDepth or
// maxParts: RFC 2046 section 4.5.1's type for data not interpreted further.
func leafOverLimit() (string, string, map[string]string) {
	return "application", "octet-stream", nil
}

// emptyPart is a zero-length text/plain part at offset off.
func emptyPart(off int) *Part {
	o := int64(off)
	return &Part{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"},
		HeaderStart: o, BodyStart: o, BodyEnd: o}
}

// identityEncoding reports whether a Content-Transfer-Encoding leaves the
// bytes as they are (RFC 2045 section 6.2), so that nested entities can be
// located in the raw message.
func identityEncoding(enc string) bool {
	switch strings.ToLower(enc) {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}

// multipart splits the body raw[start:end] of a multipart entity at its
// boundary delimiter lines (RFC 2046 section 5.1.1) and parses the body
// parts between them; preamble and epilogue are ignored. A delimiter line
// is "--" boundary at the start of a line followed only by white space; the
// close delimiter has "--" after the boundary. The line end before a
// delimiter belongs to the delimiter, not to the part before it. Without a
// close delimiter the last part runs to the end of the body.
func (p *parser) multipart(start, end int, boundary string, digest bool, depth int) []*Part {
	b := p.raw
	marker := []byte("--" + boundary)
	var children []*Part
	partStart := -1 // start of the current body part, -1 in the preamble
	pos := start
	for pos < end {
		i := bytes.Index(b[pos:end], marker)
		if i < 0 {
			break
		}
		ls := pos + i
		if ls != start && b[ls-1] != '\n' {
			pos = ls + 1
			continue
		}
		le := end // just after this line's line end
		if j := bytes.IndexByte(b[ls:end], '\n'); j >= 0 {
			le = ls + j + 1
		}
		rest := b[ls+len(marker) : le]
		closing := bytes.HasPrefix(rest, []byte("--"))
		if !closing && len(bytes.Trim(rest, " \t\r\n")) != 0 {
			pos = le // a longer boundary that merely starts like ours
			continue
		}
		if partStart >= 0 {
			children = p.child(children, partStart, lineEndBefore(b, start, ls), digest, depth)
		}
		if closing {
			return children
		}
		partStart = le
		pos = le
	}
	if partStart >= 0 {
		children = p.child(children, partStart, end, digest, depth)
	}
	return children
}

func (p *parser) child(children []*Part, start, end int, digest bool, depth int) []*Part {
	if end < start {
		end = start
	}
	if p.parts >= maxParts {
		return children
	}
	c, _ := p.entity(start, end, digest, depth)
	return append(children, c)
}

// lineEndBefore returns where the line end before a delimiter line at ls
// starts (CRLF, or a bare LF); at the start of the body there is none.
func lineEndBefore(b []byte, start, ls int) int {
	if ls == start {
		return ls
	}
	if ls-2 >= start && b[ls-2] == '\r' {
		return ls - 2
	}
	return ls - 1
}

// countLines counts the lines of a body: its line ends, plus a last line
// that has none (as in a body part, whose final CRLF belongs to the next
// boundary, or a message without a final CRLF).
func countLines(b []byte) int64 {
	n := int64(bytes.Count(b, []byte{'\n'}))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}
