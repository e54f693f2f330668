// Package sqlite is Roost's embedded mail store: a mailstore.Store on one
// SQLite database (modernc.org/sqlite, pure Go) in WAL mode with
// synchronous=FULL. It owns the schema and its migrations, the group-commit
// writer through which every change passes, the blob store (raw messages,
// content-addressed, in the database by default so one commit covers a
// batch of blobs and rows), full-text search (FTS5 trigram, one entry per
// blob: see blobtext.go), the change feed, retention, the outbound queue's
// records and leases.
//
// Several processes may open the same directory (the CLI while a server
// runs): SQLite's file locks serialise their writers. Wake-ups go straight
// to this process's watchers after a commit; another process's commits are
// noticed by polling PRAGMA data_version (Options.PollInterval), which
// wakes the accounts whose modseq moved and the queue (notify.go).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

var _ mailstore.Store = (*Store)(nil)

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// Notifier carries wake-ups after commits; nil: a new mailstore.Hub.
	Notifier mailstore.Notifier
	// MaxMessageSize refuses larger messages with ErrTooBig; 0: no limit.
	MaxMessageSize int64
	// MaxBatch bounds how many waiting writes share one transaction;
	// 0: 256.
	MaxBatch int
	// Readers is how many read transactions run at once, each on a
	// connection of its own (heldconn.go), and as many more connections
	// serve single queries; 0: 2*GOMAXPROCS, at least 4.
	Readers int
	// BusyTimeout is how long a connection waits for another process's
	// lock; 0: 10s.
	BusyTimeout time.Duration
	// PollInterval is how often the store looks for commits by other
	// processes on the same database, to wake this process's watchers;
	// 0: one second; negative: never.
	PollInterval time.Duration
	// DeferFlagSync commits batches of nothing but flag changes and
	// expunges of \Deleted messages without syncing the WAL; it is
	// synced by the next other commit or within checkpointEvery
	// (flagsync.go). Needs Linux's boot id.
	DeferFlagSync bool
	// Logger gets the store's warnings; nil: none.
	Logger *slog.Logger

	// bootID names the running kernel's boot (flagsync.go); nil:
	// readBootID. Tests fake a reboot with it.
	bootID func() (string, error)
	// holdIndexer starts the store with the indexer held (ftsOff), so a
	// test sees the full-text state Open found.
	holdIndexer bool
	// holdCheckpointer keeps the checkpointer from running (no
	// checkpoint, no sync of deferred commits), so a test can cut the
	// WAL where the last synced commit ended, as a power cut would.
	holdCheckpointer bool
}

// Store is the SQLite mail store. Create it with Open.
type Store struct {
	path     string  // the database file
	wdb      *sql.DB // one connection: the writer goroutine's
	rdb      *sql.DB // query_only pool
	cdb      *sql.DB // one connection: the checkpointer's
	fdb      *sql.DB // one connection to FTSFile: the indexer's
	ckptKick chan struct{}
	rstmts   *readStmts
	rconns   *readConns // read transactions' connections (heldconn.go)
	decoded  mailstore.DecodeCache
	notifier mailstore.Notifier
	blobs    blobStore
	wconn    *heldConn // wdb's connection, the writer goroutine's
	maxSize  int64
	maxBatch int
	busy     time.Duration // every connection's busy_timeout
	// walRestart is the WAL length in frames past which the checkpointer
	// rewinds the log (checkpoint.go).
	walRestart atomic.Int64
	// writeGate is held by the writer goroutine around each batch, by a
	// caller running its own unsynced flag write (runInline), and by the
	// checkpointer around a RESTART checkpoint, which can then take
	// SQLite's write lock at once instead of racing the next batch for
	// it (checkpoint.go). The writer connection and dsync are used only
	// under it.
	writeGate sync.Mutex
	// writerWaiting: the writer goroutine holds a batch and waits for
	// writeGate (runInline then leaves the gate to it).
	writerWaiting atomic.Bool

	reqs      chan *writeReq
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	notified notified
	pollWG   sync.WaitGroup

	// Counters for tests and metrics: requests waiting to be handed to
	// the writer, batches committed, writes committed.
	pending, batches, writes atomic.Int64
	// inlined counts flag writes run by their callers (runInline).
	inlined atomic.Int64

	// dsync is the writer goroutine's state for deferred flag sync
	// (flagsync.go). walUnsynced: a commit since the last WAL sync did
	// not sync (set by the writer, cleared by whoever syncs).
	// deferredCommits and walSyncs count for tests.
	dsync                     deferredSync
	walUnsynced               atomic.Bool
	deferredCommits, walSyncs atomic.Int64
	// ftsKick wakes the indexer (ftsdb.go): after a commit that added
	// text, and when another process committed.
	ftsKick chan struct{}
	// ptexts holds the text of entries waiting for the indexer
	// (pendingtext.go).
	ptexts *pendingTexts
	// ftsOff keeps text pending (tests of search over unindexed text).
	ftsOff atomic.Bool
	// ftsConverting: the index is being rebuilt in the current format
	// (ftsconvert.go). Only the indexer changes it, once, to false.
	ftsConverting atomic.Bool
}

