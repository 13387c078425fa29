package evidence

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/journal"
)

// Appender appends entries to the journal and waits until they are durable.
type Appender interface {
	Append(ctx context.Context, e journal.Entry) (journal.Appended, error)
}

// MaxPayload is the largest attestation payload accepted, in bytes.
const MaxPayload = 256 << 10

// Service accepts evidence: it validates reports, applies the idempotency
// and conflict rules, and records each accepted report in the journal.
type Service struct {
	journal      Appender
	environments []string
	now          func() time.Time
	// RequireSignature, when set, names the attestations accepted only
	// when a trusted key signed them (Verified).
	RequireSignature func(name string) bool

	blobs   BlobLookup
	history Reader
}

// Reader reads the evidence stored for a digest (the evidence store).
type Reader interface {
	Evidence(ctx context.Context, digest string) (Evidence, error)
}

// WithHistory lets Attest tell a retry from a new run: an attestation is
// taken for a retry only when it repeats the latest of its name for the
// digest, so a test passing again after a failure is a new attestation.
// Without it, one repeating any earlier attestation is taken for a retry.
func WithHistory(r Reader) ServiceOption {
	return func(s *Service) { s.history = r }
}

// ServiceOption configures a Service.
type ServiceOption func(*Service)

// WithBlobs lets attestations name blobs: a named blob must be stored in
// blobs. Without it, an attestation naming a blob is refused.
func WithBlobs(blobs BlobLookup) ServiceOption {
	return func(s *Service) { s.blobs = blobs }
}

// NewService returns a service recording to j. environments lists the
// environment names approvals may name; when empty, any name is accepted.
func NewService(j Appender, environments []string, now func() time.Time, opts ...ServiceOption) *Service {
	if now == nil {
		now = time.Now
	}
	// Times are kept in UTC with microsecond precision, as the journal keeps them.
	s := &Service{journal: j, environments: environments, now: func() time.Time { return now().UTC().Truncate(time.Microsecond) }}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ArtifactReport is provenance reported by a CI pipeline.
type ArtifactReport struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	GitCommit  string `json:"git_commit"`
	Author     string `json:"author,omitempty"` // of the commit, for four eyes
	Repository string `json:"repository"`
	BuildURL   string `json:"build_url"`
	Pipeline   string `json:"pipeline"`
}

func (r ArtifactReport) validate() error {
	var v validator
	switch {
	case r.Name == "":
		v.add("name", "is required")
	case !artifactRE.MatchString(r.Name):
		v.add("name", "must be 1-512 characters without white space or '@' (the digest goes in \"digest\")")
	}
	v.digest("digest", r.Digest)
	if r.GitCommit != "" && !commitRE.MatchString(r.GitCommit) {
		v.add("git_commit", "must be a full commit hash: 40 or 64 lower-case hex characters")
	}
	v.maxLen("repository", r.Repository, 1024)
	v.maxLen("author", r.Author, 256)
	v.url("build_url", r.BuildURL)
	v.maxLen("pipeline", r.Pipeline, 256)
	return v.err()
}

// ReportArtifact records the provenance of an artifact. The first report
// of a digest is its provenance: a later one from the same source (see
// sameSource) returns the stored record with created false; one naming
// another commit or repository fails with ErrConflict.
func (s *Service) ReportArtifact(ctx context.Context, actor string, r ArtifactReport) (a Artifact, created bool, err error) {
	if err := r.validate(); err != nil {
		return Artifact{}, false, err
	}
	a = Artifact{
		Name: r.Name, Digest: r.Digest, GitCommit: r.GitCommit, Author: r.Author, Repository: r.Repository,
		BuildURL: r.BuildURL, Pipeline: r.Pipeline, ReportedBy: actor, ReportedAt: s.now(),
	}
	res, err := s.record(ctx, KindArtifact, "", "artifact:"+a.Digest, a.ReportedAt, &a)
	if err != nil {
		return Artifact{}, false, err
	}
	if res.Existing {
		var prev Artifact
		if err := DecodeEntry(res.Entry, &prev); err != nil {
			return Artifact{}, false, err
		}
		if !prev.sameSource(a) {
			return prev, false, fmt.Errorf("%w: digest %s was already reported by %q at %s as built from another source (repository %q, git_commit %q, build_url %q); the first report stands",
				ErrConflict, a.Digest, prev.ReportedBy, prev.ReportedAt.Format(time.RFC3339), prev.Repository, prev.GitCommit, prev.BuildURL)
		}
		return prev, false, nil
	}
	a.ID = res.Index
	return a, true, nil
}

