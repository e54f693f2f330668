package message

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the parser's output")

// goldenChecks says, per fixture, what was verified by eye against the
// RFCs when its golden file was accepted. A new fixture needs an entry:
// the test fails for an .eml without one, so that no golden goes in
// unread.
var goldenChecks = map[string]string{
	"simple.eml": "RFC 5322 A.1-style message: ENVELOPE date/subject raw (folded Subject unfolded to " +
		"\"Saying Hello\"), Sender and Reply-To defaulted to From (RFC 9051 7.5.2), quoted display name " +
		"unquoted with escaped quotes undone, \"Who?\" as a name, in-reply-to/message-id raw with brackets; " +
		"References = References ids then In-Reply-To once; body text/plain us-ascii default, size = " +
		"octets after the empty line, 4 lines; section 1 = whole body.",
	"nested.eml": "RFC 2046 5.1 nesting like RFC 3501's BODY example: 1=multipart/alternative (1.1 qp text, " +
		"1.2 html), 2=application/pdf base64 attachment, 3=message/rfc822 whose enclosed multipart gives " +
		"3.1 text and 3.2 image/gif; preamble/epilogue excluded; each part's body ends before the CRLF " +
		"preceding the next delimiter; envelope of 3 from the enclosed header; preview from the qp plain " +
		"part decoded; BodyText takes the plain alternative only, plus the forwarded text.",
	"rfc822-attachment.eml": "message/rfc822 with disposition and description: envelope Sender kept, " +
		"Reply-To is a group (start marker, two members, end marker), To is an empty group (start + end); " +
		"part 2 lines = lines of the whole enclosed message; 2.1 = enclosed body (not multipart).",
	"missing-headers.eml": "No From/Date/Subject/Content-Type: empty envelope, zero Date, text/plain " +
		"us-ascii (RFC 2045 5.2); the colon-less line and stray continuation are not fields.",
	"encoded-words.eml": "RFC 2047 section 8 examples: envelope strings keep the encoded words; " +
		"SearchHeaders decode them, dropping white space between adjacent words (6.2) but keeping it " +
		"before plain text; unknown charset word and unterminated word kept raw; RFC 2231 *lang " +
		"suffix stripped; body ISO-8859-1 qp decoded to UTF-8.",
	"unknown-charset.eml": "charset=x-unknown: params keep the name, body text falls back to " +
		"Windows-1252 for invalid UTF-8; unknown-charset encoded word kept raw.",
	"8bit-headers.eml": "Raw UTF-8 headers (RFC 6532) kept as UTF-8 in ENVELOPE; Latin-1 octets read " +
		"as Windows-1252 in HeaderText; 8bit body decoded.",
	"no-final-crlf.eml": "Last line without CRLF: part 2 body runs to the CRLF before the close " +
		"delimiter, close delimiter at end of data, root BodyEnd = file size; lines count the " +
		"unterminated line.",
	"bare-lf.eml": "LF-only line ends: offsets index the raw bytes, part bodies end before the LF " +
		"preceding the delimiter, lines counted by LF.",
	"groups.eml": "RFC 5322 3.4/4.4 forms: quoted local part unquoted (RFC 9051 addr-mailbox), trailing " +
		"comment as name, empty group, group with members then a mailbox outside it, route-addr ADL, " +
		"local part without host (.MISSING-HOST-NAME.), comments inside an addr-spec dropped, " +
		"';'-separated Reply-To kept as two mailboxes, empty Sender defaulted to From; no empty " +
		"line so the whole file is header and the body is empty.",
	"preamble-epilogue.eml": "RFC 2046 5.1.1: quoted boundary with a space, folded Content-Type; " +
		"'--boundaryx' and '--boundary-not-a-close' lines are not delimiters; transport padding after " +
		"delimiter and close delimiter accepted; preamble/epilogue and lines after the close ignored; " +
		"part 2 keeps its trailing empty line (only the CRLF before the delimiter is removed).",
	"base64-attachment.eml": "All body fields: Content-ID, Description, encoding as given (BASE64), MD5, " +
		"disposition lower-cased with params, Content-Language list (comment dropped), Location; the " +
		"base64 html part is decoded and stripped for BodyText and Preview.",
	"empty.eml":            "Zero bytes: text/plain us-ascii, size 0, lines 0, all offsets 0, empty envelope.",
	"headers-only.eml":     "Header without an empty line or final CRLF: body empty at EOF.",
	"no-boundary.eml":      "multipart/mixed without boundary: reported as text/plain us-ascii, whole body as text.",
	"boundary-missing.eml": "Boundary never appears: one empty text/plain child at the body end.",
	"digest.eml": "multipart/digest: child without Content-Type is message/rfc822 (RFC 2046 5.1.5) " +
		"with an empty MIME header (just the empty line); explicit text/plain child stays text.",
}

// golden is what a .golden file holds: the facts, plus every section by
// part number, so that offsets are reviewed as the bytes they select.
type golden struct {
	Envelope      Envelope          `json:"envelope"`
	Body          *Part             `json:"body"`
	Date          string            `json:"date"`
	SearchHeaders SearchHeaders     `json:"searchHeaders"`
	HeaderText    string            `json:"headerText"`
	BodyText      string            `json:"bodyText"`
	Preview       string            `json:"preview"`
	References    []string          `json:"references"`
	Sections      map[string]string `json:"sections"`
}

