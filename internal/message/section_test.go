package message

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestPartAt checks RFC 9051 section 6.4.5 numbering on nested.eml, whose
// layout mirrors the example there: 1 multipart/alternative (1.1, 1.2),
// 2 application/pdf, 3 message/rfc822 enclosing a multipart (3.1, 3.2).
func TestPartAt(t *testing.T) {
	raw := readFixture(t, "nested.eml")
	root := Parse(raw).Body
	tests := []struct {
		path []int
		want string // type/subtype, "" for nil
		body string // prefix of BODY[path]
	}{
		{[]int{1}, "multipart/alternative", "--inner\r\n"},
		{[]int{1, 1}, "text/plain", "Caf=C3=A9"},
		{[]int{1, 2}, "text/html", "<html>"},
		{[]int{2}, "application/pdf", "JVBERi0xLjQK"},
		{[]int{3}, "message/rfc822", "From: Inner Sender"},
		{[]int{3, 1}, "text/plain", "Forwarded text."},
		{[]int{3, 2}, "image/gif", "R0lGODlh"},
		{nil, "multipart/mixed", "This is the preamble."},
		{[]int{0}, "", ""},
		{[]int{4}, "", ""},
		{[]int{1, 3}, "", ""},
		{[]int{2, 1}, "", ""}, // a leaf has no subparts
		{[]int{3, 3}, "", ""},
		{[]int{3, 1, 1}, "", ""},
		{[]int{-1}, "", ""},
	}
	for _, tt := range tests {
		p := PartAt(root, tt.path)
		if tt.want == "" {
			if p != nil {
				t.Errorf("PartAt(%v) = %s/%s, want nil", tt.path, p.Type, p.Subtype)
			}
			continue
		}
		if p == nil || p.Type+"/"+p.Subtype != tt.want {
			t.Errorf("PartAt(%v) = %+v, want %s", tt.path, p, tt.want)
			continue
		}
		if b := BodyBytes(raw, p); !bytes.HasPrefix(b, []byte(tt.body)) {
			t.Errorf("BODY[%v] = %.40q, want prefix %q", tt.path, b, tt.body)
		}
	}
	// 3.HEADER and 3.TEXT go through the enclosed message.
	m := PartAt(root, []int{3}).Message
	if h := HeaderBytes(raw, m); !bytes.HasPrefix(h, []byte("From: Inner Sender")) || !bytes.HasSuffix(h, []byte("boundary=fwd\r\n\r\n")) {
		t.Errorf("BODY[3.HEADER] = %q", h)
	}
	if b := BodyBytes(raw, m); !bytes.HasPrefix(b, []byte("--fwd\r\n")) || !bytes.HasSuffix(b, []byte("--fwd--\r\n")) {
		t.Errorf("BODY[3.TEXT] = %q", b)
	}
	if h := HeaderBytes(raw, PartAt(root, []int{1, 1})); string(h) != "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" {
		t.Errorf("BODY[1.1.MIME] = %q", h)
	}
	// HEADER and TEXT of the root cover the message exactly.
	if got := append(HeaderBytes(raw, root), BodyBytes(raw, root)...); !bytes.Equal(got, raw) {
		t.Errorf("HEADER+TEXT != message")
	}
}

func TestPartAtSinglePart(t *testing.T) {
	raw := []byte("Subject: x\r\n\r\nbody\r\n")
	root := Parse(raw).Body
	// RFC 9051 section 6.4.5: a non-multipart message has part 1 only.
	if p := PartAt(root, []int{1}); p != root {
		t.Errorf("PartAt([1]) = %+v, want the root", p)
	}
	for _, path := range [][]int{{2}, {1, 1}, {0}} {
		if p := PartAt(root, path); p != nil {
			t.Errorf("PartAt(%v) = %+v, want nil", path, p)
		}
	}
	if PartAt(nil, []int{1}) != nil || HeaderBytes(raw, nil) != nil || BodyBytes(raw, nil) != nil {
		t.Errorf("nil part not handled")
	}

	// A message that is itself message/rfc822: 1 is the root, 1.1 the
	// enclosed body.
	raw = []byte("Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body")
	root = Parse(raw).Body
	if p := PartAt(root, []int{1, 1}); p == nil || string(BodyBytes(raw, p)) != "inner body" {
		t.Errorf("PartAt([1,1]) on message/rfc822 = %+v", p)
	}
}

