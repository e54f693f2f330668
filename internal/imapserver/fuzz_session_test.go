package imapserver

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzSession sends arbitrary command lines to a live, selected session
// over a socket: whatever they are, the server answers (OK, NO or BAD) and
// the connection survives; a handler panic would close it.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"a FETCH 1:* (FLAGS BODY.PEEK[1.2.MIME] BINARY[3] BODY[]<0.10>)",
		"a UID SEARCH OR (SINCE 1-Jan-2020 NOT 1:*) $ UID 3:1 MODSEQ 5",
		`a STORE 1,2 (UNCHANGEDSINCE 1) -FLAGS.SILENT (\Deleted $x)`,
		"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (* %) RETURN (STATUS (SIZE DELETED) CHILDREN)",
		"a SELECT INBOX (QRESYNC (1 1 1:* (1 1)))", "a MOVE 2 Trash", "a UID EXPUNGE 1:*",
		"a CREATE \"&AMk-t\xc3\xa9/x\" (USE (\\Archive))", "a RENAME INBOX Old", "a ENABLE QRESYNC UTF8=ACCEPT",
		"a APPEND INBOX (\\Seen) \" 1-Jan-2024 10:00:00 +0000\" ~(3+)", "a UNSELECT", "a STATUS Trash (MESSAGES)",
		"a STATUS INBOX (APPENDLIMIT SIZE)", "a LIST \"\" * RETURN (STATUS (APPENDLIMIT))", "a CAPABILITY",
		"a COMPRESS FOO", "a COMPRESS", "a compress zlib\nb COMPRESS",
	} {
		f.Add(s)
	}
	env := newTestEnv(f, Config{LoginTimeout: 5 * time.Second})
	for i := 1; i <= 3; i++ {
		env.deliver(f, "alice@example.test", testMessage(i))
	}
	// A quota, so that APPENDLIMIT answers come from it (RFC 7889).
	if err := env.store.SetQuota(context.Background(), "alice@example.test", 1<<20, 0); err != nil {
		f.Fatalf("SetQuota: %v", err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		up := strings.ToUpper(in)
		for _, w := range []string{"IDLE", "LOGOUT", "AUTHENTICATE", "STARTTLS", "{"} {
			// These wait for more client input by design.
			if strings.Contains(up, w) {
				return
			}
		}
		if strings.Contains(up, "COMPRESS") && strings.Contains(up, "DEFLATE") {
			return // the server would expect DEFLATE from this plain-text client
		}
		conn, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c := &rawClient{t: t, c: conn, r: bufio.NewReader(conn)}
		c.line()
		c.ok(`LOGIN alice@example.test "secret pass"`)
		c.ok("SELECT INBOX")
		for _, l := range strings.Split(strings.ReplaceAll(in, "\r", ""), "\n") {
			c.send(l)
		}
		c.send("zz NOOP")
		for {
			l := c.line()
			if strings.HasPrefix(l, "* BYE") {
				if strings.Contains(l, "deleted") {
					return // the fuzz input deleted the selected mailbox
				}
				t.Fatalf("BYE: %q", l)
			}
			if strings.HasPrefix(l, "zz ") {
				if !strings.HasPrefix(l, "zz OK") && !strings.HasPrefix(l, "zz BAD") {
					t.Fatalf("after %q: %q", in, l)
				}
				return
			}
		}
	})
}
