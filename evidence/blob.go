package evidence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// DefaultMaxBlobSize is the default limit on the size of a blob, in bytes.
const DefaultMaxBlobSize = 16 << 20

// DefaultBlobMediaType is the media type of a blob uploaded without one.
const DefaultBlobMediaType = "application/octet-stream"

// Blob is a document an attestation refers to — a test report, a scan, an
// SBOM, a signed envelope — stored once under the SHA-256 of its content.
// Blobs are not journal entries: the attestation that names a blob's
// digest is, and the digest proves the content.
type Blob struct {
	Digest    string    `json:"digest"` // "sha256:" and the hex SHA-256 of Content
	MediaType string    `json:"media_type"`
	Size      int64     `json:"size"`
	Content   []byte    `json:"-"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// NewBlob returns the blob of content, its digest computed here: a digest
// a client claims is never stored.
func NewBlob(content []byte, mediaType, createdBy string, at time.Time) Blob {
	if mediaType == "" {
		mediaType = DefaultBlobMediaType
	}
	return Blob{
		Digest: BlobDigest(content), MediaType: mediaType, Size: int64(len(content)), Content: content,
		CreatedBy: createdBy, CreatedAt: at.UTC().Truncate(time.Microsecond),
	}
}

// BlobDigest returns "sha256:" and the hex SHA-256 of content.
func BlobDigest(content []byte) string {
	sum := sha256.Sum256(content)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Check reports an error when b's digest or size does not match its
// content. Stores call it before writing.
func (b Blob) Check() error {
	if got := BlobDigest(b.Content); got != b.Digest {
		return fmt.Errorf("blob %s: content has digest %s", b.Digest, got)
	}
	if b.Size != int64(len(b.Content)) {
		return fmt.Errorf("blob %s: size %d, content has %d bytes", b.Digest, b.Size, len(b.Content))
	}
	return nil
}

// BlobStore keeps blobs, content-addressed.
type BlobStore interface {
	// PutBlob stores b unless a blob with its digest exists; created
	// reports whether it was new. The existing blob (its media type
	// included) is left as it is.
	PutBlob(ctx context.Context, b Blob) (created bool, err error)
	// Blob returns the blob with digest, content included, or ErrNotFound.
	Blob(ctx context.Context, digest string) (Blob, error)
	BlobLookup
}

// BlobLookup tells whether blobs are stored.
type BlobLookup interface {
	// BlobInfo returns the blob with digest without its content, or
	// ErrNotFound.
	BlobInfo(ctx context.Context, digest string) (Blob, error)
}

// ParseDigest accepts "sha256:<hex>" or the 64 hex characters alone, in
// either case, and returns the digest as "sha256:" and lower-case hex.
func ParseDigest(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if !strings.HasPrefix(s, "sha256:") {
		s = "sha256:" + s
	}
	return s, ValidDigest(s)
}
