package mailstore

import (
	"sync"
	"sync/atomic"
)

// Notifier carries wake-ups: "account A has changes up to modseq M". It
// never carries the changes themselves; a woken session reads the change
// feed (Store.Changes). Losing a wake-up is therefore harmless as long as
// the next one comes; coalescing many into one is the point.
//
// Backends call Notify after a commit. In one process Hub is the notifier;
// the PostgreSQL backend forwards NOTIFYs from other nodes into a Hub.
type Notifier interface {
	Notify(accountID int64, modseq ModSeq)
	Watch(accountID int64) *Watcher
}

// QueueWatchID is the reserved watch key of the outbound queue: backends
// notify it when entries are enqueued or made due (in any process or node),
// so queue workers wake without polling. No account has ID 0.
const QueueWatchID int64 = 0

// Watcher is one subscription. C receives a value (coalesced: capacity 1)
// whenever the account changed after the watcher was made.
type Watcher struct {
	C <-chan struct{}

	c         chan struct{}
	hub       *Hub
	accountID int64
	// latest is the highest modseq a wake-up named; unknown is set by a
	// wake-up that named none (NotifyAll, a notifier without modseqs).
	latest  atomic.Uint64
	unknown atomic.Bool
}

// Latest reports the highest modseq any wake-up of this watcher named so
// far, with known false when some wake-up named none. A session that has
// itself applied every change up to Latest need not read the feed: the
// wake-up was for its own write. Values are set before C is signalled.
func (w *Watcher) Latest() (m ModSeq, known bool) {
	return ModSeq(w.latest.Load()), !w.unknown.Load()
}

// saw records what a wake-up names, before it is signalled.
func (w *Watcher) saw(m ModSeq) {
	if m == 0 {
		w.unknown.Store(true)
		return
	}
	for {
		cur := w.latest.Load()
		if uint64(m) <= cur || w.latest.CompareAndSwap(cur, uint64(m)) {
			return
		}
	}
}

// Close ends the subscription. Safe to call more than once.
func (w *Watcher) Close() {
	if w == nil || w.hub == nil {
		return
	}
	w.hub.remove(w)
}

// Hub is the in-process Notifier.
type Hub struct {
	mu sync.Mutex
	// watchers is guarded by mu; per account, the set of live watchers.
	watchers map[int64]map[*Watcher]struct{}
}

// NewHub makes an empty hub.
func NewHub() *Hub {
	return &Hub{watchers: make(map[int64]map[*Watcher]struct{})}
}

// Watch subscribes to an account.
func (h *Hub) Watch(accountID int64) *Watcher {
	c := make(chan struct{}, 1)
	w := &Watcher{C: c, c: c, hub: h, accountID: accountID}
	h.mu.Lock()
	set := h.watchers[accountID]
	if set == nil {
		set = make(map[*Watcher]struct{})
		h.watchers[accountID] = set
	}
	set[w] = struct{}{}
	h.mu.Unlock()
	return w
}

func (h *Hub) remove(w *Watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if set := h.watchers[w.accountID]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(h.watchers, w.accountID)
		}
	}
}

// Notify wakes every watcher of the account without blocking; modseq 0
// means "some change, modseq unknown".
func (h *Hub) Notify(accountID int64, modseq ModSeq) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers[accountID] {
		w.saw(modseq)
		select {
		case w.c <- struct{}{}:
		default: // already pending: coalesced
		}
	}
}

// NotifyAll wakes every watcher of every account: after a lost cross-node
// notification channel, when any account may have missed a wake-up.
func (h *Hub) NotifyAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, set := range h.watchers {
		for w := range set {
			w.saw(0)
			select {
			case w.c <- struct{}{}:
			default:
			}
		}
	}
}
