package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

func TestTrigramQuery(t *testing.T) {
	for _, c := range []struct{ col, in, want string }{
		{"", "abc", `"abc"`},
		{"", "abcd", `"abc" AND "bcd"`},
		{"body", "ab ab", `body : ("ab " AND "b a" AND " ab")`},
		{"", "abcABC", `"abc" AND "bcA" AND "cAB"`},
		{"", `a"bc`, `"a""b" AND """bc"`},
		{"", "grüße", `"grü" AND "rüß" AND "üße"`},
	} {
		if got := trigramQuery(c.col, c.in); got != c.want {
			t.Errorf("trigramQuery(%q, %q) = %s, want %s", c.col, c.in, got, c.want)
		}
	}
}

// substringCases: the index only narrows a search to entries holding
// every trigram of the needle; the results are those holding the needle.
func checkSubstringSearch(t *testing.T, s *Store, acct, mbox int64, when string) {
	t.Helper()
	for _, c := range []struct {
		op   mailstore.SearchOp
		name string // for HEADER
		v    string
		want []mailstore.UID
	}{
		{mailstore.SearchBody, "", "quarterly budget", []mailstore.UID{1}},
		{mailstore.SearchBody, "", "QUARTERLY Budget", []mailstore.UID{1}},
		{mailstore.SearchBody, "", "budget quarterly", []mailstore.UID{2}},
		{mailstore.SearchBody, "", "budgetquarterly", nil},
		{mailstore.SearchText, "", "quarterly budget", []mailstore.UID{1, 3}},
		{mailstore.SearchBody, "", "elephant", []mailstore.UID{3}},
		{mailstore.SearchText, "", `say "hi"`, []mailstore.UID{2}},
		// Too short for the index, or with no trigram it holds
		// (ftsterms.go): the stored text is tested directly.
		{mailstore.SearchBody, "", "an", []mailstore.UID{3}},
		{mailstore.SearchBody, "", "Y, S", []mailstore.UID{2}},
		{mailstore.SearchText, "", "y, s", []mailstore.UID{2}},
		{mailstore.SearchBody, "", "y b", []mailstore.UID{1}},
		{mailstore.SearchBody, "", "y \"h", []mailstore.UID{2}},
		// A header without a column of its own: the stored header text.
		{mailstore.SearchHeader, "message-id", "2@X", []mailstore.UID{2}},
	} {
		k := &mailstore.SearchKey{Op: c.op, Name: c.name, Value: c.v}
		if got := searchUIDs(t, s, acct, mbox, k); !slices.Equal(got, c.want) {
			t.Errorf("%s: search %d %q = %v, want %v", when, c.op, c.v, got, c.want)
		}
	}
}

func appendSubstringMessages(t *testing.T, s *Store, acct, mbox int64) {
	t.Helper()
	for _, m := range [][]byte{
		msg("one", "1@x", "the quarterly budget meeting"),
		msg("two", "2@x", `budget quarterly, say "hi"`),
		msg("Quarterly Budget", "3@x", "an elephant"),
	} {
		if _, err := s.Append(context.Background(), acct, []mailstore.AppendRequest{{MailboxID: mbox, Raw: m}}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTextSearchIsSubstring(t *testing.T) {
	s, _ := openTest(t)
	s.ftsOff.Store(true)
	a := addAccount(t, s, "sub@example.test")
	in := inbox(t, s, a.ID)
	appendSubstringMessages(t, s, a.ID, in.ID)
	checkSubstringSearch(t, s, a.ID, in.ID, "pending")
	s.ftsOff.Store(false)
	waitIndexed(t, s)
	checkSubstringSearch(t, s, a.ID, in.ID, "indexed")
}

// TestTextConvertOldIndex: an index made in an earlier format is rebuilt
// beside the old one, which serves searches meanwhile, and then replaces
// it; text indexed during the conversion is in the new one.
func TestTextConvertOldIndex(t *testing.T) {
	for _, old := range []string{
		`fts5(header, body, tokenize = 'trigram')`,
		`fts5(header, body, tokenize = 'trigram', detail = column)`,
	} {
		t.Run(old, func(t *testing.T) { testConvertFrom(t, old, false) })
	}
	// A conversion to detail=column left unfinished by an earlier
	// release starts over into the current format.
	t.Run("unfinished", func(t *testing.T) {
		testConvertFrom(t, `fts5(header, body, tokenize = 'trigram')`, true)
	})
}

func testConvertFrom(t *testing.T, old string, unfinished bool) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := addAccount(t, s, "conv@example.test")
	in := inbox(t, s, a.ID)
	appendSubstringMessages(t, s, a.ID, in.ID)
	waitIndexed(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Put the index back in the old format, as an earlier release left it.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FTSFile))
	if err != nil {
		t.Fatal(err)
	}
	setup := `CREATE TABLE old_copy AS SELECT id, header, body FROM fts_text;
		DROP TABLE blob_fts;
		DROP TABLE fts_text;
		CREATE VIRTUAL TABLE blob_fts USING ` + old + `;
		INSERT INTO blob_fts (rowid, header, body) SELECT id, header, body FROM old_copy;
		DROP TABLE old_copy`
	if unfinished {
		setup += `; CREATE VIRTUAL TABLE blob_fts_next USING fts5(header, body, tokenize = 'trigram', detail = column);
			INSERT INTO blob_fts_next (rowid, header, body) SELECT rowid, header, body FROM blob_fts WHERE rowid = 1;
			INSERT INTO fts_state (k, v) VALUES ('convert_from', 1)`
	}
	if _, err := db.Exec(setup); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err = Open(dir, Options{holdIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.ftsConverting.Load() {
		t.Fatal("the old index is not being converted")
	}
	checkSubstringSearch(t, s, a.ID, in.ID, "at open")
	s.ftsOff.Store(false)
	s.kickIndexer()
	if _, err := s.Append(context.Background(), a.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: msg("four", "4@x", "a giraffe")}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.ftsConverting.Load() {
		if time.Now().After(deadline) {
			t.Fatal("conversion not done after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitIndexed(t, s)
	var def string
	var left, rows int
	if err := s.fdb.QueryRow(`SELECT (SELECT sql FROM sqlite_schema WHERE name = 'blob_fts'),
		(SELECT count(*) FROM fts_state), (SELECT count(*) FROM blob_fts)`).Scan(&def, &left, &rows); err != nil {
		t.Fatal(err)
	}
	if !isCurrentFTS(def) || left != 0 || rows != 4 {
		t.Fatalf("after the conversion: %q, %d state rows, %d index rows; want the current format, 0, 4", def, left, rows)
	}
	checkSubstringSearch(t, s, a.ID, in.ID, "converted")
	if got := searchUIDs(t, s, a.ID, in.ID, &mailstore.SearchKey{Op: mailstore.SearchBody, Value: "giraffe"}); !slices.Equal(got, []mailstore.UID{4}) {
		t.Errorf("BODY giraffe = %v, want [4]", got)
	}
	checkText(t, s)
}
