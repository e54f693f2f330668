package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"

	sqlite "modernc.org/sqlite"
)

// Migrations are numbered SQL files (migrations/NNNN_name.sql). The
// database's PRAGMA user_version is the number of the last one applied.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one schema step. A step may carry Go code (fn) run in the
// same transaction after its SQL, for data rewrites SQL cannot express.
type migration struct {
	version int
	name    string
	sql     string
	fn      func(ctx context.Context, tx *sql.Tx) error
}

// goMigrations holds steps written in Go, keyed by version.
var goMigrations = map[int]func(ctx context.Context, tx *sql.Tx) error{
	3: backfillLineSize,
}

// backfillLineSize fills messages.line_size (migration 0003) from the
// blobs of existing rows. Each blob is read once however many rows share
// it, one at a time (the sizes, not the bytes, are kept), and the rows are
// then updated in one statement through a temporary table: messages has
// no index on blob_id, so an UPDATE per blob would scan it per blob.
func backfillLineSize(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE line_sizes (blob_id TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID`); err != nil {
		return fmt.Errorf("line sizes: %w", err)
	}
	type size struct {
		id string
		n  int64
	}
	var sizes []size
	rows, err := tx.QueryContext(ctx, `SELECT id, data FROM blobs WHERE id IN (SELECT blob_id FROM messages)`)
	if err != nil {
		return fmt.Errorf("line sizes: %w", err)
	}
	for rows.Next() {
		var id string
		var data sql.RawBytes // valid until Next: no copy of the bytes
		if err := rows.Scan(&id, &data); err != nil {
			rows.Close()
			return fmt.Errorf("line sizes: %w", err)
		}
		sizes = append(sizes, size{id, mailstore.LineSize(data)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("line sizes: %w", err)
	}
	for _, sz := range sizes {
		if _, err := tx.ExecContext(ctx, `INSERT INTO temp.line_sizes (blob_id, n) VALUES (?, ?)`, sz.id, sz.n); err != nil {
			return fmt.Errorf("line sizes: %w", err)
		}
	}
	// A row whose blob is missing keeps 0, "not known": its reader falls
	// back to computing the size (and will fail to read the blob anyway).
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET line_size = coalesce(
			(SELECT n FROM temp.line_sizes l WHERE l.blob_id = messages.blob_id), 0)`); err != nil {
		return fmt.Errorf("line sizes: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE temp.line_sizes`); err != nil {
		return fmt.Errorf("line sizes: %w", err)
	}
	return nil
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %q: want NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b), fn: goMigrations[v]})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: versions must run 1, 2, 3... without gaps", m.name)
		}
	}
	return out, nil
}

// retryBusy runs fn, again for up to wait while it fails with
// SQLITE_BUSY that SQLite returned without waiting: two processes opening
// a new store at the same moment race to switch a file to WAL mode, and
// the loser's first statement fails at once instead of going through
// busy_timeout (TestTwoStoresOneDir caught it about once in ten runs).
// Open runs the migrations and the index file's set-up through it.
func retryBusy(wait time.Duration, fn func() error) error {
	deadline := time.Now().Add(wait)
	for {
		err := fn()
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// isBusy reports SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == 5
}

// migrate applies the missing migrations, each in its own transaction.
// The writer connection begins transactions with BEGIN IMMEDIATE, so a
// second process opening the same database at the same moment waits
// (busy_timeout) and then sees the version the first one reached.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	// A database a newer binary migrated must not be used by an older one
	// (say, an old CLI beside an upgraded server): it would not know the
	// newer schema's rules.
	if v, err := schemaVersion(ctx, db); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	} else if v > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this program's %d", v, len(ms))
	}
	for _, m := range ms {
		if err := applyMigration(ctx, db, m); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m migration) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: begin: %w", m.name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var cur int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&cur); err != nil {
		return fmt.Errorf("migration %s: read version: %w", m.name, err)
	}
	if cur >= m.version {
		return tx.Rollback()
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	if m.fn != nil {
		if err := m.fn(ctx, tx); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	// PRAGMA takes no bound parameters; the version is an integer we own.
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(m.version)); err != nil {
		return fmt.Errorf("migration %s: set version: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: commit: %w", m.name, err)
	}
	return nil
}

// schemaVersion reports the applied version (for tests and diagnostics).
func schemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}
