package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// rcptResult is the outcome of one attempt for one recipient.
type rcptResult struct {
	rcpt      string
	ok        bool              // accepted by the next hop
	perm      bool              // permanent failure: bounce now
	status    string            // RFC 3463 enhanced status, e.g. "5.1.1"
	diag      string            // what the remote said ("550 5.1.1 ...") or why we failed
	smtpDiag  bool              // diag is an SMTP reply (Diagnostic-Code type smtp)
	remoteMTA string            // the host that answered, "" if none did
	dsn       mailstore.RcptDSN // the recipient's NOTIFY and ORCPT
	// dsnRelayed: the next hop advertised DSN and was given NOTIFY and
	// ORCPT, so reporting success is its job now (RFC 3461 section
	// 5.2.2).
	dsnRelayed bool
}

// Run delivers due entries until ctx ends, then waits for the deliveries
// in progress. It sleeps on one timer set for the next due entry (bounded
// by Config.MaxIdle) and wakes early on Enqueue, Retry and finished
// deliveries of this Queue, and on the store's queue wake-ups
// (mailstore.QueueWatchID): mail queued or retried by another process or
// node.
func (q *Queue) Run(ctx context.Context) error {
	sem := make(chan struct{}, q.cfg.Workers)
	var wg sync.WaitGroup
	// Deferred first, so it runs after the deliveries have finished.
	defer q.conns.closeAll()
	defer wg.Wait()
	// Subscribed before the first claim, so nothing committed after that
	// claim's snapshot goes unnoticed.
	watch := q.store.Watch(mailstore.QueueWatchID)
	defer watch.Close()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		filled := false
		for {
			free := cap(sem) - len(sem)
			if free == 0 {
				filled = true
				break
			}
			now := q.now()
			entries, err := q.store.ClaimDue(ctx, q.cfg.NodeID, now, now.Add(q.cfg.Lease), free)
			if err != nil {
				if ctx.Err() == nil {
					q.log.Error("claiming due entries", "err", err)
				}
				break
			}
			for _, e := range entries {
				if !q.takeOff(e.ID) {
					// Still being attempted here: its lease ran out
					// (a renewal failed). A second attempt would send
					// the message twice.
					continue
				}
				sem <- struct{}{}
				wg.Add(1)
				go func(e mailstore.QueueEntry) {
					defer wg.Done()
					q.attempt(ctx, e)
					q.land(e.ID)
					<-sem
					q.Wake()
				}(e)
			}
			if len(entries) < free {
				break
			}
		}
		wait := q.cfg.MaxIdle
		if !filled {
			wait = q.untilNextDue(ctx, wait)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-q.wake:
		case <-watch.C:
		case <-timer.C:
		}
	}
}

// takeOff marks entry id in flight; false if it already is, and then
// notes that it was claimed again.
func (q *Queue) takeOff(id int64) bool {
	q.flightMu.Lock()
	defer q.flightMu.Unlock()
	if _, ok := q.flight[id]; ok {
		q.flight[id] = true
		return false
	}
	q.flight[id] = false
	return true
}

// land ends entry id's flight. If Run claimed it again meanwhile, that
// claim may have come after the attempt was recorded (the entry due again,
// say by `roost queue retry`), and nothing would attempt it until the
// claim's lease ran out; so the lease, if still ours, is given back now.
func (q *Queue) land(id int64) {
	q.flightMu.Lock()
	reclaimed := q.flight[id]
	delete(q.flight, id)
	q.flightMu.Unlock()
	if !reclaimed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := q.store.ExtendLease(ctx, id, q.cfg.NodeID, q.now())
	if err != nil && !errors.Is(err, mailstore.ErrLeaseHeld) && !errors.Is(err, mailstore.ErrNoSuchMessage) && !errors.Is(err, mailstore.ErrClosed) {
		q.log.Error("giving back a lease", "entry", id, "err", err)
	}
}

// errLeaseLost ends an attempt whose entry is no longer ours.
var errLeaseLost = errors.New("queue entry lease lost")

