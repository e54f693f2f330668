package integration

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// TestSMTPAckedSurvivesKill is the promise behind every 250: eight
// go-smtp clients deliver to the real binary's MX listener without pause
// and the server is killed with SIGKILL in the middle of it. After a
// restart, every message that got its 250 is in the INBOX exactly once;
// one in flight at the kill may be there or not, but never twice.
func TestSMTPAckedSurvivesKill(t *testing.T) {
	r := StartRoost(t, BuildRoost(t), "")
	smtpAddUsers(t, r, "k.test", "kim")
	const senders = 8
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		wg    sync.WaitGroup
	)
	enough := make(chan struct{})
	var once sync.Once
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(r.Addr["smtp"])
			if err != nil {
				t.Errorf("sender %d: %v", g, err)
				return
			}
			defer c.Close()
			for i := 0; ; i++ {
				id := fmt.Sprintf("kill-%d-%d@remote.test", g, i)
				msg := fmt.Sprintf("From: s@remote.test\r\nTo: kim@k.test\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: Thu, 26 Nov 2026 12:00:00 +0000\r\n\r\n%s\r\n", id, id, strings.Repeat("body line\r\n", 200))
				if err := c.SendMail("s@remote.test", []string{"kim@k.test"}, strings.NewReader(msg)); err != nil {
					return // the kill: not acknowledged
				}
				mu.Lock()
				acked[id] = true
				if len(acked) >= 150 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(2 * time.Minute):
		t.Fatal("150 messages were not accepted within 2 minutes (a hang guard)")
	}
	r.Kill(t)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()

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
			t.Errorf("%s got 250 and is in the INBOX %d times after kill -9 and restart", id, seen[id])
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
	t.Logf("%d acknowledged before the kill, all there; %d more in flight were stored", len(acked), extra)
}
