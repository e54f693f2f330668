// Package queue is Roost's outbound mail queue: submitted mail for remote
// domains waits here, one durable entry per recipient domain in the store,
// until a worker delivers it by SMTP. It owns routing (transport map,
// smarthost, MX lookup with the implicit-MX and null-MX rules), the SMTP
// client side with opportunistic STARTTLS, retries with exponential
// backoff, delay warnings and DSN bounces (RFC 3464) into the sender's
// INBOX. It honours the DSN extension's parameters (RFC 3461: NOTIFY,
// ORCPT, RET, ENVID): it reports only what each recipient asked for,
// passes them on to a next hop that supports DSN, and sends the
// "relayed" and "delivered" success reports.
//
// Several nodes may run workers on one store: every entry is claimed with
// an expiring lease (Store.ClaimDue), so exactly one node works on it, and
// a dead node's entries come up again when their lease runs out.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/roost-mail/roost/internal/delivery"
	"github.com/roost-mail/roost/internal/mailstore"
)

// Config tunes the queue. Zero values take the defaults noted.
type Config struct {
	Hostname  string // EHLO name and DSN Reporting-MTA; default "localhost"
	Smarthost string // "host:port": every message goes through this relay
	// Resolver is "host:port" of the DNS server for MX/A lookups; "" uses
	// the system's.
	Resolver string
	Port     int // port of a recipient's MX; default 25
	// Transport maps a recipient domain (lower case) to "host:port" (or
	// "host", with Port), like Postfix's transport map; it wins over the
	// smarthost and DNS.
	Transport map[string]string
	// RetryBase is the first retry delay, doubled per attempt up to
	// RetryMax; defaults 5 minutes and 4 hours.
	RetryBase, RetryMax time.Duration
	// MaxAge: after this long in the queue an entry bounces; default 5
	// days (RFC 5321 section 4.5.4.1: give up after at least 4-5 days).
	MaxAge time.Duration
	// WarnAfter: a delayed-delivery DSN goes to the sender once an entry
	// has waited this long; default 4 hours; < 0 disables.
	WarnAfter time.Duration
	// Workers is the number of concurrent deliveries; default 16.
	Workers int
	// MaxConnsPerDest caps concurrent deliveries to one domain; default 4.
	MaxConnsPerDest int
	// NodeID names this node's leases; default hostname+pid.
	NodeID string
	// Lease is how long a claimed entry stays ours without renewal;
	// default 30 minutes. An attempt can run longer (each MX host, each
	// command's timeout, the cleartext retry after a failed STARTTLS, the
	// wait for a slot to the domain), so a running attempt renews it every
	// Lease/3 (run.go): Lease only bounds how long a node that died keeps
	// its entries from the others.
	Lease time.Duration
	// DialTimeout and CommandTimeout bound connecting and each command;
	// defaults 30 seconds and 5 minutes (RFC 5321 section 4.5.3.2).
	DialTimeout, CommandTimeout time.Duration
	// DataTimeout bounds the wait for the reply to the final dot; default
	// 10 minutes (RFC 5321 section 4.5.3.2.6).
	DataTimeout time.Duration
	// MaxIdle caps how long the worker sleeps without a wake-up, so it
	// notices leases that ran out and entries whose wake-up was lost (the
	// store wakes workers of every process and node on enqueue and
	// retry); default one minute.
	MaxIdle time.Duration
	// ConnIdle is how long a connection to a hop stays open after a
	// delivery for the next one to reuse (connpool.go); default 10
	// seconds.
	ConnIdle time.Duration
}

func (c Config) withDefaults() Config {
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.Port == 0 {
		c.Port = 25
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 5 * time.Minute
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 4 * time.Hour
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 5 * 24 * time.Hour
	}
	if c.WarnAfter == 0 {
		c.WarnAfter = 4 * time.Hour
	}
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.MaxConnsPerDest <= 0 {
		c.MaxConnsPerDest = 4
	}
	if c.ConnIdle <= 0 {
		c.ConnIdle = 10 * time.Second
	}
	if c.NodeID == "" {
		h, _ := os.Hostname()
		c.NodeID = fmt.Sprintf("%s-%d-%s", h, os.Getpid(), delivery.NewID()[:6])
	}
	if c.Lease <= 0 {
		c.Lease = 30 * time.Minute
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 30 * time.Second
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 5 * time.Minute
	}
	if c.DataTimeout <= 0 {
		c.DataTimeout = 10 * time.Minute
	}
	if c.MaxIdle <= 0 {
		c.MaxIdle = time.Minute
	}
	lower := make(map[string]string, len(c.Transport))
	for k, v := range c.Transport {
		lower[strings.ToLower(strings.TrimSuffix(k, "."))] = v
	}
	c.Transport = lower
	return c
}

// Queue is the outbound queue of one node.
type Queue struct {
	store   mailstore.Store
	cfg     Config
	log     *slog.Logger
	deliver *delivery.Deliverer
	wake    chan struct{} // capacity 1: coalesced wake-ups of Run
	now     func() time.Time

	destMu sync.Mutex
	dest   map[string]chan struct{} // guarded by destMu: per-domain slots

	conns *connPool // idle connections to hops, for reuse

	flightMu sync.Mutex
	// flight holds the entries this Queue is attempting (guarded by
	// flightMu); true once the entry was claimed again meanwhile.
	flight map[int64]bool
}

