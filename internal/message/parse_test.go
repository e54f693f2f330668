package message

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestDecodeHeader(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		// RFC 2047 section 8 examples.
		{"(=?ISO-8859-1?Q?a?=)", "(a)"},
		{"(=?ISO-8859-1?Q?a?= b)", "(a b)"},
		{"(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"},
		{"(=?ISO-8859-1?Q?a?=  \t =?ISO-8859-1?Q?b?=)", "(ab)"},
		{"(=?ISO-8859-1?Q?a_b?=)", "(a b)"},
		{"(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"},
		{"=?utf-8?b?w6k=?=", "é"},
		{"=?UTF-8?Q?=E2=9C=93?=", "✓"},
		{"=?windows-1252?q?=80?=", "€"},
		{"=?koi8-r?b?8NLJ18XU?=", "Привет"},
		// RFC 2231 section 5 language suffix.
		{"=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore"},
		// Unknown charset, malformed and unterminated words stay.
		{"=?x-nope?q?abc?= ok", "=?x-nope?q?abc?= ok"},
		{"=?utf-8?x?abc?=", "=?utf-8?x?abc?="},
		{"=?utf-8?q?open", "=?utf-8?q?open"},
		{"a =? b", "a =? b"},
		// Tolerated: spaces inside the encoded text.
		{"=?utf-8?q?two words?=", "two words"},
		// 8-bit text around words.
		{"caf\xe9 =?utf-8?q?ok?=", "café ok"},
		// A character split between adjacent words of one charset is
		// joined before conversion, as mail readers show it.
		{"=?utf-8?q?caf=C3?= =?utf-8?q?=A9_ouvert?=", "café ouvert"},
		{"=?utf-8?b?ww==?=\t=?UTF-8?B?qQ==?= x", "é x"},
		{"=?gbk?q?=D6?= =?gbk?q?=D0?=", "中"},
		{"=?utf-8*fr?q?caf=C3?= =?utf-8?q?=A9?=", "café"},
		// Not joined: another charset, or text between the words.
		{"=?utf-8?q?=C3?= =?iso-8859-1?q?=A9?=", "Ã©"},
		{"=?utf-8?q?=C3?= x =?utf-8?q?=A9?=", "Ã x ©"},
		// An unknown charset's run stays as written, space included.
		{"=?x-nope?q?a?= =?x-nope?q?b?= =?utf-8?q?ok?=", "=?x-nope?q?a?= =?x-nope?q?b?= ok"},
		{"=?*en?q?x?= y", "=?*en?q?x?= y"},
	}
	for _, tt := range tests {
		if got := decodeHeader(tt.in); got != tt.want {
			t.Errorf("decodeHeader(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseDate(t *testing.T) {
	want := time.Date(2003, 7, 1, 8, 52, 37, 0, time.UTC)
	for _, in := range []string{
		"Tue, 1 Jul 2003 10:52:37 +0200",
		"1 Jul 2003 10:52:37 +0200",
		"Tue, 01 Jul 2003 10:52:37 +0200 (CEST)",
		"Tue,  1 Jul 2003\r\n 10:52:37 +0200",
		"Tue, 1 Jul 2003 08:52:37 GMT",
		"Tue, 1 Jul 2003 08:52:37 UT",
		"Tue Jul  1 08:52:37 2003",
		"2003-07-01T10:52:37+02:00",
	} {
		got := parseDate(unfold([]byte(in)))
		if !got.Equal(want) {
			t.Errorf("parseDate(%q) = %v, want %v", in, got, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "Tue, 99 Foo 2003 99:99:99"} {
		if got := parseDate(bad); !got.IsZero() {
			t.Errorf("parseDate(%q) = %v, want zero", bad, got)
		}
	}
}

func TestReferences(t *testing.T) {
	raw := "References: <a@x>\r\n <b@x> <c@x>\r\nIn-Reply-To: <c@x> (comment) <d@x>\r\nMessage-ID: <  m@x  >\r\n\r\n"
	p := Parse([]byte(raw))
	if want := []string{"a@x", "b@x", "c@x", "d@x"}; !reflect.DeepEqual(p.References, want) {
		t.Errorf("References = %q, want %q", p.References, want)
	}
	if p.SearchHeaders.MessageID != "m@x" {
		t.Errorf("MessageID = %q", p.SearchHeaders.MessageID)
	}
	// Ids without brackets, as some broken mailers write them.
	p = Parse([]byte("References: a@x b@x\r\nMessage-ID: bare@x\r\n\r\n"))
	if want := []string{"a@x", "b@x"}; !reflect.DeepEqual(p.References, want) || p.SearchHeaders.MessageID != "bare@x" {
		t.Errorf("bare ids: %q %q", p.References, p.SearchHeaders.MessageID)
	}
}

func TestPreviewAndBodyText(t *testing.T) {
	long := strings.Repeat("word ", 100)
	p := Parse([]byte("Content-Type: text/plain\r\n\r\n\r\n  " + long + "\r\n"))
	if n := utf8.RuneCountInString(p.Preview); n != previewChars {
		t.Errorf("preview length %d, want %d", n, previewChars)
	}
	if strings.Contains(p.Preview, "  ") || strings.HasPrefix(p.Preview, " ") {
		t.Errorf("preview not normalised: %q", p.Preview)
	}

	html := "<html><head><title>Title</title><style>x{}</style></head><body>" +
		"<!-- hidden --><p>Hello&nbsp;<b>W&ouml;rld</b> &lt;3</p><SCRIPT>evil()</SCRIPT>" +
		"<a href='x>y'>link</a></body></html>"
	p = Parse([]byte("Content-Type: text/html; charset=utf-8\r\n\r\n" + html))
	if p.Preview != "Hello Wörld <3 link" {
		t.Errorf("html preview = %q", p.Preview)
	}
	for _, bad := range []string{"Title", "evil", "hidden", "x{}", "<p>"} {
		if strings.Contains(p.BodyText, bad) {
			t.Errorf("BodyText %q contains %q", p.BodyText, bad)
		}
	}

	// An attachment's text is searchable but not the preview.
	raw := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
		"Content-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nattached\r\n--b\r\n" +
		"Content-Type: text/plain\r\n\r\nmain\r\n--b--\r\n"
	p = Parse([]byte(raw))
	if p.Preview != "main" || p.BodyText != "attached\nmain" {
		t.Errorf("preview %q bodytext %q", p.Preview, p.BodyText)
	}

	// BodyText is bounded, cut on a rune boundary.
	big := strings.Repeat("é", maxBodyText)
	p = Parse([]byte("Content-Type: text/plain; charset=utf-8\r\n\r\n" + big))
	if len(p.BodyText) > maxBodyText || !utf8.ValidString(p.BodyText) || len(p.BodyText) < maxBodyText-4 {
		t.Errorf("BodyText length %d, valid %v", len(p.BodyText), utf8.ValidString(p.BodyText))
	}

	// Charsets via go-message/charset; base64 and quoted-printable undone.
	b64 := base64.StdEncoding.EncodeToString([]byte("\xcf\xf0\xe8\xe2\xe5\xf2")) // windows-1251
	p = Parse([]byte("Content-Type: text/plain; charset=windows-1251\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64))
	if p.BodyText != "Привет" {
		t.Errorf("windows-1251 base64 = %q", p.BodyText)
	}
}

// TestAlternativesAllIndexed: a newsletter's plain alternative is a stub
// and its HTML one holds the content; both are searchable, the plain one
// first (whatever the order of the parts) so the preview comes from it.
func TestAlternativesAllIndexed(t *testing.T) {
	raw := "Content-Type: multipart/alternative; boundary=A\r\n\r\n" +
		"--A\r\nContent-Type: text/html\r\n\r\n<p>Quarterly results</p>\r\n" +
		"--A\r\nContent-Type: text/plain\r\n\r\nView in a browser.\r\n" +
		"--A\r\nContent-Type: multipart/related; boundary=R\r\n\r\n" +
		"--R\r\nContent-Type: text/html\r\n\r\n<b>Related</b> text\r\n--R--\r\n" +
		"--A--\r\n"
	p := Parse([]byte(raw))
	if p.Preview != "View in a browser." {
		t.Errorf("preview = %q", p.Preview)
	}
	if !strings.HasPrefix(p.BodyText, "View in a browser.") {
		t.Errorf("BodyText does not start with the plain alternative: %q", p.BodyText)
	}
	for _, want := range []string{"Quarterly results", "Related text"} {
		if !strings.Contains(p.BodyText, want) {
			t.Errorf("BodyText %q lacks %q", p.BodyText, want)
		}
	}
}

func TestLinesAndOffsets(t *testing.T) {
	tests := []struct {
		raw       string
		bs, lines int64
		typ, dflt string
	}{
		{"", 0, 0, "text/plain", ""},
		{"\r\n", 2, 0, "text/plain", ""},
		{"\n\nbody", 1, 2, "text/plain", ""}, // header ends at the first empty line
		{"A: b\r\n\r\none\r\ntwo", 8, 2, "text/plain", ""},
		{"A: b\n\none\ntwo\n", 6, 2, "text/plain", ""},
		{"A: b\r\n\r\n\r\n", 8, 1, "text/plain", ""},
		{"Content-Type: image/png\r\n\r\nxx\r\n", 27, 0, "image/png", ""},
		{"Content-Type: garbage\r\n\r\nx", 25, 1, "text/plain", ""},
		{"Content-Type: text/\r\n\r\nx", 23, 1, "text/plain", ""},
		{"Content-Type: TEXT/HTML (comment) ; CHARSET=\"UTF-8\"\r\n\r\nx", 55, 1, "text/html", ""},
	}
	for _, tt := range tests {
		raw := []byte(tt.raw)
		p := Parse(raw).Body
		checkInvariants(t, raw, p)
		if p.BodyStart != tt.bs || p.Lines != tt.lines || p.Type+"/"+p.Subtype != tt.typ {
			t.Errorf("%q: bs %d lines %d type %s/%s; want %d %d %s", tt.raw, p.BodyStart, p.Lines, p.Type, p.Subtype, tt.bs, tt.lines, tt.typ)
		}
	}
	// Parameter names are lower-cased, values kept, RFC 2231 sections joined.
	p := Parse([]byte("Content-Type: TEXT/HTML; CHARSET=\"UTF-8\"; Name*0=\"a\"; Name*1=b\r\n\r\n")).Body
	if want := map[string]string{"charset": "UTF-8", "name": "ab"}; !reflect.DeepEqual(p.Params, want) {
		t.Errorf("params = %v", p.Params)
	}
}

func TestHugeAndHostile(t *testing.T) {
	// A 1 MB header line.
	raw := []byte("Subject: " + strings.Repeat("x", 1<<20) + "\r\n\r\nbody")
	p := Parse(raw)
	if len(p.Envelope.Subject) != 1<<20 || string(BodyBytes(raw, p.Body)) != "body" {
		t.Errorf("huge header line: subject %d body %q", len(p.Envelope.Subject), BodyBytes(raw, p.Body))
	}

	// Nesting far beyond maxDepth stops at the limit without recursion trouble.
	var sb strings.Builder
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&sb, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	sb.WriteString("\r\nleaf\r\n")
	raw = []byte(sb.String())
	p = Parse(raw)
	checkInvariants(t, raw, p.Body)
	depth := 0
	for q := p.Body; q.Type == "multipart"; q = q.Children[0] {
		depth++
	}
	if depth != maxDepth {
		t.Errorf("nesting depth %d, want %d", depth, maxDepth)
	}

	// Many parts stop at maxParts.
	raw = []byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\n\r\nx\r\n", maxParts+100))
	p = Parse(raw)
	checkInvariants(t, raw, p.Body)
	if n := len(p.Body.Children); n != maxParts-1 {
		t.Errorf("children %d, want %d", n, maxParts-1)
	}

	// Many "=?" do not make header decoding quadratic or wrong.
	s := strings.Repeat("=?", 50000)
	if got := decodeHeader(s); got != s {
		t.Errorf("decodeHeader of =? run changed it")
	}
}

func TestEncodedMessagePart(t *testing.T) {
	inner := "Subject: inside\r\nFrom: i@x.test\r\n\r\nhello"
	raw := []byte("Content-Type: message/global\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte(inner)))
	p := Parse(raw).Body
	checkInvariants(t, raw, p)
	if p.Envelope == nil || p.Envelope.Subject != "inside" || p.Message == nil || p.Message.Size != 0 {
		t.Fatalf("encoded message/global: %+v", p)
	}
	if got, _ := DecodeBody(p, raw); !bytes.Equal(got, []byte(inner)) {
		t.Errorf("BINARY = %q", got)
	}
}

func TestParseNeverPanicsOnBadParts(t *testing.T) {
	// The recover() net must return a usable result even for a bogus tree.
	p := Parse(nil)
	if p == nil || p.Body == nil || p.Body.Type != "text" {
		t.Fatalf("Parse(nil) = %+v", p)
	}
}
