// Package postgres is Roost's scale-out mail store: mailstore.Store on
// PostgreSQL (jackc/pgx, pgxpool), for several nodes sharing one database.
//
// It owns the PostgreSQL schema and its migrations, UID and modseq
// allocation under concurrent writers on different nodes (row locks on the
// account and mailbox rows), message blobs (bytea, content-addressed,
// reference-counted, behind BlobStore), substring SEARCH over pg_trgm
// indexes, the outbound queue's claims (FOR UPDATE SKIP LOCKED), leases,
// and cross-node wake-ups over LISTEN/NOTIFY forwarded into an in-process
// mailstore.Hub.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/roost-mail/roost/internal/mailstore"
)

// Options tunes a Store. The zero value is usable.
type Options struct {
	// Notifier is the in-process hub that local sessions watch; nil makes
	// a new mailstore.Hub. Wake-ups from other nodes are forwarded into it.
	Notifier mailstore.Notifier
	// Blobs keeps message bytes; nil keeps them in PostgreSQL (blob_data).
	Blobs BlobStore
	// MaxConns caps the pool (0: pgxpool's default, max(4, NumCPU)). The
	// DSN's pool_max_conns wins when set there.
	MaxConns int32
	// MaxDeliveryBatch caps how many concurrent deliveries share one
	// transaction (group commit, see deliver.go); 0 means 64, 1 turns
	// batching off (each delivery commits on its own connection).
	MaxDeliveryBatch int
	// Logger receives operational events (listener reconnects); nil
	// discards them.
	Logger *slog.Logger
}

// Store is mailstore.Store on PostgreSQL. Several Stores (nodes) may share
// one database.
type Store struct {
	pool  *pgxpool.Pool
	blobs BlobStore
	hub   mailstore.Notifier
	log   *slog.Logger
	lis   *listener
	send  *sender
	batch batcher
	// decoded caches ENVELOPE and BODYSTRUCTURE values by their stored JSON.
	decoded mailstore.DecodeCache
	// maxBatch is Options.MaxDeliveryBatch resolved.
	maxBatch int

	closed    atomic.Bool
	closeOnce sync.Once
}

var _ mailstore.Store = (*Store)(nil)

// Open connects to the database at dsn, applies missing migrations (one
// transaction, serialised across nodes) and starts the node's listener for
// other nodes' wake-ups.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	if opts.MaxConns > 0 && !dsnSetsMaxConns(dsn) {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	err = migrate(ctx, conn.Conn(), 0)
	conn.Release()
	if err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, blobs: opts.Blobs, hub: opts.Notifier, log: opts.Logger}
	if s.blobs == nil {
		s.blobs = pgBlobs{}
	}
	if s.hub == nil {
		s.hub = mailstore.NewHub()
	}
	s.maxBatch = opts.MaxDeliveryBatch
	if s.maxBatch <= 0 {
		s.maxBatch = defaultMaxBatch
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.send = newSender(pool, s.log)
	s.lis = newListener(cfg.ConnConfig.Copy(), s.hub, s.log)
	if err := s.lis.start(ctx); err != nil {
		s.send.stop()
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the listener and closes the pool; later calls fail with
// mailstore.ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.lis.stop()
		s.send.stop()
		s.pool.Close()
	})
	return nil
}

// Watch subscribes to wake-ups for an account, from this node and others.
func (s *Store) Watch(accountID int64) *mailstore.Watcher {
	s.lis.watch(accountID)
	return s.hub.Watch(accountID)
}

// querier is what both the pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Store) db() (querier, error) {
	if s.closed.Load() {
		return nil, mailstore.ErrClosed
	}
	return s.pool, nil
}

// pgCode returns the SQLSTATE of a PostgreSQL error, "" otherwise.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

func dsnSetsMaxConns(dsn string) bool {
	return strings.Contains(strings.ToLower(dsn), "pool_max_conns")
}

var errorsIs = errors.Is
