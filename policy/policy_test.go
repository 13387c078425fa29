package policy_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vouch-dev/vouch/policy"
	vrego "github.com/vouch-dev/vouch/rego"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newEngine(t *testing.T, dir string) *policy.Engine {
	t.Helper()
	e, err := policy.New(context.Background(), policy.Config{Builtin: vrego.FS, Dir: dir})
	if err != nil {
		t.Fatalf("policy.New: %v", err)
	}
	return e
}

func newEngineB() (*policy.Engine, error) {
	return policy.New(context.Background(), policy.Config{Builtin: vrego.FS})
}

func prodInput(mod func(a *policy.ArtifactInput)) *policy.Input {
	a := policy.ArtifactInput{
		Container: "web", ContainerType: policy.ContainerRegular,
		Image: "registry.example.com/app@" + digest, Name: "registry.example.com/app", Digest: digest,
		Provenance: &policy.Provenance{ID: 1, Name: "registry.example.com/app", Digest: digest, ReportedBy: "ci", ReportedAt: now.Add(-time.Hour)},
		Attestations: []policy.AttestationInput{
			{ID: 2, Name: "unit-tests", Type: "junit", Passed: true, ReportedBy: "ci", ReportedAt: now.Add(-time.Hour)},
			{ID: 3, Name: "security-scan", Type: "sarif", Passed: true, ReportedBy: "ci", ReportedAt: now.Add(-time.Hour)},
		},
		Approvals: []policy.ApprovalInput{{ID: 4, Environment: "prod", Decision: "approved", Approver: "alice", ApprovedAt: now.Add(-time.Minute)}},
	}
	if mod != nil {
		mod(&a)
	}
	return &policy.Input{
		Request:     policy.Request{UID: "u1", Operation: "CREATE", Kind: "Deployment", Namespace: "prod", Name: "web", User: policy.User{Username: "alice", Groups: []string{}}},
		Environment: policy.InputEnvironment{Name: "prod", Require: policy.Requirements{Digest: true, Provenance: true, Attestations: []string{"unit-tests", "security-scan"}, Approval: true}},
		Workload:    policy.Workload{Kind: "Deployment", Name: "web", Namespace: "prod", Labels: map[string]string{}, Annotations: map[string]string{}},
		Artifacts:   []policy.ArtifactInput{a},
	}
}

