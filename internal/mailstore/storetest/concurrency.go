package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

func testConcurrency(t *testing.T, b Backend) {
	t.Run("Deliveries", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		bob := f.account("bob@example.test")
		inbox := f.mailbox(a.ID, "INBOX")
		const workers, each = 32, 20
		var mu sync.Mutex
		got := map[mailstore.UID]string{}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					tag := fmt.Sprintf("conc-%d-%d", w, i)
					tgts := []mailstore.DeliveryTarget{{AccountID: a.ID}}
					if i%4 == 0 {
						tgts = append(tgts, mailstore.DeliveryTarget{AccountID: bob.ID})
					}
					var res []mailstore.AppendResult
					var err error
					if i%3 == 0 { // mix in the APPEND path
						res, err = s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: inbox.ID, Raw: simpleMsg(tag)}})
					} else {
						res, err = s.Deliver(ctx, mailstore.Delivery{Raw: simpleMsg(tag), Recipients: tgts})
					}
					if err != nil {
						t.Errorf("%s: %v", tag, err)
						return
					}
					mu.Lock()
					if prev, dup := got[res[0].UID]; dup {
						t.Errorf("UID %d given to %s and %s", res[0].UID, prev, tag)
					}
					got[res[0].UID] = blobID(simpleMsg(tag))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		uids := f.uids(a.ID, inbox.ID)
		if len(uids) != workers*each || len(got) != workers*each {
			t.Fatalf("INBOX lists %d UIDs, %d acknowledged; want %d", len(uids), len(got), workers*each)
		}
		for _, m := range f.fetch(a.ID, inbox.ID, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}, mailstore.FetchIDs) {
			if got[m.UID] != m.BlobID {
				t.Errorf("UID %d holds %s, acknowledged as %s", m.UID, m.BlobID, got[m.UID])
			}
		}
		st := f.status(a.ID, inbox.ID)
		if st.Messages != workers*each || st.UIDNext <= uids[len(uids)-1] {
			t.Errorf("Status %d messages, UIDNEXT %d; last UID %d", st.Messages, st.UIDNext, uids[len(uids)-1])
		}
		if n := f.status(bob.ID, f.mailbox(bob.ID, "INBOX").ID).Messages; n != int64(countBob(each)*workers) {
			t.Errorf("bob has %d messages, want %d", n, countBob(each)*workers)
		}
	})

	// RFC 6851 section 3.3: a MOVE is atomic; a reader never sees a moved
	// message in both mailboxes or in neither. Reads of two mailboxes are
	// two transactions, so a sample counts only when the account's modseq
	// (raised by every commit) is the same before and after it: then no
	// commit happened in between and the sample is one consistent state.
	t.Run("MoveAtomic", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		boxA := f.mailbox(a.ID, "INBOX")
		boxB := f.create(a.ID, "B")
		const n = 12
		f.appendN(a.ID, boxA.ID, "mover", n)

		stop := make(chan struct{})
		var moves atomic.Int64
		var wg sync.WaitGroup
		mover := func(src, dst int64) {
			for {
				select {
				case <-stop:
					return
				default:
				}
				u, _, err := s.UIDs(ctx, a.ID, src)
				if err != nil {
					t.Errorf("UIDs: %v", err)
					return
				}
				// Half the messages at a time, then one at a time.
				for len(u) > 0 {
					k := max(1, len(u)/2)
					if _, err := s.Move(ctx, a.ID, src, mailstore.UIDSetOf(u[:k]...), dst); err != nil {
						t.Errorf("Move: %v", err)
						return
					}
					moves.Add(1)
					u = u[k:]
					time.Sleep(200 * time.Microsecond)
				}
			}
		}
		wg.Go(func() { mover(boxA.ID, boxB.ID) })
		wg.Go(func() { mover(boxB.ID, boxA.ID) })

		var consistent, samples int
		deadline := time.Now().Add(60 * time.Second)
		// Sample until many moves happened under the reader's eyes.
		for (consistent < 40 || moves.Load() < 100) && time.Now().Before(deadline) && !t.Failed() {
			samples++
			h1 := f.modseq(a.ID)
			ua, _, err1 := s.UIDs(ctx, a.ID, boxA.ID)
			ub, _, err2 := s.UIDs(ctx, a.ID, boxB.ID)
			sa, err3 := s.Status(ctx, a.ID, boxA.ID)
			acc, err4 := s.GetAccountByID(ctx, a.ID)
			h2 := f.modseq(a.ID)
			if err := firstErr(err1, err2, err3, err4); err != nil {
				t.Errorf("reader: %v", err)
				break
			}
			// One read, one transaction: the account's count never moves.
			if acc.UsedMessages != n {
				t.Errorf("UsedMessages %d during moves, want %d", acc.UsedMessages, n)
			}
			if h1 != h2 {
				continue
			}
			consistent++
			if len(ua)+len(ub) != n {
				t.Errorf("at modseq %d the reader sees %d + %d messages, want %d in all", h1, len(ua), len(ub), n)
			}
			if sa.Messages != int64(len(ua)) {
				t.Errorf("at modseq %d Status says %d messages, UIDs lists %d", h1, sa.Messages, len(ua))
			}
		}
		close(stop)
		wg.Wait()
		t.Logf("%d moves, %d samples, %d consistent", moves.Load(), samples, consistent)
		if consistent < 40 && !t.Failed() {
			t.Fatalf("only %d consistent samples in 60s: the reader could not observe the moves", consistent)
		}
		if moves.Load() < 100 && !t.Failed() {
			t.Errorf("only %d moves happened while the reader sampled for 60s", moves.Load())
		}
		// Afterwards every message is in exactly one place, whole.
		seen := map[string]int{}
		for _, mb := range []int64{boxA.ID, boxB.ID} {
			for _, m := range f.fetch(a.ID, mb, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}, mailstore.FetchIDs) {
				seen[m.BlobID]++
			}
		}
		for i := range n {
			id := blobID(simpleMsg(fmt.Sprintf("mover-%d", i)))
			if seen[id] != 1 {
				t.Errorf("message mover-%d present %d times", i, seen[id])
			}
		}
		if len(seen) != n {
			t.Errorf("%d distinct messages after the moves, want %d", len(seen), n)
		}
	})
}

// countBob is how many of each worker's messages also went to bob.
func countBob(each int) int {
	n := 0
	for i := range each {
		if i%4 == 0 && i%3 != 0 {
			n++
		}
	}
	return n
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