// AttestationReport is a claim about an artifact reported by a pipeline.
type AttestationReport struct {
	Digest  string          `json:"digest"`
	Name    string          `json:"name"`
	Type    string          `json:"type"`
	Passed  *bool           `json:"passed"`
	URL     string          `json:"url"`
	Payload json.RawMessage `json:"payload"`
	// Blob is the digest of the full document, uploaded before with
	// POST /api/v1/blobs; optional.
	Blob string `json:"blob"`
	// Verified and KeyID are set by Vouch when a trusted key's signature
	// covers the attestation; a client cannot set them.
	Verified bool   `json:"-"`
	KeyID    string `json:"-"`
	// SignedAt is set by Vouch from a keyless signature's verified time.
	SignedAt *time.Time `json:"-"`
}

func (r *AttestationReport) validate() error {
	var v validator
	v.digest("digest", r.Digest)
	v.name("name", r.Name)
	if r.Type == "" {
		r.Type = "generic"
	} else if !tokenTypeRE.MatchString(r.Type) {
		v.add("type", "must be a lower-case word such as junit, sarif, sbom, in-toto or generic")
	}
	if r.Passed == nil {
		v.add("passed", "is required: true or false")
	}
	v.url("url", r.URL)
	if r.Blob != "" {
		v.digest("blob", r.Blob)
	}
	if len(r.Payload) > 0 {
		p := bytes.TrimSpace(r.Payload)
		switch {
		case len(p) > MaxPayload:
			v.add("payload", "must be at most %d bytes, got %d", MaxPayload, len(p))
		case string(p) == "null":
			r.Payload = nil
		case p[0] != '{':
			v.add("payload", "must be a JSON object")
		}
	}
	return v.err()
}

// Attest records an attestation. Posted again while it is the latest of
// its name for the digest (a retry), it returns the stored record with
// created false; after another result of that name, it is recorded anew.
func (s *Service) Attest(ctx context.Context, actor string, r AttestationReport) (a Attestation, created bool, err error) {
	if err := r.validate(); err != nil {
		return Attestation{}, false, err
	}
	_, readByVouch := ReadByVouch(r.KeyID)
	if (!r.Verified || readByVouch) && s.RequireSignature != nil && s.RequireSignature(r.Name) {
		return Attestation{}, false, Invalid("name", fmt.Sprintf(
			"attestations %q must be signed by a trusted key: post them as a DSSE envelope (POST /api/v1/envelopes, vouch attest intoto)", r.Name))
	}
	if err := checkChangeRequest(r); err != nil {
		return Attestation{}, false, err
	}
	if err := s.checkBlob(ctx, r.Blob); err != nil {
		return Attestation{}, false, err
	}
	a = Attestation{
		Digest: r.Digest, Name: r.Name, Type: r.Type, Passed: *r.Passed, URL: r.URL,
		Payload: r.Payload, Blob: r.Blob, Verified: r.Verified, KeyID: r.KeyID, ReportedBy: actor, ReportedAt: s.now(), SignedAt: r.SignedAt,
	}
	key, err := attestationKey(a)
	if err != nil {
		return Attestation{}, false, err
	}
	ev, err := s.recorded(ctx, a.Digest)
	if err != nil {
		return Attestation{}, false, err
	}
	if err := reviewOfTheBuild(a, ev.Artifact); err != nil {
		return Attestation{}, false, err
	}
	latest, ok := latestNamed(ev, a.Name)
	if ok {
		if k, err := attestationKey(latest); err == nil && k == key {
			return latest, false, nil
		}
		key += ":after:" + strconv.FormatUint(latest.ID, 10)
	}
	res, err := s.record(ctx, KindAttestation, "", key, a.ReportedAt, &a)
	if err != nil {
		return Attestation{}, false, err
	}
	if res.Existing {
		var prev Attestation
		if err := DecodeEntry(res.Entry, &prev); err != nil {
			return Attestation{}, false, err
		}
		return prev, false, nil
	}
	a.ID = res.Index
	return a, true, nil
}

