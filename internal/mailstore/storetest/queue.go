package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

func testQueue(t *testing.T, b Backend) {
	t.Run("Lifecycle", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		raw := simpleMsg("outbound")
		// Store times at second precision so any backend round-trips them.
		now := time.Now().Truncate(time.Second)
		ids, err := s.Enqueue(ctx, raw, []mailstore.QueueEntry{
			{AccountID: a.ID, From: "alice@example.test", Recipients: []string{"x@one.example", "y@one.example"}, Domain: "one.example", NextAttempt: now},
			{AccountID: a.ID, From: "alice@example.test", Recipients: []string{"z@two.example"}, Domain: "two.example", NextAttempt: now.Add(time.Hour)},
		})
		if err != nil || len(ids) != 2 || ids[0] == ids[1] {
			t.Fatalf("Enqueue = %v, %v", ids, err)
		}
		e, err := s.GetQueueEntry(ctx, ids[0])
		if err != nil {
			t.Fatalf("GetQueueEntry: %v", err)
		}
		if e.ID != ids[0] || e.AccountID != a.ID || e.From != "alice@example.test" || !slices.Equal(e.Recipients, []string{"x@one.example", "y@one.example"}) ||
			e.Domain != "one.example" || e.BlobID != blobID(raw) || e.Size != int64(len(raw)) || e.Created.IsZero() || !e.NextAttempt.Equal(now) || e.Attempts != 0 {
			t.Errorf("queue entry = %+v", e)
		}
		if got, err := s.ReadBlob(ctx, e.BlobID); err != nil || !bytes.Equal(got, raw) {
			t.Errorf("queued blob differs: %v", err)
		}
		list, err := s.ListQueue(ctx)
		if err != nil || len(list) != 2 {
			t.Fatalf("ListQueue = %d, %v", len(list), err)
		}
		// A bounce has a null reverse-path.
		bounce, err := s.Enqueue(ctx, simpleMsg("bounce"), []mailstore.QueueEntry{{From: "", Recipients: []string{"s@three.example"}, Domain: "three.example", NextAttempt: now.Add(time.Hour)}})
		if err != nil {
			t.Fatal(err)
		}
		if be, err := s.GetQueueEntry(ctx, bounce[0]); err != nil || be.From != "" || be.AccountID != 0 {
			t.Errorf("bounce entry = %+v, %v", be, err)
		}

		// Only due entries are claimed.
		got, err := s.ClaimDue(ctx, "node-a", now, now.Add(time.Minute), 10)
		if err != nil || len(got) != 1 || got[0].ID != ids[0] || got[0].LeaseOwner != "node-a" {
			t.Fatalf("ClaimDue = %+v, %v; want entry %d leased to node-a", got, err, ids[0])
		}
		// A live lease keeps others off; an expired one is up for grabs.
		if again, _ := s.ClaimDue(ctx, "node-b", now.Add(30*time.Second), now.Add(2*time.Minute), 10); len(again) != 0 {
			t.Errorf("leased entry claimed again: %+v", again)
		}
		late := now.Add(2 * time.Minute)
		got, err = s.ClaimDue(ctx, "node-b", late, late.Add(time.Minute), 10)
		if err != nil || len(got) != 1 || got[0].ID != ids[0] || got[0].LeaseOwner != "node-b" {
			t.Fatalf("ClaimDue after lease expiry = %+v, %v", got, err)
		}
		// Recording an attempt releases the lease and reschedules.
		e = got[0]
		e.Attempts = 1
		e.NextAttempt = late.Add(10 * time.Minute)
		e.LastError = "451 try later"
		e.Warned = true
		if err := s.UpdateQueueEntry(ctx, e); err != nil {
			t.Fatalf("UpdateQueueEntry: %v", err)
		}
		g, _ := s.GetQueueEntry(ctx, e.ID)
		if g.Attempts != 1 || !g.NextAttempt.Equal(e.NextAttempt) || g.LastError != "451 try later" || !g.Warned {
			t.Errorf("after update: %+v", g)
		}
		if c, _ := s.ClaimDue(ctx, "node-c", late.Add(time.Minute), late.Add(2*time.Minute), 10); len(c) != 0 {
			t.Errorf("rescheduled entry claimed before its time: %+v", c)
		}
		at := e.NextAttempt.Add(time.Second)
		c, _ := s.ClaimDue(ctx, "node-c", at, at.Add(time.Minute), 1)
		if len(c) != 1 || c[0].ID != e.ID {
			t.Fatalf("released entry not claimable at its next attempt: %+v", c)
		}
		far := now.Add(24 * time.Hour)
		c[0].Attempts, c[0].NextAttempt = 2, far
		if err := s.UpdateQueueEntry(ctx, c[0]); err != nil {
			t.Fatal(err)
		}

		// RetryQueue makes entries due now.
		n, err := s.RetryQueue(ctx, []int64{ids[1]}, late)
		if err != nil || n != 1 {
			t.Errorf("RetryQueue = %d, %v", n, err)
		}
		c, _ = s.ClaimDue(ctx, "node-d", late, late.Add(time.Minute), 10)
		if len(c) != 1 || c[0].ID != ids[1] {
			t.Fatalf("retried entry not due: %+v", c)
		}
		c[0].Attempts, c[0].NextAttempt = 1, far
		if err := s.UpdateQueueEntry(ctx, c[0]); err != nil {
			t.Fatal(err)
		}
		n, err = s.RetryQueue(ctx, nil, late)
		if err != nil || n != 3 {
			t.Errorf("RetryQueue(all) = %d, %v; want 3", n, err)
		}
		if c, _ := s.ClaimDue(ctx, "node-e", late, late.Add(time.Minute), 10); len(c) != 3 {
			t.Errorf("after RetryQueue(all), %d entries due, want 3", len(c))
		}

		// Deleting the entries lets Purge drop the blob.
		for _, id := range append(ids, bounce...) {
			if err := s.DeleteQueueEntry(ctx, id); err != nil {
				t.Fatalf("DeleteQueueEntry: %v", err)
			}
		}
		if _, err := s.GetQueueEntry(ctx, ids[0]); err == nil {
			t.Errorf("deleted entry still readable")
		}
		if l, _ := s.ListQueue(ctx); len(l) != 0 {
			t.Errorf("ListQueue after deletes = %+v", l)
		}
		future := time.Now().Add(time.Hour)
		if _, err := s.Purge(ctx, future, future); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ReadBlob(ctx, blobID(raw)); err == nil {
			t.Errorf("queue blob survives the entries' deletion and Purge")
		}
	})

	// A delivery attempt that runs longer than its lease renews it; the
	// renewal must keep other claimers off and must fail once the lease is
	// someone else's, so a node never delivers an entry it lost.
	t.Run("ExtendLease", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		now := time.Now().Truncate(time.Second)
		ids, err := s.Enqueue(ctx, simpleMsg("lease"), []mailstore.QueueEntry{
			{From: "a@example.test", Recipients: []string{"x@one.example"}, Domain: "one.example", NextAttempt: now}})
		if err != nil {
			t.Fatal(err)
		}
		id := ids[0]
		if err := s.ExtendLease(ctx, id, "node-a", now.Add(time.Hour)); !errors.Is(err, mailstore.ErrLeaseHeld) {
			t.Errorf("ExtendLease of an unclaimed entry = %v, want ErrLeaseHeld", err)
		}
		if c, err := s.ClaimDue(ctx, "node-a", now, now.Add(time.Minute), 10); err != nil || len(c) != 1 {
			t.Fatalf("ClaimDue = %+v, %v", c, err)
		}
		// Past the first lease's end, the extended lease still holds.
		if err := s.ExtendLease(ctx, id, "node-a", now.Add(10*time.Minute)); err != nil {
			t.Fatalf("ExtendLease by the owner: %v", err)
		}
		if c, _ := s.ClaimDue(ctx, "node-b", now.Add(5*time.Minute), now.Add(6*time.Minute), 10); len(c) != 0 {
			t.Errorf("extended lease claimed by another node: %+v", c)
		}
		if err := s.ExtendLease(ctx, id, "node-b", now.Add(time.Hour)); !errors.Is(err, mailstore.ErrLeaseHeld) {
			t.Errorf("ExtendLease by a non-owner = %v, want ErrLeaseHeld", err)
		}
		if e, _ := s.GetQueueEntry(ctx, id); e.LeaseOwner != "node-a" || !e.LeaseUntil.Equal(now.Add(10*time.Minute)) {
			t.Errorf("after ExtendLease: owner %q until %v", e.LeaseOwner, e.LeaseUntil)
		}
		// Once another node has claimed the expired lease, the old owner
		// cannot extend it.
		late := now.Add(11 * time.Minute)
		if c, _ := s.ClaimDue(ctx, "node-b", late, late.Add(time.Minute), 10); len(c) != 1 {
			t.Fatalf("expired extended lease not claimable: %+v", c)
		}
		if err := s.ExtendLease(ctx, id, "node-a", late.Add(time.Hour)); !errors.Is(err, mailstore.ErrLeaseHeld) {
			t.Errorf("ExtendLease of a lost lease = %v, want ErrLeaseHeld", err)
		}
		// An end not in the future gives the lease back at once.
		if err := s.ExtendLease(ctx, id, "node-b", time.Now().Add(-time.Second)); err != nil {
			t.Fatalf("ExtendLease to the past: %v", err)
		}
		if c, _ := s.ClaimDue(ctx, "node-c", time.Now(), time.Now().Add(time.Minute), 10); len(c) != 1 {
			t.Errorf("given-back lease not claimable: %+v", c)
		}
		if err := s.DeleteQueueEntry(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := s.ExtendLease(ctx, id, "node-c", time.Now().Add(time.Hour)); !errors.Is(err, mailstore.ErrNoSuchMessage) {
			t.Errorf("ExtendLease of a deleted entry = %v, want ErrNoSuchMessage", err)
		}
	})

	t.Run("SharedWithSent", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		raw := simpleMsg("submitted")
		f.appendMsg(a.ID, f.mailbox(a.ID, "Sent").ID, raw)
		ids, err := s.Enqueue(ctx, raw, []mailstore.QueueEntry{{AccountID: a.ID, From: a.Name, Recipients: []string{"r@x.example"}, Domain: "x.example", NextAttempt: time.Now()}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteQueueEntry(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		future := time.Now().Add(time.Hour)
		if _, err := s.Purge(ctx, future, future); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ReadBlob(ctx, blobID(raw)); err != nil || !bytes.Equal(got, raw) {
			t.Errorf("the Sent copy's blob went with the queue entry: %v", err)
		}
	})

	t.Run("DeliverWithQueue", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		in := f.mailbox(a.ID, "INBOX")
		entry := func(rcpt string) mailstore.QueueEntry {
			return mailstore.QueueEntry{AccountID: a.ID, From: a.Name, Recipients: []string{rcpt}, Domain: "x.example", NextAttempt: time.Now()}
		}
		raw := simpleMsg("local and remote")
		if _, err := s.Deliver(ctx, mailstore.Delivery{Raw: raw, Recipients: []mailstore.DeliveryTarget{{AccountID: a.ID}}, Queue: []mailstore.QueueEntry{entry("r@x.example")}}); err != nil {
			t.Fatalf("Deliver with a queue entry: %v", err)
		}
		q, err := s.ListQueue(ctx)
		if err != nil || len(q) != 1 || q[0].BlobID != blobID(raw) || !slices.Equal(q[0].Recipients, []string{"r@x.example"}) {
			t.Fatalf("queue after Deliver = %+v, %v", q, err)
		}
		if n := len(f.uids(a.ID, in.ID)); n != 1 {
			t.Fatalf("INBOX holds %d messages, want 1", n)
		}
		// All or nothing: the local copy fails (over quota), so the queue
		// entry is not stored either.
		if err := s.SetQuota(ctx, a.Name, 1, 0); err != nil {
			t.Fatal(err)
		}
		_, err = s.Deliver(ctx, mailstore.Delivery{Raw: simpleMsg("refused"), Recipients: []mailstore.DeliveryTarget{{AccountID: a.ID}}, Queue: []mailstore.QueueEntry{entry("s@x.example")}})
		if !errors.Is(err, mailstore.ErrOverQuota) {
			t.Fatalf("Deliver over quota = %v, want ErrOverQuota", err)
		}
		if q, err := s.ListQueue(ctx); err != nil || len(q) != 1 {
			t.Fatalf("a refused delivery left queue entries: %+v, %v", q, err)
		}
		// Remote recipients only.
		if _, err := s.Deliver(ctx, mailstore.Delivery{Raw: simpleMsg("remote only"), Queue: []mailstore.QueueEntry{entry("t@x.example")}}); err != nil {
			t.Fatalf("Deliver of queue entries only: %v", err)
		}
		if q, err := s.ListQueue(ctx); err != nil || len(q) != 2 {
			t.Fatalf("queue = %+v, %v; want 2 entries", q, err)
		}
	})

	t.Run("DSNParameters", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		a := f.account("alice@example.test")
		now := time.Now().Truncate(time.Second)
		want := mailstore.QueueEntry{
			AccountID: a.ID, From: a.Name, Recipients: []string{"x@one.example", "y@one.example", "z@one.example"}, Domain: "one.example", NextAttempt: now,
			Ret: "FULL", EnvID: "QQ314159",
			RcptDSN: []mailstore.RcptDSN{
				{Notify: []string{"SUCCESS", "FAILURE"}, ORcpt: "rfc822;x+tag@one.example"},
				{Notify: []string{"NEVER"}},
				{ORcpt: "utf-8;z\u00e9@one.example"},
			},
		}
		plain := mailstore.QueueEntry{AccountID: a.ID, From: a.Name, Recipients: []string{"p@two.example"}, Domain: "two.example", NextAttempt: now}
		ids, err := s.Enqueue(ctx, simpleMsg("dsn"), []mailstore.QueueEntry{want, plain})
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		check := func(how string, e mailstore.QueueEntry) {
			t.Helper()
			if e.Ret != want.Ret || e.EnvID != want.EnvID || len(e.RcptDSN) != len(want.RcptDSN) {
				t.Fatalf("%s: Ret %q EnvID %q RcptDSN %+v; want %+v", how, e.Ret, e.EnvID, e.RcptDSN, want)
			}
			for i, d := range want.RcptDSN {
				if !slices.Equal(e.RcptDSN[i].Notify, d.Notify) || e.RcptDSN[i].ORcpt != d.ORcpt {
					t.Errorf("%s: RcptDSN[%d] = %+v, want %+v", how, i, e.RcptDSN[i], d)
				}
			}
		}
		e, err := s.GetQueueEntry(ctx, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		check("GetQueueEntry", e)
		// An entry without parameters reads back without any.
		p, err := s.GetQueueEntry(ctx, ids[1])
		if err != nil || p.Ret != "" || p.EnvID != "" || p.RcptDSN != nil {
			t.Errorf("entry without DSN parameters = %+v, %v", p, err)
		}
		list, err := s.ListQueue(ctx)
		if err != nil || len(list) != 2 {
			t.Fatalf("ListQueue = %+v, %v", list, err)
		}
		check("ListQueue", list[0])
		claimed, err := s.ClaimDue(ctx, "node", now, now.Add(time.Minute), 10)
		if err != nil || len(claimed) != 2 {
			t.Fatalf("ClaimDue = %+v, %v", claimed, err)
		}
		check("ClaimDue", claimed[0])
		// Recording an attempt keeps them.
		claimed[0].Attempts = 1
		if err := s.UpdateQueueEntry(ctx, claimed[0]); err != nil {
			t.Fatal(err)
		}
		e, _ = s.GetQueueEntry(ctx, ids[0])
		check("after UpdateQueueEntry", e)
		// A submission's entries committed with its local copies.
		sub := want
		sub.Recipients = []string{"s@three.example", "t@three.example", "u@three.example"}
		sub.Domain = "three.example"
		if _, err := s.Deliver(ctx, mailstore.Delivery{Raw: simpleMsg("submitted"), Recipients: []mailstore.DeliveryTarget{{AccountID: a.ID}}, Queue: []mailstore.QueueEntry{sub}}); err != nil {
			t.Fatalf("Deliver with a queue entry: %v", err)
		}
		list, _ = s.ListQueue(ctx)
		if len(list) != 3 {
			t.Fatalf("queue holds %d entries, want 3", len(list))
		}
		check("Deliver", list[2])
		// Parameters not aligned with the recipients are refused.
		bad := plain
		bad.RcptDSN = []mailstore.RcptDSN{{Notify: []string{"NEVER"}}, {}}
		if _, err := s.Enqueue(ctx, simpleMsg("bad"), []mailstore.QueueEntry{bad}); err == nil {
			t.Errorf("Enqueue with %d DSN parameter sets for 1 recipient succeeded", len(bad.RcptDSN))
		}
		if list, _ = s.ListQueue(ctx); len(list) != 3 {
			t.Errorf("a refused Enqueue left an entry: %d entries", len(list))
		}
	})

	t.Run("ConcurrentClaim", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		now := time.Now().Truncate(time.Second)
		const n = 60
		var entries []mailstore.QueueEntry
		for i := range n {
			entries = append(entries, mailstore.QueueEntry{From: "a@example.test", Recipients: []string{fmt.Sprintf("r%d@d%d.example", i, i)}, Domain: fmt.Sprintf("d%d.example", i), NextAttempt: now})
		}
		ids, err := s.Enqueue(ctx, simpleMsg("fanout"), entries)
		if err != nil || len(ids) != n {
			t.Fatalf("Enqueue = %d ids, %v", len(ids), err)
		}
		var mu sync.Mutex
		claimed := map[int64]string{}
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				owner := fmt.Sprintf("node-%d", w)
				for {
					got, err := s.ClaimDue(ctx, owner, now, now.Add(time.Hour), 3)
					if err != nil {
						t.Errorf("ClaimDue: %v", err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, e := range got {
						if prev, dup := claimed[e.ID]; dup {
							t.Errorf("entry %d claimed by %s and %s", e.ID, prev, owner)
						}
						claimed[e.ID] = owner
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(claimed) != n {
			t.Errorf("%d of %d entries claimed", len(claimed), n)
		}
	})
}

func testLeases(t *testing.T, b Backend) {
	t.Run("Exclusive", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		acq := func(name, owner string, until time.Time) bool {
			t.Helper()
			ok, err := s.AcquireLease(ctx, name, owner, until)
			if err != nil {
				t.Fatalf("AcquireLease(%s, %s): %v", name, owner, err)
			}
			return ok
		}
		soon := time.Now().Add(time.Minute)
		if !acq("pop:alice", "a", soon) {
			t.Fatalf("first AcquireLease refused")
		}
		if acq("pop:alice", "b", soon) {
			t.Errorf("second owner got a held lease")
		}
		if !acq("pop:alice", "a", soon.Add(time.Minute)) {
			t.Errorf("owner could not renew")
		}
		if !acq("pop:bob", "b", soon) {
			t.Errorf("another name is another lease")
		}
		// Releasing someone else's lease does nothing.
		_ = s.ReleaseLease(ctx, "pop:alice", "b")
		if acq("pop:alice", "b", soon) {
			t.Errorf("a non-owner's release freed the lease")
		}
		if err := s.ReleaseLease(ctx, "pop:alice", "a"); err != nil {
			t.Fatalf("ReleaseLease: %v", err)
		}
		if !acq("pop:alice", "b", soon) {
			t.Errorf("released lease not free")
		}
		// Expiry is by wall clock.
		if !acq("job", "a", time.Now().Add(300*time.Millisecond)) {
			t.Fatal("AcquireLease(job)")
		}
		if acq("job", "b", soon) {
			t.Errorf("unexpired lease taken")
		}
		time.Sleep(600 * time.Millisecond)
		if !acq("job", "b", soon) {
			t.Errorf("expired lease not free")
		}
		// Leases are shared state: a restart keeps them.
		f.reopen()
		s = f.S()
		if acq("job", "a", soon) {
			t.Errorf("lease lost across restart")
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, b)
		s, ctx := f.S(), f.ctx
		until := time.Now().Add(time.Minute)
		var mu sync.Mutex
		var winners []string
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				owner := fmt.Sprintf("owner-%d", i)
				ok, err := s.AcquireLease(ctx, "singleton", owner, until)
				if err != nil {
					t.Errorf("AcquireLease: %v", err)
				}
				if ok {
					mu.Lock()
					winners = append(winners, owner)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Errorf("%d owners got the lease: %v", len(winners), winners)
		}
	})
}
