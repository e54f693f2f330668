package message

import (
	"bytes"
	"encoding/base64"
	"errors"
	"html"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

const (
	// maxBodyText bounds BodyText: enough for full-text search of any
	// human-written mail without storing attachments' worth of text.
	maxBodyText = 256 << 10
	// maxTextInput bounds how much of one encoded text part is decoded.
	maxTextInput = 1 << 20
	// previewChars is RFC 8970 section 3's "SHOULD NOT exceed 200 characters".
	previewChars = 200
	// maxWordScan bounds the search for the end of an encoded word, so
	// a header full of "=?" stays linear.
	maxWordScan = 1024
)

var wordDecoder = mime.WordDecoder{CharsetReader: charset.Reader}

// rawWords undoes only the B or Q encoding of a word, leaving the bytes in
// the word's charset: it is only ever given the made-up charset "raw",
// which mime hands to this CharsetReader, which passes the bytes through.
var rawWords = mime.WordDecoder{CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil }}

// decodeHeader decodes the RFC 2047 encoded words of an unfolded header
// value for searching and display. Words in an unknown charset, or
// malformed ones, are kept as written; white space between two adjacent
// encoded words is dropped (RFC 2047 section 6.2). 8-bit text outside the
// words goes through sanitize.
//
// A run of adjacent words in one charset is converted as one byte string.
// Mailers that cut B or Q words at a fixed length split multi-byte
// characters between two words; RFC 2047 section 5 forbids that, but mail
// readers join the words and show the right text, and converting each
// half on its own would index mojibake that SEARCH then misses.
func decodeHeader(s string) string {
	if !strings.Contains(s, "=?") {
		return sanitize(s)
	}
	var sb strings.Builder
	var run []byte           // the current run's bytes, B/Q undone
	var runCS string         // its charset; "" when there is no run
	var runStart, runEnd int // where it is in s
	flush := func() bool {
		if runCS == "" {
			return true
		}
		// Re-encoded as one B word so the run gets exactly mime's charset
		// handling (its own UTF-8, ISO-8859-1 and US-ASCII cases, then
		// charset.Reader), as single words always did.
		dec, err := wordDecoder.Decode("=?" + runCS + "?b?" + base64.StdEncoding.EncodeToString(run) + "?=")
		if err == nil {
			sb.WriteString(sanitize(dec))
		} else {
			sb.WriteString(sanitize(s[runStart:runEnd]))
		}
		run, runCS = run[:0], ""
		return err == nil
	}
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], "=?")
		if j < 0 {
			flush()
			sb.WriteString(sanitize(s[i:]))
			break
		}
		text := s[i : i+j]
		cs, bq, n := encodedWord(s[i+j:])
		var raw string
		err := errNotWord
		if n > 0 && cs != "" {
			raw, err = rawWords.Decode("=?raw?" + bq + "?=")
		}
		if err != nil {
			flush()
			if n == 0 {
				n = 2 // just the "=?"
			}
			sb.WriteString(sanitize(s[i : i+j+n]))
			i += j + n
			continue
		}
		adjacent := runCS != "" && strings.Trim(text, " \t") == ""
		if !adjacent || !strings.EqualFold(cs, runCS) {
			// A word in an unknown charset is kept as written, and so is
			// the space after it.
			if ok := flush(); !adjacent || !ok {
				sb.WriteString(sanitize(text))
			}
			runCS, runStart = cs, i+j
		}
		run = append(run, raw...)
		runEnd = i + j + n
		i += j + n
	}
	flush()
	return sb.String()
}

var errNotWord = errors.New("not an encoded word")

