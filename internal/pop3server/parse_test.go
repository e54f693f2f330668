package pop3server

import (
	"bufio"
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line string
		want command
		err  error
	}{
		{"STAT", command{Name: "STAT"}, nil},
		{"stat", command{Name: "STAT"}, nil},
		{"LiSt 1", command{Name: "LIST", Args: []string{"1"}, Rest: "1"}, nil},
		{"TOP 1 10", command{Name: "TOP", Args: []string{"1", "10"}, Rest: "1 10"}, nil},
		{"TOP  1   10 ", command{Name: "TOP", Args: []string{"1", "10"}, Rest: " 1   10 "}, nil},
		{"PASS secret with spaces ", command{Name: "PASS", Rest: "secret with spaces "}, nil},
		{"PASS pässwörd", command{Name: "PASS", Rest: "pässwörd"}, nil},
		{"AUTH PLAIN AGFsaWNlAHNlY3JldA==", command{Name: "AUTH", Args: []string{"PLAIN", "AGFsaWNlAHNlY3JldA=="}, Rest: "PLAIN AGFsaWNlAHNlY3JldA=="}, nil},
		{"USER alice@example.org#phone", command{Name: "USER", Args: []string{"alice@example.org#phone"}, Rest: "alice@example.org#phone"}, nil},
		{"", command{}, errEmptyLine},
		{"ST", command{}, errBadKeyword},
		{"STATS", command{}, errBadKeyword},
		{"ST1T", command{}, errBadKeyword},
		{" STAT", command{}, errBadKeyword},
		{"LIST \x00", command{}, errBadArgument},
		{"LIST a\tb", command{}, errBadArgument},
		{"LIST \xff", command{}, errBadArgument},
		{"PASS a\x01b", command{}, errBadArgument},
		{"TOP 1 2 3", command{}, errTooManyArgs},
	}
	for _, tt := range tests {
		got, err := parseCommand(tt.line)
		if !errors.Is(err, tt.err) {
			t.Errorf("parseCommand(%q) error = %v, want %v", tt.line, err, tt.err)
			continue
		}
		if err == nil && (got.Name != tt.want.Name || got.Rest != tt.want.Rest || !slices.Equal(got.Args, tt.want.Args)) {
			t.Errorf("parseCommand(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func TestParseMsgNumber(t *testing.T) {
	for s, want := range map[string]int{"1": 1, "42": 42, "007": 7, "999999999": 999999999} {
		if n, ok := parseMsgNumber(s); !ok || n != want {
			t.Errorf("parseMsgNumber(%q) = %d, %v; want %d", s, n, ok, want)
		}
	}
	for _, s := range []string{"", "0", "-1", "+1", "1a", "1000000000", "99999999999999999999", " 1"} {
		if n, ok := parseMsgNumber(s); ok {
			t.Errorf("parseMsgNumber(%q) = %d, accepted", s, n)
		}
	}
	if n, ok := parseDecimal("0"); !ok || n != 0 {
		t.Errorf("parseDecimal(0) = %d, %v", n, ok)
	}
}

func TestSplitDevice(t *testing.T) {
	tests := []struct {
		in, user, device string
		ok               bool
	}{
		{"alice@example.org", "alice@example.org", "", true},
		{"alice@example.org#phone", "alice@example.org", "phone", true},
		{"alice@example.org#Laptop_2-b", "alice@example.org", "laptop_2-b", true},
		{"a#b@example.org", "a#b@example.org", "", true},
		{"a#b@example.org#tab", "a#b@example.org", "tab", true},
		{"alice", "alice", "", true},
		{"alice@example.org#", "alice@example.org", "", false},
		{"alice@example.org#pho.ne", "alice@example.org", "", false},
		{"alice@example.org#ph one", "alice@example.org", "", false},
		{"alice@example.org#" + strings.Repeat("x", maxDevice+1), "alice@example.org", "", false},
	}
	for _, tt := range tests {
		user, device, ok := splitDevice(tt.in)
		if user != tt.user || device != tt.device || ok != tt.ok {
			t.Errorf("splitDevice(%q) = %q, %q, %v; want %q, %q, %v", tt.in, user, device, ok, tt.user, tt.device, tt.ok)
		}
	}
}

// render runs writeMessage into a string.
func render(raw []byte, lines int) string {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	writeMessage(w, raw, lines)
	w.Flush()
	return b.String()
}

// unstuff undoes the multi-line framing a client undoes (RFC 1939 section
// 3): it drops the terminating line and one leading dot of each line.
func unstuff(t testing.TB, wire string) string {
	if !strings.HasSuffix(wire, ".\r\n") {
		t.Fatalf("no terminator in %q", wire)
	}
	wire = strings.TrimSuffix(wire, ".\r\n")
	var b strings.Builder
	for wire != "" {
		i := strings.Index(wire, "\r\n")
		if i < 0 {
			t.Fatalf("line without CRLF in %q", wire)
		}
		line := wire[:i]
		wire = wire[i+2:]
		if line == "." {
			t.Fatalf("early terminator")
		}
		if strings.HasPrefix(line, ".") {
			if !strings.HasPrefix(line, "..") {
				t.Fatalf("unstuffed dot line %q", line)
			}
			line = line[1:]
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	return b.String()
}

func TestWriteMessage(t *testing.T) {
	tests := []struct {
		raw   string
		lines int
		want  string
	}{
		{"A: b\r\n\r\nbody\r\n", -1, "A: b\r\n\r\nbody\r\n.\r\n"},
		{"A: b\n\nbody\n", -1, "A: b\r\n\r\nbody\r\n.\r\n"},
		{"A: b\n\nno final newline", -1, "A: b\r\n\r\nno final newline\r\n.\r\n"},
		{"A: b\r\n\r\n.\r\n..x\r\n.", -1, "A: b\r\n\r\n..\r\n...x\r\n..\r\n.\r\n"},
		{"", -1, ".\r\n"},
		{"A: b\r\n\r\n1\r\n2\r\n3\r\n", 2, "A: b\r\n\r\n1\r\n2\r\n.\r\n"},
		{"A: b\r\n\r\n1\r\n2\r\n3\r\n", 0, "A: b\r\n\r\n.\r\n"},
		{"A: b\r\n\r\n1\r\n", 10, "A: b\r\n\r\n1\r\n.\r\n"},
		{"A: b\r\nC: d\r\n", 0, "A: b\r\nC: d\r\n.\r\n"},
		{"A: b\r\n\r\nx\ry\r\n", -1, "A: b\r\n\r\nx\ry\r\n.\r\n"},
	}
	for _, tt := range tests {
		got := render([]byte(tt.raw), tt.lines)
		if got != tt.want {
			t.Errorf("writeMessage(%q, %d) = %q, want %q", tt.raw, tt.lines, got, tt.want)
		}
		if tt.lines < 0 {
			if n := int64(len(unstuff(t, got))); n != wireSize([]byte(tt.raw)) {
				t.Errorf("wireSize(%q) = %d, RETR sends %d", tt.raw, wireSize([]byte(tt.raw)), n)
			}
		}
	}
}

var commandSeeds = []string{
	"USER alice@example.org", "PASS secret", "PASS two words", "AUTH", "AUTH PLAIN",
	"AUTH PLAIN AGFsaWNlAHNlY3JldA==", "AUTH SCRAM-SHA-256 =", "STLS", "CAPA", "STAT",
	"LIST", "LIST 1", "RETR 1", "DELE 2", "NOOP", "RSET", "TOP 1 0", "UIDL", "UIDL 3",
	"QUIT", "APOP mrose c4c9334bac560ecc979e58001b3e22fb", "list  1", "TOP 1 2 3", "\x00\xff",
	"USER alice@example.org#phone",
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range commandSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := parseCommand(line)
		if err != nil {
			return
		}
		if len(cmd.Name) < 3 || len(cmd.Name) > 4 || cmd.Name != strings.ToUpper(cmd.Name) {
			t.Fatalf("bad keyword %q from %q", cmd.Name, line)
		}
		if len(cmd.Args) > maxArgs {
			t.Fatalf("%d args from %q", len(cmd.Args), line)
		}
		for _, a := range cmd.Args {
			if a == "" || !printable(a, false) {
				t.Fatalf("bad arg %q from %q", a, line)
			}
		}
		if !strings.EqualFold(line, cmd.Name) && !strings.HasSuffix(line, cmd.Rest) {
			t.Fatalf("rest %q not the end of %q", cmd.Rest, line)
		}
		if n, ok := parseMsgNumber(cmd.Rest); ok && n <= 0 {
			t.Fatalf("message number %d", n)
		}
		splitDevice(cmd.Rest)
	})
}

func FuzzWriteMessage(f *testing.F) {
	for _, s := range []string{
		"From: a@b\r\nSubject: x\r\n\r\nHello\r\n.\r\n",
		"From: a@b\nSubject: x\n\nbare LF\n.dot\n",
		"no end of line", "\r\n\r\n", ".", "\n", "\r", "a\r\r\nb",
	} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, raw []byte, lines int) {
		whole := render(raw, -1)
		body := unstuff(t, whole)
		if int64(len(body)) != wireSize(raw) {
			t.Fatalf("wireSize = %d, RETR sends %d octets", wireSize(raw), len(body))
		}
		if lines < 0 {
			lines = -lines
		}
		top := unstuff(t, render(raw, lines%1000))
		if !strings.HasPrefix(body, top) {
			t.Fatalf("TOP %q is not a prefix of RETR %q", top, body)
		}
	})
}
