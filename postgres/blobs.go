package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/vouch-dev/vouch/evidence"
)

var _ evidence.BlobStore = (*DB)(nil)

// PutBlob implements evidence.BlobStore.
func (d *DB) PutBlob(ctx context.Context, b evidence.Blob) (bool, error) {
	if err := b.Check(); err != nil {
		return false, fmt.Errorf("postgres: put blob: %w", err)
	}
	tag, err := d.pool.Exec(ctx, `INSERT INTO blobs (digest, media_type, size, content, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (digest) DO NOTHING`,
		b.Digest, b.MediaType, b.Size, b.Content, b.CreatedBy, b.CreatedAt)
	if err != nil {
		return false, fmt.Errorf("postgres: put blob %s: %w", b.Digest, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Blob implements evidence.BlobStore.
func (d *DB) Blob(ctx context.Context, digest string) (evidence.Blob, error) {
	return d.blob(ctx, digest, "content")
}

// BlobInfo implements evidence.BlobLookup.
func (d *DB) BlobInfo(ctx context.Context, digest string) (evidence.Blob, error) {
	return d.blob(ctx, digest, "NULL::bytea")
}

func (d *DB) blob(ctx context.Context, digest, content string) (evidence.Blob, error) {
	b := evidence.Blob{Digest: digest}
	err := d.pool.QueryRow(ctx, `SELECT media_type, size, `+content+`, created_by, created_at FROM blobs WHERE digest = $1`, digest).
		Scan(&b.MediaType, &b.Size, &b.Content, &b.CreatedBy, &b.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return evidence.Blob{}, fmt.Errorf("blob %s: %w", digest, evidence.ErrNotFound)
	}
	if err != nil {
		return evidence.Blob{}, fmt.Errorf("postgres: blob %s: %w", digest, err)
	}
	if content == "content" && b.Content == nil {
		b.Content = []byte{}
	}
	b.CreatedAt = b.CreatedAt.UTC()
	return b, nil
}