// New makes a queue over store. Call Run to deliver.
func New(store mailstore.Store, cfg Config, log *slog.Logger) *Queue {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "queue", "node", cfg.NodeID)
	return &Queue{
		store:   store,
		cfg:     cfg,
		log:     log,
		deliver: delivery.New(store, cfg.Hostname, log),
		wake:    make(chan struct{}, 1),
		now:     time.Now,
		dest:    make(map[string]chan struct{}),
		conns:   newConnPool(cfg.MaxConnsPerDest, cfg.ConnIdle),
		flight:  make(map[int64]bool),
	}
}

// Wake makes Run look for due entries now.
func (q *Queue) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Envelope is a message's SMTP envelope with its delivery status
// notification parameters (RFC 3461), as the SMTP server received them.
type Envelope struct {
	From       string   // reverse-path; "" is the null sender
	Recipients []string // forward-paths
	// RcptDSN is NOTIFY and ORCPT per recipient, aligned with Recipients;
	// nil when none was given.
	RcptDSN []mailstore.RcptDSN
	Ret     string // RET: "FULL", "HDRS" or ""
	EnvID   string // ENVID, xtext-decoded; "" if none
}

// Enqueue stores raw for the remote recipients, one entry per recipient
// domain, durably, and wakes the worker. accountID is the submitting
// account (0 for mail not submitted by a user).
func (q *Queue) Enqueue(ctx context.Context, from string, rcpts []string, raw []byte, accountID int64) error {
	return q.EnqueueEnvelope(ctx, Envelope{From: from, Recipients: rcpts}, raw, accountID)
}

// EnqueueEnvelope is Enqueue with the envelope's DSN parameters.
func (q *Queue) EnqueueEnvelope(ctx context.Context, env Envelope, raw []byte, accountID int64) error {
	if _, err := enqueueEnvelope(ctx, q.store, env, raw, accountID, q.now()); err != nil {
		return err
	}
	q.Wake()
	return nil
}

func enqueue(ctx context.Context, store mailstore.Store, from string, rcpts []string, raw []byte, accountID int64, now time.Time) ([]int64, error) {
	return enqueueEnvelope(ctx, store, Envelope{From: from, Recipients: rcpts}, raw, accountID, now)
}

func enqueueEnvelope(ctx context.Context, store mailstore.Store, env Envelope, raw []byte, accountID int64, now time.Time) ([]int64, error) {
	entries, err := EnvelopeEntries(env, int64(len(raw)), accountID, now)
	if err != nil {
		return nil, err
	}
	ids, err := store.Enqueue(ctx, raw, entries)
	if err != nil {
		return nil, fmt.Errorf("queue: enqueue for %d domain(s): %w", len(entries), err)
	}
	return ids, nil
}

// Entries makes the queue entries of a message of size bytes for the
// remote recipients rcpts: one per recipient domain, each recipient once.
// Enqueue stores them; a submission hands them to Store.Deliver with its
// local copies instead, so both commit together.
func Entries(from string, rcpts []string, size, accountID int64, now time.Time) ([]mailstore.QueueEntry, error) {
	return EnvelopeEntries(Envelope{From: from, Recipients: rcpts}, size, accountID, now)
}

// EnvelopeEntries is Entries carrying the envelope's DSN parameters into
// the entries: RET and ENVID into each, NOTIFY and ORCPT with their
// recipient.
func EnvelopeEntries(env Envelope, size, accountID int64, now time.Time) ([]mailstore.QueueEntry, error) {
	rcpts := env.Recipients
	if len(rcpts) == 0 {
		return nil, errors.New("queue: no recipients")
	}
	if env.RcptDSN != nil && len(env.RcptDSN) != len(rcpts) {
		return nil, fmt.Errorf("queue: %d recipients but %d DSN parameter sets", len(rcpts), len(env.RcptDSN))
	}
	type domainRcpts struct {
		rcpts []string
		dsn   []mailstore.RcptDSN
	}
	byDomain := make(map[string]*domainRcpts)
	var order []string
	seen := make(map[string]bool, len(rcpts))
	for i, r := range rcpts {
		k := strings.ToLower(r)
		if seen[k] {
			continue // a recipient named twice gets one copy
		}
		seen[k] = true
		d := delivery.Domain(r)
		if d == "" {
			return nil, fmt.Errorf("queue: recipient %q has no domain: %w", r, mailstore.ErrInvalidName)
		}
		dr := byDomain[d]
		if dr == nil {
			dr = &domainRcpts{}
			byDomain[d] = dr
			order = append(order, d)
		}
		dr.rcpts = append(dr.rcpts, r)
		if env.RcptDSN != nil {
			dr.dsn = append(dr.dsn, env.RcptDSN[i])
		}
	}
	entries := make([]mailstore.QueueEntry, 0, len(order))
	for _, d := range order {
		entries = append(entries, mailstore.QueueEntry{
			AccountID:   accountID,
			From:        env.From,
			Recipients:  byDomain[d].rcpts,
			Domain:      d,
			Size:        size,
			Created:     now,
			NextAttempt: now,
			Ret:         env.Ret,
			EnvID:       env.EnvID,
			RcptDSN:     byDomain[d].dsn,
		})
	}
	return entries, nil
}

