package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// ListenerPID exposes the backend PID of a Store's LISTEN connection so a
// test can kill it with pg_terminate_backend.
func ListenerPID(s *Store) uint32 { return s.lis.pid() }

// SchemaVersion is the number of migrations this binary knows.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil {
		panic(err)
	}
	return len(ms)
}

// SharedDeliveries counts deliveries that committed together with others.
func SharedDeliveries(s *Store) int64 { return s.batch.shared.Load() }

// MigrateTo brings a database to schema version v only (upgrade tests
// build data in an older schema).
func MigrateTo(ctx context.Context, dsn string, v int) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return migrate(ctx, conn, v)
}
