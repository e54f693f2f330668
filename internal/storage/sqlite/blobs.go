package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/roost-mail/roost/internal/mailstore"
)

// execer is what a blob store needs of a transaction or a pool.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// blobStore keeps raw messages by content hash with a reference count:
// one reference per message row, retention row and queue entry. The
// default (dbBlobs) keeps the bytes in the database so the writer's one
// commit makes a batch of blobs durable with their rows; a file or S3
// implementation would write the bytes before the transaction and keep
// only the counts in it.
type blobStore interface {
	// put adds one reference to blob id, storing raw if it is new, and
	// returns the blob's full-text entry (textID, 0 for none: blobtext.go).
	put(ctx context.Context, q execer, id string, raw []byte) (textID int64, err error)
	// ref adjusts the count by delta (negative to drop references) and
	// deletes the blob when none remain, reporting that it did (gone) and
	// the full-text entry it had (textID, 0 for none: blobtext.go).
	ref(ctx context.Context, q execer, id string, delta int) (gone bool, textID int64, err error)
	// get returns the bytes; ErrNoSuchMessage if there is no such blob.
	get(ctx context.Context, q execer, id string) ([]byte, error)
}

type dbBlobs struct{}

func (dbBlobs) put(ctx context.Context, q execer, id string, raw []byte) (int64, error) {
	var textID int64
	err := q.QueryRowContext(ctx, `INSERT INTO blobs (id, refs, size, data) VALUES (?, 1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET refs = refs + 1 RETURNING coalesce(text_id, 0)`, id, len(raw), raw).Scan(&textID)
	if err != nil {
		return 0, fmt.Errorf("store blob: %w", err)
	}
	return textID, nil
}

func (dbBlobs) ref(ctx context.Context, q execer, id string, delta int) (bool, int64, error) {
	if delta == 0 {
		return false, 0, nil
	}
	var refs int64
	err := q.QueryRowContext(ctx, `UPDATE blobs SET refs = refs + ? WHERE id = ? RETURNING refs`, delta, id).Scan(&refs)
	if errors.Is(err, sql.ErrNoRows) {
		return false, 0, fmt.Errorf("blob %s: %w", id, mailstore.ErrNoSuchMessage)
	}
	if err != nil {
		return false, 0, fmt.Errorf("blob refcount: %w", err)
	}
	if refs > 0 {
		return false, 0, nil
	}
	var textID sql.NullInt64
	if err := q.QueryRowContext(ctx, `DELETE FROM blobs WHERE id = ? RETURNING text_id`, id).Scan(&textID); err != nil {
		return false, 0, fmt.Errorf("delete blob: %w", err)
	}
	return true, textID.Int64, nil
}

func (dbBlobs) get(ctx context.Context, q execer, id string) ([]byte, error) {
	var b []byte
	err := q.QueryRowContext(ctx, `SELECT data FROM blobs WHERE id = ?`, id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("blob %s: %w", id, mailstore.ErrNoSuchMessage)
	}
	if err != nil {
		return nil, fmt.Errorf("read blob: %w", err)
	}
	return b, nil
}

// ReadBlob returns a message's raw bytes exactly as received.
func (s *Store) ReadBlob(ctx context.Context, blobID string) ([]byte, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	return s.blobs.get(ctx, s.rd(), blobID)
}

// refBlobs adjusts the counts of several blobs (id -> delta).
func (s *Store) refBlobs(w *wtx, deltas map[string]int) error {
	for id, d := range deltas {
		if err := s.refBlob(w, id, d); err != nil {
			return err
		}
	}
	return nil
}
