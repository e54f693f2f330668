package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/storage/postgres"
)

// TestMigrateConcurrentOpen starts several nodes on an empty database at
// once: exactly one applies the migrations, the others wait and find the
// schema current; `roost migrate` afterwards is a no-op.
func TestMigrateConcurrentOpen(t *testing.T) {
	dsn := freshDatabase(t)
	const nodes = 4
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	for i := range nodes {
		wg.Go(func() {
			st, err := postgres.Open(context.Background(), dsn, openOptions)
			errs[i] = err
			if err == nil {
				st.Close()
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: Open: %v", i, err)
		}
	}
	if err := postgres.Migrate(context.Background(), dsn); err != nil {
		t.Fatalf("Migrate on a current schema: %v", err)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, version int
	if err := conn.QueryRow(context.Background(), "SELECT count(*), max(version) FROM roost_schema").Scan(&rows, &version); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || version != postgres.SchemaVersion() {
		t.Errorf("roost_schema has %d rows, version %d; want 1 row, version %d", rows, version, postgres.SchemaVersion())
	}
	// A database from a newer binary is refused, not half-used.
	if _, err := conn.Exec(context.Background(), "UPDATE roost_schema SET version = version + 1"); err != nil {
		t.Fatal(err)
	}
	if st, err := postgres.Open(context.Background(), dsn, openOptions); err == nil {
		st.Close()
		t.Error("Open accepted a schema newer than it knows")
	}
}

// TestTwoNodesAllocate appends through two nodes into one mailbox at once:
// UIDs and modseqs stay unique, and the change feed lists every message
// with modseqs in commit order.
func TestTwoNodesAllocate(t *testing.T) {
	dsn := freshDatabase(t)
	a := openStore(t, dsn)
	b := openStore(t, dsn)
	acct := mustAccount(t, a, "user@example.test")
	in, err := a.GetMailbox(context.Background(), acct.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	const each = 25
	var mu sync.Mutex
	uids := map[mailstore.UID]bool{}
	modseqs := map[mailstore.ModSeq]bool{}
	var wg sync.WaitGroup
	for n, st := range []*postgres.Store{a, b, a, b} {
		wg.Go(func() {
			for i := range each {
				raw := fmt.Appendf(nil, "Subject: n%d-%d\r\n\r\nbody\r\n", n, i)
				res, err := st.Append(context.Background(), acct.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: raw}})
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				if uids[res[0].UID] || modseqs[res[0].ModSeq] {
					t.Errorf("duplicate UID %d or modseq %d", res[0].UID, res[0].ModSeq)
				}
				uids[res[0].UID], modseqs[res[0].ModSeq] = true, true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(uids) != 4*each {
		t.Fatalf("%d distinct UIDs, want %d", len(uids), 4*each)
	}
	ch, err := b.Changes(context.Background(), acct.ID, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 4*each {
		t.Fatalf("change feed has %d entries, want %d", len(ch), 4*each)
	}
	for i := 1; i < len(ch); i++ {
		if ch[i].ModSeq <= ch[i-1].ModSeq {
			t.Fatalf("feed not strictly ascending at %d: %d after %d", i, ch[i].ModSeq, ch[i-1].ModSeq)
		}
		// UIDs are handed out under the same locks: a later modseq has a
		// higher UID.
		if ch[i].UID <= ch[i-1].UID {
			t.Fatalf("UID %d (modseq %d) after UID %d (modseq %d)", ch[i].UID, ch[i].ModSeq, ch[i-1].UID, ch[i-1].ModSeq)
		}
	}
}

// TestTwoNodesClaim: two nodes claiming the queue at once never get the
// same entry, and together they get them all.
func TestTwoNodesClaim(t *testing.T) {
	dsn := freshDatabase(t)
	nodes := []*postgres.Store{openStore(t, dsn), openStore(t, dsn)}
	ctx := context.Background()
	const n = 60
	entries := make([]mailstore.QueueEntry, n)
	for i := range entries {
		entries[i] = mailstore.QueueEntry{From: "a@example.test", Recipients: []string{fmt.Sprintf("r%d@remote.example", i)}, Domain: "remote.example"}
	}
	if _, err := nodes[0].Enqueue(ctx, []byte("Subject: q\r\n\r\nbody\r\n"), entries); err != nil {
		t.Fatal(err)
	}
	claimed := map[int64]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	now := time.Now().Add(time.Second)
	for w := range 4 {
		st := nodes[w%2]
		owner := fmt.Sprintf("node%d-worker%d", w%2, w)
		wg.Go(func() {
			for {
				got, err := st.ClaimDue(ctx, owner, now, now.Add(time.Hour), 3)
				if err != nil {
					t.Errorf("ClaimDue: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, e := range got {
					if prev, dup := claimed[e.ID]; dup {
						t.Errorf("entry %d claimed by %s and %s", e.ID, prev, owner)
					}
					claimed[e.ID] = owner
					if e.LeaseOwner != owner {
						t.Errorf("entry %d: lease owner %q, want %q", e.ID, e.LeaseOwner, owner)
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != n {
		t.Errorf("%d entries claimed, want %d", len(claimed), n)
	}
}

// TestMigrateFromVersion1 upgrades a database holding data written in
// schema version 1 (rows without line_size): the data stays readable and
// new rows get the new column.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := context.Background()
	dsn := freshDatabase(t)
	if err := postgres.MigrateTo(ctx, dsn, 1); err != nil {
		t.Fatalf("migrate to version 1: %v", err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	raw := "Subject: old\r\n\r\nfrom version 1\n"
	for _, q := range []string{
		`INSERT INTO domains VALUES ('example.test', now())`,
		`INSERT INTO accounts (id, name, domain, password_hash, modseq, used_bytes, used_messages, created)
			VALUES (1, 'old@example.test', 'example.test', 'x', 2, ` + fmt.Sprint(len(raw)) + `, 1, now())`,
		`INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext, highestmodseq, modseq)
			VALUES (1, 1, 'INBOX', 7, 2, 2, 1)`,
		`INSERT INTO blobs VALUES ('b1', 1, ` + fmt.Sprint(len(raw)) + `)`,
		`INSERT INTO blob_data VALUES ('b1', convert_to('` + raw + `', 'UTF8'))`,
		`INSERT INTO messages (mailbox_id, uid, account_id, modseq, createmodseq, internal_date, save_date, sent_day, size, blob_id, email_id, thread_id)
			VALUES (1, 1, 1, 2, 2, now(), now(), current_date, ` + fmt.Sprint(len(raw)) + `, 'b1', 'Mold', 'Told')`,
		`SELECT setval('accounts_id_seq', 1)`, `SELECT setval('mailboxes_id_seq', 1)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("version 1 data: %s: %v", q, err)
		}
	}
	st := openStore(t, dsn) // migrates to the current version
	msgs := []mailstore.Message{}
	err = st.Fetch(ctx, 1, 1, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}, mailstore.FetchAll, 0, func(m *mailstore.Message) error {
		msgs = append(msgs, *m)
		return nil
	})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch the version 1 message: %d, %v", len(msgs), err)
	}
	if msgs[0].Size != int64(len(raw)) || msgs[0].LineSize != 0 {
		t.Errorf("old row: size %d line size %d; want %d and 0 (not stored)", msgs[0].Size, msgs[0].LineSize, len(raw))
	}
	if b, err := st.ReadBlob(ctx, "b1"); err != nil || string(b) != raw {
		t.Errorf("old blob: %q, %v", b, err)
	}
	res := deliver(t, st, 1, "new")
	if res.UID != 2 || res.ModSeq != 3 {
		t.Errorf("delivery after upgrade: UID %d modseq %d, want 2 and 3", res.UID, res.ModSeq)
	}
	msgs = msgs[:0]
	err = st.Fetch(ctx, 1, 1, mailstore.UIDSetOf(2), mailstore.FetchSize, 0, func(m *mailstore.Message) error {
		msgs = append(msgs, *m)
		return nil
	})
	if err != nil || len(msgs) != 1 || msgs[0].LineSize == 0 {
		t.Errorf("new row after upgrade: %+v, %v; want a line size", msgs, err)
	}
}

// TestTwoNodesAccountAliasRace adds an account on one node and an alias
// with the same address on another, at once. Exactly one may win: an
// address that is both would let ResolveAddress pick either, and mail for
// the alias would land in the new account without an error.
func TestTwoNodesAccountAliasRace(t *testing.T) {
	dsn := freshDatabase(t)
	a := openStore(t, dsn)
	b := openStore(t, dsn)
	ctx := context.Background()
	target := mustAccount(t, a, "target@example.test")
	const rounds = 40
	for i := range rounds {
		addr := fmt.Sprintf("x%d@example.test", i)
		start := make(chan struct{})
		var wg sync.WaitGroup
		var errAccount, errAlias error
		wg.Go(func() { <-start; _, errAccount = a.AddAccount(ctx, addr, "x") })
		wg.Go(func() { <-start; errAlias = b.AddAlias(ctx, addr, target.Name) })
		close(start)
		wg.Wait()
		if errAccount == nil && errAlias == nil {
			t.Errorf("%s: both AddAccount and AddAlias succeeded", addr)
			continue
		}
		for _, err := range []error{errAccount, errAlias} {
			if err != nil && !errors.Is(err, mailstore.ErrExists) {
				t.Errorf("%s: loser failed with %v, want ErrExists", addr, err)
			}
		}
		if errAccount != nil && errAlias != nil {
			t.Errorf("%s: both failed: %v; %v", addr, errAccount, errAlias)
		}
	}
}

// TestResolveAddressPrefersAccount: a database written before AddAccount
// and AddAlias were serialised may hold an address as both; the account
// must win, as on SQLite, not whichever row the plan yields first.
func TestResolveAddressPrefersAccount(t *testing.T) {
	dsn := freshDatabase(t)
	st := openStore(t, dsn)
	ctx := context.Background()
	target := mustAccount(t, st, "target@example.test")
	dual := mustAccount(t, st, "dual@example.test")
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "INSERT INTO aliases (address, domain, account_id) VALUES ($1, 'example.test', $2)", dual.Name, target.ID); err != nil {
		t.Fatal(err)
	}
	got, err := st.ResolveAddress(ctx, dual.Name)
	if err != nil || got.ID != dual.ID {
		t.Errorf("ResolveAddress(%s) = account %d, %v; want the account %d, not the alias's %d", dual.Name, got.ID, err, dual.ID, target.ID)
	}
}
