package api_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/evidence/review"
	"github.com/vouch-dev/vouch/oidc"
	"github.com/vouch-dev/vouch/test/forgetest"
	"github.com/vouch-dev/vouch/test/oidctest"
)

// TestReviewsReadByVouch: POST /reviews has Vouch ask the forge itself
// about the repository and commit the build was reported from; the review
// is verified (key_id forge:<name>), and what the caller cannot reach is
// refused with why.
func TestReviewsReadByVouch(t *testing.T) {
	const merged = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
	gh := forgetest.GitHub(t, "octo-org/payments-api")
	gh.Add(forgetest.Approved(merged, "h"))
	token := gh.TokenFile(t)
	forges, err := review.NewForges([]review.ForgeConfig{{Name: "github", Type: "github", APIURL: gh.URL, TokenFile: token}})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(_ *fixture, c *api.Config) { c.Forges = forges })
	digest := func(n int) string { return fmt.Sprintf("sha256:%064d", n) }
	report := func(n int, repo, commit string) {
		t.Helper()
		if code, out := f.postJSON("/api/v1/artifacts", "ci", fmt.Sprintf(`{"name":"ghcr.io/octo-org/payments-api","digest":%q,"repository":%q,"git_commit":%q}`, digest(n), repo, commit)); code != 201 {
			t.Fatal(code, out)
		}
	}
	report(1, "https://github.com/octo-org/payments-api", merged)
	code, out := f.postJSON("/api/v1/reviews", "ci", fmt.Sprintf(`{"digest":%q}`, digest(1)))
	if code != 201 || out["verified"] != true || out["key_id"] != "forge:github" || out["name"] != "code-review" || out["type"] != "pull-request" || out["passed"] != true {
		t.Errorf("review read by Vouch: %d %v", code, out)
	}

	report(2, "https://gitlab.com/bank/api", merged)
	report(3, "https://github.com/octo-org/payments-api", "") // no commit
	for _, tc := range []struct {
		body string
		want int
		says string
	}{
		{fmt.Sprintf(`{"digest":%q}`, digest(2)), 422, "no forge is configured for the repository: gitlab.com (forges)"},
		{fmt.Sprintf(`{"digest":%q}`, digest(3)), 422, "names its repository and commit"},
		{fmt.Sprintf(`{"digest":%q}`, digest(9)), 422, "names its repository and commit"},
		{`{"digest":"sha256:nope"}`, 422, `must be "sha256:"`},
	} {
		code, out := f.postJSON("/api/v1/reviews", "ci", tc.body)
		if code != tc.want || !strings.Contains(fmt.Sprint(out), tc.says) {
			t.Errorf("%s: %d %v, want %d saying %q", tc.body, code, out, tc.want, tc.says)
		}
	}
	// The forge refusing Vouch's token is a 502 that says so.
	os.WriteFile(token, []byte("wrong"), 0o600)
	bad, err := review.NewForges([]review.ForgeConfig{{Name: "github", Type: "github", APIURL: gh.URL, TokenFile: token}})
	if err != nil {
		t.Fatal(err)
	}
	g := newFixture(t, func(_ *fixture, c *api.Config) { c.Forges = bad })
	if code, out := g.postJSON("/api/v1/artifacts", "ci", fmt.Sprintf(`{"name":"a","digest":%q,"repository":"https://github.com/octo-org/payments-api","git_commit":%q}`, digest(1), merged)); code != 201 {
		t.Fatal(code, out)
	}
	if code, out := g.postJSON("/api/v1/reviews", "ci", fmt.Sprintf(`{"digest":%q}`, digest(1))); code != 502 || !strings.Contains(fmt.Sprint(out["detail"]), "asking the forge github about https://github.com/octo-org/payments-api at "+merged+": GET /repos/octo-org/payments-api/commits/"+merged+"/pulls: 401 Unauthorized") {
		t.Errorf("forge refusing Vouch's token: %d %v", code, out)
	}
}