func TestDecide(t *testing.T) {
	e := newEngine(t, "")
	img := "registry.example.com/app@" + digest
	tests := []struct {
		name     string
		mod      func(a *policy.ArtifactInput)
		wantDeny []string
		wantWarn []string
	}{
		{name: "complete evidence"},
		{
			name:     "no provenance",
			mod:      func(a *policy.ArtifactInput) { a.Provenance = nil },
			wantDeny: []string{`container "web": image ` + img + ` has no provenance: no build with this digest was reported to Vouch (required in prod)`},
		},
		{
			name:     "failed scan",
			mod:      func(a *policy.ArtifactInput) { a.Attestations[1].Passed = false },
			wantDeny: []string{`container "web": image ` + img + ` has no passed attestation "security-scan": the latest (id 3, reported 2026-11-25T11:00:00Z by ci) failed (required in prod)`},
		},
		{
			name: "approval expired a second ago",
			mod: func(a *policy.ArtifactInput) {
				exp := now.Add(-time.Second)
				a.Approvals[0].ExpiresAt = &exp
			},
			wantDeny: []string{`container "web": image ` + img + ` has no valid release approval for prod: the approval by alice expired at 2026-11-25T11:59:59Z (required in prod)`},
		},
		{
			name: "approval expiring in an hour",
			mod: func(a *policy.ArtifactInput) {
				exp := now.Add(time.Hour)
				a.Approvals[0].ExpiresAt = &exp
			},
			wantWarn: []string{`container "web": image ` + img + `: its release approval for prod expires at 2026-11-25T13:00:00Z`},
		},
		{
			name: "tag only",
			mod: func(a *policy.ArtifactInput) {
				a.Image, a.Tag, a.Digest, a.Provenance = "registry.example.com/app:1.0", "1.0", "", nil
			},
			wantDeny: []string{`container "web": image registry.example.com/app:1.0 is not pinned by digest (required in prod); deploy it as registry.example.com/app@sha256:<digest>`},
		},
		{
			name: "allow-listed",
			mod:  func(a *policy.ArtifactInput) { a.Allowed, a.Digest, a.Provenance = true, "", nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Decide(context.Background(), prodInput(tt.mod), now)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if diff := cmp.Diff(tt.wantDeny, d.Deny, cmpEmpty); diff != "" {
				t.Errorf("Decide deny (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantWarn, d.Warn, cmpEmpty); diff != "" {
				t.Errorf("Decide warn (-want +got):\n%s", diff)
			}
			if d.Allowed() != (len(tt.wantDeny) == 0) {
				t.Errorf("Allowed() = %v with deny %v", d.Allowed(), d.Deny)
			}
			if d.Version != e.Version() || !strings.HasPrefix(d.Version, "sha256:") {
				t.Errorf("Version = %q, engine version %q", d.Version, e.Version())
			}
		})
	}
}

var cmpEmpty = cmp.FilterValues(func(a, b []string) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

func TestPolicyDirAddsRulesAndReloads(t *testing.T) {
	dir := t.TempDir()
	builtinOnly := newEngine(t, "").Version()
	e := newEngine(t, dir)
	if e.Version() != builtinOnly {
		t.Fatalf("empty policy dir changed the version: %s != %s", e.Version(), builtinOnly)
	}

	custom := `package vouch.admission
deny contains msg if {
	input.workload.labels.team == ""
	msg := "workload has an empty team label"
}
deny contains {"msg": "objects with msg work too"} if input.workload.annotations.legacy
`
	write(t, filepath.Join(dir, "team.rego"), custom)
	// A test file and a ConfigMap-style hidden copy are not part of the bundle.
	write(t, filepath.Join(dir, "team_test.rego"), "package broken {")
	write(t, filepath.Join(dir, "..2026_11_25", "team.rego"), "package broken {")
	changed, err := e.Reload(context.Background())
	if err != nil || !changed {
		t.Fatalf("Reload = %v, %v; want true, nil", changed, err)
	}
	if e.Version() == builtinOnly {
		t.Fatal("version did not change after adding a module")
	}
	if got, want := e.Files(), []string{"builtin/approval.rego", "builtin/attestations.rego", "builtin/change_request.rego", "builtin/code_review.rego", "builtin/digest.rego", "builtin/four_eyes.rego",
		"builtin/freeze.rego", "builtin/freshness.rego", "builtin/helpers.rego", "builtin/latest.rego", "builtin/provenance.rego",
		"builtin/registries.rego", "team.rego"}; !cmp.Equal(got, want) {
		t.Errorf("Files() = %v, want %v", got, want)
	}
	in := prodInput(nil)
	in.Workload.Labels["team"] = ""
	in.Workload.Annotations["legacy"] = "true"
	d, err := e.Decide(context.Background(), in, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"objects with msg work too", "workload has an empty team label"}; !cmp.Equal(d.Deny, want) {
		t.Errorf("Decide deny = %q, want %q", d.Deny, want)
	}

	// A module that does not compile leaves the working bundle in place.
	good := e.Version()
	write(t, filepath.Join(dir, "team.rego"), "package vouch.admission\ndeny contains msg if { msg := undefined_function(1) }")
	if _, err := e.Reload(context.Background()); err == nil {
		t.Fatal("Reload of a broken module succeeded")
	}
	if e.Version() != good {
		t.Errorf("version after failed reload = %s, want %s", e.Version(), good)
	}
	if _, err := e.Decide(context.Background(), in, now); err != nil {
		t.Errorf("Decide after failed reload: %v", err)
	}
}

func TestNewRejectsBrokenPolicyDir(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "bad.rego"), "package vouch.admission\ndeny contains if {")
	_, err := policy.New(context.Background(), policy.Config{Builtin: vrego.FS, Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "bad.rego") {
		t.Fatalf("policy.New with a broken module: err = %v, want one naming bad.rego", err)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
