package message

import (
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Parse computes a message's facts. It never fails: a malformed message
// yields what could be recovered, and the raw bytes are stored regardless.
// Offsets in the result index raw, which Parse does not keep or modify.
func Parse(raw []byte) (parsed *Parsed) {
	defer func() {
		// Defence in depth: the parser is fuzzed, but a message that still
		// trips it must be stored, not lost. The whole message is then one
		// text part.
		if recover() != nil {
			n := int64(len(raw))
			parsed = &Parsed{Body: &Part{Type: "text", Subtype: "plain",
				Params: map[string]string{"charset": "us-ascii"},
				Size:   n, Lines: countLines(raw), BodyEnd: n}}
		}
	}()
	return parse(raw)
}

// parse is Parse without the safety net, so that fuzzing sees panics.
func parse(raw []byte) *Parsed {
	p := &parser{raw: raw}
	body, h := p.entity(0, len(raw), false, 0)
	out := &Parsed{Envelope: buildEnvelope(h), Body: body}
	out.Date = parseDate(h.get("date"))
	out.SearchHeaders = SearchHeaders{
		From:      decodeHeader(h.get("from")),
		To:        decodeHeader(h.get("to")),
		Cc:        decodeHeader(h.get("cc")),
		Bcc:       decodeHeader(h.get("bcc")),
		Subject:   decodeHeader(h.get("subject")),
		MessageID: firstMsgID(h.get("message-id")),
	}
	out.HeaderText = headerText(h)
	out.BodyText, out.Preview = extractText(raw, body)
	out.References = references(h)
	return out
}

// buildEnvelope fills an ENVELOPE from a message header (RFC 9051 section
// 7.5.2): date, subject, in-reply-to and message-id are the raw field
// values (unfolded, RFC 2047 words left encoded); the address fields are
// parsed address lists. The first occurrence of a field counts.
func buildEnvelope(h header) Envelope {
	env := Envelope{
		Date:      sanitize(h.get("date")),
		Subject:   sanitize(h.get("subject")),
		From:      addresses(h, "from"),
		Sender:    addresses(h, "sender"),
		ReplyTo:   addresses(h, "reply-to"),
		To:        addresses(h, "to"),
		Cc:        addresses(h, "cc"),
		Bcc:       addresses(h, "bcc"),
		InReplyTo: sanitize(h.get("in-reply-to")),
		MessageID: sanitize(h.get("message-id")),
	}
	// RFC 9051 section 7.5.2 (as RFC 3501 before it): a Sender or Reply-To
	// that is absent or empty is set by the server to the From value;
	// clients are not expected to do this themselves.
	if len(env.Sender) == 0 {
		env.Sender = env.From
	}
	if len(env.ReplyTo) == 0 {
		env.ReplyTo = env.From
	}
	return env
}

func addresses(h header, name string) []Address {
	v := h.get(name)
	if v == "" {
		return nil
	}
	return parseAddressList(sanitize(v))
}

// sanitize makes a raw header string valid UTF-8. RFC 6532 allows UTF-8
// in headers; other 8-bit octets are almost always Latin-1 or its Windows
// superset, so they are read as Windows-1252 rather than lost as U+FFFD
// (the facts are stored as JSON, which cannot hold invalid UTF-8).
func sanitize(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	d, err := charmap.Windows1252.NewDecoder().String(s)
	if err != nil {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return d
}

func sanitizeMap(m map[string]string) map[string]string {
	for k, v := range m {
		if sk := sanitize(k); sk != k {
			delete(m, k)
			k = sk
		}
		m[k] = sanitize(v)
	}
	return m
}

// headerText renders the header for SEARCH HEADER: one "Name: value" line
// per field, unfolded, encoded words decoded.
func headerText(h header) string {
	var sb strings.Builder
	for _, f := range h {
		sb.WriteString(sanitize(f.name))
		sb.WriteString(": ")
		sb.WriteString(decodeHeader(unfold(f.value)))
		sb.WriteByte('\n')
	}
	return sb.String()
}

// msgIDs returns the msg-ids of a field (RFC 5322 section 3.6.4) without
// their angle brackets. Ids written without brackets (seen in broken
// References fields) are taken as the white-space separated words that
// contain an "@".
func msgIDs(v string) []string {
	var ids []string
	rest := v
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(rest[i+1 : i+j]); id != "" {
			ids = append(ids, sanitize(id))
		}
		rest = rest[i+j+1:]
	}
	if len(ids) == 0 {
		for _, w := range strings.Fields(v) {
			if strings.Contains(w, "@") && !strings.ContainsAny(w, "<>()") {
				ids = append(ids, sanitize(w))
			}
		}
	}
	return ids
}

func firstMsgID(v string) string {
	if ids := msgIDs(v); len(ids) > 0 {
		return ids[0]
	}
	return sanitize(strings.TrimSpace(v))
}

// maxReferences bounds the ids kept from one message; threading needs the
// first (the root) and the last few.
const maxReferences = 256

// references lists the ids of References then In-Reply-To (RFC 5322
// section 3.6.4), each once, for threading.
func references(h header) []string {
	var out []string
	seen := make(map[string]bool)
	for _, name := range []string{"references", "in-reply-to"} {
		for _, id := range msgIDs(h.get(name)) {
			if !seen[id] && len(out) < maxReferences {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}

// Date layouts tried after net/mail's, for forms seen in the wild that
// RFC 5322 section 3.3 (with the obsolete syntax of section 4.3) does not
// allow: asctime, ISO 8601, numeric zone without sign.
var extraDateLayouts = []string{
	"Mon Jan _2 15:04:05 2006",
	"Mon Jan _2 15:04:05 MST 2006",
	"Mon Jan _2 15:04:05 -0700 2006",
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 0700",
	"2 Jan 2006 15:04:05 0700",
	"Mon, 2 Jan 06 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05",
	"2 Jan 2006 15:04:05",
}

// parseDate parses a Date field value (RFC 5322 section 3.3), dropping
// comments; the zero time when it cannot be read.
func parseDate(v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	var sb strings.Builder
	for i := 0; i < len(v); {
		if v[i] == '(' {
			i = skipComment(v, i)
			sb.WriteByte(' ')
			continue
		}
		sb.WriteByte(v[i])
		i++
	}
	s := strings.Join(strings.Fields(sb.String()), " ")
	if t, err := mail.ParseDate(s); err == nil {
		return t
	}
	for _, layout := range extraDateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
