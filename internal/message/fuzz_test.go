package message

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func addFixtureSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/digest; boundary=b\r\n\r\n--b\r\n\r\nSubject: x\r\n\r\n--b--\r\n--a--"))
	f.Add([]byte("To: g: a@b, <@r:c@d>; (x) \"q\\\"\" <e>\r\nContent-Type: text/html; charset=x\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+aGk8L2I+"))
	// RFC 2231 sections, plain and extended, in a Content-Type and a
	// Content-Disposition.
	f.Add([]byte("Content-Type: multipart/mixed; boundary*0=b; boundary*1=x\r\n\r\n--bx\r\nContent-Type: text/plain; name*0=\"a \"; name*1=b; charset*0*=us-ascii''%75tf-8\r\nContent-Disposition: attachment; filename*0*=utf-8'fr'na%C3; filename*1*=%AFve; filename*2=.txt\r\n\r\nx\r\n--bx--"))
}

// FuzzParseMIMEValue checks the parameter parser and its RFC 2231
// joining: no panic, and every parameter it returns was sent, or was
// joined from sections of which the first (name*0 or name*0*) was sent.
func FuzzParseMIMEValue(f *testing.F) {
	for _, s := range []string{
		`text/plain; charset="utf-8" (c); format=flowed`,
		`application/pdf; name*0="very-long-"; name*1="report.pdf"`,
		`x/y; title*0*=us-ascii'en'This%20is%20; title*1*=%2A%2Afun; title*2="isn't it!"`,
		`x/y; a*0=1; a*0*=2; a*2=3; a=4; a*=5; *0=6; a*01=7; a*0*=%; b*0*=x'y'%zz%4`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, params := parseMIMEValue(s)
		low := strings.ToLower(s)
		for k := range params {
			if strings.Contains(low, k) {
				continue
			}
			base := strings.TrimSuffix(k, "*")
			if !strings.Contains(low, base+"*0") {
				t.Fatalf("parameter %q neither sent nor joined from %q*0 in %q", k, base, s)
			}
		}
	})
}

// FuzzParse checks that parse never panics and that its tree is always
// usable: offsets inside the message and ordered, children inside their
// parents, every part reachable by its number, and facts that survive
// the JSON round trip the store puts them through.
func FuzzParse(f *testing.F) {
	addFixtureSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := parse(raw)
		checkInvariants(t, raw, p.Body)
		for _, path := range partNumbers(p.Body) {
			part := PartAt(p.Body, path)
			if part == nil {
				t.Fatalf("part %v listed but PartAt finds nothing", path)
			}
			HeaderBytes(raw, part)
			DecodeBody(part, raw)
		}
		for _, s := range []string{p.BodyText, p.Preview, p.HeaderText, p.Envelope.Subject, p.SearchHeaders.From} {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 in facts: %q", s)
			}
		}
		if len(p.BodyText) > maxBodyText || utf8.RuneCountInString(p.Preview) > previewChars {
			t.Fatalf("BodyText %d octets, Preview %d runes", len(p.BodyText), utf8.RuneCountInString(p.Preview))
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var back Parsed
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(HeaderBytes(raw, back.Body), HeaderBytes(raw, p.Body)) {
			t.Fatalf("offsets lost in JSON")
		}
	})
}

// FuzzHeaderFields checks that HeaderFields returns only whole lines of
// its input, ends with the empty line, and that the matched and the
// unmatched fields together are exactly all fields.
func FuzzHeaderFields(f *testing.F) {
	f.Add([]byte("From: a@b\r\nSubject: x\r\n y\r\nTo: c\r\n\r\nbody"), "subject")
	f.Add([]byte("A: 1\nB: 2"), "b")
	f.Add([]byte("no colon\r\n folded\r\n: empty name\r\nX : y\r\n"), "x")
	f.Add([]byte(""), "")
	f.Fuzz(func(t *testing.T, hdr []byte, name string) {
		in := HeaderFields(hdr, []string{name}, false)
		out := HeaderFields(hdr, []string{name}, true)
		all := HeaderFields(hdr, nil, true)
		for _, b := range [][]byte{in, out, all} {
			if !bytes.HasSuffix(b, []byte("\r\n")) {
				t.Fatalf("no final empty line: %q", b)
			}
		}
		if len(in)+len(out)-2 != len(all) {
			t.Fatalf("matched %d + unmatched %d != all %d", len(in), len(out), len(all))
		}
		// Every field returned starts a line of the input.
		for _, f := range parseHeader(in[:len(in)-2]) {
			if !bytes.Contains(hdr, bytes.TrimRight(f.raw, "\r\n")) {
				t.Fatalf("field %q not from the input", f.raw)
			}
		}
	})
}

// FuzzAddressList checks that every parsed address list is well formed
// for ENVELOPE: a mailbox always has a mailbox and a host, and group
// markers come in start/end pairs that do not nest.
func FuzzAddressList(f *testing.F) {
	for _, s := range []string{
		`"Joe Q. Public" <john.q.public@example.com>, Mary Smith <mary@x.test>`,
		`A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;`,
		`undisclosed-recipients:;`,
		`<@r1,@r2:u@h>, (comment) "q\"uoted"@x, local, <>, <@h>`,
		`Pete(A nice \) chap) <pete(his account)@silly.test(his host)>`,
		`=?utf-8?q?J=C3=B6rg?= <j@x>; g: a@b, c@d`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		inGroup := false
		for _, a := range parseAddressList(s) {
			switch {
			case a.Host != "":
				if a.Mailbox == "" {
					t.Fatalf("mailbox without local part: %+v", a)
				}
			case a.Mailbox != "": // group start
				if inGroup || a.Name != "" || a.ADL != "" {
					t.Fatalf("bad group start %+v (in group %v)", a, inGroup)
				}
				inGroup = true
			default: // group end
				if !inGroup || a != (Address{}) {
					t.Fatalf("bad group end %+v (in group %v)", a, inGroup)
				}
				inGroup = false
			}
		}
		if inGroup {
			t.Fatalf("group not closed in %q", s)
		}
	})
}