// keepLease renews e's lease every Lease/3 until the returned stop is
// called, so that no node (this one included) claims the entry while the
// attempt runs, however long it takes; the lease then only runs out when
// this node stops renewing, that is when it died. If the entry stops
// being ours (dropped, or claimed elsewhere after renewals failed for a
// whole lease), lost is called with errLeaseLost.
func (q *Queue) keepLease(ctx context.Context, e mailstore.QueueEntry, lost context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(q.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := q.store.ExtendLease(ctx, e.ID, q.cfg.NodeID, q.now().Add(q.cfg.Lease))
			switch {
			case err == nil:
			case errors.Is(err, mailstore.ErrLeaseHeld), errors.Is(err, mailstore.ErrNoSuchMessage):
				lost(fmt.Errorf("entry %d: %w: %w", e.ID, errLeaseLost, err))
				return
			case ctx.Err() == nil:
				// Tried again at the next tick; the lease has two more.
				q.log.Warn("renewing queue entry lease", "entry", e.ID, "err", err)
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// untilNextDue is the wait until the earliest entry is due (an entry
// leased by another node is due when its lease runs out).
func (q *Queue) untilNextDue(ctx context.Context, max time.Duration) time.Duration {
	es, err := q.store.ListQueue(ctx)
	if err != nil {
		return max
	}
	now := q.now()
	wait := max
	for _, e := range es {
		due := e.NextAttempt
		if e.LeaseOwner != "" && e.LeaseUntil.After(due) {
			due = e.LeaseUntil
		}
		if d := due.Sub(now); d < wait {
			wait = d
		}
	}
	if wait < 0 {
		wait = 0
	}
	return wait
}

// backoff is the delay before attempt n+1: RetryBase doubled per attempt,
// capped at RetryMax (RFC 5321 section 4.5.4.1 asks for at least 30
// minutes between retries to one destination in general; the base is
// configurable for tests and smaller deployments).
func (q *Queue) backoff(attempts int) time.Duration {
	d := q.cfg.RetryBase
	for i := 1; i < attempts && d < q.cfg.RetryMax; i++ {
		d *= 2
	}
	if d > q.cfg.RetryMax {
		d = q.cfg.RetryMax
	}
	return d
}

// attempt makes one delivery attempt of a claimed entry and records the
// outcome: delivered recipients leave the entry, permanent failures and
// expired ones bounce (or, if the bounce cannot be stored, stay for the
// next attempt), the rest wait for the next attempt.
func (q *Queue) attempt(ctx context.Context, e mailstore.QueueEntry) {
	log := q.log.With("entry", e.ID, "domain", e.Domain)
	// actx ends on shutdown (ctx) or when the lease is lost.
	actx, lost := context.WithCancelCause(ctx)
	defer lost(nil)
	stopLease := q.keepLease(actx, e, lost)
	raw, err := q.store.ReadBlob(actx, e.BlobID)
	var results []rcptResult
	if err == nil {
		release := q.acquireDest(actx, e.Domain)
		if release != nil {
			results = q.send(actx, e, raw)
			release()
		}
	}
	stopLease()
	if cause := context.Cause(actx); errors.Is(cause, errLeaseLost) {
		// Another node has the entry (or it was dropped): recording this
		// attempt would overwrite its state; whatever was delivered
		// stays delivered.
		log.Warn("attempt abandoned", "err", cause)
		return
	}
	if ctx.Err() != nil {
		// Shutting down: this attempt does not count.
		q.release(e)
		return
	}
	if err != nil {
		log.Error("reading queued message", "err", err)
		results = allResults(e.Recipients, false, "4.3.0", "local problem reading the queued message", "", false)
	}
	for i := range results {
		results[i].dsn = rcptDSN(e, i)
	}
	now := q.now()
	expired := now.Sub(e.Created) >= q.cfg.MaxAge
	var failed, waiting, relayed []rcptResult
	var delivered int
	for _, r := range results {
		switch {
		case r.ok:
			delivered++
			if !r.dsnRelayed {
				// RFC 3461 section 5.2.3: relayed to a hop without DSN
				// support: "relayed" report if NOTIFY has SUCCESS.
				relayed = append(relayed, r)
			}
		case r.perm:
			failed = append(failed, r)
		case expired:
			// RFC 3463 X.4.7: delivery time expired.
			r.perm, r.status = true, "5.4.7"
			r.diag = "delivery time expired; last error: " + r.diag
			// RFC 3464 section 2.3.6: an "smtp" Diagnostic-Code is a
			// reply from the remote; this is our own verdict quoting
			// one, so it takes Roost's own diagnostic type.
			r.smtpDiag = false
			failed = append(failed, r)
		default:
			waiting = append(waiting, r)
		}
	}
	b := q.bouncer()
	// unreported: failed recipients whose bounce could not be stored.
	var unreported []rcptResult
	var bounceErr error
	if len(failed) > 0 {
		log.Info("delivery failed permanently", "rcpts", len(failed), "err", failed[0].diag)
		if err := b.bounce(context.WithoutCancel(ctx), e, failed, "failed", now); err != nil {
			// RFC 5321 section 6.1: a message we accepted is
			// delivered or its failure reported, never lost. The
			// report could not be stored (sender over quota, store
			// error), so its recipients stay queued with the backoff
			// and the next attempt retries them, then the bounce.
			// Keeping the recipients rather than the report needs no
			// new store state, and it cannot report twice: a DSN is
			// one message, stored whole or not at all.
			log.Error("bouncing failed; keeping the recipients queued", "rcpts", len(failed), "err", err)
			unreported = failed
			bounceErr = fmt.Errorf("failure report to %s not stored: %w", e.From, err)
		}
	}
	if delivered > 0 {
		log.Info("delivered", "rcpts", delivered)
		if err := b.bounce(context.WithoutCancel(ctx), e, relayed, "relayed", now); err != nil {
			log.Error("sending success DSN", "err", err)
		}
	}
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if len(waiting) == 0 && len(unreported) == 0 {
		if err := q.store.DeleteQueueEntry(bg, e.ID); err != nil {
			log.Error("removing finished entry", "err", err)
		}
		return
	}
	e.Attempts++
	e.NextAttempt = now.Add(q.backoff(e.Attempts))
	if bounceErr != nil {
		// What `roost queue list` shows: why the entry is still here.
		e.LastError = bounceErr.Error() + "; delivery: " + unreported[0].diag
	} else {
		e.LastError = waiting[0].diag
	}
	if q.cfg.WarnAfter > 0 && !e.Warned && len(waiting) > 0 && now.Sub(e.Created) >= q.cfg.WarnAfter {
		// RFC 3464 section 2.3.3: Action: delayed, sent once.
		// RFC 3461 section 4.1: only to recipients whose NOTIFY has
		// DELAY (or is absent); bounce leaves the others out. The
		// unreported ones failed: "delayed" would misstate them.
		if err := b.bounce(bg, e, waiting, "delayed", now); err != nil {
			log.Error("sending delay warning", "err", err)
		}
		e.Warned = true
	}
	keep := append(append([]rcptResult(nil), waiting...), unreported...)
	log.Info("delivery deferred", "rcpts", len(keep), "attempts", e.Attempts, "next", e.NextAttempt, "err", e.LastError)
	if len(keep) < len(e.Recipients) {
		if err := q.requeue(bg, e, raw, keep); err != nil {
			log.Error("requeueing remaining recipients", "err", err)
		}
		return
	}
	if err := q.store.UpdateQueueEntry(bg, e); err != nil {
		log.Error("recording attempt", "err", err)
	}
}

// requeue replaces an entry by one for the recipients still waiting.
// mailstore.Store.UpdateQueueEntry does not record Recipients, so the
// entry is re-enqueued (the blob is content-addressed: no second copy)
// and the old one removed. A crash between the two re-sends to the waiting
// recipients, never loses one.
func (q *Queue) requeue(ctx context.Context, e mailstore.QueueEntry, raw []byte, waiting []rcptResult) error {
	ne := e
	ne.ID = 0
	ne.LeaseOwner, ne.LeaseUntil = "", time.Time{}
	ne.Recipients, ne.RcptDSN = nil, nil
	for _, r := range waiting {
		ne.Recipients = append(ne.Recipients, r.rcpt)
		if e.RcptDSN != nil {
			// The DSN parameters follow their recipient.
			ne.RcptDSN = append(ne.RcptDSN, r.dsn)
		}
	}
	if _, err := q.store.Enqueue(ctx, raw, []mailstore.QueueEntry{ne}); err != nil {
		return fmt.Errorf("enqueue remaining: %w", err)
	}
	if err := q.store.DeleteQueueEntry(ctx, e.ID); err != nil {
		return fmt.Errorf("remove old entry: %w", err)
	}
	return nil
}

// release gives an entry back without counting an attempt.
func (q *Queue) release(e mailstore.QueueEntry) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.store.UpdateQueueEntry(ctx, e); err != nil && !errors.Is(err, mailstore.ErrClosed) {
		q.log.Error("releasing entry", "entry", e.ID, "err", err)
	}
}

// acquireDest takes one of the domain's MaxConnsPerDest slots; nil when
// ctx ended first.
func (q *Queue) acquireDest(ctx context.Context, domain string) func() {
	q.destMu.Lock()
	ch := q.dest[domain]
	if ch == nil {
		ch = make(chan struct{}, q.cfg.MaxConnsPerDest)
		q.dest[domain] = ch
	}
	q.destMu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }
	case <-ctx.Done():
		return nil
	}
}

func allResults(rcpts []string, perm bool, status, diag, mta string, smtpDiag bool) []rcptResult {
	out := make([]rcptResult, len(rcpts))
	for i, r := range rcpts {
		out[i] = rcptResult{rcpt: r, perm: perm, status: status, diag: diag, remoteMTA: mta, smtpDiag: smtpDiag}
	}
	return out
}
