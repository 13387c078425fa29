package policy_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/policy"
	vrego "github.com/vouch-dev/vouch/rego"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const teamRule = `package vouch.admission

deny contains violation(msg, "team-label", "team label") if {
	input.environment.name == "prod"
	not input.workload.labels.team
	msg := sprintf("%s %s: add a \"team\" label (required in prod)", [input.workload.kind, input.workload.name])
}
`

const teamTest = `package vouch.admission_test

import data.vouch.admission

test_team_label_required if {
	d := admission.deny with input as {"environment": {"name": "prod", "require": {}}, "workload": {"kind": "Deployment", "name": "web", "labels": {}}, "artifacts": []}
	count(d) == 1
}

test_fails_on_purpose if {
	d := admission.deny with input as {"environment": {"name": "dev", "require": {}}, "workload": {"kind": "Deployment", "name": "web", "labels": {}}, "artifacts": []}
	count(d) == 1
}
`

func TestSourcesTestRunsTheDirectorysTestsWithCoverage(t *testing.T) {
	dir := writeFiles(t, map[string]string{"team.rego": teamRule, "team_test.rego": teamTest})
	src, err := policy.LoadSources(vrego.FS, dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := src.Test(context.Background(), func(name string) bool { return !policy.Builtin(name) })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Passed != 1 || rep.Failed != 1 || len(rep.Results) != 2 {
		t.Fatalf("report = %+v", rep)
	}
	failed := rep.Results[1]
	if failed.Name != "test_fails_on_purpose" || failed.Pass || !strings.Contains(failed.FailedAt, "team_test.rego:12: count(d) == 1") {
		t.Errorf("failed test = %+v", failed)
	}
	if fc, ok := rep.Files["team.rego"]; !ok || fc.Coverage <= 0 || fc.Coverage > 100 || rep.Coverage != fc.Coverage {
		t.Errorf("coverage of team.rego = %+v (%v)", fc, rep.Files)
	}
	for name := range rep.Files {
		if policy.Builtin(name) {
			t.Errorf("coverage reports %s, which is not under test", name)
		}
	}

	// The built-in library's own tests all pass.
	all, err := src.Test(context.Background(), policy.Builtin)
	if err != nil {
		t.Fatal(err)
	}
	if all.Failed != 0 || all.Passed < 40 {
		t.Errorf("built-in tests: %d passed, %d failed", all.Passed, all.Failed)
	}
}

func TestSourcesCheck(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"a typo in an input reference", strings.Replace(teamRule, "input.workload.labels", "input.workload.label", 1), "undefined ref: input.workload.label"},
		{"a syntax error", "package vouch.admission\n\ndeny contains msg if {\n", "team.rego:4"},
		{"an unknown function", strings.Replace(teamRule, "sprintf(", "sprint(", 1), "undefined function sprint"},
		{"deny as a boolean", "package vouch.admission\n\ndeny if { input.request.dry_run }\n", "conflicting rules data.vouch.admission.deny"},
		{"a fine rule", teamRule, ""},
	} {
		dir := writeFiles(t, map[string]string{"team.rego": tc.src})
		src, err := policy.LoadSources(vrego.FS, dir)
		if err != nil {
			t.Fatal(err)
		}
		err = src.Check()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	// The built-in library itself checks clean against the schema.
	src, _ := policy.LoadSources(vrego.FS, "")
	if err := src.Check(); err != nil {
		t.Errorf("built-in policy: %v", err)
	}
}

func TestFormat(t *testing.T) {
	ugly := "package vouch.admission\ndeny contains msg if {input.request.dry_run;msg:=\"x\"}\n"
	out, err := policy.Format("x.rego", []byte(ugly))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := policy.Formatted("x.rego", out); !ok {
		t.Errorf("formatted output is not formatted:\n%s", out)
	}
	if ok, _ := policy.Formatted("x.rego", []byte(ugly)); ok {
		t.Error("unformatted source reported formatted")
	}
}

// TestInputSchemaMatchesInput keeps input.schema.json and the input
// document in step: every field of a fully populated input is in the
// schema, and every field of the schema is in the input.
func TestInputSchemaMatchesInput(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	att := policy.AttestationInput{ID: 2, Name: "unit-tests", Type: policy.ReviewType, Approvals: 1, MergedInto: "main", ReviewProblem: "p", ReportedAt: at,
		Change: policy.ChangeInput{Number: "CHG1", State: "implement", Approval: "approved", PlannedStart: at, PlannedEnd: at, ConfigurationItems: policy.NewNames([]string{"ci"}), ConfigurationItemsProblem: "p", Problem: "p"}}
	app := policy.ApprovalInput{ID: 3, Decision: "approved", ExpiresAt: &at, ApprovedAt: at, ApproverIdentities: []string{"alice"}}
	in := policy.Input{
		Request: policy.Request{User: policy.User{Groups: []string{"g"}}},
		Environment: policy.NewInputEnvironment(policy.Environment{Name: "prod", Require: policy.Requirements{
			Attestations: []string{"a"}, VerifiedAttestations: []string{"b"}, Registries: []string{"r/*"}, NoLatest: true, Source: true,
			MaxAge: map[string]policy.Duration{"a": policy.Duration(time.Hour)}, FourEyes: true,
			CodeReview:    &policy.CodeReview{Attestation: "code-review", MinApprovals: 2, Branches: []string{"main"}, Verified: true},
			ChangeRequest: &policy.ChangeRequest{Attestation: "change-request", States: []string{"implement"}, MatchConfigurationItem: true}}}),
		Namespace: policy.Namespace{Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"a": "b"}},
		Workload:  policy.Workload{Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"a": "b"}},
		Artifacts: []policy.ArtifactInput{{
			Provenance: &policy.Provenance{ReportedAt: at}, Attestations: []policy.AttestationInput{att},
			Approvals: []policy.ApprovalInput{app},
		}},
	}
	in.Environment.Freeze = policy.FreezeStatus{Active: true, Reason: "r", EndsAt: "t"}
	in.Summarize(at)
	in.Environment.Freeze = policy.FreezeStatus{Active: true, Reason: "r", EndsAt: "t"}
	b, _ := json.Marshal(in)
	var doc any
	json.Unmarshal(b, &doc)
	var schema map[string]any
	if err := json.Unmarshal(policy.InputSchema, &schema); err != nil {
		t.Fatal(err)
	}
	var missing, extra []string
	compareSchema(schema, doc, "input", &missing, &extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("input fields not in the schema: %v\nschema fields not in the input: %v", missing, extra)
	}
}

func compareSchema(schema map[string]any, doc any, path string, missing, extra *[]string) {
	if alts, ok := schema["anyOf"].([]any); ok {
		for _, a := range alts {
			if a.(map[string]any)["type"] != "null" {
				schema = a.(map[string]any)
			}
		}
	}
	switch d := doc.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		if props == nil { // a map: every value has the additionalProperties schema
			if sub, ok := schema["additionalProperties"].(map[string]any); ok {
				for k, v := range d {
					compareSchema(sub, v, path+"."+k, missing, extra)
				}
			}
			return
		}
		for k, v := range d {
			sub, ok := props[k].(map[string]any)
			if !ok {
				*missing = append(*missing, path+"."+k)
				continue
			}
			compareSchema(sub, v, path+"."+k, missing, extra)
		}
		for k := range props {
			if _, ok := d[k]; !ok {
				*extra = append(*extra, path+"."+k)
			}
		}
		slices.Sort(*missing)
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for _, v := range d {
				compareSchema(items, v, path+"[]", missing, extra)
			}
		}
	}
}
