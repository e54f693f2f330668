package sqlite

import (
	"context"
	"strings"
	"testing"
)

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	s, dir := openTest(t)
	if v, err := schemaVersion(ctx, s.wdb); err != nil || v != len(ms) {
		t.Fatalf("version %d, %v; want %d", v, err, len(ms))
	}
	a := addAccount(t, s, "mig@example.test")

	// A failing step leaves nothing behind: it runs in one transaction.
	bad := migration{version: len(ms) + 1, name: "bad.sql", sql: `CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);`}
	if err := applyMigration(ctx, s.wdb, bad); err == nil {
		t.Fatal("bad migration succeeded")
	}
	var n int
	if err := s.wdb.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'half'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("half-applied migration left table: %d, %v", n, err)
	}
	if v, _ := schemaVersion(ctx, s.wdb); v != len(ms) {
		t.Fatalf("version moved to %d", v)
	}

	// A good step on existing data applies once and keeps the data.
	good := migration{version: len(ms) + 1, name: "good.sql", sql: `ALTER TABLE accounts ADD COLUMN note TEXT NOT NULL DEFAULT 'x';`}
	for range 2 {
		if err := applyMigration(ctx, s.wdb, good); err != nil {
			t.Fatal(err)
		}
	}
	var note string
	if err := s.wdb.QueryRowContext(ctx, `SELECT note FROM accounts WHERE id = ?`, a.ID).Scan(&note); err != nil || note != "x" {
		t.Fatalf("migrated row: %q, %v", note, err)
	}
	s.Close()

	// This program does not know version len(ms)+1: it refuses the store.
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer store = %v", err)
	}
}