func TestSectionBytesClamp(t *testing.T) {
	raw := []byte("0123456789")
	p := &Part{HeaderStart: -5, BodyStart: 20, BodyEnd: 3}
	if h := HeaderBytes(raw, p); string(h) != "0123456789" {
		t.Errorf("HeaderBytes clamped = %q", h)
	}
	if b := BodyBytes(raw, p); len(b) != 0 {
		t.Errorf("BodyBytes clamped = %q", b)
	}
}

func TestHeaderFields(t *testing.T) {
	hdr := []byte("From: a@x.test\r\nSubject: folded\r\n continued\r\nTo: b@y.test\r\nsubject: second\r\nX-No-Colon\r\n\r\nbody: not header\r\n")
	tests := []struct {
		names []string
		not   bool
		want  string
	}{
		{[]string{"SUBJECT"}, false, "Subject: folded\r\n continued\r\nsubject: second\r\n\r\n"},
		{[]string{"to", "from"}, false, "From: a@x.test\r\nTo: b@y.test\r\n\r\n"},
		{[]string{"subject"}, true, "From: a@x.test\r\nTo: b@y.test\r\n\r\n"},
		{[]string{"body"}, false, "\r\n"},
		{nil, false, "\r\n"},
		{nil, true, "From: a@x.test\r\nSubject: folded\r\n continued\r\nTo: b@y.test\r\nsubject: second\r\n\r\n"},
	}
	for _, tt := range tests {
		if got := HeaderFields(hdr, tt.names, tt.not); string(got) != tt.want {
			t.Errorf("HeaderFields(%v, not=%v) = %q, want %q", tt.names, tt.not, got, tt.want)
		}
	}
	// A last field without a line end gets a CRLF before the empty line;
	// LF-only fields stay as they are.
	if got := HeaderFields([]byte("A: 1\nB: 2"), []string{"a", "b"}, false); string(got) != "A: 1\nB: 2\r\n\r\n" {
		t.Errorf("unterminated: %q", got)
	}
	// "Name :" (obsolete white space before the colon, RFC 5322 section 4.5).
	if got := HeaderFields([]byte("Subject : x\r\n"), []string{"subject"}, false); string(got) != "Subject : x\r\n\r\n" {
		t.Errorf("obs name: %q", got)
	}
}

func TestDecodeBody(t *testing.T) {
	tests := []struct {
		enc, in, want string
	}{
		{"", "as is\r\n", "as is\r\n"},
		{"7BIT", "as is", "as is"},
		{"8bit", "caf\xe9", "caf\xe9"},
		{"binary", "\x00\x01", "\x00\x01"},
		// RFC 2045 section 6.7: soft breaks, escapes, trailing white space dropped.
		{"quoted-printable", "a=3Db=\r\nc  \r\nd=e9=\nf", "a=bc\r\nd\xe9f"},
		{"Quoted-Printable", "bad =ZZ escape and trailing =", "bad =ZZ escape and trailing "},
		{"quoted-printable", "=4", "=4"},
		// RFC 2045 section 6.8: line breaks and junk ignored, padding optional.
		{"base64", "aGVs\r\nbG8g\r\nd29y bGQ=\r\n", "hello world"},
		{"BASE64", "aGVsbG8", "hello"},
		{"base64", "aGVsbG8=junk-after-pad", "hello"},
		{"base64", "a", ""},
		{"base64", "!!!", ""},
	}
	for _, tt := range tests {
		raw := []byte("HDR\r\n\r\n" + tt.in)
		p := &Part{Encoding: tt.enc, BodyStart: 7, BodyEnd: int64(len(raw))}
		got, err := DecodeBody(p, raw)
		if err != nil || string(got) != tt.want {
			t.Errorf("DecodeBody(%q, %q) = %q, %v; want %q", tt.enc, tt.in, got, err, tt.want)
		}
	}
	_, err := DecodeBody(&Part{Encoding: "x-uuencode"}, []byte("x"))
	if !errors.Is(err, ErrUnknownEncoding) || !strings.Contains(err.Error(), "x-uuencode") {
		t.Errorf("unknown encoding: err = %v", err)
	}
}
