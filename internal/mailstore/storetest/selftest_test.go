package storetest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/mailstore/storetest"
	"github.com/roost-mail/roost/internal/storage/sqlite"
)

// The suite must be able to fail: each fault below breaks one promise of
// the Store interface on top of the real SQLite store, and the test that
// pins that promise must catch it. Faults run in child processes (a failed
// suite run cannot be contained in this process's *testing.T).

const faultEnv = "ROOST_STORETEST_FAULT"

// faultyStore is the SQLite store with one fault switched on.
type faultyStore struct {
	mailstore.Store
	fault string
}

func (s faultyStore) Move(ctx context.Context, acct, src int64, uids mailstore.UIDSet, dst int64) (mailstore.CopyResult, error) {
	if s.fault != "move-not-atomic" {
		return s.Store.Move(ctx, acct, src, uids, dst)
	}
	r, err := s.Store.Copy(ctx, acct, src, uids, dst)
	if err != nil {
		return r, err
	}
	time.Sleep(time.Millisecond)
	_, _, err = s.Store.Expunge(ctx, acct, src, mailstore.UIDSetOf(r.SrcUIDs...))
	return r, err
}

func (s faultyStore) Deliver(ctx context.Context, d mailstore.Delivery) ([]mailstore.AppendResult, error) {
	if s.fault != "ack-before-commit" {
		return s.Store.Deliver(ctx, d)
	}
	go func() { _, _ = s.Store.Deliver(context.Background(), d) }()
	return make([]mailstore.AppendResult, len(d.Recipients)), nil
}

func (s faultyStore) Append(ctx context.Context, acct int64, reqs []mailstore.AppendRequest) ([]mailstore.AppendResult, error) {
	if s.fault != "multiappend-partial" {
		return s.Store.Append(ctx, acct, reqs)
	}
	var out []mailstore.AppendResult
	for _, r := range reqs {
		res, err := s.Store.Append(ctx, acct, []mailstore.AppendRequest{r})
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

func (s faultyStore) Changes(ctx context.Context, acct int64, since mailstore.ModSeq, limit int) ([]mailstore.Change, error) {
	if s.fault == "changes-split-groups" && limit > 0 {
		// A plain LIMIT: pages may end inside a modseq group.
		cs, err := s.Store.Changes(ctx, acct, since, 0)
		return cs[:min(limit, len(cs))], err
	}
	cs, err := s.Store.Changes(ctx, acct, since, limit)
	if s.fault == "changes-drop-expunge" {
		cs = slices.DeleteFunc(cs, func(c mailstore.Change) bool { return c.Kind == mailstore.ChangeExpunge })
	}
	return cs, err
}

func (s faultyStore) Vanished(ctx context.Context, acct, mbox int64, since mailstore.ModSeq) ([]mailstore.UID, error) {
	v, err := s.Store.Vanished(ctx, acct, mbox, since)
	if s.fault == "vanished-scan" && err == nil {
		// The lazy way: "everything up to the highest vanished UID".
		if len(v) > 0 {
			top := slices.Max(v)
			v = v[:0]
			for u := mailstore.UID(1); u <= top; u++ {
				v = append(v, u)
			}
		}
	}
	return v, err
}

func (s faultyStore) PopHide(ctx context.Context, acct, mbox int64, view string, uids []mailstore.UID) error {
	if err := s.Store.PopHide(ctx, acct, mbox, view, uids); err != nil || s.fault != "pophide-visible" {
		return err
	}
	_, err := s.Store.StoreFlags(ctx, acct, mailstore.StoreFlagsRequest{MailboxID: mbox, UIDs: mailstore.UIDSetOf(uids...), Mode: mailstore.FlagsAdd, Flags: []string{"$PopHidden"}})
	return err
}

func (s faultyStore) Search(ctx context.Context, acct, mbox int64, key *mailstore.SearchKey) ([]mailstore.UID, error) {
	if s.fault == "search-case-sensitive" && key.Op == mailstore.SearchBody {
		// Only exact-case needles match: a byte comparison.
		u, err := s.Store.Search(ctx, acct, mbox, key)
		if err != nil || strings.ToLower(key.Value) == key.Value {
			return u, err
		}
		return nil, nil
	}
	return s.Store.Search(ctx, acct, mbox, key)
}

var faulty = storetest.Backend{
	Name:  "sqlite-faulty",
	Fresh: func(t testing.TB) string { return filepath.Join(t.TempDir(), "store") },
	Open: func(dir string) (mailstore.Store, error) {
		s, err := sqlite.Open(dir, sqlite.Options{})
		if err != nil {
			return nil, err
		}
		return faultyStore{Store: s, fault: os.Getenv(faultEnv)}, nil
	},
}

func TestMain(m *testing.M) {
	storetest.MaybeChild(faulty)
	os.Exit(m.Run())
}

// TestFaultyChild runs the suite on the faulty store; it is the child half
// of TestSuiteCatchesFaults.
func TestFaultyChild(t *testing.T) {
	if os.Getenv(faultEnv) == "" {
		t.Skip("runs only as a child of TestSuiteCatchesFaults")
	}
	storetest.Run(t, faulty)
}

func TestSuiteCatchesFaults(t *testing.T) {
	cases := []struct {
		fault, run, want string
	}{
		{"move-not-atomic", "Concurrency/MoveAtomic", "during moves"},
		{"ack-before-commit", "Crash", "acknowledged messages lost"},
		{"multiappend-partial", "Quota/Messages", "after a refused MULTIAPPEND"},
		{"changes-drop-expunge", "Changes/Feed", "expunge changes"},
		{"changes-split-groups", "Changes/Paging", "page ends inside the group"},
		{"vanished-scan", "Changes/VanishedExact", "Vanished("},
		{"pophide-visible", "POP", "PopHide changed UID"},
		{"search-case-sensitive", "Search", "BODY_UTF-8_needle"},
	}
	for _, c := range cases {
		t.Run(c.fault, func(t *testing.T) {
			t.Parallel()
			pattern := "^TestFaultyChild$"
			for _, p := range strings.Split(c.run, "/") {
				pattern += "/^" + p + "$"
			}
			cmd := exec.Command(os.Args[0], "-test.run="+pattern, "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), faultEnv+"="+c.fault)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("suite passed a store with fault %s:\n%s", c.fault, out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Errorf("fault %s: failure output lacks %q:\n%s", c.fault, c.want, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestFaultyChild/"+c.run) && !strings.Contains(string(out), "--- FAIL: TestFaultyChild/"+strings.Split(c.run, "/")[0]) {
				t.Errorf("fault %s: %s did not fail:\n%s", c.fault, c.run, out)
			}
		})
	}
}
