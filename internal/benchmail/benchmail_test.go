package benchmail

import (
	"strings"
	"testing"
)

// The benchmarks' figures are per 10 KB message of valid mail: check the
// size, RFC 5322's line rules (section 2.1.1: CRLF, at most 998 octets)
// and that message i is the same text every time.
func TestMessage(t *testing.T) {
	for i := range 50 {
		m := Message(i, "s@remote.test", "u0@x.test")
		if len(m) < 10*1024 || len(m) > 11*1024 {
			t.Fatalf("message %d: %d octets, want about 10 KB", i, len(m))
		}
		head, body, ok := strings.Cut(m, "\r\n\r\n")
		if !ok || !strings.Contains(head, "From: s@remote.test\r\n") || !strings.Contains(head, "To: u0@x.test\r\n") {
			t.Fatalf("message %d: header %q", i, head)
		}
		if !strings.HasSuffix(body, "\r\n") {
			t.Fatalf("message %d does not end in CRLF", i)
		}
		for _, line := range strings.Split(strings.TrimSuffix(m, "\r\n"), "\r\n") {
			if len(line) > 998 || strings.ContainsAny(line, "\r\n") {
				t.Fatalf("message %d: bad line %q", i, line)
			}
		}
		_, again, _ := strings.Cut(Message(i, "s@remote.test", "u0@x.test"), "\r\n\r\n")
		if again != body {
			t.Fatalf("message %d: body differs between calls", i)
		}
	}
	_, b0, _ := strings.Cut(Message(0, "a@b", "c@d"), "\r\n\r\n")
	_, b1, _ := strings.Cut(Message(1, "a@b", "c@d"), "\r\n\r\n")
	if b0 == b1 {
		t.Fatal("messages 0 and 1 have the same body")
	}
}
