package policy

import (
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Input is the document policies see as `input`. docs/policy.md shows a
// full example. Vouch's own fields are snake_case.
type Input struct {
	Request     Request          `json:"request"`
	Environment InputEnvironment `json:"environment"`
	Namespace   Namespace        `json:"namespace"`
	Workload    Workload         `json:"workload"`
	Artifacts   []ArtifactInput  `json:"artifacts"`
}

// Namespace is the namespace of the workload as the cluster has it: its
// labels and vouch.dev/ annotations, set by those who may create or edit
// namespaces (usually the platform team, not the deployer). Both are empty
// when Vouch does not watch the cluster (no --kubeconfig, not in a pod).
type Namespace struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// Request describes the admission request.
type Request struct {
	UID       string `json:"uid"`
	Operation string `json:"operation"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	User      User   `json:"user"`
	DryRun    bool   `json:"dry_run"`
}

// User is who asked for the change.
type User struct {
	Username string   `json:"username"`
	Groups   []string `json:"groups"`
}

// InputEnvironment is the environment the namespace belongs to.
type InputEnvironment struct {
	Name    string       `json:"name"`
	Require Requirements `json:"require"`
	Mode    string       `json:"mode"` // enforce, warn or audit
	// Freeze is the change freeze in force at the decision time, from
	// Windows (Summarize fills it).
	Freeze  FreezeStatus   `json:"freeze"`
	Windows []FreezeWindow `json:"-"`
}

// NewInputEnvironment is the input's view of env.
func NewInputEnvironment(env Environment) InputEnvironment {
	return InputEnvironment{Name: env.Name, Require: env.Require, Mode: env.EffectiveMode(), Windows: env.Freeze}
}

// Workload is the object being admitted.
type Workload struct {
	Kind        string            `json:"kind"`
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	// ConfigurationItem is the workload's vouch.dev/configuration-item:
	// the object's, else its pod template's; "" when it names none.
	ConfigurationItem string `json:"configuration_item"`
}

// Container types.
const (
	ContainerRegular   = "container"
	ContainerInit      = "init"
	ContainerEphemeral = "ephemeral"
)

// ArtifactInput is one container image and the evidence for its digest.
type ArtifactInput struct {
	Container     string `json:"container"`
	ContainerType string `json:"container_type"`
	Image         string `json:"image"`  // as written in the spec
	Name          string `json:"name"`   // normalised repository, e.g. docker.io/library/nginx
	Tag           string `json:"tag"`    // "" when none
	Digest        string `json:"digest"` // "" when not pinned
	// Allowed is true when the image matches the environment's allow-list.
	Allowed      bool               `json:"allowed"`
	Provenance   *Provenance        `json:"provenance"` // null when no build was reported
	Attestations []AttestationInput `json:"attestations"`
	Approvals    []ApprovalInput    `json:"approvals"` // for this environment only

	// Summaries of the lists above, as of the decision time (Summarize
	// fills them): the latest attestation of each name, the approval in
	// force, if any, and every approval in force (unexpired, after the
	// last rejection).
	LatestAttestations map[string]AttestationInput `json:"latest_attestations"`
	Approval           *ApprovalInput              `json:"approval"`
	ApprovalsInForce   []ApprovalInput             `json:"approvals_in_force"`
}

// Provenance is the build that produced an artifact.
type Provenance struct {
	ID         uint64    `json:"id"`
	Name       string    `json:"name"`
	Digest     string    `json:"digest"`
	GitCommit  string    `json:"git_commit"`
	Author     string    `json:"author"` // of the commit, as CI reported it
	Repository string    `json:"repository"`
	BuildURL   string    `json:"build_url"`
	Pipeline   string    `json:"pipeline"`
	ReportedBy string    `json:"reported_by"`
	ReportedAt time.Time `json:"reported_at"`
}

// MadeAt is when an attestation was made, as freshness (max_age) counts:
// when it was reported or, if earlier, when it was signed.
func (x AttestationInput) MadeAt() time.Time {
	if !x.SignedAt.IsZero() && x.SignedAt.Before(x.ReportedAt) {
		return x.SignedAt
	}
	return x.ReportedAt
}

// ReviewType is the attestation type of a code review from the forge
// (evidence.TypePullRequest, vouch attest pr).
const ReviewType = "pull-request"

// AttestationInput is one attestation, oldest first.
type AttestationInput struct {
	ID         uint64    `json:"id"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	Passed     bool      `json:"passed"`
	URL        string    `json:"url"`
	Blob       string    `json:"blob"`     // sha256 of the full document, "" when none
	Verified   bool      `json:"verified"` // signed by a trusted key
	KeyID      string    `json:"key_id"`   // that key, "" when not verified
	ReportedBy string    `json:"reported_by"`
	ReportedAt time.Time `json:"reported_at"`
	// SignedAt is when a keyless signature was made, by a verified log
	// entry or timestamp; zero when unknown (input: signed_at, absent).
	SignedAt time.Time `json:"signed_at,omitzero"`
	// For a code review (type pull-request): how many people other than
	// its author approved the request that merged the commit, the branch
	// it was merged into, and why the review is not about this build ("":
	// it is — the commit and repository the build was reported from).
	Approvals     int    `json:"approvals,omitempty"`
	MergedInto    string `json:"merged_into,omitempty"`
	ReviewProblem string `json:"review_problem,omitempty"`
	// Change is a change request's (type change-request, vouch attest
	// change).
	Change ChangeInput `json:"change,omitzero"`
}

// ChangeInput is what decisions use of a change request: its number,
// state, approval, planned window (absent when it has none) and the
// configuration items it is for, or why its payload could not be read.
type ChangeInput struct {
	Number             string    `json:"number"`
	State              string    `json:"state"`
	Approval           string    `json:"approval"`
	PlannedStart       time.Time `json:"planned_start,omitzero"`
	PlannedEnd         time.Time `json:"planned_end,omitzero"`
	ConfigurationItems Names     `json:"configuration_items,omitzero"`
	// ConfigurationItemsProblem says what kept Vouch from reading all
	// its affected CIs.
	ConfigurationItemsProblem string `json:"configuration_items_problem,omitempty"`
	Problem                   string `json:"problem,omitempty"`
}

// Names are a list of names held in one string, so that the inputs
// holding them stay comparable and key the term cache; JSON: an array.
type Names struct{ joined string }

// namesSeparator cannot occur in a name (ParseChange refuses control
// characters).
const namesSeparator = "\x00"

// NewNames holds names; none is the zero Names.
func NewNames(names []string) Names { return Names{strings.Join(names, namesSeparator)} }

// List returns the names, nil when none.
func (n Names) List() []string {
	if n.joined == "" {
		return nil
	}
	return strings.Split(n.joined, namesSeparator)
}

func (n Names) MarshalJSON() ([]byte, error) { return json.Marshal(nonNil(n.List())) }

// ApprovalInput is one release decision, oldest first.
type ApprovalInput struct {
	ID          uint64     `json:"id"`
	Environment string     `json:"environment"`
	Decision    string     `json:"decision"`
	Reason      string     `json:"reason"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	Approver    string     `json:"approver"`
	// ApproverIdentities are the approving token's person (emails,
	// logins, lower case); four eyes compares them with the author.
	ApproverIdentities []string  `json:"approver_identities"`
	ApprovedAt         time.Time `json:"approved_at"`
	Emergency          bool      `json:"emergency"` // lets a change through a freeze
}

// Summarize fills the summaries of every artifact as of time at. A later
// attestation of a name supersedes earlier ones. An approval is in force
// while unexpired and not followed by a rejection; of several, the one
// without expiry or else the one expiring last.
func (in *Input) Summarize(at time.Time) {
	in.Environment.Freeze = FreezeAt(in.Environment.Windows, at)
	for i := range in.Artifacts {
		a := &in.Artifacts[i]
		a.LatestAttestations = make(map[string]AttestationInput, len(a.Attestations))
		for _, x := range a.Attestations {
			a.LatestAttestations[x.Name] = x
		}
		a.Approval = nil
		var valid []ApprovalInput
		for _, x := range a.Approvals {
			switch {
			case x.Decision == "rejected":
				valid = valid[:0]
			case x.Decision == "approved" && (x.ExpiresAt == nil || x.ExpiresAt.After(at)):
				valid = append(valid, x)
			}
		}
		a.ApprovalsInForce = append(make([]ApprovalInput, 0, len(valid)), valid...)
		for j := range valid {
			if best := a.Approval; best == nil || (best.ExpiresAt != nil && (valid[j].ExpiresAt == nil || valid[j].ExpiresAt.After(*best.ExpiresAt))) {
				a.Approval = &valid[j]
			}
		}
	}
}

// EvidenceIDs returns the ids of all evidence records in the input.
func (in *Input) EvidenceIDs() []uint64 {
	var ids []uint64
	for _, a := range in.Artifacts {
		if a.Provenance != nil {
			ids = append(ids, a.Provenance.ID)
		}
		for _, x := range a.Attestations {
			ids = append(ids, x.ID)
		}
		for _, x := range a.Approvals {
			ids = append(ids, x.ID)
		}
	}
	return ids
}

// value converts the input to an OPA value without a JSON round trip. The
// top level is lazy: the request, namespace and workload sections are
// converted only if a rule reads them. Evidence records come from c, which
// keeps their converted form across decisions. value must produce exactly
// what the JSON encoding of Input would; TestInputValueMatchesJSON keeps
// the two in step.
func (in *Input) value(c *termCache) ast.Value {
	artifacts := make([]*ast.Term, len(in.Artifacts))
	for i := range in.Artifacts {
		artifacts[i] = in.Artifacts[i].term(c)
	}
	return ast.LazyObject(map[string]any{
		"request": map[string]any{
			"uid":       in.Request.UID,
			"operation": in.Request.Operation,
			"kind":      in.Request.Kind,
			"namespace": in.Request.Namespace,
			"name":      in.Request.Name,
			"user":      map[string]any{"username": in.Request.User.Username, "groups": nonNil(in.Request.User.Groups)},
			"dry_run":   in.Request.DryRun,
		},
		"environment": map[string]any{"name": in.Environment.Name, "require": in.Environment.Require.document(),
			"mode": in.Environment.Mode, "freeze": in.Environment.Freeze.document()},
		"namespace": map[string]any{
			"name":        in.Namespace.Name,
			"labels":      strMap(in.Namespace.Labels),
			"annotations": strMap(in.Namespace.Annotations),
		},
		"workload": map[string]any{
			"kind":               in.Workload.Kind,
			"name":               in.Workload.Name,
			"namespace":          in.Workload.Namespace,
			"labels":             strMap(in.Workload.Labels),
			"annotations":        strMap(in.Workload.Annotations),
			"configuration_item": in.Workload.ConfigurationItem,
		},
		"artifacts": ast.NewArray(artifacts...),
	})
}

func (r Requirements) document() map[string]any {
	m := map[string]any{"digest": r.Digest, "provenance": r.Provenance, "approval": r.Approval}
	if len(r.Attestations) > 0 {
		m["attestations"] = r.Attestations
	}
	if len(r.VerifiedAttestations) > 0 {
		m["verified_attestations"] = r.VerifiedAttestations
	}
	if len(r.Registries) > 0 {
		m["registries"] = r.Registries
	}
	if r.NoLatest {
		m["no_latest"] = true
	}
	if r.Source {
		m["source"] = true
	}
	if len(r.MaxAge) > 0 {
		ages := make(map[string]any, len(r.MaxAge))
		for k, v := range r.MaxAge {
			ages[k] = time.Duration(v).String()
		}
		m["max_age"] = ages
	}
	if r.FourEyes {
		m["four_eyes"] = true
	}
	if cr := r.CodeReview; cr != nil {
		m["code_review"] = map[string]any{"attestation": cr.Attestation, "min_approvals": cr.MinApprovals, "branches": nonNil(cr.Branches), "verified": cr.Verified}
	}
	if c := r.ChangeRequest; c != nil {
		m["change_request"] = map[string]any{"attestation": c.Attestation, "states": nonNil(c.States), "match_configuration_item": c.MatchConfigurationItem}
	}
	return m
}

func (f FreezeStatus) document() map[string]any {
	m := map[string]any{"active": f.Active}
	if f.Reason != "" {
		m["reason"] = f.Reason
	}
	if f.EndsAt != "" {
		m["ends_at"] = f.EndsAt
	}
	return m
}

// Keys of artifact objects, built once.
var (
	kContainer, kContainerType, kImage, kName, kTag, kDigest = ast.StringTerm("container"), ast.StringTerm("container_type"), ast.StringTerm("image"), ast.StringTerm("name"), ast.StringTerm("tag"), ast.StringTerm("digest")
	kAllowed, kProvenance, kAttestations, kApprovals         = ast.StringTerm("allowed"), ast.StringTerm("provenance"), ast.StringTerm("attestations"), ast.StringTerm("approvals")
	kLatest, kApproval, kInForce                             = ast.StringTerm("latest_attestations"), ast.StringTerm("approval"), ast.StringTerm("approvals_in_force")
)

func (a *ArtifactInput) term(c *termCache) *ast.Term {
	prov := ast.NullTerm()
	if a.Provenance != nil {
		prov = c.provenance(*a.Provenance)
	}
	atts := make([]*ast.Term, len(a.Attestations))
	for i := range a.Attestations {
		atts[i] = c.attestation(a.Attestations[i])
	}
	apps := make([]*ast.Term, len(a.Approvals))
	for i := range a.Approvals {
		apps[i] = c.approval(a.Approvals[i])
	}
	latest := make([][2]*ast.Term, 0, len(a.LatestAttestations))
	for name, x := range a.LatestAttestations {
		latest = append(latest, [2]*ast.Term{ast.StringTerm(name), c.attestation(x)})
	}
	approval := ast.NullTerm()
	if a.Approval != nil {
		approval = c.approval(*a.Approval)
	}
	inForce := make([]*ast.Term, len(a.ApprovalsInForce))
	for i := range a.ApprovalsInForce {
		inForce[i] = c.approval(a.ApprovalsInForce[i])
	}
	return ast.ObjectTerm(
		[2]*ast.Term{kContainer, ast.StringTerm(a.Container)},
		[2]*ast.Term{kContainerType, ast.StringTerm(a.ContainerType)},
		[2]*ast.Term{kImage, ast.StringTerm(a.Image)},
		[2]*ast.Term{kName, ast.StringTerm(a.Name)},
		[2]*ast.Term{kTag, ast.StringTerm(a.Tag)},
		[2]*ast.Term{kDigest, ast.StringTerm(a.Digest)},
		[2]*ast.Term{kAllowed, ast.BooleanTerm(a.Allowed)},
		[2]*ast.Term{kProvenance, prov},
		[2]*ast.Term{kAttestations, ast.ArrayTerm(atts...)},
		[2]*ast.Term{kApprovals, ast.ArrayTerm(apps...)},
		[2]*ast.Term{kLatest, ast.ObjectTerm(latest...)},
		[2]*ast.Term{kApproval, approval},
		[2]*ast.Term{kInForce, ast.ArrayTerm(inForce...)},
	)
}

// termCache keeps the OPA form of evidence records, keyed by their whole
// content, so that evidence seen before costs nothing to convert. Records
// are immutable, so entries never go stale; the cache is emptied when it
// reaches maxCachedTerms.
type termCache struct {
	mu   sync.Mutex
	prov map[Provenance]*ast.Term
	att  map[AttestationInput]*ast.Term
	app  map[approvalKey]*ast.Term
}

const maxCachedTerms = 50000

// approvalKey is an ApprovalInput made comparable.
// approvalKey is an ApprovalInput as a map key.
type approvalKey struct {
	id                                      uint64
	environment, decision, reason, approver string
	identities                              string
	approvedAt, expires                     time.Time
	emergency, hasExpires                   bool
}

func newTermCache() *termCache {
	c := &termCache{}
	c.reset()
	return c
}

func (c *termCache) reset() {
	c.prov = map[Provenance]*ast.Term{}
	c.att = map[AttestationInput]*ast.Term{}
	c.app = map[approvalKey]*ast.Term{}
}

func (c *termCache) full() bool { return len(c.prov)+len(c.att)+len(c.app) >= maxCachedTerms }

func (c *termCache) provenance(p Provenance) *ast.Term {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.prov[p]; ok {
		return t
	}
	t := toTerm(map[string]any{
		"id": p.ID, "name": p.Name, "digest": p.Digest, "git_commit": p.GitCommit, "author": p.Author, "repository": p.Repository,
		"build_url": p.BuildURL, "pipeline": p.Pipeline, "reported_by": p.ReportedBy, "reported_at": timeString(p.ReportedAt),
	})
	if c.full() {
		c.reset()
	}
	c.prov[p] = t
	return t
}

func (c *termCache) attestation(x AttestationInput) *ast.Term {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.att[x]; ok {
		return t
	}
	m := map[string]any{
		"id": x.ID, "name": x.Name, "type": x.Type, "passed": x.Passed, "url": x.URL,
		"blob": x.Blob, "verified": x.Verified, "key_id": x.KeyID,
		"reported_by": x.ReportedBy, "reported_at": timeString(x.ReportedAt),
	}
	if !x.SignedAt.IsZero() {
		m["signed_at"] = timeString(x.SignedAt)
	}
	if x.Type == ReviewType {
		m["approvals"], m["merged_into"], m["review_problem"] = x.Approvals, x.MergedInto, x.ReviewProblem
	}
	if ch := x.Change; ch != (ChangeInput{}) {
		doc := map[string]any{"number": ch.Number, "state": ch.State, "approval": ch.Approval}
		if !ch.PlannedStart.IsZero() {
			doc["planned_start"] = timeString(ch.PlannedStart)
		}
		if !ch.PlannedEnd.IsZero() {
			doc["planned_end"] = timeString(ch.PlannedEnd)
		}
		if cis := ch.ConfigurationItems.List(); cis != nil {
			doc["configuration_items"] = cis
		}
		if ch.ConfigurationItemsProblem != "" {
			doc["configuration_items_problem"] = ch.ConfigurationItemsProblem
		}
		if ch.Problem != "" {
			doc["problem"] = ch.Problem
		}
		m["change"] = doc
	}
	t := toTerm(m)
	if c.full() {
		c.reset()
	}
	c.att[x] = t
	return t
}

func (c *termCache) approval(x ApprovalInput) *ast.Term {
	k := approvalKey{id: x.ID, environment: x.Environment, decision: x.Decision, reason: x.Reason, approver: x.Approver,
		identities: strings.Join(x.ApproverIdentities, ","), approvedAt: x.ApprovedAt, emergency: x.Emergency}
	if x.ExpiresAt != nil {
		k.expires, k.hasExpires = *x.ExpiresAt, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.app[k]; ok {
		return t
	}
	m := map[string]any{
		"id": x.ID, "environment": x.Environment, "decision": x.Decision, "reason": x.Reason,
		"approver": x.Approver, "approved_at": timeString(x.ApprovedAt), "emergency": x.Emergency,
		"approver_identities": identityList(x.ApproverIdentities),
	}
	if x.ExpiresAt != nil {
		m["expires_at"] = timeString(*x.ExpiresAt)
	}
	t := toTerm(m)
	if c.full() {
		c.reset()
	}
	c.app[k] = t
	return t
}

func toTerm(m map[string]any) *ast.Term {
	return ast.NewTerm(ast.MustInterfaceToValue(m))
}

func timeString(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func strMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// identityList is an approval's identities for the input: null when none
// were recorded, as the input's JSON has it.
func identityList(ids []string) any {
	if ids == nil {
		return nil
	}
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}
