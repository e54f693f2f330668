package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// The full-text index holds one entry per blob, not per message row
// (migration 0004): a message delivered to many recipients or copied
// between mailboxes is indexed once. blob_text maps a blob to its entry's
// id, the rowid in blob_fts; message rows carry that id (text_id). An
// entry is made when a message row first uses a blob and dropped when the
// blob itself goes (its last reference: message, retained message or
// queue entry), so every message row's text_id names a live entry.
//
// A new entry's text waits in fts_pending, written in the request's own
// transaction, until the writer indexes it into blob_fts (indexText):
// after ftsQuiet without a write, or between batches once the backlog
// passes ftsBacklog; a chunk at a time. Search looks in both (search.go).

// textID returns the index entry of p's blob, making it if the blob has
// none yet. The entry's rows (blob_text, fts_pending) are written at
// once, inside the caller's savepoint: a failed request leaves no entry,
// and a later request of the same batch sees the entry of an earlier one.
func (w *wtx) textID(p *mailstore.Prepared) (int64, error) {
	if id, ok := w.texts[p.BlobID]; ok {
		return id, nil
	}
	var id int64
	err := w.queryRow(`SELECT id FROM blob_text WHERE blob_id = ?`, p.BlobID).Scan(&id)
	if isNoRows(err) {
		err = w.queryRow(`INSERT INTO blob_text (blob_id) VALUES (?) RETURNING id`, p.BlobID).Scan(&id)
		if err == nil {
			_, err = w.exec(`INSERT INTO fts_pending (id, header, body) VALUES (?, ?, ?)`, id, p.Parsed.HeaderText, p.Parsed.BodyText)
			w.ftsAdded++
		}
	}
	if err != nil {
		return 0, fmt.Errorf("full-text entry of blob %s: %w", p.BlobID, err)
	}
	if w.texts == nil {
		w.texts = map[string]int64{}
	}
	w.texts[p.BlobID] = id
	return id, nil
}

// dropText removes the index entry of a blob that is gone.
func (w *wtx) dropText(blobID string) error {
	delete(w.texts, blobID)
	var id int64
	err := w.queryRow(`DELETE FROM blob_text WHERE blob_id = ? RETURNING id`, blobID).Scan(&id)
	if isNoRows(err) {
		// Never indexed: a blob only the queue or retention held.
		return nil
	}
	if err != nil {
		return fmt.Errorf("drop full-text entry of blob %s: %w", blobID, err)
	}
	res, err := w.exec(`DELETE FROM fts_pending WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("drop full-text entry of blob %s: %w", blobID, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		w.ftsAdded--
		return nil
	}
	w.ftsDelete(id)
	return nil
}

// refBlob adjusts a blob's reference count by delta and, when that
// deletes the blob, drops its index entry.
func (s *Store) refBlob(w *wtx, blobID string, delta int) error {
	gone, err := s.blobs.ref(w.ctx, w, blobID, delta)
	if err != nil || !gone {
		return err
	}
	return w.dropText(blobID)
}

const (
	// ftsBacklog is how much text may wait while requests keep coming;
	// past it the writer indexes a chunk after each batch. Search scans
	// pending text without an index, so the bound keeps that cheap.
	ftsBacklog = 512
	// ftsChunk is how many entries one indexing transaction takes: large
	// enough that FTS5 writes few, big segments; small enough that a
	// request arriving meanwhile waits tens of milliseconds at most.
	ftsChunk = 128
	// ftsQuiet is how long the writer waits without a write before it
	// indexes: indexing right after each write would add a commit (and
	// an fsync) to every delivery of a light load.
	ftsQuiet = 100 * time.Millisecond
)

// indexText moves up to limit entries from fts_pending into blob_fts in
// one transaction of its own, and returns how many it moved. Only the
// writer goroutine calls it.
func (s *Store) indexText(limit int) (int64, error) {
	ctx := context.Background()
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("index text: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit: a no-op
	n, err := moveText(&wtx{tx: tx, ctx: ctx, stmts: s.stmts}, limit)
	if err != nil || n == 0 {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("index text: commit: %w", err)
	}
	s.ftsWaiting.Add(-n)
	s.kickCheckpoint()
	return n, nil
}

// moveText indexes the oldest limit pending entries inside w.
func moveText(w *wtx, limit int) (int64, error) {
	// The lowest ids first: the DELETE below then removes exactly the
	// rows indexed.
	res, err := w.exec(`INSERT INTO blob_fts (rowid, header, body)
		SELECT id, header, body FROM fts_pending ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return 0, fmt.Errorf("index text: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return 0, err
	}
	if _, err := w.exec(`DELETE FROM fts_pending WHERE id IN (SELECT id FROM fts_pending ORDER BY id LIMIT ?)`, n); err != nil {
		return 0, fmt.Errorf("index text: %w", err)
	}
	return n, nil
}

// countPendingText sets the backlog from the table: at Open, and when
// another process (the CLI) may have added text.
func (s *Store) countPendingText() {
	var n int64
	if err := s.wdb.QueryRowContext(context.Background(), `SELECT count(*) FROM fts_pending`).Scan(&n); err == nil {
		s.ftsWaiting.Store(n)
	}
}

// indexWhenQuiet indexes a chunk of waiting text; the writer calls it
// after ftsQuiet without a write, and again after each further quiet
// period until nothing waits. A failure stops indexing until the next
// count (the text stays searchable meanwhile).
func (s *Store) indexWhenQuiet() {
	if n, err := s.indexText(ftsChunk); err != nil || n == 0 {
		s.ftsWaiting.Store(0)
	}
}

// indexOverBacklog runs after each batch: under a steady load the writer
// is never quiet, so past ftsBacklog it indexes a chunk between batches.
func (s *Store) indexOverBacklog() {
	if s.ftsWaiting.Load() < ftsBacklog || s.ftsOff.Load() {
		return
	}
	if n, err := s.indexText(ftsChunk); err != nil || n == 0 {
		s.ftsWaiting.Store(0)
	}
}
