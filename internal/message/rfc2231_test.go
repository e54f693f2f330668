package message

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestRFC2231Params: attachments named with RFC 2231 continuations or
// charsets (Outlook, Thunderbird and others do this for long or non-ASCII
// names) must reach BODYSTRUCTURE as one "name" or "name*" parameter, or
// clients that do not join the sections themselves show no file name.
func TestRFC2231Params(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
	}{
		// RFC 2231 section 3.
		{`message/external-body; access-type=URL; URL*0="ftp://"; URL*1="cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"`,
			map[string]string{"access-type": "URL", "url": "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"}},
		{`application/pdf; name*1="report.pdf"; name*0="very-long-"`,
			map[string]string{"name": "very-long-report.pdf"}},
		// RFC 2231 section 4.1: extended sections, some plain.
		{`application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2="isn't it!"`,
			map[string]string{"title*": "us-ascii'en'This%20is%20even%20more%20%2A%2A%2Afun%2A%2A%2A%20isn%27t%20it!"}},
		{`x/y; name*0*=utf-8''na%C3; name*1*=%afve; name*2=.pdf`,
			map[string]string{"name*": "utf-8''na%C3%AFve.pdf"}},
		// Only later sections extended: no charset or language.
		{`x/y; name*0=a; name*1*=%E2%82%AC`, map[string]string{"name*": "''a%E2%82%AC"}},
		// A single name* is already one parameter.
		{`x/y; filename*=utf-8''na%C3%AFve.pdf`, map[string]string{"filename*": "utf-8''na%C3%AFve.pdf"}},
		// Left as sent: a gap (sections after it), no section 0, a number
		// sent both plain and extended, a name already present, a first
		// extended section without charset'language'.
		{`x/y; a*0=1; a*2=3`, map[string]string{"a": "1", "a*2": "3"}},
		{`x/y; a*1=1; a*2=2`, map[string]string{"a*1": "1", "a*2": "2"}},
		{`x/y; a*0=1; a*0*=2`, map[string]string{"a*0": "1", "a*0*": "2"}},
		{`x/y; a=x; a*0=1`, map[string]string{"a": "x", "a*0": "1"}},
		{`x/y; a*0*=bare; a*1*=x`, map[string]string{"a*0*": "bare", "a*1*": "x"}},
		// Not sections: leading zeros, no name, stars inside.
		{`x/y; a*01=1; *0=2; a*b*0=3`, map[string]string{"a*01": "1", "*0": "2", "a*b*0": "3"}},
	}
	for _, tt := range tests {
		if _, got := parseMIMEValue(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseMIMEValue(%q) params = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRFC2231SectionCap: a header of many sections joins at most
// maxParamSections of them and keeps the rest as sent.
func TestRFC2231SectionCap(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("x/y")
	for i := range maxParamSections + 5 {
		fmt.Fprintf(&sb, "; n*%d=x", i)
	}
	_, params := parseMIMEValue(sb.String())
	if got := params["n"]; got != strings.Repeat("x", maxParamSections) {
		t.Errorf("joined %d sections, want %d", len(got), maxParamSections)
	}
	if len(params) != 6 {
		t.Errorf("%d parameters, want the joined one and 5 left as sent", len(params))
	}
}
