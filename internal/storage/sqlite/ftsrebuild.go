package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// Rebuilding a lost index. Once indexed, a message's text lives only in
// FTSFile (the store keeps the raw message). If that file is lost, or
// replaced by an empty one, Open finds a new index beside entries that
// are neither indexed nor pending, and the indexer re-extracts their text
// from the blobs into the index, oldest first, recording its progress in
// fts_state so that a restart resumes. Until it is done, text searches
// miss the messages not yet rebuilt; everything else works.

// rebuildChunk is how many entries one rebuild transaction takes.
const rebuildChunk = 64

// planRebuild runs at Open when the index file is new: if the store has
// entries that are not pending (indexed into a file now gone), it marks a
// rebuild from the first entry.
func planRebuild(ctx context.Context, main, fts *sql.DB) error {
	var lost bool
	err := main.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM blobs b
		WHERE b.text_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM fts_pending p WHERE p.id = b.text_id))`).Scan(&lost)
	if err != nil {
		return fmt.Errorf("check the full-text index: %w", err)
	}
	if !lost {
		return nil
	}
	if _, err := fts.ExecContext(ctx, `INSERT OR REPLACE INTO fts_state (k, v) VALUES ('rebuild_from', 0)`); err != nil {
		return fmt.Errorf("plan a full-text rebuild: %w", err)
	}
	return nil
}

// rebuildText runs a planned rebuild to its end (or to Close); only the
// indexer goroutine calls it. A failure leaves the plan for the next
// wake-up.
func (s *Store) rebuildText() {
	ctx := context.Background()
	for {
		select {
		case <-s.quit:
			return
		default:
		}
		var from int64
		err := s.fdb.QueryRowContext(ctx, `SELECT v FROM fts_state WHERE k = 'rebuild_from'`).Scan(&from)
		if err != nil {
			return // no rebuild planned (or the file cannot be read: the next wake-up retries)
		}
		if done, err := s.rebuildChunk(ctx, from); err != nil || done {
			return
		}
	}
}

// rebuildChunk re-indexes the next entries after from and records the
// progress; done when none were left.
func (s *Store) rebuildChunk(ctx context.Context, from int64) (done bool, err error) {
	type entry struct {
		id     int64
		blobID string
	}
	var entries []entry
	err = s.readTx(ctx, func(tx *rtx) error {
		rows, err := tx.QueryContext(ctx, `SELECT b.text_id, b.id FROM blobs b
			WHERE b.text_id > ? AND NOT EXISTS (SELECT 1 FROM fts_pending p WHERE p.id = b.text_id)
			ORDER BY b.text_id LIMIT ?`, from, rebuildChunk)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e entry
			if err := rows.Scan(&e.id, &e.blobID); err != nil {
				return err
			}
			entries = append(entries, e)
		}
		return rows.Err()
	})
	if err != nil {
		return false, fmt.Errorf("rebuild full-text index: %w", err)
	}
	type text struct {
		id           int64
		header, body string
	}
	texts := make([]text, 0, len(entries))
	for _, e := range entries {
		raw, err := s.blobs.get(ctx, s.rd(), e.blobID)
		if err != nil {
			// Dropped meanwhile: nothing to index.
			continue
		}
		t := textOf(raw)
		texts = append(texts, text{e.id, t.header, t.body})
	}
	err = s.applyIndex(ctx, func(tx *sql.Tx) error {
		for _, t := range texts {
			if err := s.ftsPut(ctx, tx, t.id, t.header, t.body); err != nil {
				return err
			}
		}
		if len(entries) == 0 {
			_, err := tx.ExecContext(ctx, `DELETE FROM fts_state WHERE k = 'rebuild_from'`)
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE fts_state SET v = ? WHERE k = 'rebuild_from'`, entries[len(entries)-1].id)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("rebuild full-text index: %w", err)
	}
	return len(entries) == 0, nil
}
