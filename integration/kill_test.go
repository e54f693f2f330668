package integration

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-smtp"
)

// The promise behind every acknowledgement, held against a crash: clients
// store messages into the real binary without pause, the server is killed
// with SIGKILL in the middle of it, and after a restart every message that
// was acknowledged (SMTP's 250, APPEND's OK) is in the INBOX exactly once.
// One in flight at the kill may be there or not, but never twice.

// killSender stores a message over its own connection; an error means
// it was not acknowledged.
type killSender func(raw []byte) error

// killMessage is a message with Message-ID id.
func killMessage(id string) []byte {
	return []byte(fmt.Sprintf("From: s@remote.test\r\nTo: kim@k.test\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: Thu, 26 Nov 2026 12:00:00 +0000\r\n\r\n%s", id, id, strings.Repeat("body line\r\n", 200)))
}

// killMidStream runs the senders until want messages are acknowledged,
// kills the server, restarts it and checks kim@k.test's INBOX.
func killMidStream(t *testing.T, r *Roost, want int, senders []killSender) {
	t.Helper()
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		wg    sync.WaitGroup
		once  sync.Once
	)
	enough := make(chan struct{})
	for g, send := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("kill-%d-%d@remote.test", g, i)
				if send(killMessage(id)) != nil {
					return // the kill: not acknowledged
				}
				mu.Lock()
				acked[id] = true
				if len(acked) >= want {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(2 * time.Minute):
		t.Fatalf("%d messages were not acknowledged within 2 minutes (a hang guard)", want)
	}
	r.Kill(t)
	wg.Wait()

	r.Restart(t)
	c := imapLoginClient(t, r, "kim@k.test", nil)
	seen := map[string]int{}
	idRE := regexp.MustCompile(`(?m)^Message-ID: <([^>]+)>`)
	for _, m := range imapMailbox(t, c, "INBOX") {
		id := idRE.FindSubmatch(m.Body)
		if id == nil {
			t.Fatalf("UID %d has no Message-ID", m.UID)
		}
		seen[string(id[1])]++
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Errorf("%s was acknowledged and is in the INBOX %d times after kill -9 and restart", id, seen[id])
		}
	}
	extra := 0
	for id, n := range seen {
		if n > 1 {
			t.Errorf("%s is in the INBOX %d times", id, n)
		}
		if !acked[id] {
			extra++
		}
	}
	t.Logf("%d acknowledged before the kill, all there once; %d more in flight were stored", len(acked), extra)
}

// TestSMTPAckedSurvivesKill: eight go-smtp clients on the MX listener.
// (Checked to fail when the 250 goes out before the commit.)
func TestSMTPAckedSurvivesKill(t *testing.T) {
	r := StartRoost(t, BuildRoost(t), "")
	smtpAddUsers(t, r, "k.test", "kim")
	var senders []killSender
	for range 8 {
		c, err := smtp.Dial(r.Addr["smtp"])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		senders = append(senders, func(raw []byte) error {
			return c.SendMail("s@remote.test", []string{"kim@k.test"}, strings.NewReader(string(raw)))
		})
	}
	killMidStream(t, r, 150, senders)
}

// TestIMAPAppendSurvivesKill: four go-imap clients APPENDing to the INBOX.
func TestIMAPAppendSurvivesKill(t *testing.T) {
	r := StartRoost(t, BuildRoost(t), "")
	smtpAddUsers(t, r, "k.test", "kim")
	var senders []killSender
	for range 4 {
		c := imapLoginClient(t, r, "kim@k.test", nil)
		senders = append(senders, func(raw []byte) error {
			cmd := c.Append("INBOX", int64(len(raw)), &imap.AppendOptions{})
			if _, err := cmd.Write(raw); err != nil {
				return err
			}
			if err := cmd.Close(); err != nil {
				return err
			}
			_, err := cmd.Wait()
			return err
		})
	}
	killMidStream(t, r, 100, senders)
}