// attestationKey identifies an attestation's content: who reported it
// and when are not part of it.
func attestationKey(a Attestation) (string, error) {
	return contentKey("attestation", struct {
		Digest, Name, Type, URL string
		Passed                  bool
		Payload                 json.RawMessage
		Blob, KeyID             string
		Verified                bool
		SignedAt                *time.Time `json:",omitempty"` // absent from the keys of the others
	}{a.Digest, a.Name, a.Type, a.URL, a.Passed, a.Payload, a.Blob, a.KeyID, a.Verified, a.SignedAt})
}

// recorded returns what is recorded about digest (WithHistory): nothing
// without history.
func (s *Service) recorded(ctx context.Context, digest string) (Evidence, error) {
	if s.history == nil {
		return Evidence{}, nil
	}
	ev, err := s.history.Evidence(ctx, digest)
	if errors.Is(err, ErrNotFound) {
		return Evidence{}, nil
	}
	if err != nil {
		return Evidence{}, fmt.Errorf("look up attestations of %s: %w: %w", digest, ErrUnavailable, err)
	}
	return ev, nil
}

// latestNamed returns the latest attestation named name.
func latestNamed(ev Evidence, name string) (Attestation, bool) {
	var latest Attestation
	for _, a := range ev.Attestations {
		if a.Name == name && a.ID >= latest.ID {
			latest = a
		}
	}
	return latest, latest.Name != ""
}

// reviewOfTheBuild checks a code review (type pull-request, vouch attest
// pr): a payload decisions can read, about the build when it is known —
// the commit and repository it was reported built from. (Decisions check
// again: the build may be reported after the review.)
func reviewOfTheBuild(a Attestation, built *Artifact) error {
	if a.Type != TypePullRequest {
		return nil
	}
	f, err := ParseReview(a.Payload)
	if err != nil {
		field, detail, _ := strings.Cut(err.Error(), ": ")
		return Invalid(field, detail)
	}
	if built == nil {
		return nil
	}
	if problem := f.Of(built); problem != "" {
		return Invalid("payload", problem)
	}
	return nil
}

// checkChangeRequest refuses a change request (type change-request) but
// one Vouch read from the change system itself, and checks its payload:
// decisions read it.
func checkChangeRequest(r AttestationReport) error {
	if r.Type != TypeChangeRequest {
		return nil
	}
	if !IsChangeReadByVouch(r.Type, r.KeyID, r.Verified) {
		return Invalid("type", "change requests are recorded by Vouch alone, as it reads them from the change system: POST /api/v1/changes (vouch attest change)")
	}
	if _, err := ParseChange(r.Payload); err != nil {
		field, detail, _ := strings.Cut(err.Error(), ": ")
		return Invalid(field, detail)
	}
	return nil
}

// checkBlob fails unless the blob digest, when set, names a stored blob.
func (s *Service) checkBlob(ctx context.Context, digest string) error {
	if digest == "" {
		return nil
	}
	if s.blobs == nil {
		return Invalid("blob", "this server does not store blobs")
	}
	_, err := s.blobs.BlobInfo(ctx, digest)
	if errors.Is(err, ErrNotFound) {
		return Invalid("blob", fmt.Sprintf("%s is not a stored blob: upload it first (POST /api/v1/blobs)", digest))
	}
	if err != nil {
		return fmt.Errorf("look up blob %s: %w: %w", digest, ErrUnavailable, err)
	}
	return nil
}

// ApprovalRequest is a release decision for one environment.
type ApprovalRequest struct {
	Digest      string     `json:"digest"`
	Environment string     `json:"environment"`
	Decision    string     `json:"decision"`
	Reason      string     `json:"reason"`
	ExpiresAt   *time.Time `json:"expires_at"`
	// Emergency lets the change through a change freeze; it needs a reason.
	Emergency bool `json:"emergency"`
	// ApproverIdentities are set by Vouch from the approving token; a
	// client cannot set them.
	ApproverIdentities []string `json:"-"`
}

// ValidateApproval checks an approval request as Approve does, before
// anything is asked or recorded.
func (s *Service) ValidateApproval(r ApprovalRequest) error { return s.validateApproval(r, s.now()) }

