package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// endpoint is one route of the API with a request that passes
// authorization, and the statuses that request may get then.
type endpoint struct {
	method, path, body string
	scopes             []string // any of these (admin always) is allowed
	want               []int    // with an allowed token
}

func (e endpoint) String() string { return e.method + " " + strings.SplitN(e.path, "?", 2)[0] }

// apiDo sends a request with any body and returns the status, headers and
// body.
func (v *vouch) apiDo(method, path, token, body string) (int, http.Header, []byte) {
	v.t.Helper()
	req, err := http.NewRequest(method, "http://"+v.api+path, strings.NewReader(body))
	if err != nil {
		v.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

// TestAccessMatrix sends every endpoint with no token, a forged token, a
// revoked and an expired token (each with every scope), a token of each
// scope the endpoint does not accept, and one it accepts: 401, 403 or the
// endpoint's answer, always problem+json for an error. Then: secrets appear
// in neither the log nor the database, approvals are bound to the caller,
// and the rate limit counts per token.
func TestAccessMatrix(t *testing.T) {
	v := start(t, "", "--api-rate-limit", "100000", "--log-level", "debug")
	all := "evidence:write,approvals:write,audit:read,snapshots:write,admin"
	secrets := map[string]string{}
	for _, scope := range strings.Split(all, ",") {
		secrets[scope] = v.cli("token", "create", "--name", "t-"+strings.ReplaceAll(scope, ":", "-"), "--scopes", scope)
	}
	secrets["revoked"] = v.cli("token", "create", "--name", "revoked", "--scopes", all)
	secrets["expired"] = v.cli("token", "create", "--name", "expired", "--scopes", all, "--expires-in", "1s")
	var list []struct{ ID, Name string }
	if err := json.Unmarshal([]byte(v.cli("token", "list", "-o", "json")), &list); err != nil {
		t.Fatalf("token list -o json: %v", err)
	}
	for _, tok := range list {
		if tok.Name == "revoked" {
			v.cli("token", "revoke", tok.ID)
		}
	}
	time.Sleep(1100 * time.Millisecond) // "expired" expires

	digest := "sha256:" + strings.Repeat("a1", 32)
	admin := secrets["admin"]
	if code, _, body := v.apiDo("POST", "/api/v1/artifacts", admin, `{"name":"registry.example.com/team/app","digest":"`+digest+`"}`); code != 201 {
		t.Fatalf("seed artifact: %d %s", code, body)
	}
	unknown := "sha256:" + strings.Repeat("0", 64)
	endpoints := []endpoint{
		{"POST", "/api/v1/artifacts", `{"name":"registry.example.com/team/app","digest":"` + digest + `"}`, []string{"evidence:write"}, []int{200}},
		{"POST", "/api/v1/attestations", `{"digest":"` + digest + `","name":"unit-tests","type":"junit","passed":true}`, []string{"evidence:write"}, []int{200, 201}},
		{"POST", "/api/v1/envelopes", `{}`, []string{"evidence:write"}, []int{400, 422}},
		{"POST", "/api/v1/approvals", `{"digest":"` + digest + `","environment":"prod","decision":"approved"}`, []string{"approvals:write"}, []int{201}},
		{"POST", "/api/v1/blobs", `{"a":1}`, []string{"evidence:write"}, []int{200, 201}},
		{"GET", "/api/v1/blobs/" + unknown, "", []string{"audit:read"}, []int{404}},
		{"GET", "/api/v1/artifacts", "", []string{"audit:read"}, []int{200}},
		{"GET", "/api/v1/artifacts/" + digest, "", []string{"audit:read"}, []int{200}},
		{"GET", "/api/v1/approvals", "", []string{"audit:read"}, []int{200}},
		{"GET", "/api/v1/search?q=a1a1a1a", "", []string{"audit:read"}, []int{200}},
		{"GET", "/api/v1/journal/entries", "", []string{"audit:read"}, []int{200}},
		{"GET", "/api/v1/journal/checkpoint", "", []string{"audit:read"}, []int{200, 404}},
		{"GET", "/api/v1/journal/proof/inclusion?index=0&size=1", "", []string{"audit:read"}, []int{200, 400, 404}},
		{"GET", "/api/v1/journal/proof/consistency?from=1&to=2", "", []string{"audit:read"}, []int{200, 400, 404}},
		{"GET", "/api/v1/audit/export?from=0&to=1", "", []string{"audit:read"}, []int{200, 404}},
		{"PUT", "/api/v1/environments/prod/snapshot", `{"workloads":[]}`, []string{"snapshots:write"}, []int{200}},
		{"GET", "/api/v1/environments", "", []string{"audit:read"}, []int{200}},
		{"GET", "/api/v1/environments/prod/state", "", []string{"audit:read"}, []int{200, 404}},
		{"GET", "/api/v1/environments/prod/diff?from=24h", "", []string{"audit:read"}, []int{200}},
		{"GET", "/api/v1/environments/prod/events", "", []string{"audit:read"}, []int{200}},
		{"GET", "/api/v1/environments/prod/compliance", "", []string{"audit:read"}, []int{200}},
		{"POST", "/api/v1/exemptions", `{"environment":"prod","image":"registry.example.com/vendor/*","reason":"INC-1","expires_at":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`, []string{"approvals:write"}, []int{201}},
		{"GET", "/api/v1/exemptions", "", []string{"audit:read", "approvals:write"}, []int{200}},
		{"DELETE", "/api/v1/exemptions/999999", "", []string{"approvals:write"}, []int{404}},
		{"POST", "/api/v1/assert", `{"digest":"` + digest + `","environment":"prod"}`, []string{"evidence:write", "audit:read"}, []int{200}},
		{"POST", "/api/v1/review", `{"objects":[]}`, []string{"evidence:write", "audit:read"}, []int{200}},
		{"POST", "/api/v1/policy/replay", `{"modules":{},"since":"1h"}`, []string{"audit:read"}, []int{200}},
		{"POST", "/api/v1/tokens", `{"name":"made-%s","scopes":["audit:read"]}`, []string{"admin"}, []int{201}},
		{"GET", "/api/v1/tokens", "", []string{"admin"}, []int{200}},
		{"DELETE", "/api/v1/tokens/ffffffffffffffff", "", []string{"admin"}, []int{404}},
	}
	problem := func(e endpoint, who string, code int, h http.Header, body []byte) {
		t.Helper()
		var p struct {
			Status int
			Detail string
		}
		if h.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &p) != nil || p.Status != code || p.Detail == "" {
			t.Errorf("%v as %s: %d %q is not problem+json with a detail: %s", e, who, code, h.Get("Content-Type"), body)
		}
	}
	for i, e := range endpoints {
		body := e.body
		if strings.Contains(body, "%s") {
			body = fmt.Sprintf(body, "x")
		}
		for _, who := range []string{"", "forged", "revoked", "expired"} {
			token := secrets[who]
			if who == "forged" {
				token = "vouch_" + strings.Repeat("f", 40)
			}
			code, h, raw := v.apiDo(e.method, e.path, token, body)
			if code != 401 {
				t.Errorf("%v with %q token: %d, want 401: %s", e, who, code, raw)
				continue
			}
			if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%v with %q token: 401 without WWW-Authenticate: Bearer", e, who)
			}
			problem(e, who, code, h, raw)
		}
		for _, scope := range strings.Split(all, ",") {
			allowed := scope == "admin" || slices.Contains(e.scopes, scope)
			body := e.body
			if strings.Contains(body, "%s") {
				body = fmt.Sprintf(body, fmt.Sprintf("%d-%s", i, strings.ReplaceAll(scope, ":", "-")))
			}
			code, h, raw := v.apiDo(e.method, e.path, secrets[scope], body)
			switch {
			case !allowed && code != 403:
				t.Errorf("%v with scope %s: %d, want 403: %s", e, scope, code, raw)
			case !allowed:
				problem(e, scope, code, h, raw)
			case !slices.Contains(e.want, code):
				t.Errorf("%v with scope %s: %d, want one of %v: %s", e, scope, code, e.want, raw)
			case code >= 400:
				problem(e, scope, code, h, raw)
			}
		}
	}

	// Approvals are the caller's: the approver is the token's name and a
	// body cannot name someone else.
	if code, _, raw := v.apiDo("POST", "/api/v1/approvals", secrets["approvals:write"], `{"digest":"`+digest+`","environment":"prod","decision":"approved","approver":"the-cfo"}`); code != 400 {
		t.Errorf("approval naming another approver: %d, want 400: %s", code, raw)
	}
	_, _, raw := v.apiDo("GET", "/api/v1/approvals?digest="+digest, secrets["audit:read"], "")
	if strings.Contains(string(raw), "the-cfo") || !strings.Contains(string(raw), `"approver":"t-approvals-write"`) {
		t.Errorf("approvals: %s", raw)
	}

	// Secrets are never logged and stored only as hashes.
	db, err := os.ReadFile(filepath.Join(v.dataDir, "vouch.db"))
	if err != nil {
		t.Fatal(err)
	}
	for who, s := range secrets {
		if strings.Contains(v.log.String(), s) {
			t.Errorf("the %s token's secret is in the server log", who)
		}
		if strings.Contains(string(db), s) {
			t.Errorf("the %s token's secret is in the database file", who)
		}
	}
}

// TestRateLimitPerToken exhausts one token's budget: it gets 429 with
// Retry-After; another token is unaffected.
func TestRateLimitPerToken(t *testing.T) {
	v := start(t, "", "--api-rate-limit", "20")
	a := v.cli("token", "create", "--name", "busy", "--scopes", "audit:read")
	b := v.cli("token", "create", "--name", "quiet", "--scopes", "audit:read")
	limited := 0
	for i := 0; i < 30; i++ {
		code, h, raw := v.apiDo("GET", "/api/v1/artifacts", a, "")
		if code == 429 {
			limited++
			if h.Get("Retry-After") == "" || h.Get("Content-Type") != "application/problem+json" {
				t.Errorf("429 without Retry-After or problem+json: %v %s", h, raw)
			}
		}
	}
	if limited != 10 {
		t.Errorf("%d of 30 requests limited at 20 a minute, want 10", limited)
	}
	if code, _, raw := v.apiDo("GET", "/api/v1/artifacts", b, ""); code != 200 {
		t.Errorf("another token: %d %s", code, raw)
	}
}
