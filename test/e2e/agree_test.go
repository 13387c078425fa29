package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestAssertReviewAndWebhookAgree decides one table of cases three ways —
// an AdmissionReview to the webhook, "vouch assert" and "vouch review" of a
// manifest — and wants the same decision and the same messages from each.
func TestAssertReviewAndWebhookAgree(t *testing.T) {
	v := start(t, pg.Database(t))
	ci := v.cli("token", "create", "--name", "ci", "--scopes", "evidence:write")
	rm := v.cli("token", "create", "--name", "rm", "--scopes", "approvals:write")
	post := func(token, path, body string) {
		t.Helper()
		if code, out := v.post(token, path, body); code != 201 && code != 200 {
			t.Fatalf("POST %s %s: %d %v", path, body, code, out)
		}
	}
	digest := func(n int) string { return fmt.Sprintf("sha256:%064x", 0xa9ee0000+n) }
	image := func(n int) string { return "registry.example.com/shop/app@" + digest(n) }
	provenance := func(n int) {
		post(ci, "/api/v1/artifacts", fmt.Sprintf(`{"name":"registry.example.com/shop/app","digest":%q}`, digest(n)))
	}
	tests := func(n int, passed bool) {
		post(ci, "/api/v1/attestations", fmt.Sprintf(`{"digest":%q,"name":"unit-tests","type":"junit","passed":%v}`, digest(n), passed))
	}
	decide := func(n int, decision, reason string) {
		post(rm, "/api/v1/approvals", fmt.Sprintf(`{"digest":%q,"environment":"prod","decision":%q,"reason":%q}`, digest(n), decision, reason))
	}

	cases := []struct {
		name      string
		namespace string // prod is environment prod; default is the default environment
		image     string
		setup     func()
		allowed   bool
		unmet     []string // requirements vouch assert reports missing
	}{
		{"tag image", "prod", "registry.example.com/shop/app:1.0", func() {}, false, []string{"digest"}},
		{"no evidence", "prod", image(1), func() {}, false, []string{"provenance", "attestation unit-tests", "approval"}},
		{"provenance only", "prod", image(2), func() { provenance(2) }, false, []string{"attestation unit-tests", "approval"}},
		{"failed tests", "prod", image(3), func() { provenance(3); tests(3, false); decide(3, "approved", "CAB-3") }, false, []string{"attestation unit-tests"}},
		{"tests failed, then passed", "prod", image(4), func() { provenance(4); tests(4, false); tests(4, true); decide(4, "approved", "CAB-4") }, true, nil},
		{"approved, then rejected", "prod", image(5), func() {
			provenance(5)
			tests(5, true)
			decide(5, "approved", "CAB-5")
			decide(5, "rejected", "CVE-2026-5")
		}, false, []string{"approval"}},
		{"allow-listed", "prod", "registry.k8s.io/pause:3.10", func() {}, true, nil},
		{"default environment, provenance", "default", image(6), func() { provenance(6) }, true, nil},
		{"default environment, nothing", "default", image(7), func() {}, false, []string{"provenance"}},
	}
	dir := t.TempDir()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			env := map[string]string{"prod": "prod", "default": "default"}[tc.namespace]

			// The webhook.
			resp := v.admit(fmt.Sprintf("agree-%d", i), tc.namespace, tc.image)
			var hookMsgs []string
			if resp.Result != nil && resp.Result.Message != "" {
				hookMsgs = strings.Split(resp.Result.Message, "\n")
			}
			if resp.Allowed != tc.allowed {
				t.Fatalf("webhook: allowed=%v, want %v: %v", resp.Allowed, tc.allowed, hookMsgs)
			}

			// vouch assert: exit status, requirements, and the same messages
			// (its pod's container is "app", the Deployment's "c0").
			out, errOut, code := v.exec("assert", tc.image, "--environment", env, "-o", "json", "--token", ci)
			if want := map[bool]int{true: 0, false: 1}[tc.allowed]; code != want {
				t.Fatalf("vouch assert: exit %d, want %d\n%s%s", code, want, out, errOut)
			}
			var a struct {
				Allowed      bool
				Messages     []string
				Requirements []struct {
					Requirement string
					Met         bool
				}
			}
			if err := json.Unmarshal([]byte(out), &a); err != nil {
				t.Fatalf("vouch assert -o json: %v\n%s", err, out)
			}
			var unmet []string
			for _, r := range a.Requirements {
				if !r.Met {
					unmet = append(unmet, r.Requirement)
				}
			}
			if !slices.Equal(unmet, tc.unmet) {
				t.Errorf("vouch assert: missing %q, want %q", unmet, tc.unmet)
			}
			var assertMsgs []string
			for _, m := range a.Messages {
				assertMsgs = append(assertMsgs, strings.Replace(m, `container "app"`, `container "c0"`, 1))
			}
			if !slices.Equal(assertMsgs, hookMsgs) {
				t.Errorf("vouch assert messages\n%q\nwebhook\n%q", assertMsgs, hookMsgs)
			}

			// vouch review of a manifest holding the same Deployment and a
			// ConfigMap (skipped), environment picked by namespace.
			manifest := filepath.Join(dir, fmt.Sprintf("m%d.yaml", i))
			os.WriteFile(manifest, []byte(fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a: b}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: c0
          image: %s
`, tc.image)), 0o644)
			out, errOut, code = v.exec("review", "-f", manifest, "--namespace", tc.namespace, "-o", "json", "--token", ci)
			if want := map[bool]int{true: 0, false: 1}[tc.allowed]; code != want {
				t.Fatalf("vouch review: exit %d, want %d\n%s%s", code, want, out, errOut)
			}
			var r struct {
				Allowed bool
				Reviews []struct {
					Kind, Namespace, Environment, Skipped string
					Allowed                               bool
					Messages                              []string
				}
			}
			if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Reviews) != 2 {
				t.Fatalf("vouch review -o json: %v\n%s", err, out)
			}
			if r.Reviews[0].Skipped != "not a workload kind" {
				t.Errorf("ConfigMap: %+v, want skipped", r.Reviews[0])
			}
			d := r.Reviews[1]
			if d.Allowed != tc.allowed || d.Environment != env || d.Namespace != tc.namespace || !slices.Equal(d.Messages, hookMsgs) {
				t.Errorf("vouch review: %+v\nwebhook messages %q", d, hookMsgs)
			}
		})
	}

	// Usage and input errors.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"assert", image(1)}, 2, "needs one IMAGE or DIGEST and --environment"},
		{[]string{"assert", image(1), "--environment", "nowhere", "--token", ci}, 1, `unknown environment "nowhere"`},
		{[]string{"review", "--token", ci}, 2, "review needs -f MANIFEST"},
		{[]string{"review", "-f", filepath.Join(dir, "missing.yaml"), "--token", ci}, 2, "no such file"},
	} {
		out, code := v.run(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("vouch %s: exit %d, %q; want exit %d and %q", strings.Join(tc.args, " "), code, out, tc.code, tc.want)
		}
	}
	// A digest alone is asserted under the name its build reported.
	out := v.cli("assert", digest(4), "--environment", "prod", "--token", ci)
	if !strings.Contains(out, image(4)+" in prod: ADMITTED") || !strings.Contains(out, "met      attestation unit-tests") {
		t.Errorf("vouch assert DIGEST:\n%s", out)
	}
}
