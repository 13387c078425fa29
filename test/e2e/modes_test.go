package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestModesExemptionsAndBreakGlass drives enforcement modes, change
// freezes, exemptions and break-glass through the real binary, and checks
// that each is journaled and alerted.
func TestModesExemptionsAndBreakGlass(t *testing.T) {
	var mu sync.Mutex
	var alerts []map[string]any
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var n map[string]any
		json.Unmarshal(b, &n)
		mu.Lock()
		alerts = append(alerts, n)
		mu.Unlock()
	}))
	defer receiver.Close()
	now := time.Now().UTC()
	cfg := fmt.Sprintf(`
environments:
  - name: prod
    namespaces: ["prod"]
    require: {digest: true, provenance: true}
    break_glass: true
  - name: staging
    namespaces: ["staging"]
    require: {digest: true, provenance: true}
    mode: warn
  - name: dev
    namespaces: ["dev"]
    require: {digest: true}
    mode: audit
  - name: bank
    namespaces: ["bank"]
    require: {digest: true, provenance: true, approval: true, four_eyes: true}
  - name: retail
    namespaces: ["retail"]
    require: {}
    freeze:
      - {start: %q, end: %q, reason: "Black Friday"}
notifications:
  - {name: ops, type: webhook, url: %q}
`, now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339), receiver.URL)
	v := startConfig(t, cfg, "")
	rm := v.cli("token", "create", "--name", "release-manager", "--scopes", "approvals:write")
	auditor := v.cli("token", "create", "--name", "auditor", "--scopes", "audit:read")
	const tag = "registry.example.com/shop/web:1.0"
	unknown := "registry.example.com/shop/web@sha256:" + strings.Repeat("e", 64)
	vendor := "registry.example.com/vendor/agent@sha256:" + strings.Repeat("f", 64)

	// warn: admitted, and kubectl would print why it would be denied.
	resp := v.admit("warn-1", "staging", tag)
	if !resp.Allowed || len(resp.Warnings) != 1 || !strings.HasPrefix(resp.Warnings[0], `would be denied in enforce mode: container "c0": image `+tag+" is not pinned by digest") {
		t.Errorf("warn mode: allowed=%v warnings=%q", resp.Allowed, resp.Warnings)
	}
	// audit: admitted silently.
	if resp := v.admit("audit-1", "dev", tag); !resp.Allowed || len(resp.Warnings) != 0 {
		t.Errorf("audit mode: allowed=%v warnings=%q", resp.Allowed, resp.Warnings)
	}
	// enforce: denied.
	if resp := v.admit("enforce-1", "prod", unknown); resp.Allowed {
		t.Error("enforce mode admitted an image without provenance")
	}
	// A freeze denies whatever the evidence.
	if resp := v.admit("freeze-1", "retail", unknown); resp.Allowed || !strings.Contains(resp.Result.Message, "retail is in a change freeze until") || !strings.Contains(resp.Result.Message, "(Black Friday)") {
		t.Errorf("freeze: %+v", resp.Result)
	}

	// An emergency approval lets a change through the freeze.
	frozen := "registry.example.com/shop/web@sha256:" + strings.Repeat("a", 64)
	v.cli("approve", frozen, "--environment", "retail", "--emergency", "--reason", "CHG-99: fix the checkout", "--token", rm)
	if resp := v.admit("freeze-2", "retail", frozen); !resp.Allowed {
		t.Errorf("freeze with an emergency approval: %s", resp.Result.Message)
	}
	if _, code := v.run("approve", frozen, "--environment", "retail", "--emergency", "--token", rm); code != 2 {
		t.Errorf("an emergency approval without a reason: exit %d, want 2", code)
	}

	// Four eyes: the author of the commit may not approve its release.
	ci := v.cli("token", "create", "--name", "ci", "--scopes", "evidence:write")
	alice := v.cli("token", "create", "--name", "rm-alice", "--scopes", "approvals:write", "--identity", "alice@example.com", "--identity", "alice")
	nobody := v.cli("token", "create", "--name", "rm-bob", "--scopes", "approvals:write") // names no person
	carol := v.cli("token", "create", "--name", "rm-carol", "--scopes", "approvals:write", "--identity", "carol@example.com")
	built := "registry.example.com/bank/core@sha256:" + strings.Repeat("b", 64)
	_, _, code := v.execEnv([]string{"GITLAB_CI=true", "CI_COMMIT_AUTHOR=Alice Example <Alice@Example.com>"},
		"artifact", "report", "registry.example.com/bank/core", "--digest", "sha256:"+strings.Repeat("b", 64), "--commit", strings.Repeat("c", 40), "--token", ci)
	if code != 0 {
		t.Fatalf("artifact report: exit %d", code)
	}
	v.cli("approve", built, "--environment", "bank", "--reason", "CAB-1", "--token", nobody)
	if resp := v.admit("eyes-0", "bank", built); resp.Allowed || !strings.Contains(resp.Result.Message, "approved only by tokens that name no person (rm-bob)") {
		t.Errorf("approved by a token that names no person: %+v", resp.Result)
	}
	v.cli("approve", built, "--environment", "bank", "--reason", "CAB-1", "--token", alice)
	if resp := v.admit("eyes-1", "bank", built); resp.Allowed || !strings.Contains(resp.Result.Message, "was approved only by rm-alice, who wrote commit "+strings.Repeat("c", 40)) {
		t.Errorf("approved by the author: %+v", resp.Result)
	}
	v.cli("approve", built, "--environment", "bank", "--reason", "CAB-1", "--token", carol)
	if resp := v.admit("eyes-2", "bank", built); !resp.Allowed {
		t.Errorf("approved by someone else: %s", resp.Result.Message)
	}
	if out := v.cli("token", "list"); !strings.Contains(out, "alice@example.com,alice") {
		t.Errorf("vouch token list does not show identities:\n%s", out)
	}

	// Break-glass where it is allowed: admitted, journaled, alerted.
	glass := map[string]string{"vouch.dev/break-glass": "INC-1234: payment outage, hotfix"}
	resp = v.admitAnnotated("glass-1", "prod", glass, unknown)
	if !resp.Allowed || !strings.Contains(strings.Join(resp.Warnings, "\n"), "admitted with break-glass (INC-1234: payment outage, hotfix)") {
		t.Errorf("break-glass in prod: allowed=%v warnings=%q", resp.Allowed, resp.Warnings)
	}
	// …and ignored where it is not.
	if resp := v.admitAnnotated("glass-2", "dev", glass, tag); !strings.Contains(strings.Join(resp.Warnings, "\n"), "annotation is ignored: dev does not allow break-glass") {
		t.Errorf("break-glass in dev: %q", resp.Warnings)
	}

	// An exemption admits the vendor's images in prod until revoked.
	if resp := v.admit("vendor-1", "prod", vendor); resp.Allowed {
		t.Fatal("vendor image admitted before the exemption")
	}
	out := v.cli("exempt", "--environment", "prod", "--image", "registry.example.com/vendor/*", "--reason", "INC-4711: vendor hotfix", "--expires", "2h", "--token", rm)
	var id uint64
	if _, err := fmt.Sscanf(out, "exemption %d:", &id); err != nil {
		t.Fatalf("vouch exempt: %s", out)
	}
	if resp := v.admit("vendor-2", "prod", vendor); !resp.Allowed {
		t.Errorf("vendor image with an exemption: %s", resp.Result.Message)
	}
	if list := v.cli("exemptions", "list", "--token", auditor); !strings.Contains(list, "registry.example.com/vendor/*") || !strings.Contains(list, "active") {
		t.Errorf("exemptions list:\n%s", list)
	}
	v.cli("exemptions", "revoke", fmt.Sprint(id), "--token", rm)
	if resp := v.admit("vendor-3", "prod", vendor); resp.Allowed {
		t.Error("vendor image admitted after the exemption was revoked")
	}
	if list := v.cli("exemptions", "list", "--all", "--token", auditor); !strings.Contains(list, "revoked by release-manager") {
		t.Errorf("exemptions list --all:\n%s", list)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"exempt", "--environment", "prod", "--image", "x", "--expires", "1h", "--token", rm}, 2, "needs --environment, --image or --digest, --reason and --expires"},
		{[]string{"exempt", "--environment", "prod", "--image", "x", "--reason", "r", "--expires", "40d", "--token", rm}, 1, "must be within"},
		{[]string{"exempt", "--environment", "nowhere", "--image", "x", "--reason", "r", "--expires", "1h", "--token", rm}, 1, `"nowhere" is not a configured environment`},
		{[]string{"exempt", "--environment", "prod", "--image", "x", "--reason", "r", "--expires", "1h", "--token", auditor}, 1, "approvals:write"},
	} {
		if out, code := v.run(tc.args...); code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("vouch %s: exit %d %q; want %d and %q", strings.Join(tc.args, " "), code, out, tc.code, tc.want)
		}
	}

	// The journal says what each mode did, and holds the policy in force.
	code, page := v.get(auditor, "/api/v1/journal/entries?limit=1000")
	if code != 200 {
		t.Fatal(code)
	}
	byUID := map[string]map[string]any{}
	var policies int
	for _, e := range page["entries"].([]any) {
		e := e.(map[string]any)
		body := e["body"].(map[string]any)
		switch e["kind"] {
		case "admission":
			byUID[body["uid"].(string)] = body
		case "policy":
			policies++
			if modes := fmt.Sprint(body["modes"]); !strings.Contains(modes, "staging:warn") || !strings.Contains(modes, "dev:audit") || !strings.Contains(modes, "prod:enforce") {
				t.Errorf("policy entry modes = %s", modes)
			}
			// and each environment's definition, so that relaxing one is journaled too
			if prod := fmt.Sprint(body["environments"].(map[string]any)["prod"]); !strings.Contains(prod, "require:map[") || !strings.Contains(fmt.Sprint(body["environment_changes"]), "prod") {
				t.Errorf("policy entry: prod defined as %s, environment_changes %v", prod, body["environment_changes"])
			}
		}
	}
	for uid, want := range map[string]string{
		"warn-1":   "allowed=true mode=warn policy_denied=true break_glass=",
		"audit-1":  "allowed=true mode=audit policy_denied=true break_glass=",
		"glass-1":  "allowed=true mode= policy_denied=true break_glass=INC-1234: payment outage, hotfix",
		"vendor-2": "allowed=true mode= policy_denied=false break_glass=",
		"vendor-3": "allowed=false mode= policy_denied=false break_glass=",
	} {
		b := byUID[uid]
		got := fmt.Sprintf("allowed=%v mode=%v policy_denied=%v break_glass=%v", b["allowed"], orEmpty(b["mode"]), b["policy_denied"] == true, orEmpty(b["break_glass"]))
		if got != want {
			t.Errorf("journaled %s: %s, want %s", uid, got, want)
		}
	}
	if img := byUID["vendor-2"]["images"].([]any)[0].(map[string]any); img["exemption"] != float64(id) {
		t.Errorf("vendor-2 image = %v, want exemption %d", img, id)
	}
	if policies != 1 {
		t.Errorf("%d policy entries, want 1", policies)
	}
	// One alert for the break-glass, one for the exemption used.
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(alerts) >= 2
	})
	mu.Lock()
	events := map[string]string{}
	for _, a := range alerts {
		events[fmt.Sprint(a["event"])] = fmt.Sprint(a["summary"])
	}
	mu.Unlock()
	if !strings.Contains(events["break-glass"], `Deployment prod/web was admitted for kubectl-user with break-glass: "INC-1234: payment outage, hotfix"`) ||
		!strings.Contains(events["exemption-used"], fmt.Sprintf("admitted for kubectl-user by exemption %d", id)) {
		t.Errorf("alerts = %v", events)
	}
	// Each alert was journaled before it was sent.
	if _, page := v.get(auditor, "/api/v1/journal/entries?kind=notification"); len(page["entries"].([]any)) != 2 {
		t.Errorf("notifications journaled: %v, want the 2 alerts", page["entries"])
	}
}

func orEmpty(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}
