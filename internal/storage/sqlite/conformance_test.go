package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/mailstore/storetest"
	"github.com/roost-mail/roost/internal/storage/sqlite"
)

// backend is the SQLite store as the conformance suite sees it: a store
// location is a directory.
var backend = storetest.Backend{
	Name: "sqlite",
	Fresh: func(t testing.TB) string {
		return filepath.Join(t.TempDir(), "store")
	},
	Open: func(dir string) (mailstore.Store, error) {
		return sqlite.Open(dir, sqlite.Options{})
	},
}

// deferredBackend is the same store with flag changes acknowledged
// before they are synced (Options.DeferFlagSync): the suite, its crash
// test included, must not tell the difference.
var deferredBackend = storetest.Backend{
	Name:  "sqlite-deferred",
	Fresh: backend.Fresh,
	Open: func(dir string) (mailstore.Store, error) {
		return sqlite.Open(dir, sqlite.Options{DeferFlagSync: true})
	},
}

// TestMain lets the crash test re-execute this binary as a child that is
// killed mid-delivery. It is the package's only TestMain.
func TestMain(m *testing.M) {
	storetest.MaybeChild(backend, deferredBackend)
	os.Exit(m.Run())
}

func TestConformance(t *testing.T) {
	storetest.Run(t, backend)
}

func TestConformanceDeferredFlagSync(t *testing.T) {
	storetest.Run(t, deferredBackend)
}
