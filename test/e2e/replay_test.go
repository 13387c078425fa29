package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyReplay journals decisions through the webhook of a running
// `vouch serve`, then asks `vouch policy replay` what a candidate policy
// with one more rule would have decided.
func TestPolicyReplay(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			url := ""
			if backend == "postgres" {
				url = pg.Database(t)
			}
			v := start(t, url)
			ci := v.cli("token", "create", "--name", "ci", "--scopes", "evidence:write")
			rm := v.cli("token", "create", "--name", "rm", "--scopes", "approvals:write")
			auditor := v.cli("token", "create", "--name", "auditor", "--scopes", "audit:read")
			post := func(token, path, body string) {
				t.Helper()
				if code, out := v.post(token, path, body); code != 201 {
					t.Fatalf("POST %s: %d %v", path, code, out)
				}
			}
			digest := func(n int) string { return fmt.Sprintf("sha256:%064x", 0x4e9100+n) }
			image := func(n int) string { return "registry.example.com/shop/app@" + digest(n) }
			post(ci, "/api/v1/artifacts", fmt.Sprintf(`{"name":"registry.example.com/shop/app","digest":%q}`, digest(1)))
			post(ci, "/api/v1/attestations", fmt.Sprintf(`{"digest":%q,"name":"unit-tests","passed":true}`, digest(1)))
			post(rm, "/api/v1/approvals", fmt.Sprintf(`{"digest":%q,"environment":"prod","decision":"approved"}`, digest(1)))
			if resp := v.admit("replay-prod", "prod", image(1)); !resp.Allowed {
				t.Fatalf("prod with evidence: denied: %s", resp.Result.Message)
			}
			if resp := v.admit("replay-default", "default", image(2)); resp.Allowed {
				t.Fatal("default without provenance: admitted")
			}
			// Reported after the denial: replaying it must not count.
			post(ci, "/api/v1/artifacts", fmt.Sprintf(`{"name":"registry.example.com/shop/app","digest":%q}`, digest(2)))

			dir := t.TempDir()
			team := `package vouch.admission

deny contains {"msg": sprintf("%s %s: add a \"team\" label", [input.workload.kind, input.workload.name]), "rule": "team-label", "requirement": "team label"} if {
	input.environment.name == "prod"
	not input.workload.labels.team
}
`
			if err := os.WriteFile(filepath.Join(dir, "team.rego"), []byte(team), 0o644); err != nil {
				t.Fatal(err)
			}
			var rep struct {
				Totals map[string]int
				Rules  []struct {
					Change, Rule, Requirement string
					Decisions                 int
					Examples                  []struct {
						UID           string
						Before, After []string
					}
				}
				Workloads []struct {
					Namespace, Kind, Name string
					AdmitToDeny           int `json:"admit_to_deny"`
				}
			}
			out := v.cli("policy", "replay", "--policy-dir", dir, "--since", "1h", "-o", "json", "--token", auditor)
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("policy replay -o json: %v\n%s", err, out)
			}
			wantTotals := map[string]int{"decisions": 2, "replayed": 2, "unchanged": 1, "admit_to_deny": 1, "deny_to_admit": 0, "skipped": 0, "reasons_changed": 0, "already_flipped": 0}
			if fmt.Sprint(rep.Totals) != fmt.Sprint(wantTotals) {
				t.Errorf("totals = %v, want %v", rep.Totals, wantTotals)
			}
			if len(rep.Rules) != 1 || rep.Rules[0].Rule != "team-label" || rep.Rules[0].Decisions != 1 || len(rep.Rules[0].Examples) != 1 ||
				rep.Rules[0].Examples[0].UID != "replay-prod" || rep.Rules[0].Examples[0].After[0] != `Deployment web: add a "team" label` {
				t.Errorf("rules = %+v, want team-label flipping replay-prod", rep.Rules)
			}
			if len(rep.Workloads) != 1 || rep.Workloads[0].Name != "web" || rep.Workloads[0].Namespace != "prod" || rep.Workloads[0].AdmitToDeny != 1 {
				t.Errorf("workloads = %+v, want prod/web", rep.Workloads)
			}

			// The same without the server: the store read directly.
			localOut, errOut, code := v.exec("policy", "replay", "--policy-dir", dir, "--since", "1h", "-o", "json", "--local",
				"--config", filepath.Join(v.dataDir, "vouch.yaml"), "--database-url", url)
			if code != 0 {
				t.Fatalf("policy replay --local: exit %d\n%s", code, errOut)
			}
			localRep := rep
			localRep.Totals, localRep.Rules, localRep.Workloads = nil, nil, nil
			if err := json.Unmarshal([]byte(localOut), &localRep); err != nil {
				t.Fatalf("policy replay --local -o json: %v\n%s", err, localOut)
			}
			if got, want := fmt.Sprintf("%+v", localRep), fmt.Sprintf("%+v", rep); got != want {
				t.Errorf("policy replay --local = %s\nwant what the server answered: %s", got, want)
			}

			// The table, and --fail-on-flips.
			table, stderr, code := v.exec("policy", "replay", "--policy-dir", dir, "--since", "1h", "--environment", "prod", "--fail-on-flips", "--token", auditor)
			if code != 1 || !strings.Contains(stderr, "1 admitted decisions would be denied") {
				t.Errorf("--fail-on-flips: exit %d, stderr %q; want 1", code, stderr)
			}
			for _, want := range []string{"Replayed 1 of 1 admission decisions in prod", "admit→deny  team-label  team label   1",
				`now denied: Deployment web: add a "team" label`, "prod         prod       Deployment/web  1           0"} {
				if !strings.Contains(table, want) {
					t.Errorf("table lacks %q:\n%s", want, table)
				}
			}

			// An empty directory is the built-in policy alone: nothing flips.
			if out := v.cli("policy", "replay", "--policy-dir", t.TempDir(), "--token", auditor); !strings.Contains(out, "No decision would flip.") {
				t.Errorf("built-in policy alone:\n%s", out)
			}
			// A module that does not parse is named, with its line.
			if err := os.WriteFile(filepath.Join(dir, "team.rego"), []byte("package vouch.admission\n\ndeny contains x if {\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, code := v.run("policy", "replay", "--policy-dir", dir, "--token", auditor); code != 1 || !strings.Contains(out, "modules[team.rego]: line 4: rego_parse_error") {
				t.Errorf("broken module: exit %d\n%s", code, out)
			}
			if out, code := v.run("policy", "replay", "--token", auditor); code != 2 || !strings.Contains(out, "--policy-dir") {
				t.Errorf("without --policy-dir: exit %d\n%s", code, out)
			}
			if out, code := v.run("policy", "replay", "--policy-dir", t.TempDir(), "--token", ci); code != 1 || !strings.Contains(out, "403") {
				t.Errorf("without audit:read: exit %d\n%s", code, out)
			}
		})
	}
}
