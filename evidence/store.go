package evidence

import "context"

// Store reads evidence. Writes go through the journal (see the package doc).
type Store interface {
	// Lookup returns the evidence for each digest that has any, in the
	// order it was recorded, without attestation payloads.
	Lookup(ctx context.Context, digests []string) (map[string]Evidence, error)
	// Evidence returns everything about one digest, payloads included, or
	// ErrNotFound.
	Evidence(ctx context.Context, digest string) (Evidence, error)
	// Artifacts lists artifacts matching f, newest first.
	Artifacts(ctx context.Context, f ArtifactFilter) ([]Artifact, error)
}

// ArtifactFilter selects artifacts. Empty fields match everything.
type ArtifactFilter struct {
	Name      string
	GitCommit string
	Limit     int
}
