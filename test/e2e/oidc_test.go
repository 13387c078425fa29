package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/test/forgetest"
	"github.com/vouch-dev/vouch/test/oidctest"
)

// actionsJob serves GitHub Actions' token endpoint
// (ACTIONS_ID_TOKEN_REQUEST_URL), which checks the request token and
// hands out an ID token of the job's claims for the audience asked, and
// returns the environment of a job that has the CLI use it.
func actionsJob(t *testing.T, is *oidctest.Issuer, claims func() map[string]any) []string {
	actions := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer request-token" || r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		c := claims()
		c["aud"] = r.URL.Query().Get("audience")
		json.NewEncoder(w).Encode(map[string]string{"value": is.Sign(t, "r1", "", c)})
	}))
	t.Cleanup(actions.Close)
	return []string{"VOUCH_TOKEN=", "VOUCH_OIDC=github", "ACTIONS_ID_TOKEN_REQUEST_URL=" + actions.URL + "/token?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=request-token", "GITHUB_ACTIONS=true"}
}

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

	var ref = "refs/heads/main"
	env := append(actionsJob(t, is, func() map[string]any { return is.GitHubClaims("bank/payments", ref, time.Now().Add(5*time.Minute)) }),
		"GITHUB_SHA="+strings.Repeat("5", 40), "GITHUB_SERVER_URL=https://github.com", "GITHUB_REPOSITORY=bank/payments", "GITHUB_RUN_ID=9")
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

// TestDeploymentApproval: a deploy job behind GitHub's protected
// environment "production" approves the release with its ID token, and
// Vouch records the people who approved the job's run on GitHub, so four
// eyes compares them with the commit's author. A job whose run nobody
// approved, or that names no environment, cannot approve.
func TestDeploymentApproval(t *testing.T) {
	const commit = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
	is := oidctest.New(t)
	gh := forgetest.GitHub(t, "bank/payments")
	gh.AddCommit(forgetest.Commit{SHA: commit, Author: "alice", AuthorEmail: "alice@bank.example", Committer: "web-flow", CommitterEmail: "noreply@github.com"})
	v := startConfig(t, fmt.Sprintf(`
environments:
  - name: prod
    namespaces: ["prod"]
    require: {digest: true, provenance: true, approval: true, four_eyes: true}
forges:
  - name: github
    type: github
    api_url: %s
    token_file: %s
oidc_issuers:
  - issuer: %q
    name: github
    subjects: ["repo:bank/*:ref:refs/heads/main", "repo:bank/*:environment:production"]
    scopes: [evidence:write, approvals:write]
    repository_claim: repository
    repository_prefix: github.com/
    audience: https://vouch.bank.example
    deployment_reviews: github
    deployment_environments: {production: [prod]}
    ca_file: %q
`, gh.URL, gh.TokenFile(t), is.URL(), is.CAFile), "")
	auditor := v.cli("token", "create", "--name", "auditor", "--scopes", "audit:read")

	var run, attempt, sha, environment string = "70", "1", commit, "" // the job's: no environment for the build
	job := append(actionsJob(t, is, func() map[string]any {
		c := is.GitHubClaims("bank/payments", "refs/heads/main", time.Now().Add(5*time.Minute))
		if environment != "" {
			c["sub"], c["environment"] = "repo:bank/payments:environment:"+environment, environment
		}
		c["run_id"], c["run_attempt"], c["sha"] = run, attempt, sha
		return c
	}), "VOUCH_OIDC_AUDIENCE=https://vouch.bank.example", "GITHUB_SHA="+commit, "GITHUB_SERVER_URL=https://github.com", "GITHUB_REPOSITORY=bank/payments")
	digest := "sha256:" + strings.Repeat("d5", 32)
	image := "registry.example.com/bank/payments@" + digest
	if out, errOut, code := v.execEnv(job, "artifact", "report", "registry.example.com/bank/payments", "--digest", digest, "--author", "alice@bank.example"); code != 0 {
		t.Fatalf("artifact report: exit %d\n%s%s", code, out, errOut)
	}
	decide := func(flags ...string) (string, int) {
		out, errOut, code := v.execEnv(job, append([]string{"approve", digest, "--environment", "prod", "--reason", "CAB-1234"}, flags...)...)
		return out + errOut, code
	}
	approve := func() (string, int) { return decide() }
	// The build job names no environment: it can neither approve nor reject.
	for _, flags := range [][]string{nil, {"--reject"}} {
		if out, code := decide(flags...); code == 0 || !strings.Contains(out, "the job's ID token names no environment") {
			t.Errorf("decision %v by the build job: exit %d\n%s", flags, code, out)
		}
	}
	// The deploy job's run, before anyone approved it on GitHub.
	run, environment = "71", "production"
	if out, code := approve(); code == 0 || !strings.Contains(out, `GitHub records no approval of environment "production" in workflow run 71 of bank/payments`) {
		t.Errorf("approval of a run nobody approved: exit %d\n%s", code, out)
	}
	// The commit's author approved the deployment herself: recorded with
	// her login and her commit email, which four eyes refuses.
	gh.AddDeploymentReview(forgetest.DeploymentReview{Run: 71, Environment: "production", User: "alice", State: "approved"})
	deployer := "github:repo:bank/payments:environment:production"
	if out, code := approve(); code != 0 || !strings.Contains(out, "approved: "+digest+" for prod by "+deployer+" (alice, alice@bank.example)") {
		t.Errorf("approval of a run alice approved: exit %d\n%s", code, out)
	}
	// Not from a re-run (GitHub does not say which attempt a review
	// approved), not as an emergency, not from a run of another commit.
	attempt = "2"
	if out, code := approve(); code == 0 || !strings.Contains(out, `the job is attempt "2" of workflow run 71`) {
		t.Errorf("approval from a re-run: exit %d\n%s", code, out)
	}
	attempt = "1"
	if out, code := decide("--emergency"); code == 0 || !strings.Contains(out, "it needs a person's own token") {
		t.Errorf("emergency approval by the job: exit %d\n%s", code, out)
	}
	sha = strings.Repeat("7", 40)
	if out, code := approve(); code == 0 || !strings.Contains(out, "workflow run 71 is of commit "+sha+", but "+digest+" was built from commit "+commit) {
		t.Errorf("approval from a run of another commit: exit %d\n%s", code, out)
	}
	sha = commit
	if resp := v.admit("deploy-1", "prod", image); resp.Allowed || !strings.Contains(resp.Result.Message, "was approved only by "+deployer+", who wrote commit "+commit) {
		t.Errorf("admission approved by the author: allowed %v: %s", resp.Allowed, resp.Result.Message)
	}
	// Carol approves the next run: another person.
	run = "72"
	gh.AddDeploymentReview(forgetest.DeploymentReview{Run: 72, Environment: "production", User: "carol", State: "approved"})
	if out, code := approve(); code != 0 || !strings.Contains(out, "by "+deployer+" (carol)") {
		t.Errorf("approval of a run carol approved: exit %d\n%s", code, out)
	}
	if resp := v.admit("deploy-2", "prod", image); !resp.Allowed {
		t.Errorf("admission approved by carol: %s", resp.Result.Message)
	}
	code, ev := v.get(auditor, "/api/v1/artifacts/"+digest)
	if approvals, _ := ev["approvals"].([]any); code != 200 || len(approvals) != 2 || fmt.Sprint(approvals[1].(map[string]any)["approver_identities"]) != "[carol]" {
		t.Errorf("stored approvals = %d %v", code, ev)
	}
}
