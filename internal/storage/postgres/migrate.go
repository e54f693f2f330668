package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Migrations are numbered SQL files (migrations/NNNN_name.sql); the
// roost_schema table holds the number of the last one applied.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLockKey is the pg_advisory_xact_lock key that serialises
// migrations when several nodes start at once ("roost" in ASCII). A
// transaction-scoped advisory lock is used rather than a lock on the
// version row because the version table itself may not exist yet: the
// first node creates it under the lock, the others wait and then find
// everything applied. The lock is released by COMMIT or ROLLBACK, so a
// node dying mid-migration cannot leave it held.
const migrationLockKey int64 = 0x726f6f7374

type migration struct {
	version int
	name    string
	sql     string
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
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: versions must run 1, 2, 3... without gaps", m.name)
		}
	}
	return out, nil
}

// Migrate brings the database at dsn to the current schema version (for
// `roost migrate`; Open does the same on every start).
func Migrate(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return migrate(ctx, conn, 0)
}

// migrate applies every missing migration (up to version upto, 0: all)
// in ONE transaction: a failure anywhere leaves the database at the
// version it had.
func migrate(ctx context.Context, conn *pgx.Conn, upto int) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	if upto > 0 && upto < len(ms) {
		ms = ms[:upto]
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey); err != nil {
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS roost_schema (version integer NOT NULL)"); err != nil {
		return fmt.Errorf("postgres: migrate: version table: %w", err)
	}
	var cur int
	err = tx.QueryRow(ctx, "SELECT version FROM roost_schema").Scan(&cur)
	switch {
	case err == pgx.ErrNoRows:
		if _, err := tx.Exec(ctx, "INSERT INTO roost_schema (version) VALUES (0)"); err != nil {
			return fmt.Errorf("postgres: migrate: version row: %w", err)
		}
	case err != nil:
		return fmt.Errorf("postgres: migrate: read version: %w", err)
	}
	if cur > len(ms) {
		return fmt.Errorf("postgres: schema version %d is newer than this binary knows (%d)", cur, len(ms))
	}
	for _, m := range ms[cur:] {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("postgres: migration %s: %w", m.name, err)
		}
	}
	if _, err := tx.Exec(ctx, "UPDATE roost_schema SET version = $1", len(ms)); err != nil {
		return fmt.Errorf("postgres: migrate: set version: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: commit: %w", err)
	}
	return nil
}

// schemaVersion reports the applied version (for tests and diagnostics).
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRow(ctx, "SELECT version FROM roost_schema").Scan(&v)
	return v, err
}
