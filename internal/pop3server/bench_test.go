package pop3server

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/mailstore"
)

// BenchmarkRETR downloads a maildrop of 1,000 messages of 50 KB: one op is
// RETR of all of them in one session, pipelined 16 at a time as a client
// with PIPELINING does. Run:
//
//	go test -run XXX -bench RETR -benchtime 3x ./internal/pop3server
func BenchmarkRETR(b *testing.B) {
	const n, size = 1000, 50 << 10
	e := newEnv(b)
	a := e.account("alice@example.org")
	inbox := e.mailbox(a, "INBOX")
	line := strings.Repeat("x", 76) + "\r\n"
	var total int64
	for i := 0; i < n; i += 100 {
		reqs := make([]mailstore.AppendRequest, 0, 100)
		for j := i; j < i+100; j++ {
			var m bytes.Buffer
			fmt.Fprintf(&m, "From: bob@example.net\r\nSubject: message %d\r\n\r\n", j)
			for m.Len() < size-len(line) {
				m.WriteString(line)
			}
			total += int64(m.Len())
			reqs = append(reqs, mailstore.AppendRequest{MailboxID: inbox.ID, Raw: m.Bytes()})
		}
		if _, err := e.store.Append(context.Background(), a.ID, reqs); err != nil {
			b.Fatal(err)
		}
	}
	c := e.dial()
	c.login(a.Name)
	c.ok("STAT")
	b.SetBytes(total)
	b.ResetTimer()
	for b.Loop() {
		const window = 16
		sent := 0
		for got := 0; got < n; got++ {
			for sent < n && sent-got < window {
				sent++
				c.send("RETR " + strconv.Itoa(sent))
			}
			if r := c.read(); !strings.HasPrefix(r, "+OK") {
				b.Fatalf("RETR: %s", r)
			}
			skipMulti(b, c)
		}
	}
	b.StopTimer()
	c.ok("QUIT")
}

// skipMulti reads a multi-line response without keeping it.
func skipMulti(b *testing.B, c *client) {
	c.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		l, err := c.r.ReadSlice('\n')
		if err != nil {
			b.Fatalf("read: %v", err)
		}
		if len(l) == 3 && l[0] == '.' {
			return
		}
	}
}

// BenchmarkLogin measures whole logins (connect, USER, PASS, QUIT: the
// maildrop lock, the snapshot and its release included) with argon2id at
// the default cost: "cold" verifies the hash every time (no cache), "warm"
// is a device polling again within the auth cache's lifetime.
//
//	go test -run XXX -bench Login -benchtime 20x ./internal/pop3server
func BenchmarkLogin(b *testing.B) {
	for _, bc := range []struct {
		name  string
		cache int
	}{{"argon2-default-cold", 0}, {"cache-warm", 1024}} {
		b.Run(bc.name, func(b *testing.B) {
			p := auth.DefaultParams()
			p.CacheSize = bc.cache
			e := newEnv(b, withAuthParams(p))
			a := e.account("alice@example.org")
			e.deliver(a, msg("one", "1\r\n"))
			login := func() {
				c := e.dial()
				c.login(a.Name)
				c.ok("QUIT")
				c.c.Close()
			}
			login() // warms the cache when there is one
			b.ResetTimer()
			for b.Loop() {
				login()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
		})
	}
}
