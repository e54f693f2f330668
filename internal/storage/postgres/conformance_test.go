package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/mailstore/storetest"
	"github.com/roost-mail/roost/internal/storage/postgres"
)

// testDSN returns the DSN of the test server (a role that may create
// databases), or skips the test: PostgreSQL is an external service. On CI
// (CI=true) a missing DSN is a failure, so the suite cannot silently stop
// running there.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("ROOST_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("ROOST_TEST_POSTGRES not set on CI: PostgreSQL tests cannot run (see .ci/postgres.sh)")
		}
		t.Skip("ROOST_TEST_POSTGRES not set: PostgreSQL tests skipped")
	}
	return dsn
}

// withDatabase returns dsn pointing at database name instead.
func withDatabase(dsn, name string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.Path = "/" + name
			return u.String()
		}
	}
	return dsn + " dbname=" + name // key=value form: the last setting wins
}

// freshDatabase creates an empty database for one test and drops it (with
// any connection a killed child left behind) when the test ends.
func freshDatabase(t testing.TB) string {
	t.Helper()
	admin := testDSN(t)
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	name := "roosttest_" + hex.EncodeToString(rnd[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to ROOST_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// openOptions keeps each test store's pool small: the suite runs many
// stores at once against one server.
var openOptions = postgres.Options{MaxConns: 4}

var backend = storetest.Backend{
	Name:  "postgres",
	Fresh: freshDatabase,
	Open: func(dsn string) (mailstore.Store, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return postgres.Open(ctx, dsn, openOptions)
	},
}

// TestMain lets the crash test re-execute this binary as a child that is
// killed mid-delivery. It is the package's only TestMain.
func TestMain(m *testing.M) {
	storetest.MaybeChild(backend)
	os.Exit(m.Run())
}

func TestConformance(t *testing.T) {
	testDSN(t)
	storetest.Run(t, backend)
}