// encodedWord recognises an RFC 2047 section 2 encoded word at the start
// of s: "=?" charset "?" B|Q "?" text "?=". It returns the charset (with an
// RFC 2231 section 5 "*language" suffix removed), the rest of the word
// without its "?=" ("Q?text"), and the word's length in s, or n == 0.
// Spaces inside the text are tolerated: some mailers write them and
// readers decode them anyway.
func encodedWord(s string) (cs, bq string, n int) {
	limit := s
	if len(limit) > maxWordScan {
		limit = limit[:maxWordScan]
	}
	q1 := strings.IndexByte(limit[2:], '?')
	if q1 <= 0 {
		return "", "", 0
	}
	cs = limit[2 : 2+q1]
	rest := limit[2+q1+1:]
	if len(rest) < 2 || rest[1] != '?' || strings.IndexByte("BbQq", rest[0]) < 0 || strings.ContainsAny(cs, " \t") {
		return "", "", 0
	}
	end := strings.Index(rest[2:], "?=")
	if end < 0 {
		return "", "", 0
	}
	if strings.ContainsAny(rest[2:2+end], "\r\n") {
		return "", "", 0
	}
	if star := strings.IndexByte(cs, '*'); star >= 0 {
		cs = cs[:star]
	}
	n = 2 + q1 + 1 + 2 + end + 2
	return cs, rest[:2+end], n
}

// textWalker gathers BodyText and Preview from a part tree.
type textWalker struct {
	raw     []byte
	sb      strings.Builder
	preview string
}

// extractText returns the searchable text of a message's text parts
// (bounded by maxBodyText) and its RFC 8970 preview.
func extractText(raw []byte, root *Part) (string, string) {
	w := &textWalker{raw: raw}
	w.walk(root, 0)
	return w.sb.String(), w.preview
}

func (w *textWalker) walk(p *Part, depth int) {
	if p == nil || depth > maxDepth || w.sb.Len() >= maxBodyText && w.preview != "" {
		return
	}
	switch {
	case p.Type == "multipart":
		if p.Subtype != "alternative" {
			for _, c := range p.Children {
				w.walk(c, depth+1)
			}
			return
		}
		// RFC 2046 section 5.1.4 says the alternatives carry the same
		// content, but in practice the plain one is often a stub ("view
		// this mail in a browser") and the HTML one holds the text the
		// reader sees, which SEARCH BODY/TEXT must find (RFC 9051 section
		// 6.4.4). So every alternative is indexed, within maxBodyText;
		// the plain ones first, so the preview still comes from them.
		for _, c := range p.Children {
			if c.Type == "text" && c.Subtype == "plain" {
				w.walk(c, depth+1)
			}
		}
		for _, c := range p.Children {
			if c.Type != "text" || c.Subtype != "plain" {
				w.walk(c, depth+1)
			}
		}
	case p.Message != nil:
		w.walk(p.Message, depth+1)
	case p.Type == "text":
		t := partText(w.raw, p)
		if w.preview == "" && p.Disposition != "attachment" && (p.Subtype == "plain" || p.Subtype == "html") {
			w.preview = makePreview(t)
		}
		w.add(t)
	}
}

// add appends text within the maxBodyText budget, cut at a rune boundary.
func (w *textWalker) add(t string) {
	room := maxBodyText - w.sb.Len()
	if room <= 0 || strings.TrimSpace(t) == "" {
		return
	}
	if w.sb.Len() > 0 {
		w.sb.WriteByte('\n')
		room--
	}
	if len(t) > room {
		cut := room
		for cut > 0 && !utf8.RuneStart(t[cut]) {
			cut--
		}
		t = t[:cut]
	}
	w.sb.WriteString(t)
}

// partText decodes a text part to UTF-8 text: transfer encoding undone,
// charset converted, HTML reduced to its text. Parts in an unknown
// transfer encoding yield nothing.
func partText(raw []byte, p *Part) string {
	q := *p
	if q.BodyEnd-q.BodyStart > maxTextInput {
		q.BodyEnd = q.BodyStart + maxTextInput
	}
	b, err := DecodeBody(&q, raw)
	if err != nil {
		return ""
	}
	t := toUTF8(b, p.Params["charset"])
	if p.Subtype == "html" {
		t = htmlToText(t)
	}
	return t
}

