package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
)

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	s, dir := openTest(t)
	a := addAccount(t, s, "mig@example.test")
	s.Close()
	// The writer holds its connection while the store is open: the
	// steps below run on the file, as Open's migrate does.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, DBFile)+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := schemaVersion(ctx, db); err != nil || v != len(ms) {
		t.Fatalf("version %d, %v; want %d", v, err, len(ms))
	}

	// A failing step leaves nothing behind: it runs in one transaction.
	bad := migration{version: len(ms) + 1, name: "bad.sql", sql: `CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);`}
	if err := applyMigration(ctx, db, bad); err == nil {
		t.Fatal("bad migration succeeded")
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'half'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("half-applied migration left table: %d, %v", n, err)
	}
	if v, _ := schemaVersion(ctx, db); v != len(ms) {
		t.Fatalf("version moved to %d", v)
	}

	// A good step on existing data applies once and keeps the data.
	good := migration{version: len(ms) + 1, name: "good.sql", sql: `ALTER TABLE accounts ADD COLUMN note TEXT NOT NULL DEFAULT 'x';`}
	for range 2 {
		if err := applyMigration(ctx, db, good); err != nil {
			t.Fatal(err)
		}
	}
	var note string
	if err := db.QueryRowContext(ctx, `SELECT note FROM accounts WHERE id = ?`, a.ID).Scan(&note); err != nil || note != "x" {
		t.Fatalf("migrated row: %q, %v", note, err)
	}
	db.Close()

	// This program does not know version len(ms)+1: it refuses the store.
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer store = %v", err)
	}
}

// TestMigrationFromV1 builds a version-1 database with mail in it, then
// opens it with this program: migration 0002 must count the old mail.
func TestMigrationFromV1(t *testing.T) {
	ctx := context.Background()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	registerFunctions()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, DBFile)+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	if err := applyMigration(ctx, db, ms[0]); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO domains VALUES ('example.test', 1)`,
		`INSERT INTO accounts (id, name, domain, password_hash, modseq, created) VALUES (1, 'old@example.test', 'example.test', 'h', 3, 1)`,
		`INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext, highestmodseq, modseq, changed) VALUES (1, 1, 'INBOX', 7, 3, 3, 1, 1)`,
		`INSERT INTO messages (account_id, mailbox_id, uid, modseq, createmodseq, flags, internal_date, save_date, sent_day, size, blob_id, email_id, thread_id)
			VALUES (1, 1, 1, 2, 2, 1, 1, 1, 20060102, 100, 'b1', 'e1', 't1'), (1, 1, 2, 3, 3, 8, 1, 1, 20060102, 50, 'b2', 'e2', 't2')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Status(ctx, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 2 || st.Unseen != 1 || st.Deleted != 1 || st.Size != 150 || st.UIDNext != 3 || st.UIDValidity != 7 {
		t.Fatalf("Status after migration = %+v", st)
	}
	checkCounts(t, s)
}

