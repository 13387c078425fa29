package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/test/forgetest"
)

// TestServerSideReview: with forges configured and code_review.verified,
// only a review Vouch read from the forge itself admits: the pipeline's
// own report does not, `vouch attest pr --server-side` does.
func TestServerSideReview(t *testing.T) {
	const merged = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
	gh := forgetest.GitHub(t, "octo-org/payments-api")
	gh.Add(forgetest.Approved(merged, "h"))
	app := gh.InstallApp(t) // Vouch asks as an app installation
	v := startConfig(t, fmt.Sprintf(`
environments:
  - name: prod
    namespaces: ["prod"]
    require:
      digest: true
      code_review: {min_approvals: 1, branches: [main], verified: true}
forges:
  - name: github
    type: github
    api_url: %s
    github_app: {client_id: %s, installation_id: %d, private_key_file: %s}
`, gh.URL, app.ClientID, app.InstallationID, app.KeyFile), "")
	ci := v.cli("token", "create", "--name", "ci", "--scopes", "evidence:write")
	digest := "sha256:" + strings.Repeat("e5", 32)
	image := "ghcr.io/octo-org/payments-api@" + digest
	job := []string{"GITHUB_ACTIONS=true", "GITHUB_REPOSITORY=octo-org/payments-api", "GITHUB_SERVER_URL=https://github.com", "GITHUB_SHA=" + merged,
		"GITHUB_REF=refs/heads/main", "GITHUB_API_URL=" + gh.URL, "GITHUB_TOKEN=" + gh.Token, "VOUCH_TOKEN=" + ci}
	if out, errOut, code := v.execEnv(job, "artifact", "report", "ghcr.io/octo-org/payments-api", "--digest", digest); code != 0 {
		t.Fatalf("artifact report: exit %d %s %s", code, out, errOut)
	}
	// The pipeline's own report of the review does not count here.
	if out, errOut, code := v.execEnv(job, "attest", "pr", "--digest", digest, "--name", "code-review"); code != 0 {
		t.Fatalf("attest pr: exit %d %s %s", code, out, errOut)
	}
	if resp := v.admit("server-1", "prod", image); resp.Allowed || !strings.Contains(resp.Result.Message, "not one Vouch read from the forge itself") {
		t.Errorf("webhook with the pipeline's review: allowed %v: %s", resp.Allowed, resp.Result.Message)
	}
	// Vouch asks the forge: no forge token in the job.
	noToken := append([]string{}, job[:6]...)
	noToken = append(noToken, "VOUCH_TOKEN="+ci)
	out, errOut, code := v.execEnv(noToken, "attest", "pr", "--server-side", "--digest", digest, "--name", "code-review")
	if code != 0 || !strings.Contains(out, "recorded: PASSED code-review (pull-request, read by Vouch from github) for "+digest+": #42 merged, approved by bob") {
		t.Errorf("attest pr --server-side: exit %d\n%s%s", code, out, errOut)
	}
	if resp := v.admit("server-2", "prod", image); !resp.Allowed {
		t.Errorf("webhook with Vouch's review: %s", resp.Result.Message)
	}
	if app.Issued != 1 {
		t.Errorf("Vouch bought %d installation tokens, want 1", app.Issued)
	}
}
