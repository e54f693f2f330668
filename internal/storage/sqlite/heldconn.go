package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"

	"github.com/roost-mail/roost/internal/mailstore"
)

// Transactions run on connections held out of database/sql's pool, as
// plain BEGIN and COMMIT statements, not as *sql.Tx. database/sql starts
// a goroutine for every Tx and one more for every query made inside one
// (to watch for cancellation, even of a context that cannot end), and
// wakes each again when it ends: four per IMAP command, each costing the
// scheduler a wake-up of an idle thread. A statement run on a *sql.Conn
// with a context that cannot end (readCtx, the writer's own) starts none.
// Measured with 1 IMAP client, binaries alternated: see ARCHITECTURE.md.

// maxStmts bounds each connection's statement cache (and readStmts'):
// queries built from input (UID sets) vary.
const maxStmts = 200

// heldConn is one connection kept for good by its user (the writer
// goroutine, or one read transaction at a time), with the statements
// prepared on it. Only one goroutine uses it at a time.
type heldConn struct {
	c     *sql.Conn
	stmts map[string]*sql.Stmt
}

func newHeldConn(ctx context.Context, db *sql.DB) (*heldConn, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return &heldConn{c: c, stmts: map[string]*sql.Stmt{}}, nil
}

// stmt is the statement prepared for query on this connection, prepared
// now if it is new and the cache has room (queries built from client
// input, UID sets and search programs, have many shapes: past maxStmts
// they run unprepared). nil means run it unprepared.
func (h *heldConn) stmt(ctx context.Context, query string) *sql.Stmt {
	if st := h.stmts[query]; st != nil {
		return st
	}
	if len(h.stmts) >= maxStmts {
		return nil
	}
	st, err := h.c.PrepareContext(ctx, query)
	if err != nil {
		// The query fails again when it runs, with its own error.
		return nil
	}
	h.stmts[query] = st
	return st
}

func (h *heldConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := h.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return h.c.ExecContext(ctx, query, args...)
}

func (h *heldConn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := h.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return h.c.QueryContext(ctx, query, args...)
}

func (h *heldConn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := h.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return h.c.QueryRowContext(ctx, query, args...)
}

// begin starts a transaction with stmt ("BEGIN" or "BEGIN IMMEDIATE"). A
// connection left inside a transaction by a failed ROLLBACK is rolled
// back first, once, rather than failing every later transaction.
func (h *heldConn) begin(ctx context.Context, stmt string) error {
	if _, err := h.ExecContext(ctx, stmt); err != nil {
		if _, rerr := h.ExecContext(ctx, "ROLLBACK"); rerr != nil {
			return err
		}
		if _, err := h.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// rollback ends the transaction without keeping anything.
func (h *heldConn) rollback(ctx context.Context) error {
	_, err := h.ExecContext(ctx, "ROLLBACK")
	return err
}

// commit ends the transaction keeping its work. When COMMIT fails SQLite
// may leave the transaction open (SQLITE_BUSY): it is rolled back, so the
// connection is ready for the next one.
func (h *heldConn) commit(ctx context.Context) error {
	if _, err := h.ExecContext(ctx, "COMMIT"); err != nil {
		_ = h.rollback(ctx)
		return err
	}
	return nil
}

// close closes the statements and hands the connection back to its pool.
func (h *heldConn) close() error {
	h.closeStmts()
	return h.c.Close()
}

// discard closes the connection itself: one whose transaction could not
// be ended must not go back to the pool, where single queries would read
// that transaction's old snapshot.
func (h *heldConn) discard() {
	h.closeStmts()
	// database/sql closes a connection whose Raw returns ErrBadConn.
	_ = h.c.Raw(func(any) error { return driver.ErrBadConn })
}

func (h *heldConn) closeStmts() {
	for _, st := range h.stmts {
		st.Close()
	}
	h.stmts = nil
}

// readConns is the set of reader connections read transactions run on,
// at most cap(sem) of them, taken out of the reader pool as first needed.
// The most recently used is handed out first: its page cache is the
// likeliest to hold what the next read needs.
type readConns struct {
	db  *sql.DB
	sem chan struct{} // a token per connection in use

	mu     sync.Mutex
	free   []*heldConn // guarded by mu
	closed bool        // guarded by mu
}

func newReadConns(db *sql.DB, n int) *readConns {
	return &readConns{db: db, sem: make(chan struct{}, n)}
}

// get takes a connection, waiting while all are in use.
func (p *readConns) get(ctx context.Context) (*heldConn, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.sem
		return nil, mailstore.ErrClosed
	}
	if n := len(p.free); n > 0 {
		h := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return h, nil
	}
	p.mu.Unlock()
	h, err := newHeldConn(ctx, p.db)
	if err != nil {
		<-p.sem
		return nil, fmt.Errorf("reader connection: %w", err)
	}
	return h, nil
}

// put gives a connection back; one that failed (ok false) is discarded,
// and the next get opens another in its place.
func (p *readConns) put(h *heldConn, ok bool) {
	p.mu.Lock()
	keep := ok && !p.closed
	if keep {
		p.free = append(p.free, h)
	}
	p.mu.Unlock()
	switch {
	case !ok:
		h.discard()
	case !keep:
		h.close()
	}
	<-p.sem
}

// close closes the idle connections; those in use close when put back.
func (p *readConns) close() {
	p.mu.Lock()
	p.closed = true
	free := p.free
	p.free = nil
	p.mu.Unlock()
	for _, h := range free {
		h.close()
	}
}
