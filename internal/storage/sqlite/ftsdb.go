package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	sqlite "modernc.org/sqlite"
)

// The full-text index (blob_fts, FTS5 over trigrams) is kept in a database file
// of its own, FTSFile, beside the store's. SQLite lets one writer at a time
// change a database; with the index in the same file, tokenising every
// delivered message took a third of the writer's time, with every sender
// waiting. In its own file it is written by the indexer goroutine, on the
// other core, while the writer goes on. Readers see it attached as "fts".
//
// The index is derived from fts_pending and is applied idempotently: the
// indexer commits text into FTSFile (synchronous=FULL) before it asks the
// writer to delete the same rows from fts_pending, so a crash between the
// two indexes them again (INSERT OR REPLACE) and loses nothing. Back up
// both files together.

// FTSFile is the full-text index's file name inside the store directory.
const FTSFile = "fts.db"

const (
	// ftsChunk is how many entries one indexing transaction takes: large
	// enough that FTS5 writes few, big segments.
	ftsChunk = 256
	// ftsQuiet is how long the indexer lets new text gather after a
	// wake-up before it indexes: one transaction for a burst.
	ftsQuiet = 100 * time.Millisecond
)

// openFTS opens (creating) the index file with one connection for the
// indexer; created reports that the index table was not there before (a
// new store, or a lost index file: see ftsrebuild.go).
func openFTS(dir string, common url.Values, wait time.Duration) (db *sql.DB, created, converting bool, err error) {
	q := cloneValues(common)
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	db, err = openOne("file:" + filepath.Join(dir, FTSFile) + "?" + q.Encode())
	if err != nil {
		return nil, false, false, fmt.Errorf("open full-text index: %w", err)
	}
	// fts_state keeps the progress of a rebuild or a conversion.
	ctx := context.Background()
	var def string
	err = retryBusy(wait, func() error {
		err := db.QueryRowContext(ctx, `SELECT coalesce((SELECT sql FROM sqlite_schema WHERE name = 'blob_fts'), '')`).Scan(&def)
		if err != nil {
			return err
		}
		_, err = db.ExecContext(ctx, ftsTable("blob_fts")+`;
			`+ftsTextTable+`;
			CREATE TABLE IF NOT EXISTS fts_state (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`)
		if err != nil || def == "" || isCurrentFTS(def) {
			return err
		}
		// An index in an earlier format: build the new one beside it
		// (ftsconvert.go); the old one serves searches until then. A
		// conversion to a format older still, left unfinished, starts
		// over.
		var next string
		err = db.QueryRowContext(ctx, `SELECT coalesce((SELECT sql FROM sqlite_schema WHERE name = 'blob_fts_next'), '')`).Scan(&next)
		if err != nil {
			return err
		}
		if next != "" && !isCurrentFTS(next) {
			if _, err := db.ExecContext(ctx, `DROP TABLE blob_fts_next; DELETE FROM fts_state WHERE k = 'convert_from'`); err != nil {
				return err
			}
		}
		_, err = db.ExecContext(ctx, ftsTable("blob_fts_next")+`;
			INSERT OR IGNORE INTO fts_state (k, v) VALUES ('convert_from', 0)`)
		return err
	})
	if err == nil {
		err = db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM fts_state WHERE k = 'convert_from')`).Scan(&converting)
	}
	if err != nil {
		db.Close()
		return nil, false, false, fmt.Errorf("create full-text index: %w", err)
	}
	return db, def == "", converting, nil
}

// ftsTable creates the index table. Its one column, terms, holds an
// entry's distinct trigrams made by ftsterms.go, for FTS5's ascii
// tokenizer; the table keeps no copy of it (contentless), and the text
// itself, which search tests for the needle, is in fts_text.
// detail=none: the index records which entries hold a term, not where.
// Positions would let the index match a needle as a phrase on its own,
// but they doubled the cost of indexing a message and the size of the
// index; search instead tests the few entries holding all the needle's
// trigrams (search.go). (FTS5's contentless_unindexed would keep the text
// in the index table, but SQLite 3.54 leaves that table's content behind
// when it renames or drops it, which a conversion does.)
func ftsTable(name string) string {
	return `CREATE VIRTUAL TABLE IF NOT EXISTS ` + name + ` USING fts5(terms,
		tokenize = 'ascii', detail = none, content = '', contentless_delete = 1)`
}

// ftsTextTable holds the text of every indexed entry.
const ftsTextTable = `CREATE TABLE IF NOT EXISTS fts_text (id INTEGER PRIMARY KEY, header TEXT NOT NULL, body TEXT NOT NULL)`

// isCurrentFTS tells an index table's definition (from sqlite_schema) is
// ftsTable's. Earlier ones: FTS5's trigram tokenizer over header and
// body (the table kept the text too), with positions, then with
// detail=column.
func isCurrentFTS(def string) bool {
	return strings.Contains(def, "contentless_delete")
}

// attachConnector opens reader connections with the index file attached
// as "fts", so one query joins messages and the index.
type attachConnector struct {
	inner driver.Connector
	path  string
}

func newAttachConnector(dsn, ftsPath string) (*attachConnector, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return &attachConnector{inner: c, path: ftsPath}, nil
}

func (c *attachConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("attach full-text index: connection cannot exec")
	}
	if _, err := ex.ExecContext(ctx, `ATTACH DATABASE ? AS fts`, []driver.NamedValue{{Ordinal: 1, Value: c.path}}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("attach full-text index: %w", err)
	}
	return conn, nil
}

func (c *attachConnector) Driver() driver.Driver { return c.inner.Driver() }

// kickIndexer wakes the indexer: text was added (or may have been, by
// another process).
func (s *Store) kickIndexer() {
	select {
	case s.ftsKick <- struct{}{}:
	default:
	}
}

// indexer runs until quit: woken after commits that added text, it waits
// ftsQuiet for more, then indexes in chunks until nothing waits. A failed
// chunk is retried at the next wake-up; the text stays searchable.
func (s *Store) indexer() {
	defer s.pollWG.Done()
	for {
		select {
		case <-s.quit:
			return
		case <-s.ftsKick:
		}
		if !s.ftsOff.Load() {
			s.rebuildText()
			s.convertText()
		}
		select {
		case <-s.quit:
			return
		case <-time.After(ftsQuiet):
		}
		for !s.ftsOff.Load() {
			n, err := s.indexChunk(ftsChunk)
			if err != nil || n < ftsChunk {
				break
			}
			select {
			case <-s.quit:
				return
			default:
			}
		}
	}
}

// indexChunk applies up to limit pending entries and dropped ids to the
// index file, then removes them from the store's lists; it returns how
// many pending entries it indexed.
func (s *Store) indexChunk(limit int) (int, error) {
	ctx := context.Background()
	type text struct {
		id           int64
		header, body string
	}
	var texts []text
	var dropped []int64
	err := s.readTx(ctx, func(tx *rtx) error {
		// A row's text is in memory, or in the row itself (written
		// before pendingtext.go), or extracted from the blob again.
		rows, err := tx.QueryContext(ctx, `SELECT p.id, p.header, p.body, coalesce(b.id, '') FROM fts_pending p
			LEFT JOIN blobs b ON b.text_id = p.id ORDER BY p.id LIMIT ?`, limit)
		if err != nil {
			return err
		}
		var fromBlob []int // indexes into texts
		var blobIDs []string
		for rows.Next() {
			var t text
			var blobID string
			if err := rows.Scan(&t.id, &t.header, &t.body, &blobID); err != nil {
				rows.Close()
				return err
			}
			if t.header == "" && t.body == "" {
				if mem, ok := s.ptexts.get(t.id); ok {
					t.header, t.body = mem.header, mem.body
				} else if blobID != "" {
					fromBlob = append(fromBlob, len(texts))
					blobIDs = append(blobIDs, blobID)
				}
			}
			texts = append(texts, t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i, k := range fromBlob {
			raw, err := s.blobs.get(ctx, tx, blobIDs[i])
			if err != nil {
				continue // gone meanwhile: nothing to index
			}
			mem := textOf(raw)
			texts[k].header, texts[k].body = mem.header, mem.body
		}
		rows, err = tx.QueryContext(ctx, `SELECT id FROM fts_dropped ORDER BY id LIMIT ?`, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			dropped = append(dropped, id)
		}
		return rows.Err()
	})
	if err != nil {
		return 0, fmt.Errorf("index text: read pending: %w", err)
	}
	if len(texts) == 0 && len(dropped) == 0 {
		return 0, nil
	}
	if err := s.applyIndex(ctx, func(tx *sql.Tx) error {
		for _, t := range texts {
			if err := s.ftsPut(ctx, tx, t.id, t.header, t.body); err != nil {
				return err
			}
		}
		for _, id := range dropped {
			if err := s.ftsDelete(ctx, tx, id); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("index text: %w", err)
	}
	ids := make([]int64, len(texts))
	for i, t := range texts {
		ids[i] = t.id
	}
	// Unsynced: losing the clearing to a power cut costs indexing the
	// entries again. Losing a note in fts_dropped would leave an entry
	// in the index for good, so that is synced.
	err = s.updateUnsynced(ctx, func(w *wtx) error {
		for _, id := range ids {
			res, err := w.exec(`DELETE FROM fts_pending WHERE id = ?`, id)
			if err != nil {
				return err
			}
			// Dropped since it was read: it went into the index all the
			// same, so take it out again next time.
			if n, _ := res.RowsAffected(); n == 0 {
				w.mustSync = true
				if _, err := w.exec(`INSERT OR IGNORE INTO fts_dropped (id) SELECT ? WHERE NOT EXISTS (SELECT 1 FROM blobs WHERE text_id = ?)`, id, id); err != nil {
					return err
				}
			}
		}
		if len(dropped) > 0 {
			w.mustSync = true
			if _, err := w.exec(`DELETE FROM fts_dropped WHERE id IN (`+placeholders(len(dropped))+`)`, int64sAny(dropped)...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("index text: clear pending: %w", err)
	}
	s.ptexts.drop(ids...)
	s.kickCheckpoint()
	return len(texts), nil
}

// applyIndex runs fn in one transaction on the index file.
func (s *Store) applyIndex(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.fdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit: a no-op
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func int64sAny(v []int64) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}

// IndexBacklog is how many text entries wait for the indexer: searches
// match them directly, more slowly. Benchmarks use it to tell the rate
// deliveries were accepted at from the rate they were also indexed at.
func (s *Store) IndexBacklog(ctx context.Context) (int, error) {
	var n int
	err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM fts_pending`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count pending text: %w", err)
	}
	return n, nil
}