// toUTF8 converts text in a charset (RFC 2046 section 4.1.2) to UTF-8 with
// go-message's charset tables. An unknown charset, or 8-bit text labelled
// US-ASCII, is read as UTF-8 when it is valid UTF-8 and as Windows-1252
// otherwise, which is what such mail nearly always is.
func toUTF8(b []byte, cs string) string {
	switch strings.ToLower(strings.TrimSpace(cs)) {
	case "", "us-ascii", "ascii", "utf-8", "utf8":
		return sanitize(string(b))
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err != nil {
		return sanitize(string(b))
	}
	out, err := io.ReadAll(r)
	if err != nil && len(out) == 0 {
		return sanitize(string(b))
	}
	return strings.ToValidUTF8(string(out), "\uFFFD")
}

// makePreview normalises white space and keeps the first previewChars
// characters (RFC 8970 section 3).
func makePreview(t string) string {
	var sb strings.Builder
	n := 0
	space := false
	for _, r := range t {
		if n >= previewChars {
			break
		}
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '\f' || r == '\v' || r == 0xa0 {
			space = sb.Len() > 0
			continue
		}
		if r < ' ' || r == 0x7f {
			continue // controls have no place in a preview
		}
		if space {
			sb.WriteByte(' ')
			n++
			space = false
			if n >= previewChars {
				break
			}
		}
		sb.WriteRune(r)
		n++
	}
	return sb.String()
}

// blockTags end a line of text when HTML is reduced to text.
var blockTags = map[string]bool{
	"br": true, "p": true, "div": true, "tr": true, "li": true, "table": true,
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
	"blockquote": true, "pre": true, "hr": true, "ul": true, "ol": true,
}

// htmlToText reduces HTML to its text: tags and comments dropped, script
// and style content dropped, block elements turned into line ends,
// character references decoded. It is a scanner, not an HTML parser: the
// result feeds search and previews, not display.
func htmlToText(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '<' {
			j := strings.IndexByte(s[i:], '<')
			if j < 0 {
				j = len(s) - i
			}
			sb.WriteString(s[i : i+j])
			i += j
			continue
		}
		if strings.HasPrefix(s[i:], "<!--") {
			j := strings.Index(s[i+4:], "-->")
			if j < 0 {
				break
			}
			i += 4 + j + 3
			continue
		}
		end := tagEnd(s, i)
		name := tagName(s[i+1 : end])
		i = end
		if end < len(s) {
			i++ // the '>'
		}
		switch {
		case name == "script" || name == "style" || name == "head" || name == "title":
			// Skip to the matching close tag (case-insensitively).
			j := indexFold(s[i:], "</"+name)
			if j < 0 {
				i = len(s)
				continue
			}
			i += j
		case blockTags[strings.TrimPrefix(name, "/")]:
			sb.WriteByte('\n')
		}
	}
	return html.UnescapeString(sb.String())
}

// tagEnd returns the index of the '>' closing the tag at s[i], skipping
// quoted attribute values; len(s) if there is none.
func tagEnd(s string, i int) int {
	var quote byte
	for j := i + 1; j < len(s); j++ {
		c := s[j]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return j
		}
	}
	return len(s)
}

// tagName returns the lower-cased name of a tag's content ("/p" for </p>).
func tagName(t string) string {
	j := 0
	if j < len(t) && t[j] == '/' {
		j++
	}
	for j < len(t) && (t[j] >= 'a' && t[j] <= 'z' || t[j] >= 'A' && t[j] <= 'Z' || t[j] >= '0' && t[j] <= '9') {
		j++
	}
	return strings.ToLower(t[:j])
}

func indexFold(s, sub string) int {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if strings.EqualFold(s[i:i+n], sub) {
			return i
		}
	}
	return -1
}
