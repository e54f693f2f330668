package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// readStmts keeps the reader pool's prepared statements. Parsing SQL is
// not cheap in a pure-Go SQLite (15-23% of the server's CPU under a mixed
// IMAP workload before this cache); a *sql.Stmt is prepared once per
// pooled connection and reused there by every later call.
//
// A statement is prepared in the background after its first miss, never
// by the caller: a caller inside readTx holds one pooled connection, and
// preparing on the pool needs another, which could wait forever with
// every connection held by callers doing the same.
type readStmts struct {
	db *sql.DB

	mu     sync.Mutex
	stmts  map[string]*sql.Stmt // guarded by mu; never shrinks
	wanted map[string]bool      // guarded by mu; being prepared
	closed bool                 // guarded by mu
	wg     sync.WaitGroup       // background prepares, waited for by close
}

func newReadStmts(db *sql.DB) *readStmts {
	return &readStmts{db: db, stmts: map[string]*sql.Stmt{}, wanted: map[string]bool{}}
}

// get returns the prepared statement for query, or nil (run it unprepared)
// while it is being prepared or once the cache is full: queries built
// from client input (UID sets, search programs) have many shapes, and the
// bound keeps those from growing the cache without end.
func (c *readStmts) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.stmts[query]; st != nil || c.closed {
		return st
	}
	if c.wanted[query] || len(c.stmts)+len(c.wanted) >= maxStmts {
		return nil
	}
	c.wanted[query] = true
	c.wg.Add(1)
	go c.prepare(query)
	return nil
}

func (c *readStmts) prepare(query string) {
	defer c.wg.Done()
	st, err := c.db.PrepareContext(context.Background(), query)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.wanted, query)
	if err != nil {
		// A query that does not prepare fails for its caller too, with
		// that caller's context; nothing to keep here.
		return
	}
	if c.closed {
		st.Close()
		return
	}
	c.stmts[query] = st
}

// close closes every statement; called before the pool closes.
func (c *readStmts) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.stmts {
		st.Close()
	}
	c.stmts = map[string]*sql.Stmt{}
}

// readDB runs single queries on the reader pool with cached statements.
type readDB struct {
	db    *sql.DB
	stmts *readStmts
}

func (r readDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = readCtx(ctx)
	if st := r.stmts.get(query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return r.db.QueryContext(ctx, query, args...)
}

func (r readDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ctx = readCtx(ctx)
	if st := r.stmts.get(query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return r.db.QueryRowContext(ctx, query, args...)
}

// ExecContext is here for execer (blob reads); readers never write.
func (r readDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx = readCtx(ctx)
	return r.db.ExecContext(ctx, query, args...)
}

// rtx is a read transaction: its queries run on its held connection
// (heldconn.go), with the statements prepared there.
type rtx struct {
	h *heldConn
}

func (r *rtx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return r.h.QueryContext(readCtx(ctx), query, args...)
}

func (r *rtx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return r.h.QueryRowContext(readCtx(ctx), query, args...)
}

// ExecContext is here for execer (blob reads); readers never write.
func (r *rtx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return r.h.ExecContext(readCtx(ctx), query, args...)
}

// readCtx detaches a read from its context's cancellation. With a
// context that can end, the driver starts a goroutine per statement to
// interrupt it (and database/sql one per transaction); without them 1
// IMAP client ran 1,660-1,720 instead of 1,380-1,590 commands/s. Reads are
// short, so one whose caller has gone runs to its end; a read whose
// context has already ended keeps it, and database/sql fails it at once.
func readCtx(ctx context.Context) context.Context {
	if ctx.Done() == nil || ctx.Err() != nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}
