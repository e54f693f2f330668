package imapserver

import (
	"context"
	"sync"

	"github.com/roost-mail/roost/internal/mailstore"
)

// feedReads lets sessions of one account that are woken together share
// their reads of the change feed: one delivery to an account with 2,000
// idling sessions is then a handful of Store.Changes calls instead of
// 2,000 identical ones.
//
// Sharing must not hide a change from anyone. A session drains its wake-up
// and then asks for Changes(since); any read that STARTS after it asked
// sees every commit whose wake-up it drained (a backend notifies after the
// commit is visible), and a commit after that read started wakes it again.
// So a caller only ever joins a read that has not started yet: when one is
// running, the caller queues for the next one, which starts as soon as the
// running one ends and serves everyone who queued meanwhile. Nothing is
// kept once a read is handed out: there is no cache to go stale.
type feedReads struct {
	mu    sync.Mutex
	reads map[feedKey]*feedSlot // guarded by mu
}

type feedKey struct {
	account int64
	since   mailstore.ModSeq
	limit   int
}

// feedSlot is the state of one key: the read in flight and the one that
// will follow it.
type feedSlot struct {
	running, next *feedRead
}

type feedRead struct {
	done chan struct{}
	// changes is shared by every session that joined: read only.
	changes []mailstore.Change
	err     error
}

// changes returns Store.Changes(account, since, limit), from a read that
// started after the call.
func (f *feedReads) changes(ctx context.Context, st mailstore.Store, account int64, since mailstore.ModSeq, limit int) ([]mailstore.Change, error) {
	key := feedKey{account, since, limit}
	f.mu.Lock()
	if f.reads == nil {
		f.reads = make(map[feedKey]*feedSlot)
	}
	slot := f.reads[key]
	if slot == nil {
		slot = &feedSlot{}
		f.reads[key] = slot
	}
	if r := slot.next; r != nil {
		// Not started yet: its result is as fresh as this caller needs.
		f.mu.Unlock()
		<-r.done
		return r.changes, r.err
	}
	r := &feedRead{done: make(chan struct{})}
	prev := slot.running
	if prev == nil {
		slot.running = r
	} else {
		slot.next = r
	}
	f.mu.Unlock()
	if prev != nil {
		// The running read may predate a commit this caller was woken
		// for: wait for it to end, then start the next one.
		<-prev.done
		f.mu.Lock()
		slot.running, slot.next = r, nil
		f.mu.Unlock()
	}
	r.changes, r.err = st.Changes(ctx, account, since, limit)
	f.mu.Lock()
	if slot.running == r {
		slot.running = nil
	}
	if slot.running == nil && slot.next == nil {
		delete(f.reads, key)
	}
	f.mu.Unlock()
	close(r.done)
	return r.changes, r.err
}
