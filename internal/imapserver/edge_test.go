package imapserver

import (
	"io"
	"strings"
	"testing"
	"time"
)

// Edge cases: an empty message, MOVE into the selected mailbox itself,
// \Recent refused as a flag, read-only refusals.
func TestEdgeCases(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.login(t, "alice@example.test")
	steps := []struct {
		cmd  string
		want []string
	}{
		{"APPEND INBOX {0+}\r\n", []string{`^t\d+ OK \[APPENDUID \d+ 1\]`}},
		{"SELECT INBOX", []string{`^\* 1 EXISTS$`}},
		{"FETCH 1 (BODY[] ENVELOPE)", []string{`^\* 1 FETCH \(FLAGS \(\\Seen\) BODY\[\] \{0\}\r\n ENVELOPE \(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL\)\)$`}},
		{"COPY 1 Nope", []string{`^t\d+ NO \[TRYCREATE\]`}},
		{"MOVE 1 INBOX", []string{`^\* OK \[COPYUID \d+ 1 2\] Moved$`, `^\* 1 EXPUNGE$`, `^\* 1 EXISTS$`}},
		{`STORE 1 FLAGS (\Recent $Custom)`, []string{`^\* 1 FETCH \(FLAGS \(\$Custom\)\)$`}},
		{`LIST "" INBOX/%`, []string{`^t\d+ OK LIST completed$`}},
		{"LSUB \"\" IN*", []string{`^\* LSUB \(\\HasNoChildren\) "/" "INBOX"$`}},
		{"ID NIL", []string{`^\* ID \("name" "Roost"\)$`}},
		{"EXAMINE INBOX (CONDSTORE)", []string{`^\* OK \[PERMANENTFLAGS \(\)\]`, `^t\d+ OK \[READ-ONLY\]`}},
		{`STORE 1 +FLAGS (\Seen)`, []string{`^t\d+ NO Mailbox is read-only$`}},
		{"EXPUNGE", []string{`^t\d+ NO Mailbox is read-only$`}},
		{"CLOSE", []string{`^t\d+ OK CLOSE completed$`}},
		{"FETCH 1 FLAGS", []string{`^t\d+ BAD FETCH not allowed in this state$`}},
	}
	for _, s := range steps {
		mustHave(t, c.cmd(s.cmd), s.want...)
	}
}

// RFC 3516 section 4.3: BINARY of a part in an unknown encoding is
// NO [UNKNOWN-CTE]; BODY of the same part still works.
func TestBinaryUnknownCTE(t *testing.T) {
	env := newTestEnv(t, Config{})
	raw := "Subject: uu\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n`\r\nend\r\n"
	env.deliver(t, "alice@example.test", raw)
	c := env.login(t, "alice@example.test")
	c.ok("SELECT INBOX")
	mustHave(t, c.cmd("FETCH 1 BINARY.PEEK[1]"), `^t\d+ NO \[UNKNOWN-CTE\]`)
	mustHave(t, c.cmd("FETCH 1 BODY.PEEK[1]"), `^\* 1 FETCH \(BODY\[1\] \{21\}\r\nbegin 644 x`)
}

// TestLastReplyNotReset: a client pipelines more after LOGOUT. The
// server reads no further, yet the client must read the BYE, the tagged
// OK and then the end of the stream, not a reset that can destroy them
// (the unread input would make a plain close send one; linger).
func TestLastReplyNotReset(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.login(t, "alice@example.test")
	junk := strings.Repeat("x NOOP\r\n", 32<<10)
	go func() { _, _ = io.WriteString(c.c, "t1 LOGOUT\r\n"+junk) }()
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, err := io.ReadAll(c.r)
	if err != nil {
		t.Fatalf("after LOGOUT and more: %v (read %q)", err, out)
	}
	if !strings.HasSuffix(string(out), "* BYE Logging out\r\nt1 OK LOGOUT completed\r\n") {
		t.Fatalf("after LOGOUT and more: %q", out)
	}
}
