package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// holdWriter occupies the writer with a write that waits for release, so
// the test can line requests up behind it.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started, gate := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.update(context.Background(), func(w *wtx) error {
			close(started)
			<-gate
			return nil
		})
	}()
	<-started
	return func() {
		close(gate)
		if err := <-done; err != nil {
			t.Errorf("holding write: %v", err)
		}
	}
}

// waitPending waits until n requests are waiting for the writer.
func waitPending(t *testing.T, s *Store, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.pending.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d writes waiting", s.pending.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGroupCommit32Appenders(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	// The indexer's own writes (clearing indexed text) would count too.
	s.ftsOff.Store(true)
	a := addAccount(t, s, "gc@example.test")
	in := inbox(t, s, a.ID)
	const writers, each = 32, 10

	b0, w0 := s.WriteStats()
	var wg sync.WaitGroup
	results := make([][]mailstore.AppendResult, writers)
	errs := make([]error, writers)
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				r, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: msg("gc", fmt.Sprintf("%d.%d@x", g, i), "body")}})
				if err != nil {
					errs[g] = err
					return
				}
				results[g] = append(results[g], r...)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var uids []mailstore.UID
	mods := map[mailstore.ModSeq]bool{}
	for _, rs := range results {
		for _, r := range rs {
			uids = append(uids, r.UID)
			if mods[r.ModSeq] {
				t.Fatalf("modseq %d given twice", r.ModSeq)
			}
			mods[r.ModSeq] = true
		}
	}
	slices.Sort(uids)
	for i, u := range uids {
		if u != mailstore.UID(i+1) {
			t.Fatalf("UIDs not 1..%d: %v", writers*each, uids)
		}
	}
	got, _, err := s.UIDs(ctx, a.ID, in.ID)
	if err != nil || !slices.Equal(got, uids) {
		t.Fatalf("stored UIDs = %v, %v", got, err)
	}
	b1, w1 := s.WriteStats()
	t.Logf("%d writes in %d commits", w1-w0, b1-b0)
	if w1-w0 != writers*each || b1-b0 > w1-w0 {
		t.Fatalf("stats: %d writes in %d commits", w1-w0, b1-b0)
	}
}

// TestBatchIsolation lines writes up behind a held writer so they share
// one transaction, and checks one failing write leaves the others whole.
func TestBatchIsolation(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	a := addAccount(t, s, "iso@example.test")
	in := inbox(t, s, a.ID)
	w := s.Watch(a.ID)
	defer w.Close()

	release := holdWriter(t, s)
	b0, _ := s.WriteStats()
	var wg sync.WaitGroup
	const n = 8
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			mbox := in.ID
			if i == 3 {
				mbox = 999999 // fails: no such mailbox
			}
			_, errs[i] = s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: mbox, Raw: msg("iso", fmt.Sprint(i, "@x"), "")}})
		})
	}
	var panicErr error
	wg.Go(func() {
		panicErr = s.update(ctx, func(w *wtx) error {
			if _, err := w.exec(`UPDATE accounts SET quota_bytes = 1 WHERE id = ?`, a.ID); err != nil {
				return err
			}
			panic("boom")
		})
	})
	waitPending(t, s, n+1)
	release()
	wg.Wait()
	b1, _ := s.WriteStats()
	if b1-b0 != 2 { // the held write's batch, then one for all the rest
		t.Fatalf("%d commits, want 2", b1-b0)
	}
	if !errors.Is(errs[3], mailstore.ErrNoSuchMailbox) {
		t.Fatalf("bad write = %v", errs[3])
	}
	if panicErr == nil {
		t.Fatal("panicking write reported no error")
	}
	st, err := s.Status(ctx, a.ID, in.ID)
	if err != nil || st.Messages != n-1 {
		t.Fatalf("Status = %+v, %v; want %d messages", st, err, n-1)
	}
	acct, _ := s.GetAccountByID(ctx, a.ID)
	if acct.QuotaBytes != 0 {
		t.Fatal("panicking write was not rolled back")
	}
	select {
	case <-w.C:
	default:
		t.Fatal("no wake-up after the batch")
	}
}

// TestTwoStoresOneDir is the CLI beside a running server: two Stores (two
// writers) on one database.
func TestTwoStoresOneDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var wg sync.WaitGroup
	stores := make([]*Store, 2)
	errs := make([]error, 2)
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = Open(dir, Options{}) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	defer stores[0].Close()
	defer stores[1].Close()
	a := addAccount(t, stores[0], "two@example.test")
	in := inbox(t, stores[1], a.ID)
	for i := range 20 {
		wg.Go(func() {
			_, err := stores[i%2].Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: msg("t", fmt.Sprint(i, "@x"), "")}})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	uids, _, err := stores[0].UIDs(ctx, a.ID, in.ID)
	if err != nil || len(uids) != 20 || uids[19] != 20 {
		t.Fatalf("UIDs = %v, %v", uids, err)
	}
}

// TestOtherProcessWakes: a commit through another Store on the same
// directory (another process, as the CLI is) wakes this one's watchers.
func TestOtherProcessWakes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	server, err := Open(dir, Options{PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	a := addAccount(t, server, "wake@example.test")
	w := server.Watch(a.ID)
	defer w.Close()
	cli, err := Open(dir, Options{PollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	// Drain a wake-up the server's own AddAccount may have left.
	time.Sleep(50 * time.Millisecond)
	select {
	case <-w.C:
	default:
	}
	in := inbox(t, cli, a.ID)
	if _, err := cli.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: msg("w", "w@x", "")}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.C:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake-up for another process's commit")
	}
}
