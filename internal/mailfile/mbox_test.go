package mailfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func readAll(t testing.TB, s string) ([]*Message, error) {
	t.Helper()
	r := NewReader(strings.NewReader(s))
	var out []*Message
	for {
		m, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

func raws(ms []*Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Raw))
	}
	return out
}

func write(t testing.TB, ms []*Message) string {
	t.Helper()
	var b bytes.Buffer
	w := NewWriter(&b)
	for _, m := range ms {
		if err := w.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestMboxCases(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"empty file", "", nil},
		{"blank lines only", "\n\n", nil},
		{"three messages",
			"From a@x Mon Jan  1 10:00:00 2024\nSubject: 1\n\none\n\nFrom b@x Tue Jan  2 10:00:00 2024\nSubject: 2\n\ntwo\n\nFrom c@x Wed Jan  3 10:00:00 2024\nSubject: 3\n\nthree\n",
			[]string{"Subject: 1\n\none\n", "Subject: 2\n\ntwo\n", "Subject: 3\n\nthree\n"}},
		{"mboxrd unquoting",
			"From a Mon Jan  1 10:00:00 2024\n\n>From here\n>>From there\n>Fromage\n> From x\n\n",
			[]string{"\nFrom here\n>From there\n>Fromage\n> From x\n"}},
		{"no newline at EOF", "From a Mon Jan  1 10:00:00 2024\nSubject: x\n\nbody", []string{"Subject: x\n\nbody\n"}},
		{"CRLF input",
			"From a Mon Jan  1 10:00:00 2024\r\nSubject: x\r\n\r\nbody\r\n\r\nFrom b Mon Jan  1 10:00:00 2024\r\nSubject: y\r\n\r\n>From z\r\n",
			[]string{"Subject: x\r\n\r\nbody\r\n", "Subject: y\r\n\r\nFrom z\r\n"}},
		{"From line not after a blank line is body",
			"From a Mon Jan  1 10:00:00 2024\nSubject: x\n\nline\nFrom the start\nend\n",
			[]string{"Subject: x\n\nline\nFrom the start\nend\n"}},
		{"empty message", "From a Mon Jan  1 10:00:00 2024\n\nFrom b Mon Jan  1 10:00:00 2024\nx\n", []string{"", "x\n"}},
		{"trailing blank lines kept but one", "From a Mon Jan  1 10:00:00 2024\nx\n\n\n", []string{"x\n\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := readAll(t, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := raws(ms); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
			// And back: writing and reading again gives the same.
			again, err := readAll(t, write(t, ms))
			if err != nil {
				t.Fatal(err)
			}
			if got := raws(again); !slices.Equal(got, tc.want) {
				t.Fatalf("after a round trip %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestMboxQuotingRoundTrip(t *testing.T) {
	raw := "Subject: q\n\nFrom the body\n>From quoted\n>>From twice\nplain\n\nFrom after blank\n"
	out := write(t, []*Message{{Sender: "a@x", Raw: []byte(raw)}})
	want := "From a@x Thu Jan  1 00:00:00 1970\nSubject: q\n\n>From the body\n>>From quoted\n>>>From twice\nplain\n\n>From after blank\n\n"
	if out != want {
		t.Fatalf("written %q\nwant %q", out, want)
	}
	ms, err := readAll(t, out)
	if err != nil || len(ms) != 1 || string(ms[0].Raw) != raw {
		t.Fatalf("read back %q, %v", raws(ms), err)
	}
}

func TestMboxSeparator(t *testing.T) {
	ms, err := readAll(t, "From alice@example.test Sat Mar  2 09:08:07 2024\nx\n\nFrom  Sat Mar  2 09:08:07 2024\ny\n\nFrom bob Sat Mar 2 09:08:07 +0100 2024\nz\n\nFrom carol whenever\nw\n")
	if err != nil || len(ms) != 4 {
		t.Fatalf("%d messages, %v", len(ms), err)
	}
	want := time.Date(2024, 3, 2, 9, 8, 7, 0, time.UTC)
	if ms[0].Sender != "alice@example.test" || !ms[0].Date.Equal(want) {
		t.Errorf("first: %q %v", ms[0].Sender, ms[0].Date)
	}
	if ms[0].Line != 1 || ms[1].Line != 4 || ms[3].Line != 10 {
		t.Errorf("separator lines %d %d %d", ms[0].Line, ms[1].Line, ms[3].Line)
	}
	if ms[1].Sender != DefaultSender {
		t.Errorf("empty sender read as %q", ms[1].Sender)
	}
	if !ms[2].Date.Equal(want.Add(-time.Hour)) {
		t.Errorf("zoned date %v", ms[2].Date)
	}
	if !ms[3].Date.IsZero() {
		t.Errorf("no date read as %v", ms[3].Date)
	}
	if out := write(t, ms[:1]); !strings.HasPrefix(out, "From alice@example.test Sat Mar  2 09:08:07 2024\n") {
		t.Errorf("separator written as %q", out)
	}
}

func TestNotMbox(t *testing.T) {
	if _, err := readAll(t, "Subject: hi\n\nbody\n"); !errors.Is(err, ErrNotMbox) {
		t.Fatalf("got %v", err)
	}
}

func TestLongLine(t *testing.T) {
	body := strings.Repeat("A", 300<<10) + "\n"
	ms, err := readAll(t, "From a Mon Jan  1 10:00:00 2024\n"+body)
	if err != nil || len(ms) != 1 || string(ms[0].Raw) != body {
		t.Fatalf("long line: %d messages, %v", len(ms), err)
	}
}

func TestLineEnds(t *testing.T) {
	if got := string(ToCRLF([]byte("a\nb\r\n\nc"))); got != "a\r\nb\r\n\r\nc" {
		t.Errorf("ToCRLF %q", got)
	}
	if got := string(ToLF([]byte("a\r\nb\n\r\rc\r\n"))); got != "a\nb\n\r\rc\n" {
		t.Errorf("ToLF %q", got)
	}
}

func TestMaildirFlags(t *testing.T) {
	if got := FlagsFromName("123.x.host:2,FSa"); !slices.Equal(got, []string{FlagFlagged, FlagSeen}) {
		t.Errorf("flags %q", got)
	}
	if got := FlagsFromName("123.x.host"); got != nil {
		t.Errorf("no info: %q", got)
	}
	if got := Info([]string{`\seen`, FlagDeleted, "$Junk", FlagDraft, FlagAnswered, FlagFlagged}); got != ":2,DFRST" {
		t.Errorf("info %q", got)
	}
}

func TestMaildirWriteList(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "md")
	w, err := CreateMaildir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t1 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	w.Write([]byte("b\n"), []string{FlagSeen}, t1.Add(time.Hour))
	w.Write([]byte("a\n"), nil, t1)
	os.WriteFile(filepath.Join(dir, "new", "99.x.host:2,S"), []byte("c\n"), 0o600)
	os.Chtimes(filepath.Join(dir, "new", "99.x.host:2,S"), t1.Add(2*time.Hour), t1.Add(2*time.Hour))
	fs, err := ListMaildir(dir)
	if err != nil || len(fs) != 3 {
		t.Fatalf("%d files, %v", len(fs), err)
	}
	for i, want := range []string{"a\n", "b\n", "c\n"} {
		b, _ := os.ReadFile(fs[i].Path)
		if string(b) != want {
			t.Errorf("file %d holds %q, want %q", i, b, want)
		}
	}
	if len(fs[0].Flags) != 0 || !slices.Equal(fs[1].Flags, []string{FlagSeen}) || !fs[2].New || len(fs[2].Flags) != 0 || !fs[0].ModTime.Equal(t1) {
		t.Errorf("listed %+v", fs)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ not empty: %v", ents)
	}
	if _, err := ListMaildir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a maildir") {
		t.Errorf("plain directory: %v", err)
	}
}
