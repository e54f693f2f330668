package app

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
)

// Two nodes of a fresh cluster (or two processes on one data dir) start
// at once on an empty store: both find no account and both try to make the
// demo account. The one that loses must start normally rather than exit
// with "demo account: ... already exists"; exactly one prints a password.
func TestEnsureDemoOnTwoNodesAtOnce(t *testing.T) {
	cfg := testConfig(t)
	// The default cost: the hash between the check and the insert is
	// what widens the race window.
	cfg.Auth.Argon2Time, cfg.Auth.Argon2MemoryKiB = 3, 65536
	ctx := context.Background()
	var stores [2]mailstore.Store
	for i := range stores {
		st, err := OpenStore(ctx, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		stores[i] = st
	}
	var pws [2]string
	var errs [2]error
	var wg sync.WaitGroup
	for i, st := range stores {
		wg.Go(func() { pws[i], errs[i] = EnsureDemo(ctx, st, cfg) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: EnsureDemo: %v (its serve exits 1)", i, err)
		}
	}
	if (pws[0] == "") == (pws[1] == "") {
		t.Errorf("passwords %q and %q: want exactly one node to report the demo password", pws[0], pws[1])
	}
}
