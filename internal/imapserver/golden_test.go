package imapserver

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestTranscripts replays the raw wire transcripts in testdata/*.txt
// against a fresh server each. Format, one directive per line:
//
//	C: text       the client sends text + CRLF ("\r\n" inside is a CRLF,
//	              "\0" a NUL)
//	S: pattern    the next server line (literals joined, "\r\n" for their
//	              CRLFs) must match; ${ANY} ${NUM} ${DATE} are placeholders
//	D: n          deliver test message n to alice's INBOX
//	M: file       deliver testdata/file to alice's INBOX
//	# ...         comment
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			runTranscript(t, f)
		})
	}
}

var placeholders = strings.NewReplacer(
	regexp.QuoteMeta("${ANY}"), ".*",
	regexp.QuoteMeta("${NUM}"), "[0-9]+",
	regexp.QuoteMeta("${DATE}"), `"[ 0-9]{2}-[A-Z][a-z]{2}-[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} [-+][0-9]{4}"`,
)

func runTranscript(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := newTestEnv(t, Config{AppendLimit: 1000, MaxLiteralBytes: 500, MaxLineBytes: 300})
	c := env.dial(t)
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kind, text, ok := strings.Cut(line, ": ")
		if !ok {
			kind, text = strings.TrimSuffix(line, ":"), ""
		}
		switch kind {
		case "C":
			c.send(strings.NewReplacer(`\r\n`, "\r\n", `\0`, "\x00").Replace(text))
		case "S":
			c.t = &lineT{t, path, n}
			got := strings.NewReplacer("\r\n", `\r\n`, "\x00", `\0`).Replace(c.line())
			re := "^" + placeholders.Replace(regexp.QuoteMeta(text)) + "$"
			if !regexp.MustCompile(re).MatchString(got) {
				t.Fatalf("%s:%d: server said\n  %s\nwant\n  %s", path, n, got, text)
			}
		case "M":
			raw, err := os.ReadFile(filepath.Join("testdata", text))
			if err != nil {
				t.Fatal(err)
			}
			env.deliver(t, "alice@example.test", string(raw))
		case "D":
			i, err := strconv.Atoi(text)
			if err != nil {
				t.Fatalf("%s:%d: bad D line", path, n)
			}
			env.deliver(t, "alice@example.test", testMessage(i))
		default:
			t.Fatalf("%s:%d: unknown directive %q", path, n, kind)
		}
	}
}

// lineT prefixes failures with the transcript position.
type lineT struct {
	*testing.T
	path string
	n    int
}

func (l *lineT) Fatalf(format string, args ...any) {
	l.T.Helper()
	l.T.Fatalf("%s:%d: "+format, append([]any{l.path, l.n}, args...)...)
}
