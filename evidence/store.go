package evidence

import (
	"context"
	"fmt"
)

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

// Collect groups evidence records by digest, keeping the order given (the
// order of ids, which is the order they were recorded in). Store
// implementations use it to build Lookup results.
func Collect(artifacts []Artifact, attestations []Attestation, approvals []Approval) map[string]Evidence {
	out := map[string]Evidence{}
	get := func(digest string) Evidence {
		ev := out[digest]
		ev.Digest = digest
		return ev
	}
	for i := range artifacts {
		ev := get(artifacts[i].Digest)
		ev.Artifact = &artifacts[i]
		out[ev.Digest] = ev
	}
	for _, a := range attestations {
		ev := get(a.Digest)
		ev.Attestations = append(ev.Attestations, a)
		out[ev.Digest] = ev
	}
	for _, a := range approvals {
		ev := get(a.Digest)
		ev.Approvals = append(ev.Approvals, a)
		out[ev.Digest] = ev
	}
	return out
}

// One returns the evidence for digest from a Lookup result, or ErrNotFound.
func One(found map[string]Evidence, digest string) (Evidence, error) {
	ev, ok := found[digest]
	if !ok {
		return Evidence{}, fmt.Errorf("digest %s: %w", digest, ErrNotFound)
	}
	return ev, nil
}
