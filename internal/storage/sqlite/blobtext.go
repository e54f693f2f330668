package sqlite

import (
	"fmt"

	"github.com/roost-mail/roost/internal/mailstore"
)

// The full-text index holds one entry per blob, not per message row
// (migration 0004): a message delivered to many recipients or copied
// between mailboxes is indexed once. The blob's row names its entry's id
// (blobs.text_id, migration 0013), the rowid in blob_fts; message rows
// carry that id (text_id). An entry is made when a message row first uses
// a blob and dropped when the blob itself goes (its last reference:
// message, retained message or queue entry), so every message row's
// text_id names a live entry.
//
// blob_fts lives in a database file of its own (ftsdb.go), written by the
// indexer goroutine, not by the writer: a new entry waits in fts_pending,
// written in the request's own transaction (its text in memory:
// pendingtext.go), and a dropped entry that may be indexed is listed in
// fts_dropped, until the indexer has applied them. Search looks in
// fts_pending too (search.go), so what a request stored is searchable the
// moment it returns.

// textID returns the index entry of p's blob, making it if the blob has
// none yet. known is the blob's entry as blobs.put just returned it (0:
// none), so a blob seen earlier in the same transaction, even by another
// request of the batch, already has its entry. A new entry's rows (the
// blob's text_id, fts_pending) are written at once, inside the caller's
// savepoint: a failed request leaves no entry.
func (w *wtx) textID(p *mailstore.Prepared, known int64) (int64, error) {
	if known != 0 {
		return known, nil
	}
	// Entry ids are never reused (the counter only grows): an id still in
	// the index file, waiting in fts_dropped, cannot meet a new entry.
	var id int64
	err := w.queryRow(`INSERT INTO counters (name, value) VALUES ('text_id', 1)
		ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value`).Scan(&id)
	if err == nil {
		_, err = w.exec(`UPDATE blobs SET text_id = ? WHERE id = ?`, id, p.BlobID)
	}
	if err == nil {
		// The text itself waits in memory (pendingtext.go).
		_, err = w.exec(`INSERT INTO fts_pending (id, header, body) VALUES (?, '', '')`, id)
	}
	if err != nil {
		return 0, fmt.Errorf("full-text entry of blob %s: %w", p.BlobID, err)
	}
	w.textAdded = true
	w.newTexts = append(w.newTexts, pendingEntry{id, ftsText{p.Parsed.HeaderText, p.Parsed.BodyText}})
	return id, nil
}

// dropText removes index entry id, whose blob is gone.
func (w *wtx) dropText(id int64) error {
	res, err := w.exec(`DELETE FROM fts_pending WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("drop full-text entry %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		w.droppedTexts = append(w.droppedTexts, id)
		return nil
	}
	// Indexed already: the indexer removes it from blob_fts. Until then
	// the stale row matches nothing (no message row names its id, and
	// ids are never reused).
	if _, err := w.exec(`INSERT OR IGNORE INTO fts_dropped (id) VALUES (?)`, id); err != nil {
		return fmt.Errorf("drop full-text entry %d: %w", id, err)
	}
	return nil
}

// refBlob adjusts a blob's reference count by delta and, when that
// deletes the blob, drops its index entry.
func (s *Store) refBlob(w *wtx, blobID string, delta int) error {
	gone, textID, err := s.blobs.ref(w.ctx, w, blobID, delta)
	if err != nil || !gone {
		return err
	}
	if textID == 0 {
		// Never indexed: a blob only the queue or retention held.
		return nil
	}
	return w.dropText(textID)
}