func (s *Service) validateApproval(r ApprovalRequest, now time.Time) error {
	var v validator
	v.digest("digest", r.Digest)
	v.name("environment", r.Environment)
	if r.Environment != "" && len(s.environments) > 0 && !slices.Contains(s.environments, r.Environment) {
		v.add("environment", "%q is not a configured environment (configured: %s)", r.Environment, strings.Join(s.environments, ", "))
	}
	if r.Decision != Approved && r.Decision != Rejected {
		v.add("decision", "must be %q or %q", Approved, Rejected)
	}
	if r.Emergency && (r.Decision != Approved || r.Reason == "") {
		v.add("emergency", "an emergency approval is an approval with a reason (the incident or change)")
	}
	if r.Decision == Rejected && r.Reason == "" {
		v.add("reason", "is required when the decision is %q", Rejected)
	}
	v.maxLen("reason", r.Reason, 4096)
	if r.ExpiresAt != nil && !r.ExpiresAt.After(now) {
		v.add("expires_at", "must be in the future, got %s", r.ExpiresAt.Format(time.RFC3339))
	}
	return v.err()
}

// Approve records a release decision made by approver. Every call records a
// new decision: a later approval renews, a later rejection revokes.
func (s *Service) Approve(ctx context.Context, approver string, r ApprovalRequest) (Approval, error) {
	now := s.now()
	if err := s.validateApproval(r, now); err != nil {
		return Approval{}, err
	}
	a := Approval{
		Digest: r.Digest, Environment: r.Environment, Decision: r.Decision, Reason: r.Reason,
		Approver: approver, ApprovedAt: now, Emergency: r.Emergency, ApproverIdentities: slices.Clone(r.ApproverIdentities),
	}
	if r.ExpiresAt != nil {
		t := r.ExpiresAt.UTC()
		a.ExpiresAt = &t
	}
	// Every approval is a new decision; its key only names its entry.
	res, err := s.record(ctx, KindApproval, a.Environment, "approval:"+randomID(), now, &a)
	if err != nil {
		return Approval{}, err
	}
	a.ID = res.Index
	return a, nil
}

// record appends a record to the journal. The record's "id" field is left
// out of the entry body: it is the entry's index.
func (s *Service) record(ctx context.Context, kind journal.Kind, env, key string, at time.Time, record any) (journal.Appended, error) {
	raw, err := EncodeBody(record)
	if err != nil {
		return journal.Appended{}, fmt.Errorf("encode %s: %w", kind, err)
	}
	res, err := s.journal.Append(ctx, journal.Entry{Kind: kind, Time: at, Environment: env, Key: key, Body: raw})
	switch {
	case errors.Is(err, journal.ErrRefused): // the same content would be refused again
		return journal.Appended{}, fmt.Errorf("record %s: %w", kind, err)
	case err != nil:
		return journal.Appended{}, fmt.Errorf("record %s: %w: %w", kind, ErrUnavailable, err)
	}
	return res, nil
}

// contentKey is an idempotency key derived from the content of a report.
func contentKey(prefix string, v any) (string, error) {
	c, err := journal.Canonical(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return prefix + ":" + hex.EncodeToString(sum[:]), nil
}

// EncodeBody encodes an evidence record as a journal entry body: its JSON
// without the "id" member.
func EncodeBody(record any) (json.RawMessage, error) {
	raw, err := json.Marshal(record)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	delete(m, "id")
	return json.Marshal(m)
}

// DecodeEntry decodes an evidence journal entry into record (a pointer to
// an Artifact, Attestation or Approval) and sets its ID to the entry index.
func DecodeEntry(e journal.Entry, record any) error {
	if err := json.Unmarshal(e.Body, record); err != nil {
		return fmt.Errorf("decode %s entry %d: %w", e.Kind, e.Index, err)
	}
	switch r := record.(type) {
	case *Artifact:
		r.ID = e.Index
	case *Attestation:
		r.ID = e.Index
	case *Approval:
		r.ID = e.Index
	default:
		return fmt.Errorf("decode %s entry %d: unsupported record type %T", e.Kind, e.Index, record)
	}
	return nil
}

func randomID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}
