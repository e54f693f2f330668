package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// Converting an index made in an earlier format (ftsTable). Open finds
// the old table and creates blob_fts_next beside it; the indexer copies
// the entries across in chunks, oldest first (progress in fts_state, so a
// restart resumes), while everything it indexes or drops meanwhile goes to
// both tables. When the copy is done, one transaction drops the old table
// and renames the new one. Searches use the query of whichever format
// blob_fts has in their snapshot (search.go).

// convertChunk is how many entries one conversion transaction copies.
const convertChunk = 256

// ftsPut indexes one entry (in the new table too while converting, when
// blob_fts is still in the old format and holds the text itself).
func (s *Store) ftsPut(ctx context.Context, tx *sql.Tx, id int64, header, body string) error {
	if !s.ftsConverting.Load() {
		return putEntry(ctx, tx, "blob_fts", id, header, body)
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO blob_fts (rowid, header, body) VALUES (?, ?, ?)`, id, header, body); err != nil {
		return err
	}
	return putEntry(ctx, tx, "blob_fts_next", id, header, body)
}

// putEntry writes an entry's text into fts_text and its terms into the
// current-format index table table.
func putEntry(ctx context.Context, tx *sql.Tx, table string, id int64, header, body string) error {
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO fts_text (id, header, body) VALUES (?, ?, ?)`, id, header, body); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO `+table+` (rowid, terms) VALUES (?, ?)`, id, entryTerms(header, body))
	return err
}

// ftsDelete takes one entry out of the index (both tables while
// converting).
func (s *Store) ftsDelete(ctx context.Context, tx *sql.Tx, id int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM blob_fts WHERE rowid = ?`, id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM fts_text WHERE id = ?`, id); err != nil {
		return err
	}
	if s.ftsConverting.Load() {
		_, err := tx.ExecContext(ctx, `DELETE FROM blob_fts_next WHERE rowid = ?`, id)
		return err
	}
	return nil
}

// convertText runs a conversion to its end (or to Close); only the indexer
// goroutine calls it. A failure leaves the conversion for the next wake-up.
func (s *Store) convertText() {
	ctx := context.Background()
	for s.ftsConverting.Load() {
		select {
		case <-s.quit:
			return
		default:
		}
		if err := s.convertChunk(ctx); err != nil {
			return
		}
	}
}

// convertChunk copies the next entries into the new table, or swaps the
// tables when none are left.
func (s *Store) convertChunk(ctx context.Context) error {
	var done bool
	err := s.applyIndex(ctx, func(tx *sql.Tx) error {
		var from int64
		if err := tx.QueryRowContext(ctx, `SELECT v FROM fts_state WHERE k = 'convert_from'`).Scan(&from); err != nil {
			return err
		}
		var last sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT max(rowid) FROM (SELECT rowid FROM blob_fts WHERE rowid > ? ORDER BY rowid LIMIT ?)`, from, convertChunk).Scan(&last)
		if err != nil {
			return err
		}
		if !last.Valid {
			done = true
			_, err := tx.ExecContext(ctx, `DROP TABLE blob_fts;
				ALTER TABLE blob_fts_next RENAME TO blob_fts;
				DELETE FROM fts_state WHERE k = 'convert_from'`)
			return err
		}
		if err := convertRange(ctx, tx, from, last.Int64); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE fts_state SET v = ? WHERE k = 'convert_from'`, last.Int64)
		return err
	})
	if err != nil {
		return fmt.Errorf("convert full-text index: %w", err)
	}
	if done {
		s.ftsConverting.Store(false)
	}
	return nil
}

// convertRange copies the old table's entries with rowids in (from, to]
// into the new one, their text into fts_text.
func convertRange(ctx context.Context, tx *sql.Tx, from, to int64) error {
	type entry struct {
		id           int64
		header, body string
	}
	var entries []entry
	rows, err := tx.QueryContext(ctx, `SELECT rowid, header, body FROM blob_fts WHERE rowid > ? AND rowid <= ?`, from, to)
	if err != nil {
		return err
	}
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.id, &e.header, &e.body); err != nil {
			rows.Close()
			return err
		}
		entries = append(entries, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, e := range entries {
		if err := putEntry(ctx, tx, "blob_fts_next", e.id, e.header, e.body); err != nil {
			return err
		}
	}
	return nil
}