// checkCounts compares every mailbox's trigger-kept counts with a count
// of its rows.
func checkCounts(t testing.TB, s *Store) {
	t.Helper()
	rows, err := s.rdb.Query(`SELECT b.id, b.n_messages, b.n_unseen, b.n_deleted, b.n_size,
		count(m.id), coalesce(sum(m.flags & 1 = 0), 0), coalesce(sum(m.flags & 8 <> 0), 0), coalesce(sum(m.size), 0)
		FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id GROUP BY b.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var kept, counted [4]int64
		if err := rows.Scan(&id, &kept[0], &kept[1], &kept[2], &kept[3], &counted[0], &counted[1], &counted[2], &counted[3]); err != nil {
			t.Fatal(err)
		}
		if kept != counted {
			t.Errorf("mailbox %d: kept counts %v, rows say %v", id, kept, counted)
		}
	}
}

// TestMigrationFromV2 builds a version-2 database (a per-message-row
// full-text index, no line sizes) with mail in it, including a copy that
// shares its blob and a retained message, then opens it with this
// program: 0003 must fill in line sizes from the blobs, 0004 must move the
// index to one entry per blob with search answers unchanged.
func TestMigrationFromV2(t *testing.T) {
	ctx := context.Background()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	registerFunctions()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, DBFile)+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:2] {
		if err := applyMigration(ctx, db, m); err != nil {
			t.Fatal(err)
		}
	}
	raw1 := []byte("Subject: one\nX-Tag: Old\n\nan apricot\nno final line end")
	raw2 := []byte("Subject: two\r\n\r\nplain crlf zq\r\n")
	raw3 := []byte("Subject: three\r\n\r\nretained quince\r\n")
	const b1, b2, b3 = "blob1", "blob2", "blob3"
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO domains VALUES ('example.test', 1)`, nil},
		{`INSERT INTO accounts (id, name, domain, password_hash, modseq, created) VALUES (1, 'old@example.test', 'example.test', 'h', 4, 1)`, nil},
		{`INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext, highestmodseq, modseq, changed) VALUES (1, 1, 'INBOX', 7, 4, 4, 1, 1), (2, 1, 'Archive', 8, 1, 1, 1, 1)`, nil},
		{`INSERT INTO blobs (id, refs, size, data) VALUES (?, 2, ?, ?), (?, 1, ?, ?), (?, 1, ?, ?)`, []any{b1, len(raw1), raw1, b2, len(raw2), raw2, b3, len(raw3), raw3}},
		// Rows 1 and 3 are a message and its copy: one blob, two index rows.
		{`INSERT INTO messages (id, account_id, mailbox_id, uid, modseq, createmodseq, flags, internal_date, save_date, sent_day, size, blob_id, email_id, thread_id)
			VALUES (1, 1, 1, 1, 2, 2, 0, 1, 1, 20060102, ?, ?, 'e1', 't1'), (2, 1, 1, 2, 3, 3, 0, 1, 1, 20060102, ?, ?, 'e2', 't2'),
				(3, 1, 1, 3, 4, 4, 0, 1, 1, 20060102, ?, ?, 'e1', 't1')`, []any{len(raw1), b1, len(raw2), b2, len(raw1), b1}},
		{`INSERT INTO messages_fts (rowid, header, body) VALUES (1, 'Subject: one' || char(13, 10) || 'X-Tag: Old' || char(13, 10), 'an apricot no final line end'),
			(2, 'Subject: two', 'plain crlf zq'), (3, 'Subject: one' || char(13, 10) || 'X-Tag: Old' || char(13, 10), 'an apricot no final line end')`, nil},
		{`INSERT INTO deleted_messages (account_id, mailbox_id, mailbox_name, uid, flags, keywords, internal_date, expunged, size, hdr_from, hdr_subject, blob_id)
			VALUES (1, 1, 'INBOX', 9, 0, '', 1, 1, ?, '', 'three', ?)`, []any{len(raw3), b3}},
	} {
		if _, err := db.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	db.Close()

	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := writerSchemaVersion(s); err != nil || v != len(ms) {
		t.Fatalf("version %d, %v; want %d", v, err, len(ms))
	}
	want := map[mailstore.UID][]byte{1: raw1, 2: raw2, 3: raw1}
	err = s.Fetch(ctx, 1, 1, allUIDs, mailstore.FetchSize, 0, func(m *mailstore.Message) error {
		if m.LineSize != mailstore.LineSize(want[m.UID]) {
			t.Errorf("uid %d: LineSize %d, want %d", m.UID, m.LineSize, mailstore.LineSize(want[m.UID]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var oldIndex int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'messages_fts'`).Scan(&oldIndex); err != nil || oldIndex != 0 {
		t.Fatalf("old index left: %d, %v", oldIndex, err)
	}
	if e, r := textCounts(t, s); e != 2 || r != 2 {
		t.Fatalf("%d entries, %d FTS rows; want one per blob of a message row (2)", e, r)
	}
	checkText(t, s)
	for _, c := range []struct {
		key  *mailstore.SearchKey
		want []mailstore.UID
	}{
		{&mailstore.SearchKey{Op: mailstore.SearchBody, Value: "APRICOT"}, []mailstore.UID{1, 3}},
		{&mailstore.SearchKey{Op: mailstore.SearchText, Value: "zq"}, []mailstore.UID{2}},
		{&mailstore.SearchKey{Op: mailstore.SearchHeader, Name: "x-tag", Value: "old"}, []mailstore.UID{1, 3}},
		{&mailstore.SearchKey{Op: mailstore.SearchNot, Children: []*mailstore.SearchKey{{Op: mailstore.SearchBody, Value: "crlf"}}}, []mailstore.UID{1, 3}},
	} {
		if got := searchUIDs(t, s, 1, 1, c.key); !slices.Equal(got, c.want) {
			t.Errorf("search %+v = %v, want %v", c.key, got, c.want)
		}
	}
	// The retained message had no index row; restored, it gets an entry.
	del, err := s.ListDeleted(ctx, 1)
	if err != nil || len(del) != 1 {
		t.Fatalf("ListDeleted = %v, %v", del, err)
	}
	res, err := s.RestoreDeleted(ctx, 1, []int64{del[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	if got := searchUIDs(t, s, 1, 1, &mailstore.SearchKey{Op: mailstore.SearchBody, Value: "quince"}); !slices.Equal(got, []mailstore.UID{res[0].UID}) {
		t.Errorf("search restored = %v, want [%d]", got, res[0].UID)
	}
	checkText(t, s)
	checkCounts(t, s)
}

// TestMigrationMessageMeta builds a version-13 database whose message rows
// carry ENVELOPE, BODYSTRUCTURE and the preview, as a store of that
// version wrote them, and opens it: 0014 must move them to message_meta
// with FETCH answers unchanged, keep the counts, and leave rows that
// expunge, copy and move keep in step with their metadata.
func TestMigrationMessageMeta(t *testing.T) {
	ctx := context.Background()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	// The reference: the same messages in a current store.
	ref, _ := openTest(t)
	ra := addAccount(t, ref, "meta@example.test")
	rin := inbox(t, ref, ra.ID)
	raws := [][]byte{
		msg("one", "1@x", "first body"),
		[]byte("From: A <a@x.test>\r\nTo: b@x.test, c@x.test\r\nSubject: two\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--b--\r\n"),
	}
	for _, raw := range raws {
		if _, err := ref.Append(ctx, ra.ID, []mailstore.AppendRequest{{MailboxID: rin.ID, Raw: raw}}); err != nil {
			t.Fatal(err)
		}
	}
	const meta = mailstore.FetchEnvelope | mailstore.FetchBody | mailstore.FetchPreview | mailstore.FetchSize
	fetchAll := func(s *Store, acct, mbox int64) []*mailstore.Message {
		var out []*mailstore.Message
		if err := s.Fetch(ctx, acct, mbox, allUIDs, meta, 0, func(m *mailstore.Message) error {
			out = append(out, m)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := fetchAll(ref, ra.ID, rin.ID)
	rows, err := ref.rdb.QueryContext(ctx, `SELECT m.uid, m.flags, m.size, m.line_size, m.blob_id, m.text_id, m.email_id, m.thread_id,
		m.hdr_subject, t.envelope, t.body, t.preview FROM messages m JOIN message_meta t ON t.id = m.id ORDER BY m.uid`)
	if err != nil {
		t.Fatal(err)
	}
	var old [][]any
	for rows.Next() {
		v := make([]any, 12)
		p := make([]any, 12)
		for i := range v {
			p[i] = &v[i]
		}
		if err := rows.Scan(p...); err != nil {
			t.Fatal(err)
		}
		old = append(old, v)
	}
	rows.Close()

	dir := t.TempDir()
	registerFunctions()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, DBFile)+"?_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:13] {
		if err := applyMigration(ctx, db, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO domains VALUES ('example.test', 1)`,
		`INSERT INTO accounts (id, name, domain, password_hash, modseq, created) VALUES (1, 'old@example.test', 'example.test', 'h', 3, 1)`,
		`INSERT INTO mailboxes (id, account_id, name, special_use, uidvalidity, uidnext, highestmodseq, modseq, changed) VALUES
			(1, 1, 'INBOX', '', 7, 3, 3, 1, 1), (2, 1, 'Archive', '\Archive', 8, 1, 1, 1, 1)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i, v := range old {
		if _, err := db.ExecContext(ctx, `INSERT INTO blobs (id, refs, size, data, text_id) VALUES (?, 1, ?, ?, ?)`, v[4], len(raws[i]), raws[i], v[5]); err != nil {
			t.Fatal(err)
		}
		args := append([]any{rowID(1, mailstore.UID(v[0].(int64)))}, v...)
		if _, err := db.ExecContext(ctx, `INSERT INTO messages (id, account_id, mailbox_id, uid, modseq, createmodseq, flags, internal_date,
			save_date, sent_day, size, line_size, blob_id, text_id, email_id, thread_id, hdr_subject, envelope, body, preview)
			VALUES (?1, 1, 1, ?2, 2, 2, ?3, 1, 1, 20060102, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)`, args...); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := fetchAll(s, 1, 1)
	if len(got) != len(want) {
		t.Fatalf("%d messages after the migration, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i].Envelope, want[i].Envelope) || !reflect.DeepEqual(got[i].Body, want[i].Body) ||
			got[i].Preview != want[i].Preview || got[i].LineSize != want[i].LineSize {
			t.Errorf("uid %d after the migration:\n%+v\nwant\n%+v", got[i].UID, got[i], want[i])
		}
	}
	var seq, metaRows, fkProblems int
	if err := s.rdb.QueryRow(`SELECT (SELECT count(*) FROM sqlite_sequence WHERE name = 'messages'), (SELECT count(*) FROM message_meta),
		(SELECT count(*) FROM pragma_foreign_key_check)`).Scan(&seq, &metaRows, &fkProblems); err != nil {
		t.Fatal(err)
	}
	if seq != 0 || metaRows != 2 || fkProblems != 0 {
		t.Fatalf("sqlite_sequence rows %d, message_meta rows %d, foreign key problems %d; want 0, 2, 0", seq, metaRows, fkProblems)
	}
	checkCounts(t, s)

	// Copy takes the metadata along, move keeps it, expunge drops it.
	if _, err := s.Copy(ctx, 1, 1, mailstore.UIDSet{{Lo: 2, Hi: 2}}, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Move(ctx, 1, 1, mailstore.UIDSet{{Lo: 1, Hi: 1}}, 2); err != nil {
		t.Fatal(err)
	}
	moved := fetchAll(s, 1, 2)
	if len(moved) != 2 || !reflect.DeepEqual(moved[0].Body, want[1].Body) || !reflect.DeepEqual(moved[1].Envelope, want[0].Envelope) {
		t.Fatalf("Archive after copy and move: %+v", moved)
	}
	if _, err := s.StoreFlags(ctx, 1, mailstore.StoreFlagsRequest{MailboxID: 1, UIDs: allUIDs, Mode: mailstore.FlagsAdd, Flags: []string{`\Deleted`}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Expunge(ctx, 1, 1, allUIDs); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.QueryRow(`SELECT count(*) FROM message_meta t WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = t.id)`).Scan(&metaRows); err != nil || metaRows != 0 {
		t.Fatalf("%d message_meta rows without a message (%v)", metaRows, err)
	}
	checkCounts(t, s)
}
