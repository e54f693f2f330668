package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/storage/postgres"
)

// TestGroupCommitIsolation delivers concurrently to an account that is
// over quota and to one that is not: deliveries batched into one
// transaction succeed or fail one by one, each failure leaving no trace.
func TestGroupCommitIsolation(t *testing.T) {
	dsn := freshDatabase(t)
	st := openStore(t, dsn)
	ctx := context.Background()
	full := mustAccount(t, st, "full@example.test")
	ok := mustAccount(t, st, "ok@example.test")
	deliver(t, st, full.ID, "first")
	if err := st.SetQuota(ctx, full.Name, 0, 1); err != nil {
		t.Fatal(err)
	}
	before, err := st.GetAccountByID(ctx, full.ID)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	results := make([][]mailstore.AppendResult, n)
	for round := 0; round < 5 && postgres.SharedDeliveries(st) == 0 || round == 0; round++ {
		for i := range n {
			acct := ok.ID
			if i%2 == 0 {
				acct = full.ID
			}
			wg.Go(func() {
				raw := fmt.Appendf(nil, "Subject: r%d-%d\r\n\r\nbody\r\n", round, i)
				results[i], errs[i] = st.Deliver(ctx, mailstore.Delivery{Raw: raw, Recipients: []mailstore.DeliveryTarget{{AccountID: acct}}})
			})
		}
		wg.Wait()
		for i := range n {
			if i%2 == 0 {
				if !errors.Is(errs[i], mailstore.ErrOverQuota) {
					t.Fatalf("delivery %d to the full account: %v, want ErrOverQuota", i, errs[i])
				}
				continue
			}
			if errs[i] != nil || len(results[i]) != 1 || results[i][0].UID == 0 {
				t.Fatalf("delivery %d to the open account: %v %v", i, results[i], errs[i])
			}
		}
	}
	if postgres.SharedDeliveries(st) == 0 {
		t.Fatal("no delivery shared a transaction with another: the batcher never batched")
	}
	after, err := st.GetAccountByID(ctx, full.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.UsedMessages != before.UsedMessages || after.UsedBytes != before.UsedBytes {
		t.Errorf("full account usage moved: %d/%d -> %d/%d", before.UsedMessages, before.UsedBytes, after.UsedMessages, after.UsedBytes)
	}
	ms, err := st.HighestModSeq(ctx, full.ID)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := st.Changes(ctx, full.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The failed deliveries raised no modseq that the feed cannot explain.
	if top := ch[len(ch)-1].ModSeq; top != ms {
		t.Errorf("full account: HighestModSeq %d but the feed ends at %d", ms, top)
	}
	in, err := st.GetMailbox(ctx, ok.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	uids, _, err := st.UIDs(ctx, ok.ID, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(uids); i++ {
		if uids[i] <= uids[i-1] {
			t.Fatalf("UIDs not ascending: %v", uids)
		}
	}
}
