package pop3server

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
)

// Wire transcripts in testdata/*.txt: "C: line" is sent by the client
// (consecutive C lines go out together, testing pipelining), "S: line" is
// the exact line the server must answer, "S: <closed>" means the server
// closed the connection. Placeholders: ${USER}, ${PASS}, ${UV} (INBOX
// UIDVALIDITY), ${PLAIN} and ${PLAINWRONG} (SASL PLAIN responses),
// ${B64USER}, ${LONG} (a line over the length limit).

// seedBasic is the maildrop every transcript starts with (sizes in
// basic.txt's header).
var seedBasic = []string{
	"From: bob@example.net\r\nSubject: one\r\n\r\nHello\r\n",
	"From: carol@example.net\nSubject: two\n\n.leading dot\n..two dots\nlast line",
	"Subject: three\r\n\r\nline1\r\nline2\r\nline3\r\n",
}

func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	after := map[string]func(t *testing.T, e *env, a mailstore.Account){
		"basic.txt": func(t *testing.T, e *env, a mailstore.Account) {
			// DELE 1 was undone by RSET; DELE 3 took effect at QUIT.
			if got := e.uids(a, "INBOX"); !slices.Equal(got, []mailstore.UID{1, 2}) {
				t.Errorf("INBOX after QUIT = %v, want [1 2]", got)
			}
		},
		"pipelining.txt": func(t *testing.T, e *env, a mailstore.Account) {
			if got := e.uids(a, "INBOX"); !slices.Equal(got, []mailstore.UID{3}) {
				t.Errorf("INBOX after QUIT = %v, want [3]", got)
			}
		},
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".txt"), func(t *testing.T) {
			e := newEnv(t)
			a := e.account("alice@example.org")
			if uids := e.deliver(a, seedBasic...); !slices.Equal(uids, []mailstore.UID{1, 2, 3}) {
				t.Fatalf("seeded UIDs %v", uids)
			}
			inbox := e.mailbox(a, "INBOX")
			vars := strings.NewReplacer(
				"${USER}", a.Name,
				"${PASS}", testPassword,
				"${UV}", strconv.FormatUint(uint64(inbox.UIDValidity), 10),
				"${PLAIN}", base64.StdEncoding.EncodeToString([]byte("\x00"+a.Name+"\x00"+testPassword)),
				"${PLAINWRONG}", base64.StdEncoding.EncodeToString([]byte("\x00"+a.Name+"\x00wrong")),
				"${B64USER}", base64.StdEncoding.EncodeToString([]byte(a.Name)),
				"${LONG}", strings.Repeat("A", maxLine+100),
			)
			runTranscript(t, e, file, vars)
			if f := after[name]; f != nil {
				f(t, e, a)
			}
		})
	}
}

func runTranscript(t *testing.T, e *env, file string, vars *strings.Replacer) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c := e.dial()
	var pending []string
	flush := func() {
		if len(pending) > 0 {
			c.send(strings.Join(pending, "\r\n"))
			pending = nil
		}
	}
	for i, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "C: "):
			pending = append(pending, vars.Replace(l[3:]))
		case l == "S: <closed>":
			flush()
			c.expectClosed()
		case strings.HasPrefix(l, "S: "):
			flush()
			want := vars.Replace(l[3:])
			if got := c.read(); got != want {
				t.Fatalf("%s:%d: server said %q, want %q", file, i+1, got, want)
			}
		default:
			t.Fatalf("%s:%d: bad transcript line %q", file, i+1, l)
		}
	}
}
