// Package evidence holds what CI pipelines report about artifacts —
// provenance, attestations and release approvals — and the rules for
// accepting it.
//
// Evidence is written only through the journal: each accepted record is a
// journal entry, and the storage adapters keep the queryable evidence tables
// in the same transaction as the entry. A record's ID is its journal index.
package evidence

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/journal"
)

// Journal entry kinds for evidence.
const (
	KindArtifact    journal.Kind = "artifact"
	KindAttestation journal.Kind = "attestation"
	KindApproval    journal.Kind = "approval"
)

// Errors callers branch on.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	// ErrUnavailable means the record could not be committed now (the store
	// is unreachable or failed); nothing was recorded, and a retry is safe.
	ErrUnavailable = errors.New("evidence store unavailable")
)

// Artifact is the provenance of a build output, identified by its content
// digest.
type Artifact struct {
	ID         uint64    `json:"id"`
	Name       string    `json:"name"`
	Digest     string    `json:"digest"`
	GitCommit  string    `json:"git_commit,omitempty"`
	Author     string    `json:"author,omitempty"` // of the commit: email or login, as CI knows it
	Repository string    `json:"repository,omitempty"`
	BuildURL   string    `json:"build_url,omitempty"`
	Pipeline   string    `json:"pipeline,omitempty"`
	ReportedBy string    `json:"reported_by"`
	ReportedAt time.Time `json:"reported_at"`
}

// sameSource reports whether a and b claim the same bytes came from the
// same source: the same commit of the same repository. A pipeline's re-run
// (another build URL, attempt or actor) and the same image copied to
// another registry name are the same source; another commit or repository
// is a contradiction.
func (a Artifact) sameSource(b Artifact) bool {
	return a.Digest == b.Digest && a.GitCommit == b.GitCommit && a.Repository == b.Repository
}

// TypePullRequest is the attestation type of a code review from the forge
// (vouch attest pr): its payload is a review.Review.
const TypePullRequest = "pull-request"

// MaxReviewPayload bounds the payload of a code review or a change
// request: decisions read them.
const MaxReviewPayload = 64 << 10

// ReviewFacts are what decisions use of a code review's payload.
type ReviewFacts struct {
	Repository string `json:"repository"` // its path on the forge: owner/name
	Commit     string `json:"commit"`
	Approvals  int    `json:"approvals"`
	MergedInto string `json:"merged_into"` // the branch the counted request was merged into
}

// ParseReview reads a code review's payload; errors name the field.
func ParseReview(payload json.RawMessage) (ReviewFacts, error) {
	var f ReviewFacts
	switch {
	case len(payload) > MaxReviewPayload:
		return f, fmt.Errorf("payload: a code review may be at most %d bytes", MaxReviewPayload)
	case json.Unmarshal(payload, &f) != nil:
		return f, errors.New("payload: a code review is a JSON object (vouch attest pr)")
	case f.Commit == "" || f.Repository == "":
		return f, errors.New("payload: a code review names the repository and the commit it reviewed (vouch attest pr)")
	case f.Approvals < 0:
		return f, errors.New("payload.approvals: cannot be negative")
	}
	return f, nil
}

// Of says why the review is not about the build — "" when it is: the same
// commit, and a repository whose URL ends in the review's path.
func (f ReviewFacts) Of(build *Artifact) string {
	switch {
	case build == nil:
		return "no build of the digest was reported, so the review cannot be tied to it"
	case build.GitCommit == "":
		return "the build report names no commit, so the review cannot be tied to it"
	case !strings.EqualFold(f.Commit, build.GitCommit):
		return fmt.Sprintf("the review is of commit %s, but the digest was built from commit %s", f.Commit, build.GitCommit)
	case build.Repository != "" && !repositoryEndsIn(build.Repository, f.Repository):
		return fmt.Sprintf("the review is of repository %s, but the digest was built from %s", f.Repository, build.Repository)
	}
	return ""
}

// repositoryEndsIn reports whether a repository URL (any form git takes)
// names the path: https://github.com/Org/App.git ends in org/app.
func repositoryEndsIn(repo, path string) bool {
	r := strings.Replace(auth.RepositoryKey(repo), "/_git/", "/", 1) // Azure DevOps: …/PROJECT/_git/REPO
	p := strings.Trim(strings.ToLower(path), "/")
	return r == p || strings.HasSuffix(r, "/"+p)
}

// TypeChangeRequest is the attestation type of a change request Vouch
// read from a change management system itself (POST /changes): its
// payload is a ChangeFacts, its key_id "change:<system>". Nobody else
// records one.
const TypeChangeRequest = "change-request"

// IsChangeReadByVouch reports whether an attestation is a change request
// Vouch read from a change system itself: of type change-request,
// verified, with key_id "change:<system>".
func IsChangeReadByVouch(typ, keyID string, verified bool) bool {
	return typ == TypeChangeRequest && verified && strings.HasPrefix(keyID, "change:")
}

// DecisionPayloads are the attestation types whose payloads decisions
// read: code reviews' (their approvals count) and change requests' (their
// state and window). Lookups for decisions return no other payloads.
var DecisionPayloads = []string{TypePullRequest, TypeChangeRequest}

