package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// slowMXQueue starts a fakeMX that takes 1.5 s to answer the final dot
// and a queue config sending remote.test there with a 300 ms lease: an
// attempt outlasting its lease, as a slow MX with real timeouts and the
// default 30 minutes would.
func slowMXQueue(t *testing.T) (*fakeMX, Config) {
	f := startFakeMX(t, "127.0.0.1:0", "250 ok", "250 ok")
	f.dataDelay = 1500 * time.Millisecond
	return f, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": f.ln.Addr().String()},
		Lease: 300 * time.Millisecond, MaxIdle: 100 * time.Millisecond, RetryBase: time.Hour}
}

// What a user sees: a recipient whose MX is slow to accept a message gets
// it once, not once per lease period the delivery took.
func TestSlowDeliveryOutlastingLeaseIsSentOnce(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	f, cfg := slowMXQueue(t)
	q := New(st, cfg, testLogger())
	runQueue(t, q)
	if err := q.Enqueue(context.Background(), "alice@x.test", []string{"bob@remote.test"}, []byte(testMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	// A second attempt would have sent its message before the first
	// one's reply removed the entry.
	waitFor(t, "empty queue", func() bool { return queueLen(t, st) == 0 })
	if n := f.msgs.Load(); n != 1 {
		t.Fatalf("bob@remote.test got the message %d times", n)
	}
}

// What a user sees: with two nodes on one store, a slow delivery by one
// is not repeated by the other: the running attempt renews its lease.
func TestSlowDeliveryKeepsLeaseFromOtherNode(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	f, cfg := slowMXQueue(t)
	a, b := cfg, cfg
	a.NodeID, b.NodeID = "node-a", "node-b"
	qa := New(st, a, testLogger())
	runQueue(t, qa)
	if err := qa.Enqueue(context.Background(), "alice@x.test", []string{"bob@remote.test"}, []byte(testMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node-a's delivery", func() bool { return f.msgs.Load() >= 1 })
	runQueue(t, New(st, b, testLogger()))
	waitFor(t, "empty queue", func() bool { return queueLen(t, st) == 0 })
	if n := f.msgs.Load(); n != 1 {
		t.Fatalf("bob@remote.test got the message %d times", n)
	}
}

// failingRenewals is a store whose lease renewals fail (a store outage),
// so a long attempt's lease does run out.
type failingRenewals struct{ mailstore.Store }

func (failingRenewals) ExtendLease(context.Context, int64, string, time.Time) error {
	return errors.New("store unavailable")
}

// What a user sees: even when the lease cannot be renewed and runs out,
// the node does not start a second delivery of a message it is still
// delivering.
func TestNodeNeverAttemptsAnEntryTwiceAtOnce(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	f, cfg := slowMXQueue(t)
	q := New(failingRenewals{st}, cfg, testLogger())
	runQueue(t, q)
	if err := q.Enqueue(context.Background(), "alice@x.test", []string{"bob@remote.test"}, []byte(testMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "empty queue", func() bool { return queueLen(t, st) == 0 })
	if n := f.msgs.Load(); n != 1 {
		t.Fatalf("bob@remote.test got the message %d times", n)
	}
}