// WriteStats reports how many transactions the writer committed and how
// many writes they carried: writes/batches is the group-commit factor.
func (s *Store) WriteStats() (batches, writes int64) {
	return s.batches.Load(), s.writes.Load()
}

// DBFile is the database's file name inside the store directory.
const DBFile = "roost.db"

// Open opens (creating if needed) the store in dir, applies any pending
// migrations, and starts the writer.
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite store: create %s: %w", dir, err)
	}
	registerFunctions()
	path := filepath.Join(dir, DBFile)
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 10 * time.Second
	}
	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	common.Add("_pragma", "foreign_keys(1)")

	wq := cloneValues(common)
	wq.Add("_pragma", "journal_mode(WAL)")
	// FULL syncs the WAL at every commit, so an acknowledged message
	// survives power loss (DESIGN section 3).
	wq.Add("_pragma", "synchronous(FULL)")
	// A bigger page cache for the writer (indexes of large mailboxes stay
	// hot); a WAL grown by a burst is cut back after checkpoints.
	wq.Add("_pragma", "cache_size(-32768)")
	wq.Add("_pragma", "journal_size_limit(67108864)")
	// Checkpoints run on their own connection (checkpoint.go), not in
	// the writer's commits.
	wq.Add("_pragma", "wal_autocheckpoint(0)")
	// Every request runs in a SAVEPOINT, so the first change of each page
	// in a request copies the page to the sub-journal. That is a temporary
	// file once it passes 64 KiB, and a batch of deliveries wrote it
	// page by page (a quarter of the writer's CPU in profiles). In memory
	// it costs the pages one request touches; durability is the WAL's and
	// does not change.
	wq.Add("_pragma", "temp_store(2)")
	// Writers take the write lock at BEGIN, so a transaction never fails
	// half-way with SQLITE_BUSY on lock upgrade.
	wq.Set("_txlock", "immediate")
	wdb, err := openOne("file:" + path + "?" + wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite store: open writer: %w", err)
	}

	ctx := context.Background()
	if err := retryBusy(busy, func() error { return migrate(ctx, wdb) }); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", dir, err)
	}
	dsync, err := startDeferredSync(ctx, wdb, busy, opts)
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", dir, err)
	}

	cq := cloneValues(common)
	cq.Add("_pragma", "synchronous(FULL)")
	cdb, err := openOne("file:" + path + "?" + cq.Encode())
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite store: open checkpointer: %w", err)
	}

	fdb, ftsCreated, ftsConverting, err := openFTS(dir, common, busy)
	if err != nil {
		wdb.Close()
		cdb.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", dir, err)
	}
	if ftsCreated {
		if err := planRebuild(ctx, wdb, fdb); err != nil {
			wdb.Close()
			cdb.Close()
			fdb.Close()
			return nil, fmt.Errorf("sqlite store %s: %w", dir, err)
		}
	}

	rq := cloneValues(common)
	rq.Add("_pragma", "query_only(1)")
	rq.Add("_pragma", "cache_size(-8192)")
	rc, err := newAttachConnector("file:"+path+"?"+rq.Encode(), filepath.Join(dir, FTSFile))
	if err != nil {
		wdb.Close()
		cdb.Close()
		fdb.Close()
		return nil, fmt.Errorf("sqlite store: open readers: %w", err)
	}
	rdb := sql.OpenDB(rc)
	n := opts.Readers
	if n <= 0 {
		n = max(4, 2*runtime.GOMAXPROCS(0))
	}
	// n for read transactions (heldconn.go), n for single queries, one
	// for the poller's pinned connection.
	rdb.SetMaxOpenConns(2*n + 1)
	rdb.SetMaxIdleConns(n + 1)
	if err := rdb.PingContext(ctx); err != nil {
		wdb.Close()
		cdb.Close()
		fdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("sqlite store: open readers: %w", err)
	}
	wconn, err := newHeldConn(ctx, wdb)
	if err != nil {
		wdb.Close()
		cdb.Close()
		fdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("sqlite store: writer connection: %w", err)
	}

	s := &Store{
		path:     path,
		dsync:    dsync,
		wdb:      wdb,
		rdb:      rdb,
		cdb:      cdb,
		fdb:      fdb,
		ckptKick: make(chan struct{}, 1),
		rstmts:   newReadStmts(rdb),
		rconns:   newReadConns(rdb, n),
		notifier: opts.Notifier,
		blobs:    dbBlobs{},
		wconn:    wconn,
		maxSize:  opts.MaxMessageSize,
		maxBatch: opts.MaxBatch,
		busy:     busy,
		reqs:     make(chan *writeReq),
		ftsKick:  make(chan struct{}, 1),
		ptexts:   newPendingTexts(),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		notified: notified{m: map[int64]mailstore.ModSeq{}},
	}
	if s.notifier == nil {
		s.notifier = mailstore.NewHub()
	}
	s.walRestart.Store(walRestartFrames)
	s.ftsOff.Store(opts.holdIndexer)
	s.ftsConverting.Store(ftsConverting)
	if s.maxBatch <= 0 {
		s.maxBatch = 256
	}
	go s.writer()
	s.pollWG.Add(2)
	go s.checkpointer(opts.holdCheckpointer)
	go s.indexer()
	// Text left pending by an earlier run or another process.
	s.kickIndexer()
	if opts.PollInterval >= 0 {
		interval := opts.PollInterval
		if interval == 0 {
			interval = time.Second
		}
		s.startPoller(interval)
	}
	return s, nil
}