// TestDeploymentApprovalProblems: a release decision by a deployment job
// (an OIDC issuer with deployment_reviews) is recorded with who approved
// the job's run, or refused with the problem that says why.
func TestDeploymentApprovalProblems(t *testing.T) {
	const commit = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
	const unlinked = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
	gh := forgetest.GitHub(t, "bank/payments")
	gh.AddCommit(forgetest.Commit{SHA: commit, Author: "alice", AuthorEmail: "alice@bank.example", Committer: "web-flow", CommitterEmail: "noreply@github.com"})
	gh.AddCommit(forgetest.Commit{SHA: unlinked, AuthorEmail: "laptop@localhost", Committer: "web-flow", CommitterEmail: "noreply@github.com"})
	gh.AddDeploymentReview(forgetest.DeploymentReview{Run: 5, Environment: "production", User: "carol", State: "approved"})
	token := gh.TokenFile(t)
	forges, err := review.NewForges([]review.ForgeConfig{{Name: "github", Type: "github", APIURL: gh.URL, TokenFile: token}})
	if err != nil {
		t.Fatal(err)
	}
	is := oidctest.New(t)
	verifier, err := oidc.New([]oidc.IssuerConfig{{Issuer: is.URL(), Name: "github", Subjects: []string{"repo:bank/*:ref:refs/heads/main"}, Scopes: []auth.Scope{auth.ScopeEvidenceWrite, auth.ScopeApprovalsWrite},
		RepositoryClaim: "repository", RepositoryPrefix: "github.com/", CAFile: is.CAFile, DeploymentReviews: "github", DeploymentEnvironments: map[string][]string{"production": {"prod"}}}})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(_ *fixture, c *api.Config) { c.Forges, c.OIDC = forges, verifier })
	job := func(name, environment, run, sha string) {
		c := is.GitHubClaims("bank/payments", "refs/heads/main", time.Now().Add(5*time.Minute))
		c["environment"], c["run_id"], c["run_attempt"], c["sha"] = environment, run, "1", sha
		f.tokens[name] = is.Sign(t, "r1", "", c)
	}
	job("build", "", "5", commit)
	job("deploy", "production", "5", commit)
	job("unreviewed", "production", "6", commit)
	job("unlinked", "production", "5", unlinked)
	job("staging", "staging", "5", commit)
	digest := func(n int) string { return fmt.Sprintf("sha256:%064d", n) }
	for n, c := range []string{commit, unlinked} {
		if code, out := f.postJSON("/api/v1/artifacts", "build", fmt.Sprintf(`{"name":"ghcr.io/bank/payments","digest":%q,"repository":"https://github.com/bank/payments","git_commit":%q,"author":"alice@bank.example"}`, digest(n+1), c)); code != 201 {
			t.Fatal(code, out)
		}
	}
	approval := func(n int, decision string) string {
		return fmt.Sprintf(`{"digest":%q,"environment":"prod","decision":%q,"reason":"CAB-1"}`, digest(n), decision)
	}
	for _, tc := range []struct {
		token, body string
		status      int
		problem     string // the problem type's last segment, or the identities recorded
	}{
		{"build", approval(1, "approved"), 403, "deployment-not-approved"},
		{"build", approval(1, "rejected"), 403, "deployment-not-approved"},
		{"unreviewed", approval(1, "approved"), 403, "deployment-not-approved"},
		{"staging", approval(1, "approved"), 403, "deployment-not-approved"}, // a staging job decides for staging only
		{"deploy", approval(1, "maybe"), 422, "validation"},                  // checked before GitHub is asked
		{"unlinked", approval(2, "approved"), 422, "validation"},
		{"deploy", approval(1, "approved"), 201, "[carol]"},
		{"deploy", approval(1, "rejected"), 201, "[carol]"},
	} {
		calls := len(gh.Calls)
		code, out := f.postJSON("/api/v1/approvals", tc.token, tc.body)
		got := fmt.Sprint(out["approver_identities"])
		if code != 201 {
			got = fmt.Sprint(out["type"])
		}
		if code != tc.status || !strings.HasSuffix(got, tc.problem) {
			t.Errorf("%s %s: %d %v; want %d %s", tc.token, tc.body, code, out, tc.status, tc.problem)
		}
		if tc.problem == "validation" && tc.token == "deploy" && len(gh.Calls) != calls {
			t.Errorf("an invalid request asked GitHub: %v", gh.Calls[calls:])
		}
	}
	// GitHub refusing Vouch's token is a 502 that says so.
	os.WriteFile(token, []byte("wrong"), 0o600)
	bad, err := review.NewForges([]review.ForgeConfig{{Name: "github", Type: "github", APIURL: gh.URL, TokenFile: token}})
	if err != nil {
		t.Fatal(err)
	}
	g := newFixture(t, func(_ *fixture, c *api.Config) { c.Forges, c.OIDC = bad, verifier })
	g.tokens["deploy"], g.tokens["build"] = f.tokens["deploy"], f.tokens["build"]
	if code, out := g.postJSON("/api/v1/artifacts", "build", fmt.Sprintf(`{"name":"ghcr.io/bank/payments","digest":%q,"repository":"https://github.com/bank/payments","git_commit":%q}`, digest(1), commit)); code != 201 {
		t.Fatal(code, out)
	}
	if code, out := g.postJSON("/api/v1/approvals", "deploy", approval(1, "approved")); code != 502 || !strings.Contains(fmt.Sprint(out["detail"]), "asking the forge github who approved run 5 of bank/payments: GET /repos/bank/payments/actions/runs/5/approvals: 401 Unauthorized") {
		t.Errorf("GitHub refusing Vouch's token: %d %v", code, out)
	}
}
