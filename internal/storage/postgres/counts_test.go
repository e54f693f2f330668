package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/storage/postgres"
)

// counts are one mailbox's STATUS figures.
type counts struct{ n, unseen, deleted, size int64 }

func statusCounts(st mailstore.MailboxStatus) counts {
	return counts{st.Messages, st.Unseen, st.Deleted, st.Size}
}

// recount counts every live mailbox's messages from the message rows, the
// way Status did before the counts were kept (migration 0003).
func recount(t *testing.T, conn *pgx.Conn) map[int64]counts {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT mb.id, count(m.uid),
		count(m.uid) FILTER (WHERE NOT ('\Seen' = ANY(m.flags))),
		count(m.uid) FILTER (WHERE '\Deleted' = ANY(m.flags)),
		coalesce(sum(m.size), 0)
		FROM mailboxes mb LEFT JOIN messages m ON m.mailbox_id = mb.id
		WHERE NOT mb.deleted GROUP BY mb.id`)
	if err != nil {
		t.Fatalf("recount: %v", err)
	}
	out := map[int64]counts{}
	for rows.Next() {
		var id int64
		var c counts
		if err := rows.Scan(&id, &c.n, &c.unseen, &c.deleted, &c.size); err != nil {
			t.Fatalf("recount: %v", err)
		}
		out[id] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("recount: %v", err)
	}
	return out
}

// checkCounts compares Status of every live mailbox of the accounts with a
// recount of the rows.
func checkCounts(t *testing.T, st mailstore.Store, conn *pgx.Conn, accts ...int64) {
	t.Helper()
	want := recount(t, conn)
	seen := 0
	for _, acct := range accts {
		mbs, err := st.ListMailboxes(context.Background(), acct)
		if err != nil {
			t.Fatal(err)
		}
		for _, mb := range mbs {
			s, err := st.Status(context.Background(), acct, mb.ID)
			if err != nil {
				t.Fatalf("status %s: %v", mb.Name, err)
			}
			if got := statusCounts(s); got != want[mb.ID] {
				t.Errorf("mailbox %d %s: status %+v, rows say %+v", mb.ID, mb.Name, got, want[mb.ID])
			}
			seen++
		}
	}
	if seen != len(want) {
		t.Errorf("checked %d mailboxes, database has %d live ones", seen, len(want))
	}
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestMigrateFromVersion2 upgrades a database holding messages written in
// schema version 2 (no per-mailbox counts): the migration backfills the
// counts from the rows, and later writes keep them.
func TestMigrateFromVersion2(t *testing.T) {
	ctx := context.Background()
	dsn := freshDatabase(t)
	if err := postgres.MigrateTo(ctx, dsn, 2); err != nil {
		t.Fatalf("migrate to version 2: %v", err)
	}
	conn := connect(t, dsn)
	setup := []string{
		`INSERT INTO domains VALUES ('example.test', now())`,
		`INSERT INTO accounts (id, name, domain, password_hash, modseq, used_bytes, used_messages, created)
			VALUES (1, 'old@example.test', 'example.test', 'x', 2, 1111, 6, now())`,
		`INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext, highestmodseq, modseq) VALUES
			(1, 1, 'INBOX', 7, 6, 2, 1), (2, 1, 'Archive', 8, 2, 2, 1), (3, 1, 'Empty', 9, 1, 1, 1)`,
		`INSERT INTO blobs VALUES ('b1', 6, 100)`,
		`INSERT INTO blob_data VALUES ('b1', convert_to('Subject: old` + "\r\n\r\n" + `body` + "\r\n" + `', 'UTF8'))`,
		`SELECT setval('accounts_id_seq', 1)`, `SELECT setval('mailboxes_id_seq', 3)`,
	}
	// Every combination of \Seen and \Deleted, and sizes that tell the
	// rows apart in the sum.
	for i, f := range []string{`ARRAY[]::text[]`, `ARRAY['\Seen']`, `ARRAY['\Deleted']`, `ARRAY['\Deleted', '\Seen']`, `ARRAY['\Flagged']`} {
		setup = append(setup, fmt.Sprintf(`INSERT INTO messages (mailbox_id, uid, account_id, modseq, createmodseq, flags, internal_date, save_date, sent_day, size, blob_id, email_id, thread_id)
			VALUES (1, %d, 1, 2, 2, %s, now(), now(), current_date, %d, 'b1', 'M%d', 'T%d')`, i+1, f, 10<<i, i, i))
	}
	setup = append(setup, `INSERT INTO messages (mailbox_id, uid, account_id, modseq, createmodseq, flags, internal_date, save_date, sent_day, size, blob_id, email_id, thread_id)
		VALUES (2, 1, 1, 2, 2, ARRAY['\Seen'], now(), now(), current_date, 801, 'b1', 'M9', 'T9')`)
	for _, q := range setup {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("version 2 data: %s: %v", q, err)
		}
	}
	st := openStore(t, dsn) // migrates to the current version
	for id, want := range map[int64]counts{
		1: {n: 5, unseen: 3, deleted: 2, size: 10 + 20 + 40 + 80 + 160},
		2: {n: 1, unseen: 0, deleted: 0, size: 801},
		3: {},
	} {
		s, err := st.Status(ctx, 1, id)
		if err != nil {
			t.Fatalf("status of mailbox %d after upgrade: %v", id, err)
		}
		if got := statusCounts(s); got != want {
			t.Errorf("mailbox %d after upgrade: %+v, want %+v", id, got, want)
		}
	}
	checkCounts(t, st, conn, 1)

	// Writes after the upgrade move the backfilled counts.
	if _, err := st.StoreFlags(ctx, 1, mailstore.StoreFlagsRequest{MailboxID: 1, UIDs: mailstore.UIDSet{{Lo: 1, Hi: 5}}, Mode: mailstore.FlagsAdd, Flags: []string{mailstore.FlagSeen}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Expunge(ctx, 1, 1, mailstore.UIDSetOf(3)); err != nil {
		t.Fatal(err)
	}
	deliver(t, st, 1, "new")
	if _, err := st.Move(ctx, 1, 1, mailstore.UIDSetOf(4), 3); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, st, conn, 1)
	s, err := st.Status(ctx, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if s.Messages != 4 || s.Unseen != 1 || s.Deleted != 0 {
		t.Errorf("INBOX after writes: %+v; want 4 messages, 1 unseen (the new one), 0 deleted", statusCounts(s))
	}
}

// TestMailboxCountsConcurrent runs every kind of message write from two
// nodes at once against the same mailboxes, then checks each mailbox's
// counts against its rows. Counts updated outside the mailbox row lock
// would lose updates here.
func TestMailboxCountsConcurrent(t *testing.T) {
	ctx := context.Background()
	dsn := freshDatabase(t)
	nodes := []*postgres.Store{openStore(t, dsn), openStore(t, dsn)}
	conn := connect(t, dsn)
	acct := mustAccount(t, nodes[0], "counts@example.test").ID
	other := mustAccount(t, nodes[0], "other@example.test").ID
	in, err := nodes[0].GetMailbox(ctx, acct, mailstore.InboxName)
	if err != nil {
		t.Fatal(err)
	}
	var boxes = []int64{in.ID}
	for _, name := range []string{"A", "B"} {
		mb, err := nodes[0].CreateMailbox(ctx, acct, name, "")
		if err != nil {
			t.Fatal(err)
		}
		boxes = append(boxes, mb.ID)
	}
	flagSets := [][]string{nil, {mailstore.FlagSeen}, {mailstore.FlagDeleted}, {mailstore.FlagSeen, mailstore.FlagDeleted}, {mailstore.FlagFlagged}}

	const workers, ops = 4, 40
	var wg sync.WaitGroup
	for w := range workers {
		st := nodes[w%2]
		rng := rand.New(rand.NewPCG(uint64(w), 7))
		wg.Go(func() {
			for i := range ops {
				box := boxes[rng.IntN(len(boxes))]
				to := boxes[rng.IntN(len(boxes))] // may equal box: a renumbering move
				set := mailstore.UIDSet{{Lo: mailstore.UID(1 + rng.IntN(30)), Hi: mailstore.UID(1 + rng.IntN(60))}}.Normalize()
				var err error
				switch rng.IntN(7) {
				case 0:
					raw := sizedMessage(w*1000+i, 200+rng.IntN(800))
					_, err = st.Append(ctx, acct, []mailstore.AppendRequest{
						{MailboxID: box, Raw: raw, Flags: flagSets[rng.IntN(len(flagSets))]},
						{MailboxID: to, Raw: raw},
					})
				case 1:
					// Two accounts in one delivery, with and without flags.
					_, err = st.Deliver(ctx, mailstore.Delivery{Raw: sizedMessage(w*1000+i, 300), Recipients: []mailstore.DeliveryTarget{
						{AccountID: acct, MailboxID: box, Flags: flagSets[rng.IntN(len(flagSets))]},
						{AccountID: other},
					}})
				case 2:
					_, err = st.StoreFlags(ctx, acct, mailstore.StoreFlagsRequest{MailboxID: box, UIDs: set,
						Mode: mailstore.StoreFlagsMode(rng.IntN(3)), Flags: flagSets[rng.IntN(len(flagSets))]})
				case 3:
					_, err = st.Copy(ctx, acct, box, set, to)
				case 4:
					_, err = st.Move(ctx, acct, box, set, to)
				case 5:
					_, _, err = st.Expunge(ctx, acct, box, set)
				case 6:
					var dels []mailstore.DeletedMessage
					if dels, err = st.ListDeleted(ctx, acct); err == nil && len(dels) > 0 {
						// Another worker may restore the same one first.
						_, err = st.RestoreDeleted(ctx, acct, []int64{dels[rng.IntN(len(dels))].ID})
						if errors.Is(err, mailstore.ErrNoSuchMessage) {
							err = nil
						}
					}
				}
				if err != nil {
					t.Errorf("worker %d op %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	checkCounts(t, nodes[1], conn, acct, other)

	// Renaming INBOX moves its messages to a new mailbox (RFC 9051
	// section 6.3.6); deleting a mailbox takes its messages away; a
	// restore into a deleted mailbox lands in INBOX.
	if err := nodes[0].RenameMailbox(ctx, acct, mailstore.InboxName, "Old"); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, nodes[0], conn, acct, other)
	if err := nodes[1].DeleteMailbox(ctx, acct, "A"); err != nil {
		t.Fatal(err)
	}
	dels, err := nodes[0].ListDeleted(ctx, acct)
	if err != nil || len(dels) == 0 {
		t.Fatalf("deleted messages: %d, %v", len(dels), err)
	}
	var ids []int64
	for _, d := range dels[len(dels)-min(len(dels), 5):] {
		ids = append(ids, d.ID)
	}
	if _, err := nodes[0].RestoreDeleted(ctx, acct, ids); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, nodes[0], conn, acct, other)
}
