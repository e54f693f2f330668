package queue

import (
	"context"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// twoMXZone is two.test with mx1 (127.0.0.1, preferred) and mx2
// (127.0.0.2, backup).
func twoMXZone() map[string][]dnsRecord {
	return map[string][]dnsRecord{
		"two.test./MX":       {{typ: 15, pref: 10, host: "mx1.two.test."}, {typ: 15, pref: 20, host: "mx2.two.test."}},
		"mx1.two.test./A":    {{typ: 1, ip: net.IPv4(127, 0, 0, 1)}},
		"mx2.two.test./A":    {{typ: 1, ip: net.IPv4(127, 0, 0, 2)}},
		"mx1.two.test./AAAA": nil,
		"mx2.two.test./AAAA": nil,
	}
}

// twoMXQueue runs a queue that routes two.test by DNS to port (both MX
// hosts listen on it) and retries only after an hour, so each test sees
// exactly one attempt.
func twoMXQueue(t *testing.T, st mailstore.Store, port int) *Queue {
	q := New(st, Config{Hostname: "mx.x.test", Resolver: startDNS(t, twoMXZone(), nil), Port: port, RetryBase: time.Hour, WarnAfter: -1}, testLogger())
	runQueue(t, q)
	return q
}

// firstAttempt waits until the queue is empty or its entry has had an
// attempt, and returns what is left.
func firstAttempt(t *testing.T, st mailstore.Store) []mailstore.QueueEntry {
	t.Helper()
	var es []mailstore.QueueEntry
	waitFor(t, "the first attempt", func() bool {
		es, _ = st.ListQueue(context.Background())
		return len(es) == 0 || es[0].Attempts >= 1
	})
	return es
}

// What a user sees: the preferred MX is greylisting, overloaded or
// shutting down and answers 4xx, yet the backup MX takes the message at
// once, instead of the message waiting for retries to the same host until
// it expires. RFC 5321 section 5.1: the client tries each MX in order
// until a delivery attempt succeeds.
func TestTransientRefusalByPreferredMXGoesToBackup(t *testing.T) {
	for _, tc := range []struct{ name, mail, rcpt string }{
		{"421 to MAIL", "421 4.3.2 shutting down", "250 ok"},
		{"451 to MAIL", "451 4.3.0 try later", "250 ok"},
		{"450 to every RCPT", "250 ok", "450 4.2.0 greylisted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, alice := openStore(t, t.TempDir())
			defer st.Close()
			primary := startFakeMX(t, "127.0.0.1:0", tc.mail, tc.rcpt)
			port := primary.ln.Addr().(*net.TCPAddr).Port
			backup := startSink(t, "127.0.0.2:"+strconv.Itoa(port))
			q := twoMXQueue(t, st, port)
			if err := q.Enqueue(context.Background(), "alice@x.test", []string{"bob@two.test"}, []byte(testMsg), alice.ID); err != nil {
				t.Fatal(err)
			}
			es := firstAttempt(t, st)
			if primary.conns.Load() == 0 {
				t.Fatal("preferred MX never contacted")
			}
			if n := len(backup.messages()); n != 1 || len(es) != 0 {
				t.Fatalf("backup MX got %d messages after the preferred MX's %q; %d entries left: %+v", n, tc.mail+" / "+tc.rcpt, len(es), es)
			}
			// RFC 5321 section 3.8: after 421 the server closes the
			// channel; such a connection must not wait in the pool.
			if c, _ := q.conns.get("mx1.two.test:" + strconv.Itoa(port) + "|false"); c != nil {
				c.nc.Close()
				if tc.mail[:3] == "421" {
					t.Errorf("connection to the preferred MX kept after %q", tc.mail)
				}
			}
		})
	}
}

// What a user sees: when the preferred MX accepts some recipients, defers
// another and rejects a third, only the deferred one goes to the backup
// MX; the accepted one gets no second copy and the rejected one bounces.
func TestPartlyDeferredRecipientsGoToBackup(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	primary := startFakeMX(t, "127.0.0.1:0", "250 ok", "250 ok")
	primary.rcptReplies = map[string]string{
		"carol@two.test": "450 4.2.0 greylisted",
		"dave@two.test":  "550 5.1.1 no such user",
	}
	port := primary.ln.Addr().(*net.TCPAddr).Port
	backup := startFakeMX(t, "127.0.0.2:"+strconv.Itoa(port), "250 ok", "250 ok")
	q := twoMXQueue(t, st, port)
	if err := q.Enqueue(context.Background(), "alice@x.test", []string{"bob@two.test", "carol@two.test", "dave@two.test"}, []byte(testMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	if es := firstAttempt(t, st); len(es) != 0 {
		t.Fatalf("entries left: %+v", es)
	}
	if got := primary.received(); len(got) != 1 || !slices.Equal(got[0], []string{"bob@two.test"}) {
		t.Errorf("preferred MX received %v, want [[bob@two.test]]", got)
	}
	if got := backup.received(); len(got) != 1 || !slices.Equal(got[0], []string{"carol@two.test"}) {
		t.Errorf("backup MX received %v, want [[carol@two.test]]", got)
	}
	waitFor(t, "the bounce for dave", func() bool { return len(inbox(t, st, alice)) == 1 })
}

// What a user sees: when every MX defers, the message waits for the next
// attempt and `roost queue list` shows the last host's reply.
func TestEveryMXDeferringShowsLastReply(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	primary := startFakeMX(t, "127.0.0.1:0", "250 ok", "450 4.2.0 greylisted")
	port := primary.ln.Addr().(*net.TCPAddr).Port
	backup := startFakeMX(t, "127.0.0.2:"+strconv.Itoa(port), "451 4.3.0 backup busy", "250 ok")
	q := twoMXQueue(t, st, port)
	if err := q.Enqueue(context.Background(), "alice@x.test", []string{"bob@two.test"}, []byte(testMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	es := firstAttempt(t, st)
	if len(es) != 1 || es[0].LastError != "451 4.3.0 backup busy" {
		t.Fatalf("queue = %+v, want one entry with the backup's reply", es)
	}
	if primary.conns.Load() == 0 || backup.conns.Load() == 0 {
		t.Errorf("connections: preferred %d, backup %d; want both tried", primary.conns.Load(), backup.conns.Load())
	}
}
