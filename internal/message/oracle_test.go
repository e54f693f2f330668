package message

import (
	"bytes"
	"io"
	"strconv"
	"testing"

	gomessage "github.com/emersion/go-message"
)

// TestAgainstGoMessage cross-checks the part tree and the decoded bodies
// against an independent MIME reader, emersion/go-message, on the
// well-formed fixtures (the malformed ones are where the two differ by
// design: see the package documentation's choices). preamble-epilogue.eml
// is left out on purpose: go-message ends a part at the line
// "--simple boundary-not-a-close", which RFC 2046 section 5.1.1 (and Go's
// mime/multipart) do not take for a delimiter; the golden covers it.
func TestAgainstGoMessage(t *testing.T) {
	for _, name := range []string{
		"simple.eml", "nested.eml", "rfc822-attachment.eml", "encoded-words.eml",
		"8bit-headers.eml", "no-final-crlf.eml", "bare-lf.eml",
		"base64-attachment.eml",
	} {
		t.Run(name, func(t *testing.T) {
			raw := readFixture(t, name)
			ent, err := gomessage.Read(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("go-message: %v", err)
			}
			compareEntity(t, raw, ent, Parse(raw).Body, "root")
		})
	}
}

func compareEntity(t *testing.T, raw []byte, ent *gomessage.Entity, p *Part, where string) {
	t.Helper()
	typ, _, _ := ent.Header.ContentType()
	if typ != p.Type+"/"+p.Subtype {
		t.Fatalf("%s: go-message says %s, we say %s/%s", where, typ, p.Type, p.Subtype)
	}
	if mr := ent.MultipartReader(); mr != nil {
		for i := 0; ; i++ {
			child, err := mr.NextPart()
			if err == io.EOF {
				if i != len(p.Children) {
					t.Fatalf("%s: go-message found %d parts, we %d", where, i, len(p.Children))
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: go-message: %v", where, err)
			}
			if i >= len(p.Children) {
				t.Fatalf("%s: go-message found more than our %d parts", where, len(p.Children))
			}
			compareEntity(t, raw, child, p.Children[i], where+"."+strconv.Itoa(i+1))
		}
	}
	want, err := io.ReadAll(ent.Body)
	if err != nil {
		t.Fatalf("%s: go-message body: %v", where, err)
	}
	got, err := DecodeBody(p, raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.Type == "text" {
		got = []byte(toUTF8(got, p.Params["charset"]))
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: decoded body\n got  %q\n want %q", where, got, want)
	}
}