func makeGolden(raw []byte, p *Parsed) golden {
	g := golden{
		Envelope: p.Envelope, Body: p.Body, SearchHeaders: p.SearchHeaders,
		HeaderText: p.HeaderText, BodyText: p.BodyText, Preview: p.Preview,
		References: p.References, Sections: map[string]string{},
	}
	if !p.Date.IsZero() {
		g.Date = p.Date.Format(time.RFC3339)
	}
	g.Sections["HEADER"] = clip(HeaderBytes(raw, p.Body))
	g.Sections["TEXT"] = clip(BodyBytes(raw, p.Body))
	for _, path := range partNumbers(p.Body) {
		part := PartAt(p.Body, path)
		n := joinPath(path)
		g.Sections[n] = clip(BodyBytes(raw, part))
		g.Sections[n+".MIME"] = clip(HeaderBytes(raw, part))
		if part.Message != nil {
			g.Sections[n+".HEADER"] = clip(HeaderBytes(raw, part.Message))
			g.Sections[n+".TEXT"] = clip(BodyBytes(raw, part.Message))
		}
	}
	return g
}

// partNumbers lists every part number of a message, by walking the tree
// the way RFC 9051 section 6.4.5 numbers it.
func partNumbers(root *Part) [][]int {
	var out [][]int
	var walk func(body *Part, prefix []int)
	walk = func(body *Part, prefix []int) {
		kids := []*Part{body}
		if body.Type == "multipart" {
			kids = body.Children
		}
		for i, k := range kids {
			path := append(append([]int(nil), prefix...), i+1)
			out = append(out, path)
			switch {
			case k.Type == "multipart" && k != body:
				walk(k, path)
			case k.Message != nil:
				walk(k.Message, path)
			}
		}
	}
	walk(root, nil)
	return out
}

func joinPath(path []int) string {
	s := make([]string, len(path))
	for i, n := range path {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ".")
}

// clip keeps section bytes readable in a golden file.
func clip(b []byte) string {
	const max = 160
	if !utf8.Valid(b) {
		// JSON would turn the octets into U+FFFD: show them escaped.
		b = []byte(strconv.QuoteToASCII(string(b)))
	}
	if len(b) > max {
		return fmt.Sprintf("%s…(+%d octets)", b[:max], len(b)-max)
	}
	return string(b)
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if goldenChecks[filepath.Base(f)] == "" {
				t.Fatalf("%s has no entry in goldenChecks: review its golden and say what it checks", f)
			}
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p := parse(raw)
			checkInvariants(t, raw, p.Body)
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(makeGolden(raw, p)); err != nil {
				t.Fatal(err)
			}
			gf := strings.TrimSuffix(f, ".eml") + ".golden"
			if *update {
				if err := os.WriteFile(gf, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(gf)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update, then review the file)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s differs from the parser's output:\n%s", gf, lineDiff(string(want), buf.String()))
			}
		})
	}
}

// lineDiff shows the first lines where two texts differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var sb strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			fmt.Fprintf(&sb, "line %d:\n  want %s\n  got  %s\n", i+1, a, b)
			if shown++; shown == 5 {
				break
			}
		}
	}
	return sb.String()
}

// checkInvariants asserts what every parse must satisfy, whatever the
// input: offsets within the message, HeaderStart <= BodyStart <= BodyEnd,
// children inside their parent's body and in order, size matching the
// offsets, multiparts with at least one child, message parts with an
// envelope and a body.
func checkInvariants(t testing.TB, raw []byte, root *Part) {
	t.Helper()
	n := int64(len(raw))
	var walk func(p *Part, lo, hi int64, depth int)
	walk = func(p *Part, lo, hi int64, depth int) {
		if p == nil {
			t.Fatalf("nil part")
		}
		if depth > maxDepth+2 {
			t.Fatalf("tree deeper than maxDepth")
		}
		if !(lo <= p.HeaderStart && p.HeaderStart <= p.BodyStart && p.BodyStart <= p.BodyEnd && p.BodyEnd <= hi && hi <= n) {
			t.Fatalf("offsets %d %d %d outside [%d,%d] (len %d)", p.HeaderStart, p.BodyStart, p.BodyEnd, lo, hi, n)
		}
		if p.Size != p.BodyEnd-p.BodyStart {
			t.Fatalf("size %d != %d", p.Size, p.BodyEnd-p.BodyStart)
		}
		if p.Type == "" || p.Subtype == "" || p.Type != strings.ToLower(p.Type) || p.Subtype != strings.ToLower(p.Subtype) {
			t.Fatalf("bad type %q/%q", p.Type, p.Subtype)
		}
		if p.Type == "multipart" {
			if len(p.Children) == 0 {
				t.Fatalf("multipart without children")
			}
			prev := p.BodyStart
			for _, c := range p.Children {
				if c.HeaderStart < prev {
					t.Fatalf("child at %d overlaps the previous one ending at %d", c.HeaderStart, prev)
				}
				walk(c, p.BodyStart, p.BodyEnd, depth+1)
				prev = c.BodyEnd
			}
		} else if len(p.Children) != 0 {
			t.Fatalf("%s/%s with children", p.Type, p.Subtype)
		}
		if p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global") {
			if p.Envelope == nil || p.Message == nil {
				t.Fatalf("message part without envelope or body")
			}
			walk(p.Message, p.BodyStart, p.BodyEnd, depth+1)
		}
	}
	walk(root, 0, n, 0)
	if root.HeaderStart != 0 || root.BodyEnd != n {
		t.Fatalf("root spans %d..%d, want 0..%d", root.HeaderStart, root.BodyEnd, n)
	}
}
