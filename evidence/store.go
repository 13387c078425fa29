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
	// Approvals lists release decisions matching f, newest first.
	Approvals(ctx context.Context, f ApprovalFilter) ([]Approval, error)
}

// ArtifactFilter selects artifacts. Empty fields match everything.
type ArtifactFilter struct {
	Name      string
	GitCommit string
	// DigestPrefix and CommitPrefix match the start of the digest
	// ("sha256:2c26b4…") and of the git commit; both lower-case.
	DigestPrefix string
	CommitPrefix string
	Limit        int // at most 1000; 100 when 0
}

// ApprovalFilter selects approvals. Empty fields match everything.
type ApprovalFilter struct {
	Digest      string
	Environment string
	Limit       int // at most 1000; 100 when 0
}

// PrefixEnd returns the smallest string greater than every string that
// starts with the lower-case hex prefix p (as digests and commits do): the
// exclusive upper bound of an index range scan for the prefix.
func PrefixEnd(p string) string { return p + "g" }

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
