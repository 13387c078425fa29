package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vouchCLI runs the CLI in-process and returns stdout, stderr and the exit
// status.
func vouchCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestPolicyCommands(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("team.rego", `package vouch.admission

deny contains violation(msg, "team-label", "team label") if {
	input.environment.name == "prod"
	not input.workload.labels.team
	msg := sprintf("%s %s: add a \"team\" label (required in prod)", [input.workload.kind, input.workload.name])
}
`)
	write("team_test.rego", `package vouch.admission_test

import data.vouch.admission

test_team_label_required if {
	d := admission.deny with input as {"environment": {"name": "prod", "require": {}}, "workload": {"kind": "Deployment", "name": "web", "labels": {}}, "artifacts": []}
	count(d) == 1
}

test_wrong_on_purpose if {
	d := admission.deny with input as {"environment": {"name": "prod", "require": {}}, "workload": {"kind": "Deployment", "name": "web", "labels": {"team": "a"}}, "artifacts": []}
	count(d) == 1
}
`)
	out, _, code := vouchCLI(t, "policy", "test", dir, "--coverage")
	if code != 1 || !strings.Contains(out, "FAIL  team_test.rego:10 test_wrong_on_purpose") || !strings.Contains(out, "false: team_test.rego:12: count(d) == 1") ||
		!strings.Contains(out, "1 passed, 1 failed, 0 skipped; coverage 100.0%") {
		t.Errorf("policy test: exit %d\n%s", code, out)
	}
	write("team_test.rego", strings.Replace(mustRead(t, filepath.Join(dir, "team_test.rego")), `"labels": {"team": "a"}`, `"labels": {}`, 1))
	if out, _, code := vouchCLI(t, "policy", "test", dir); code != 0 || !strings.Contains(out, "2 passed, 0 failed") {
		t.Errorf("policy test after the fix: exit %d\n%s", code, out)
	}

	if out, _, code := vouchCLI(t, "policy", "check", dir); code != 0 || !strings.Contains(out, "OK: 2 files") {
		t.Errorf("policy check: exit %d\n%s", code, out)
	}
	write("typo.rego", "package vouch.admission\n\nwarn contains \"x\" if { input.request.dryrun }\n")
	if out, _, code := vouchCLI(t, "policy", "check", dir); code != 1 || !strings.Contains(out, "typo.rego:3") || !strings.Contains(out, "undefined ref: input.request.dryrun") {
		t.Errorf("policy check with a typo: exit %d\n%s", code, out)
	}
	os.Remove(filepath.Join(dir, "typo.rego"))

	write("ugly.rego", "package vouch.admission\nwarn contains \"x\" if {input.request.dry_run}\n")
	if out, _, code := vouchCLI(t, "policy", "fmt", "--check", dir); code != 1 || strings.TrimSpace(out) != filepath.Join(dir, "ugly.rego") {
		t.Errorf("policy fmt --check: exit %d\n%s", code, out)
	}
	if _, _, code := vouchCLI(t, "policy", "fmt", dir); code != 0 {
		t.Errorf("policy fmt: exit %d", code)
	}
	if out, _, code := vouchCLI(t, "policy", "fmt", "--check", dir); code != 0 {
		t.Errorf("policy fmt --check after fmt: exit %d\n%s", code, out)
	}
	os.Remove(filepath.Join(dir, "ugly.rego"))

	// eval: a Deployment in prod without a team label, evidence from a file.
	cfg := filepath.Join(dir, "vouch.yaml")
	os.WriteFile(cfg, []byte("environments:\n  - name: prod\n    namespaces: [shop]\n    require: {digest: true, provenance: true}\n"), 0o644)
	const digest = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	review := filepath.Join(t.TempDir(), "deploy.yaml")
	os.WriteFile(review, []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers: [{name: web, image: "registry.example.com/shop/web@`+digest+`"}]
`), 0o644)
	ev := filepath.Join(t.TempDir(), "evidence.json")
	os.WriteFile(ev, []byte(`{"digest":"`+digest+`","artifact":{"id":1,"name":"registry.example.com/shop/web","digest":"`+digest+`","reported_by":"ci","reported_at":"2026-11-25T10:00:00Z"},"attestations":[],"approvals":[]}`), 0o644)
	out, _, code = vouchCLI(t, "policy", "eval", "--input", review, "--evidence", ev, "--policy-dir", dir, "--config", cfg)
	if code != 1 || !strings.Contains(out, "DENIED in prod") || !strings.Contains(out, `deny: Deployment web: add a "team" label (required in prod)`) ||
		strings.Contains(out, "has no provenance") || !strings.Contains(out, `"git_commit": ""`) {
		t.Errorf("policy eval: exit %d\n%s", code, out)
	}
	// Without the candidate rule, the same change is admitted.
	if out, _, code := vouchCLI(t, "policy", "eval", "--input", review, "--evidence", ev, "--config", cfg, "--no-input"); code != 0 || !strings.HasPrefix(out, "ADMITTED in prod") {
		t.Errorf("policy eval without the rule: exit %d\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"policy", "eval"}, "needs --input"},
		{[]string{"policy", "eval", "--input", cfg}, "want an AdmissionReview or a Kubernetes object"},
		{[]string{"policy", "nope"}, `unknown policy command "nope"`},
	} {
		if _, errOut, code := vouchCLI(t, tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("vouch %v: exit %d %q", tc.args, code, errOut)
		}
	}
}

func mustRead(t *testing.T, name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