// ReadByVouch says where an attestation's key_id says Vouch read it
// itself — "the forge <name>" for "forge:<name>", "the change system
// <name>" for "change:<name>" — and false for any other key_id. Such
// attestations are verified, but signed by nobody.
func ReadByVouch(keyID string) (from string, ok bool) {
	if name, ok := strings.CutPrefix(keyID, "forge:"); ok {
		return "the forge " + name, true
	}
	if name, ok := strings.CutPrefix(keyID, "change:"); ok {
		return "the change system " + name, true
	}
	return "", false
}

// ChangeFacts are what decisions use of a change request, as the change
// system answered when Vouch read it.
type ChangeFacts struct {
	Number string `json:"number"` // CHG0030001
	// State is the change's state by name: new, assess, authorize,
	// scheduled, implement, review, closed or canceled (ServiceNow's
	// default change model), else the system's own value.
	State string `json:"state"`
	// Approval is approved, requested, rejected or "not requested".
	Approval string `json:"approval"`
	// PlannedStart and PlannedEnd are the change window; zero when the
	// change has none.
	PlannedStart time.Time `json:"planned_start,omitzero"`
	PlannedEnd   time.Time `json:"planned_end,omitzero"`
	// ConfigurationItems are the names of the configuration items the
	// change is for: its own (ServiceNow's cmdb_ci) and its affected CIs,
	// without repeats; nil when it names none.
	ConfigurationItems []string `json:"configuration_items,omitempty"`
	// ConfigurationItemsProblem says what kept Vouch from reading all the
	// change's affected CIs; "" when nothing did.
	ConfigurationItemsProblem string `json:"configuration_items_problem,omitempty"`
}

// ParseChange reads a change request's payload; errors name the field.
func ParseChange(payload json.RawMessage) (ChangeFacts, error) {
	var f ChangeFacts
	switch {
	case len(payload) > MaxReviewPayload:
		return f, fmt.Errorf("payload: a change request may be at most %d bytes", MaxReviewPayload)
	case json.Unmarshal(payload, &f) != nil:
		return f, errors.New("payload: a change request is a JSON object")
	case f.Number == "" || f.State == "" || f.Approval == "":
		return f, errors.New("payload: a change request names its number, state and approval")
	case f.PlannedStart.IsZero() != f.PlannedEnd.IsZero() || f.PlannedEnd.Before(f.PlannedStart):
		return f, errors.New("payload: a change window has a start and a later end")
	case slices.ContainsFunc(f.ConfigurationItems, func(ci string) bool {
		return ci == "" || strings.ContainsFunc(ci, unicode.IsControl)
	}):
		return f, errors.New("payload: a configuration item has a name, without control characters")
	}
	return f, nil
}

// Attestation is a claim about an artifact: a test run, a scan, a review.
// It binds to an artifact by digest and may arrive before the artifact.
type Attestation struct {
	ID      uint64          `json:"id"`
	Digest  string          `json:"digest"`
	Name    string          `json:"name"`
	Type    string          `json:"type"`
	Passed  bool            `json:"passed"`
	URL     string          `json:"url,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
	// Blob is the sha256 digest of the full document (GET /api/v1/blobs/…).
	Blob string `json:"blob,omitempty"`
	// Verified is set when a trusted key's signature covers the
	// attestation (a DSSE envelope); KeyID names that key.
	Verified   bool      `json:"verified"`
	KeyID      string    `json:"key_id,omitempty"`
	ReportedBy string    `json:"reported_by"`
	ReportedAt time.Time `json:"reported_at"`
	// SignedAt is when a keyless signature was made, as a transparency
	// log or timestamp authority verified it; nil when no trusted time
	// vouches for it. Freshness (max_age) counts from the earlier of the
	// two times.
	SignedAt *time.Time `json:"signed_at,omitempty"`
}

// Approval decisions.
const (
	Approved = "approved"
	Rejected = "rejected"
)

// Approval is a release decision for an artifact in one environment. The
// approver is the identity of the token that posted it.
type Approval struct {
	ID          uint64     `json:"id"`
	Digest      string     `json:"digest"`
	Environment string     `json:"environment"`
	Decision    string     `json:"decision"`
	Reason      string     `json:"reason,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	Approver    string     `json:"approver"`
	// ApproverIdentities are the person the approving token belongs to
	// (its identities: emails, logins), which four eyes compares with the
	// commit's author; none when the token names no person.
	ApproverIdentities []string `json:"approver_identities,omitempty"`
	// Emergency approvals let a change through a change freeze.
	Emergency  bool      `json:"emergency,omitempty"`
	ApprovedAt time.Time `json:"approved_at"`
}

// Evidence is everything known about one digest.
type Evidence struct {
	Digest       string        `json:"digest"`
	Artifact     *Artifact     `json:"artifact"`
	Attestations []Attestation `json:"attestations"`
	Approvals    []Approval    `json:"approvals"`
}

// Empty reports whether nothing at all is known about the digest.
func (e Evidence) Empty() bool {
	return e.Artifact == nil && len(e.Attestations) == 0 && len(e.Approvals) == 0
}
