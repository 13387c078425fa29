package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/test/oidctest"
)

// TestCIWithOIDC: a GitHub Actions job calls Vouch with the ID token
// Actions gives it (VOUCH_OIDC=github), no stored secret. The server
// trusts the issuer for the main branch of the bank's repositories; the
// job's token is limited to its own repository and recorded by its
// subject.
func TestCIWithOIDC(t *testing.T) {
	is := oidctest.New(t)
	v := startConfig(t, config+fmt.Sprintf(`oidc_issuers:
  - issuer: %q
    name: github
    subjects: ["repo:bank/*:ref:refs/heads/main"]
    repository_claim: repository
    repository_prefix: github.com/
    ca_file: %q
`, is.URL(), is.CAFile), "")
	auditor := v.cli("token", "create", "--name", "auditor", "--scopes", "audit:read")

	// GitHub Actions' token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL): it
	// checks the request token and hands out the job's ID token.
	var sub = "bank/payments"
	var ref = "refs/heads/main"
	actions := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer request-token" || r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		claims := is.GitHubClaims(sub, ref, time.Now().Add(5*time.Minute))
		claims["aud"] = r.URL.Query().Get("audience")
		json.NewEncoder(w).Encode(map[string]string{"value": is.Sign(t, "r1", "", claims)})
	}))
	defer actions.Close()
	env := []string{"VOUCH_TOKEN=", "VOUCH_OIDC=github", "ACTIONS_ID_TOKEN_REQUEST_URL=" + actions.URL + "/token?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=request-token",
		"GITHUB_ACTIONS=true", "GITHUB_SHA=" + strings.Repeat("5", 40), "GITHUB_SERVER_URL=https://github.com", "GITHUB_REPOSITORY=bank/payments", "GITHUB_RUN_ID=9"}
	digest := "sha256:" + strings.Repeat("d1", 32)

	out, errOut, code := v.execEnv(env, "artifact", "report", "registry.example.com/bank/payments", "--digest", digest)
	if code != 0 || !strings.HasPrefix(out, "recorded: artifact") {
		t.Fatalf("artifact report with the job's ID token: exit %d\n%s%s", code, out, errOut)
	}
	if code, ev := v.get(auditor, "/api/v1/artifacts/"+digest); code != 200 || ev["artifact"].(map[string]any)["reported_by"] != "github:repo:bank/payments:ref:refs/heads/main" {
		t.Errorf("stored artifact = %d %v; want it reported by the job's subject", code, ev)
	}

	// The token is for the job's repository only.
	other := append(env[:len(env):len(env)], "GITHUB_REPOSITORY=bank/cards")
	if out, errOut, code := v.execEnv(other, "artifact", "report", "registry.example.com/bank/cards", "--digest", "sha256:"+strings.Repeat("d2", 32)); code == 0 ||
		!strings.Contains(out+errOut, "may write evidence only about builds of github.com/bank/payments") {
		t.Errorf("a build of another repository with the job's token: exit %d\n%s%s", code, out, errOut)
	}
	// A job on another branch is not trusted, nor one asking for another audience.
	ref = "refs/heads/feature"
	if out, errOut, code := v.execEnv(env, "artifact", "report", "registry.example.com/bank/payments", "--digest", "sha256:"+strings.Repeat("d3", 32)); code == 0 ||
		!strings.Contains(out+errOut, `subject "repo:bank/payments:ref:refs/heads/feature" is not among those trusted`) {
		t.Errorf("a job of another branch: exit %d\n%s%s", code, out, errOut)
	}
	ref = "refs/heads/main"
	if out, errOut, code := v.execEnv(append(env, "VOUCH_OIDC_AUDIENCE=sigstore"), "artifact", "report", "registry.example.com/bank/payments", "--digest", "sha256:"+strings.Repeat("d4", 32)); code == 0 ||
		!strings.Contains(out+errOut, `not for audience "vouch"`) {
		t.Errorf("a token for another audience: exit %d\n%s%s", code, out, errOut)
	}
	// Outside Actions the CLI says what is missing.
	if out, errOut, code := v.execEnv([]string{"VOUCH_TOKEN=", "VOUCH_OIDC=github", "ACTIONS_ID_TOKEN_REQUEST_URL="}, "artifact", "get", digest); code == 0 ||
		!strings.Contains(out+errOut, "permissions: id-token: write") {
		t.Errorf("VOUCH_OIDC=github outside Actions: exit %d\n%s%s", code, out, errOut)
	}
	// The default audience is warned about at start.
	if !strings.Contains(v.log.String(), `an OIDC issuer is trusted for the default audience \"vouch\"`) {
		t.Errorf("no warning about the default audience:\n%s", v.log)
	}
	// The token is never logged.
	if strings.Contains(v.log.String(), "eyJ") {
		t.Errorf("a JWT is in the server log:\n%s", v.log)
	}
}
