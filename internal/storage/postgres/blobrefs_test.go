package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
)

// checkBlobRefs verifies every blob's refs equals its references (message
// rows, retention rows, queue entries) and every referenced blob exists
// with its bytes.
func checkBlobRefs(t testing.TB, dsn string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `WITH r AS (
			SELECT blob_id FROM messages UNION ALL SELECT blob_id FROM deleted_messages UNION ALL SELECT blob_id FROM queue),
		c AS (SELECT blob_id, count(*) AS n FROM r GROUP BY blob_id)
		SELECT coalesce(c.blob_id, b.id), coalesce(c.n, 0), coalesce(b.refs, -1), (d.id IS NOT NULL)
		FROM c FULL JOIN blobs b ON b.id = c.blob_id LEFT JOIN blob_data d ON d.id = coalesce(c.blob_id, b.id)`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n, refs int64
		var data bool
		if err := rows.Scan(&id, &n, &refs, &data); err != nil {
			t.Fatal(err)
		}
		if n > 0 && (refs != n || !data) {
			t.Errorf("blob %s: %d references, refs=%d (-1: no row), bytes present=%v", id[:12], n, refs, data)
		}
		if n == 0 && refs > 0 {
			t.Errorf("blob %s: no references, refs=%d (leak)", id[:12], refs)
		}
	}
}

// An operator deletes alice while the hourly purge removes her expunged
// copy of a message bob also has: both used to dereference the shared
// blob for the same retention row, so bob's message lost its bytes at the
// next purge. The timing is stretched by holding a row Purge needs; on a
// slow machine the interleaving may be missed (the test then passes
// without having raced), never the other way round.
func TestDeleteAccountRacingPurgeKeepsSharedBlob(t *testing.T) {
	dsn := freshDatabase(t)
	ctx := context.Background()
	nodeA := openStore(t, dsn) // runs the retention job
	nodeB := openStore(t, dsn) // the operator's `roost account delete`
	alice := mustAccount(t, nodeA, "alice@example.test")
	bob := mustAccount(t, nodeA, "bob@example.test")
	carol := mustAccount(t, nodeA, "carol@example.test")

	raw := []byte("From: x@example.org\r\nSubject: shared\r\nMessage-ID: <shared@test>\r\n\r\nshared body\r\n")
	if _, err := nodeA.Deliver(ctx, mailstore.Delivery{Raw: raw, Recipients: []mailstore.DeliveryTarget{{AccountID: alice.ID}, {AccountID: bob.ID}}}); err != nil {
		t.Fatal(err)
	}
	ain, _ := nodeA.GetMailbox(ctx, alice.ID, "INBOX")
	if _, _, err := nodeA.Expunge(ctx, alice.ID, ain.ID, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}); err != nil {
		t.Fatal(err)
	}
	// carol has an old tombstone, so Purge updates her mailbox row.
	deliver(t, nodeA, carol.ID, "carol")
	cin, _ := nodeA.GetMailbox(ctx, carol.ID, "INBOX")
	if _, _, err := nodeA.Expunge(ctx, carol.ID, cin.ID, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}); err != nil {
		t.Fatal(err)
	}
	checkBlobRefs(t, dsn)

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "UPDATE tombstones SET expunged = expunged - interval '1 day'"); err != nil {
		t.Fatal(err)
	}
	// Something (any IMAP write to carol's mailbox) holds her mailbox row
	// a moment: this only stretches Purge's transaction.
	hold, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec(ctx, "SELECT 1 FROM mailboxes WHERE id = $1 FOR UPDATE", cin.ID); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	purged := make(chan error, 1)
	go func() {
		_, err := nodeA.Purge(ctx, future, time.Now())
		purged <- err
	}()
	time.Sleep(500 * time.Millisecond) // Purge has deleted alice's retention row and decremented, uncommitted
	deleted := make(chan error, 1)
	go func() { deleted <- nodeB.DeleteAccount(ctx, "alice@example.test") }()
	time.Sleep(500 * time.Millisecond) // DeleteAccount has read the retention row, waits on the blob row
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-purged; err != nil {
		t.Fatalf("Purge: %v", err)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	checkBlobRefs(t, dsn)
	// The next hourly purge frees bob's blob.
	if _, err := nodeA.Purge(ctx, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	bin, _ := nodeA.GetMailbox(ctx, bob.ID, "INBOX")
	var blob string
	err = nodeA.Fetch(ctx, bob.ID, bin.ID, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}, mailstore.FetchIDs, 0, func(m *mailstore.Message) error {
		blob = m.BlobID
		return nil
	})
	if err != nil || blob == "" {
		t.Fatalf("bob's message row: %v %q", err, blob)
	}
	if _, err := nodeA.ReadBlob(ctx, blob); err != nil {
		t.Fatalf("bob's message is unreadable: %v", err)
	}
}
