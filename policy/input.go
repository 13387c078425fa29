package policy

import (
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Input is the document policies see as `input`. docs/policy.md shows a
// full example. Vouch's own fields are snake_case.
type Input struct {
	Request     Request          `json:"request"`
	Environment InputEnvironment `json:"environment"`
	Workload    Workload         `json:"workload"`
	Artifacts   []ArtifactInput  `json:"artifacts"`
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
}

// Workload is the object being admitted.
type Workload struct {
	Kind        string            `json:"kind"`
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
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
}

// Provenance is the build that produced an artifact.
type Provenance struct {
	ID         uint64    `json:"id"`
	Name       string    `json:"name"`
	Digest     string    `json:"digest"`
	GitCommit  string    `json:"git_commit"`
	Repository string    `json:"repository"`
	BuildURL   string    `json:"build_url"`
	Pipeline   string    `json:"pipeline"`
	ReportedBy string    `json:"reported_by"`
	ReportedAt time.Time `json:"reported_at"`
}

// AttestationInput is one attestation, oldest first.
type AttestationInput struct {
	ID         uint64    `json:"id"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	Passed     bool      `json:"passed"`
	URL        string    `json:"url"`
	ReportedBy string    `json:"reported_by"`
	ReportedAt time.Time `json:"reported_at"`
}

// ApprovalInput is one release decision, oldest first.
type ApprovalInput struct {
	ID          uint64     `json:"id"`
	Environment string     `json:"environment"`
	Decision    string     `json:"decision"`
	Reason      string     `json:"reason"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	Approver    string     `json:"approver"`
	ApprovedAt  time.Time  `json:"approved_at"`
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

// value converts the input to an OPA value directly, without a JSON round
// trip. It must produce exactly what the JSON encoding of Input would;
// TestInputValueMatchesJSON keeps the two in step.
func (in *Input) value() ast.Value {
	artifacts := make([]*ast.Term, len(in.Artifacts))
	for i := range in.Artifacts {
		artifacts[i] = ast.NewTerm(in.Artifacts[i].value())
	}
	return obj(
		"request", ast.NewTerm(obj(
			"uid", str(in.Request.UID),
			"operation", str(in.Request.Operation),
			"kind", str(in.Request.Kind),
			"namespace", str(in.Request.Namespace),
			"name", str(in.Request.Name),
			"user", ast.NewTerm(obj("username", str(in.Request.User.Username), "groups", strs(in.Request.User.Groups))),
			"dry_run", ast.BooleanTerm(in.Request.DryRun),
		)),
		"environment", ast.NewTerm(obj(
			"name", str(in.Environment.Name),
			"require", ast.NewTerm(in.Environment.Require.value()),
		)),
		"workload", ast.NewTerm(obj(
			"kind", str(in.Workload.Kind),
			"name", str(in.Workload.Name),
			"namespace", str(in.Workload.Namespace),
			"labels", strMap(in.Workload.Labels),
			"annotations", strMap(in.Workload.Annotations),
		)),
		"artifacts", ast.ArrayTerm(artifacts...),
	)
}

func (r Requirements) value() ast.Value {
	o := obj("digest", ast.BooleanTerm(r.Digest), "provenance", ast.BooleanTerm(r.Provenance), "approval", ast.BooleanTerm(r.Approval))
	if len(r.Attestations) > 0 {
		o.Insert(ast.StringTerm("attestations"), strs(r.Attestations))
	}
	return o
}

func (a *ArtifactInput) value() ast.Value {
	prov := ast.NullTerm()
	if p := a.Provenance; p != nil {
		prov = ast.NewTerm(obj(
			"id", num(p.ID), "name", str(p.Name), "digest", str(p.Digest), "git_commit", str(p.GitCommit),
			"repository", str(p.Repository), "build_url", str(p.BuildURL), "pipeline", str(p.Pipeline),
			"reported_by", str(p.ReportedBy), "reported_at", timeTerm(p.ReportedAt),
		))
	}
	atts := make([]*ast.Term, len(a.Attestations))
	for i, x := range a.Attestations {
		atts[i] = ast.NewTerm(obj(
			"id", num(x.ID), "name", str(x.Name), "type", str(x.Type), "passed", ast.BooleanTerm(x.Passed),
			"url", str(x.URL), "reported_by", str(x.ReportedBy), "reported_at", timeTerm(x.ReportedAt),
		))
	}
	apps := make([]*ast.Term, len(a.Approvals))
	for i, x := range a.Approvals {
		o := obj(
			"id", num(x.ID), "environment", str(x.Environment), "decision", str(x.Decision), "reason", str(x.Reason),
			"approver", str(x.Approver), "approved_at", timeTerm(x.ApprovedAt),
		)
		if x.ExpiresAt != nil {
			o.Insert(ast.StringTerm("expires_at"), timeTerm(*x.ExpiresAt))
		}
		apps[i] = ast.NewTerm(o)
	}
	return obj(
		"container", str(a.Container), "container_type", str(a.ContainerType), "image", str(a.Image),
		"name", str(a.Name), "tag", str(a.Tag), "digest", str(a.Digest), "allowed", ast.BooleanTerm(a.Allowed),
		"provenance", prov, "attestations", ast.ArrayTerm(atts...), "approvals", ast.ArrayTerm(apps...),
	)
}

// obj builds an object from alternating string keys and terms.
func obj(kv ...any) ast.Object {
	o := ast.NewObject()
	for i := 0; i < len(kv); i += 2 {
		o.Insert(ast.StringTerm(kv[i].(string)), kv[i+1].(*ast.Term))
	}
	return o
}

func str(s string) *ast.Term { return ast.StringTerm(s) }

func num(n uint64) *ast.Term { return ast.UIntNumberTerm(n) }

func timeTerm(t time.Time) *ast.Term { return ast.StringTerm(t.UTC().Format(time.RFC3339Nano)) }

func strs(ss []string) *ast.Term {
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(terms...)
}

func strMap(m map[string]string) *ast.Term {
	o := ast.NewObject()
	for k, v := range m {
		o.Insert(ast.StringTerm(k), ast.StringTerm(v))
	}
	return ast.NewTerm(o)
}
