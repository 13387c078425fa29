package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/vouch-dev/vouch/evidence"
)

var _ evidence.BlobStore = (*DB)(nil)

// PutBlob implements evidence.BlobStore.
func (d *DB) PutBlob(ctx context.Context, b evidence.Blob) (bool, error) {
	if err := b.Check(); err != nil {
		return false, fmt.Errorf("sqlite: put blob: %w", err)
	}
	res, err := d.db.ExecContext(ctx, `INSERT INTO blobs (digest, media_type, size, content, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING`,
		b.Digest, b.MediaType, b.Size, b.Content, b.CreatedBy, micros(b.CreatedAt))
	if err != nil {
		return false, fmt.Errorf("sqlite: put blob %s: %w", b.Digest, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: put blob %s: %w", b.Digest, err)
	}
	return n == 1, nil
}

// Blob implements evidence.BlobStore.
func (d *DB) Blob(ctx context.Context, digest string) (evidence.Blob, error) {
	return d.blob(ctx, digest, "content")
}

// BlobInfo implements evidence.BlobLookup.
func (d *DB) BlobInfo(ctx context.Context, digest string) (evidence.Blob, error) {
	return d.blob(ctx, digest, "NULL")
}

func (d *DB) blob(ctx context.Context, digest, content string) (evidence.Blob, error) {
	b := evidence.Blob{Digest: digest}
	var at int64
	err := d.db.QueryRowContext(ctx, `SELECT media_type, size, `+content+`, created_by, created_at FROM blobs WHERE digest = ?`, digest).
		Scan(&b.MediaType, &b.Size, &b.Content, &b.CreatedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return evidence.Blob{}, fmt.Errorf("blob %s: %w", digest, evidence.ErrNotFound)
	}
	if err != nil {
		return evidence.Blob{}, fmt.Errorf("sqlite: blob %s: %w", digest, err)
	}
	if content == "content" && b.Content == nil {
		b.Content = []byte{}
	}
	b.CreatedAt = fromMicros(at)
	return b, nil
}
