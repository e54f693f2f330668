package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
)

// BlobStore keeps raw message bytes by content address (hex SHA-256). The
// store keeps the reference counts (table blobs) in PostgreSQL whatever the
// BlobStore is, and calls Put only for a blob that is new to it and Delete
// only for one no longer referenced; a BlobStore just keeps bytes.
//
// Put and Delete get the open transaction: the PostgreSQL implementation
// writes in it, so one commit makes a batch of messages durable. An
// external store (S3) would write before the commit and ignore q; a
// rolled-back transaction then leaves an orphan object, which is harmless
// (same address, same bytes) and collectable.
type BlobStore interface {
	Put(ctx context.Context, q Querier, id string, raw []byte) error
	Get(ctx context.Context, q Querier, id string) ([]byte, error)
	Delete(ctx context.Context, q Querier, ids []string) error
}

// Querier is the part of a pgx connection or transaction a BlobStore may
// use.
type Querier = querier

// pgBlobs keeps blobs in the blob_data table (bytea, stored EXTERNAL:
// uncompressed out of line, since mail bodies are mostly compressed
// already and reads slice them).
type pgBlobs struct{}

func (pgBlobs) Put(ctx context.Context, q Querier, id string, raw []byte) error {
	_, err := q.Exec(ctx, "INSERT INTO blob_data (id, data) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", id, raw)
	if err != nil {
		return fmt.Errorf("postgres: store blob: %w", err)
	}
	return nil
}

func (pgBlobs) Get(ctx context.Context, q Querier, id string) ([]byte, error) {
	var b []byte
	err := q.QueryRow(ctx, "SELECT data FROM blob_data WHERE id = $1", id).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("blob %s: %w", id, mailstore.ErrNoSuchMessage)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: read blob: %w", err)
	}
	return b, nil
}

func (pgBlobs) Delete(ctx context.Context, q Querier, ids []string) error {
	if _, err := q.Exec(ctx, "DELETE FROM blob_data WHERE id = ANY($1)", ids); err != nil {
		return fmt.Errorf("postgres: delete blobs: %w", err)
	}
	return nil
}

// addBlobRef takes n references on a blob, storing its bytes if the blob
// is new. The refs row is upserted first: if a concurrent Purge deleted the
// row, the upsert waits for it and then inserts a fresh row (refs == n), so
// the bytes are put back; a blob whose refs row survives keeps its bytes.
//
// With the built-in store and a batch b, the same rule is one statement
// queued on b (sent with the rows); otherwise it runs at once.
func (s *Store) addBlobRef(w *wtx, b *pgx.Batch, id string, raw []byte, n int) error {
	if _, ok := s.blobs.(pgBlobs); ok && b != nil {
		b.Queue(`WITH r AS (
				INSERT INTO blobs (id, refs, size) VALUES ($1, $2, $3)
				ON CONFLICT (id) DO UPDATE SET refs = blobs.refs + excluded.refs
				RETURNING refs)
			INSERT INTO blob_data (id, data) SELECT $1, $4 FROM r WHERE r.refs = $2
			ON CONFLICT (id) DO NOTHING`, id, n, len(raw), raw)
		return nil
	}
	var refs int64
	err := w.QueryRow(w.ctx, `INSERT INTO blobs (id, refs, size) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET refs = blobs.refs + excluded.refs
		RETURNING refs`, id, n, len(raw)).Scan(&refs)
	if err != nil {
		return fmt.Errorf("postgres: blob refs: %w", err)
	}
	if refs == int64(n) {
		return s.blobs.Put(w.ctx, w, id, raw)
	}
	return nil
}

// changeBlobRefs adds delta references to each listed blob (ids may
// repeat: each occurrence counts). Blobs reaching zero stay until Purge,
// so a message restored or re-delivered meanwhile finds its bytes.
func changeBlobRefs(w *wtx, ids []string, delta int) error {
	if len(ids) == 0 {
		return nil
	}
	// Sorted ids keep the row-lock order stable between transactions.
	_, err := w.Exec(w.ctx, `UPDATE blobs SET refs = blobs.refs + c.n * $2
		FROM (SELECT id, count(*) AS n FROM unnest($1::text[]) AS id GROUP BY id ORDER BY id) c
		WHERE blobs.id = c.id`, ids, delta)
	if err != nil {
		return fmt.Errorf("postgres: blob refs: %w", err)
	}
	return nil
}

// ReadBlob returns the raw message bytes, exactly as received.
func (s *Store) ReadBlob(ctx context.Context, blobID string) ([]byte, error) {
	q, err := s.db()
	if err != nil {
		return nil, err
	}
	return s.blobs.Get(ctx, q, blobID)
}

// purgeBlobs deletes blobs nobody references any more.
func (s *Store) purgeBlobs(w *wtx) (int, error) {
	rows, err := w.Query(w.ctx, "DELETE FROM blobs WHERE refs <= 0 RETURNING id")
	if err != nil {
		return 0, fmt.Errorf("postgres: purge blobs: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("postgres: purge blobs: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	return len(ids), s.blobs.Delete(w.ctx, w, ids)
}
