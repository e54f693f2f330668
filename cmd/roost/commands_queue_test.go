package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// queueTwo makes bob@example.test and queues two messages of his, not yet
// due, returning their IDs.
func queueTwo(t *testing.T, c cli) []string {
	t.Helper()
	ctx, _, st, acct := bobStore(t, c)
	defer st.Close()
	raw := []byte("From: bob@example.test\r\nTo: x@remote.test\r\nSubject: out\r\n\r\nhi\r\n")
	var ids []string
	for range 2 {
		got, err := st.Enqueue(ctx, raw, []mailstore.QueueEntry{{
			AccountID: acct.ID, From: "bob@example.test", Recipients: []string{"x@remote.test"}, Domain: "remote.test",
			NextAttempt: time.Now().Add(time.Hour),
		}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, strconv.FormatInt(got[0], 10))
	}
	return ids
}

// An operator who mistypes one ID in `roost queue drop A B C` must not get
// a half-done drop they cannot see: the command refuses, naming the bad
// ID, before bouncing anything, so re-running it corrected just works.
func TestQueueDropWithUnknownIDDropsNothing(t *testing.T) {
	c, _ := newCLI(t)
	ids := queueTwo(t, c)
	before := c.ok("", "queue", "list")
	c.fails(1, "424242: no such queue entry", "queue", "drop", ids[0], "424242", ids[1])
	if after := c.ok("", "queue", "list"); after != before {
		t.Fatalf("a refused drop changed the queue from %q to %q", before, after)
	}
	if out := c.ok("", "mailbox", "list", "bob@example.test"); !strings.Contains(out, "INBOX\t-\t0 messages") {
		t.Fatalf("a refused drop bounced mail to the sender: %q", out)
	}
	if out := c.ok("", "queue", "drop", ids[0], ids[1]); out != "2 entries dropped\n" {
		t.Fatalf("queue drop said %q", out)
	}
}

// `roost queue retry ID` with an ID not in the queue used to say "0
// entries due now" and exit 0, hiding the typo; without IDs it still
// retries everything.
func TestQueueRetryUnknownID(t *testing.T) {
	c, _ := newCLI(t)
	ids := queueTwo(t, c)
	c.fails(1, "424242: no such queue entry", "queue", "retry", ids[0], "424242")
	if out := c.ok("", "queue", "retry", ids[1]); out != "1 entries due now\n" {
		t.Fatalf("queue retry %s said %q", ids[1], out)
	}
	if out := c.ok("", "queue", "retry"); out != "2 entries due now\n" {
		t.Fatalf("queue retry said %q", out)
	}
}
