package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/storage/postgres"
)

// TestMigrateBlobText upgrades a database whose message rows hold their
// text (schema version 6): migration 0007 keeps one text row per blob,
// searches find what they found before, and later writes, copies and
// purges keep blob_text in step.
func TestMigrateBlobText(t *testing.T) {
	ctx := context.Background()
	dsn := freshDatabase(t)
	if err := postgres.MigrateTo(ctx, dsn, 6); err != nil {
		t.Fatalf("migrate to version 6: %v", err)
	}
	conn := connect(t, dsn)
	raw := "Subject: old\r\nX-Note: kept header\r\n\r\nthe purple elephant\r\n"
	setup := []string{
		`INSERT INTO domains VALUES ('example.test', now())`,
		`INSERT INTO accounts (id, name, domain, password_hash, modseq, used_bytes, used_messages, created)
			VALUES (1, 'old@example.test', 'example.test', 'x', 2, 300, 3, now())`,
		`INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext, highestmodseq, modseq, n_messages, n_unseen, n_size)
			VALUES (1, 1, 'INBOX', 7, 4, 2, 1, 3, 3, 300)`,
		`INSERT INTO blobs VALUES ('b1', 2, 100), ('b2', 1, 100)`,
		`INSERT INTO blob_data VALUES ('b1', convert_to('` + raw + `', 'UTF8')), ('b2', convert_to('Subject: other` + "\r\n\r\n" + `grey mouse` + "\r\n" + `', 'UTF8'))`,
		`SELECT setval('accounts_id_seq', 1)`, `SELECT setval('mailboxes_id_seq', 1)`,
	}
	// UIDs 1 and 2 share blob b1, as a message delivered to two
	// mailboxes or copied does; each row had its own copy of the text.
	for i, m := range []struct{ blob, header, body string }{
		{"b1", "Subject: old\nX-Note: kept header\n", "the purple elephant"},
		{"b1", "Subject: old\nX-Note: kept header\n", "the purple elephant"},
		{"b2", "Subject: other\n", "grey mouse"},
	} {
		setup = append(setup, fmt.Sprintf(`INSERT INTO messages (mailbox_id, uid, account_id, modseq, createmodseq, flags, internal_date, save_date, sent_day, size, blob_id, email_id, thread_id, header_text, body_text)
			VALUES (1, %d, 1, 2, 2, ARRAY[]::text[], now(), now(), current_date, 100, '%s', 'M%d', 'T', '%s', '%s')`, i+1, m.blob, i+1, m.header, m.body))
	}
	for _, q := range setup {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("version 6 data: %s: %v", q, err)
		}
	}
	st := openStore(t, dsn) // migrates to the current version
	textRows := func() int {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM blob_text`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := textRows(); n != 2 {
		t.Errorf("blob_text has %d rows after the upgrade, want 2 (one per blob)", n)
	}
	search := func(k *mailstore.SearchKey) []mailstore.UID {
		t.Helper()
		got, err := st.Search(ctx, 1, 1, k)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, c := range []struct {
		key  *mailstore.SearchKey
		want []mailstore.UID
	}{
		{&mailstore.SearchKey{Op: mailstore.SearchBody, Value: "PURPLE"}, []mailstore.UID{1, 2}},
		{&mailstore.SearchKey{Op: mailstore.SearchText, Value: "mouse"}, []mailstore.UID{3}},
		{&mailstore.SearchKey{Op: mailstore.SearchHeader, Name: "X-Note", Value: "kept"}, []mailstore.UID{1, 2}},
		{&mailstore.SearchKey{Op: mailstore.SearchBody, Value: "giraffe"}, nil},
	} {
		if got := search(c.key); !slices.Equal(got, c.want) {
			t.Errorf("after upgrade, search %d %q = %v, want %v", c.key.Op, c.key.Value, got, c.want)
		}
	}

	// A copy shares the blob's text; a new message brings its own.
	arch, err := st.CreateMailbox(ctx, 1, "Archive", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Copy(ctx, 1, 1, mailstore.UIDSetOf(3), arch.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Search(ctx, 1, arch.ID, &mailstore.SearchKey{Op: mailstore.SearchBody, Value: "grey"}); err != nil || len(got) != 1 {
		t.Errorf("copy: search = %v, %v; want its one message", got, err)
	}
	deliver(t, st, 1, "new")
	if n := textRows(); n != 3 {
		t.Errorf("blob_text has %d rows after a delivery, want 3", n)
	}

	// Once no message, retention row or queue entry holds a blob, the
	// purge takes its text with it.
	if _, _, err := st.Expunge(ctx, 1, 1, mailstore.UIDSetOf(3)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Expunge(ctx, 1, arch.ID, mailstore.UIDSetOf(1)); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if _, err := st.Purge(ctx, later, later); err != nil {
		t.Fatal(err)
	}
	var left bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blob_text WHERE id = 'b2')`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left {
		t.Error("blob b2 was purged but its text is still in blob_text")
	}
}