// openOne opens a pool of exactly one connection, kept open: the writer's,
// the checkpointer's, the indexer's. One goroutine owns each.
func openOne(dsn string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// Close stops the writer (waiting for the batch in flight) and closes the
// database. Later calls fail with ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.done
		// A write run inline (runInline) may still hold the writer
		// connection; later ones see quit under the gate.
		s.writeGate.Lock()
		s.writeGate.Unlock()
		s.pollWG.Wait()
		s.rstmts.close()
		s.rconns.close()
		s.ptexts.close()
		// The writer has gone: its connection is Close's now.
		derr := s.closeDeferred(context.Background())
		s.closeErr = errors.Join(derr, s.wconn.close(), s.rdb.Close(), s.cdb.Close(), s.fdb.Close(), s.wdb.Close())
	})
	return s.closeErr
}

// Watch subscribes to an account's wake-ups.
func (s *Store) Watch(accountID int64) *mailstore.Watcher {
	return s.notifier.Watch(accountID)
}

// readTx runs fn in one read transaction: every query in it sees the same
// snapshot of the database (WAL readers never block the writer).
func (s *Store) readTx(ctx context.Context, fn func(tx *rtx) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	h, err := s.rconns.get(ctx)
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	rctx := readCtx(ctx)
	if err := h.begin(rctx, "BEGIN"); err != nil {
		s.rconns.put(h, false)
		return fmt.Errorf("begin read: %w", err)
	}
	// Read-only: nothing to keep. A connection that cannot end its
	// transaction is not reused.
	defer func() { s.rconns.put(h, h.rollback(rctx) == nil) }()
	return fn(&rtx{h: h})
}

// rd is the reader pool for single queries, with cached statements.
func (s *Store) rd() readDB { return readDB{db: s.rdb, stmts: s.rstmts} }

func (s *Store) checkOpen() error {
	select {
	case <-s.quit:
		return mailstore.ErrClosed
	default:
		return nil
	}
}

// nanos and fromNanos convert times to the stored form (Unix ns, UTC).
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