// Entries is the package function Entries with the queue's clock.
func (q *Queue) Entries(from string, rcpts []string, size, accountID int64) ([]mailstore.QueueEntry, error) {
	return Entries(from, rcpts, size, accountID, q.now())
}

// EnvelopeEntries is the package function EnvelopeEntries with the
// queue's clock.
func (q *Queue) EnvelopeEntries(env Envelope, size, accountID int64) ([]mailstore.QueueEntry, error) {
	return EnvelopeEntries(env, size, accountID, q.now())
}

// List returns the queue's entries (for `roost queue list`).
func (q *Queue) List(ctx context.Context) ([]mailstore.QueueEntry, error) {
	return List(ctx, q.store)
}

// Retry makes entries due now (all when ids is empty) and wakes the worker.
func (q *Queue) Retry(ctx context.Context, ids []int64) (int, error) {
	n, err := Retry(ctx, q.store, ids)
	q.Wake()
	return n, err
}

// Drop removes entries, bouncing each to its sender.
func (q *Queue) Drop(ctx context.Context, ids []int64) (int, error) {
	return Drop(ctx, q.store, q.cfg.Hostname, ids, q.log)
}

// List returns every queue entry; usable with just a store (the CLI).
func List(ctx context.Context, store mailstore.Store) ([]mailstore.QueueEntry, error) {
	es, err := store.ListQueue(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue: list: %w", err)
	}
	return es, nil
}

// ErrNoSuchEntry is returned by Retry and Drop for IDs not in the queue.
var ErrNoSuchEntry = errors.New("no such queue entry")

// lookup reads the entries ids, refusing all of them if one is missing: an
// operator's mistyped ID must not leave a command half done.
func lookup(ctx context.Context, store mailstore.Store, ids []int64) ([]mailstore.QueueEntry, error) {
	var es []mailstore.QueueEntry
	var missing []string
	for _, id := range ids {
		e, err := store.GetQueueEntry(ctx, id)
		if errors.Is(err, mailstore.ErrNoSuchMessage) {
			missing = append(missing, strconv.FormatInt(id, 10))
			continue
		}
		if err != nil {
			return nil, err
		}
		es = append(es, e)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: %w", strings.Join(missing, ", "), ErrNoSuchEntry)
	}
	return es, nil
}

// Retry makes the given entries (all when ids is empty) due now; usable
// with just a store (the CLI). The store wakes the running workers, in
// this process and in others (mailstore.QueueWatchID). ErrNoSuchEntry,
// and nothing retried, if an ID is not in the queue.
func Retry(ctx context.Context, store mailstore.Store, ids []int64) (int, error) {
	ids = mailstore.DistinctIDs(ids)
	if _, err := lookup(ctx, store, ids); err != nil {
		return 0, fmt.Errorf("queue: retry %w", err)
	}
	n, err := store.RetryQueue(ctx, ids, time.Now())
	if err != nil {
		return 0, fmt.Errorf("queue: retry: %w", err)
	}
	return n, nil
}

// Drop removes the entries ids, each after bouncing it to its sender
// ("dropped by the administrator"); usable with just a store. An entry a
// worker is delivering right now may still go out. ErrNoSuchEntry, and
// nothing dropped, if an ID is not in the queue; on a later error n says
// how many were dropped.
func Drop(ctx context.Context, store mailstore.Store, hostname string, ids []int64, log *slog.Logger) (int, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// A repeated ID would otherwise be bounced twice.
	es, err := lookup(ctx, store, mailstore.DistinctIDs(ids))
	if err != nil {
		return 0, fmt.Errorf("queue: drop %w", err)
	}
	b := &bouncer{store: store, deliver: delivery.New(store, hostname, log), hostname: hostname, log: log}
	n := 0
	for _, e := range es {
		id := e.ID
		// Read again just before the bounce: a worker may have delivered
		// the entry while earlier ones were being bounced.
		e, err := store.GetQueueEntry(ctx, id)
		if err != nil {
			return n, fmt.Errorf("queue: drop %d: %w", id, err)
		}
		var failed []rcptResult
		for i, r := range e.Recipients {
			failed = append(failed, rcptResult{rcpt: r, perm: true, status: "5.3.0", diag: "dropped from the queue by the administrator", dsn: rcptDSN(e, i)})
		}
		if err := b.bounce(ctx, e, failed, "failed", time.Now()); err != nil {
			return n, fmt.Errorf("queue: drop %d: %w", id, err)
		}
		if err := store.DeleteQueueEntry(ctx, id); err != nil {
			return n, fmt.Errorf("queue: drop %d: %w", id, err)
		}
		n++
	}
	return n, nil
}
