package e2e

import (
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/test/forgetest"
)

// TestCodeReviewEvidence: in a GitHub Actions job, `vouch attest pr` asks
// GitHub which pull request brought the built commit and who approved it;
// an environment that requires code review by two people admits the build
// two others approved, and denies one pushed without review and one that
// a single reviewer approved — whatever minimum the pipeline judged with.
func TestCodeReviewEvidence(t *testing.T) {
	const (
		reviewed = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
		pushed   = "60303ae22b998861bce3b28f33eec1be758a213c"
		once     = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4"
	)
	gh := forgetest.GitHub(t, "octo-org/payments-api")
	gh.Add(forgetest.Request{Number: 42, Title: "Pay by card", Author: "alice", Commits: []string{"4b825dc642cb6eb9a060e54bf8d69288fbee4904", reviewed},
		Head: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", MergeCommit: reviewed, Base: "main", MergedBy: "mona",
		Reviews: []forgetest.Review{{User: "bob", State: "APPROVED", Commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904"},
			{User: "carol", State: "APPROVED", Commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904"}}})
	gh.Add(forgetest.Request{Number: 43, Title: "Fees", Author: "alice", Commits: []string{once}, Head: once, Base: "main", MergedBy: "alice",
		Reviews: []forgetest.Review{{User: "bob", State: "APPROVED", Commit: once}}})
	v := startConfig(t, `
environments:
  - name: prod
    namespaces: ["prod"]
    require:
      digest: true
      provenance: true
      code_review: {min_approvals: 2}
`, "")
	ci := v.cli("token", "create", "--name", "ci", "--scopes", "evidence:write")
	job := func(commit string) []string {
		return []string{"GITHUB_ACTIONS=true", "GITHUB_REPOSITORY=octo-org/payments-api", "GITHUB_SERVER_URL=https://github.com", "GITHUB_SHA=" + commit, "GITHUB_REF=refs/heads/main",
			"GITHUB_RUN_ID=7", "GITHUB_API_URL=" + gh.URL, "GITHUB_TOKEN=" + gh.Token, "VOUCH_TOKEN=" + ci}
	}
	build := func(commit, digest string) string {
		t.Helper()
		image := "ghcr.io/octo-org/payments-api@" + digest
		if out, errOut, code := v.execEnv(job(commit), "artifact", "report", "ghcr.io/octo-org/payments-api", "--digest", digest); code != 0 {
			t.Fatalf("artifact report: exit %d %s %s", code, out, errOut)
		}
		return image
	}

	good := build(reviewed, "sha256:"+strings.Repeat("a1", 32))
	out, errOut, code := v.execEnv(job(reviewed), "attest", "pr", "--digest", good, "--name", "code-review")
	if code != 0 || !strings.Contains(out, "recorded: PASSED code-review (pull-request) for sha256:"+strings.Repeat("a1", 32)+": #42 merged, approved by bob, carol") {
		t.Errorf("attest pr of a reviewed commit: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, gh.Token) {
		t.Error("the forge's token was printed")
	}
	if out, code := v.run("assert", good, "--environment", "prod", "--token", ci); code != 0 {
		t.Errorf("assert of the reviewed build: exit %d\n%s", code, out)
	}
	if resp := v.admit("review-1", "prod", good); !resp.Allowed {
		t.Errorf("webhook, reviewed build: %s", resp.Result.Message)
	}

	bad := build(pushed, "sha256:"+strings.Repeat("b2", 32))
	out, errOut, code = v.execEnv(job(pushed), "attest", "pr", "--digest", bad, "--name", "code-review", "--exit-code")
	if code != 1 || !strings.Contains(out, "FAILED code-review (pull-request)") || !strings.Contains(out, "no pull or merge request contains commit "+pushed+": it was pushed without review") {
		t.Errorf("attest pr of a pushed commit: exit %d\n%s%s", code, out, errOut)
	}
	if resp := v.admit("review-2", "prod", bad); resp.Allowed || !strings.Contains(resp.Result.Message, "has no pull or merge request that merged its commit with an approval by someone other than its author") {
		t.Errorf("webhook, unreviewed build: allowed %v: %s", resp.Allowed, resp.Result.Message)
	}

	// One approval: the pipeline's default minimum passes it; prod wants two.
	single := build(once, "sha256:"+strings.Repeat("c3", 32))
	if out, errOut, code := v.execEnv(job(once), "attest", "pr", "--digest", single, "--name", "code-review"); code != 0 || !strings.Contains(out, "PASSED") {
		t.Errorf("attest pr, one approval: exit %d\n%s%s", code, out, errOut)
	}
	if resp := v.admit("review-3", "prod", single); resp.Allowed || !strings.Contains(resp.Result.Message, "was merged with 1 approval(s) by people other than the author of its pull request") ||
		!strings.Contains(resp.Result.Message, "code review by 2 person(s) other than the author is required in prod") {
		t.Errorf("webhook, one approval: allowed %v: %s", resp.Allowed, resp.Result.Message)
	}

	// A review of one commit does not pass for a build of another: the
	// server compares it with the commit the artifact was reported from.
	if out, errOut, code := v.execEnv(job(reviewed), "attest", "pr", "--digest", bad, "--name", "code-review"); code != 1 ||
		!strings.Contains(errOut, "payload: the review is of commit "+reviewed+", but the digest was built from commit "+pushed) {
		t.Errorf("a review of another commit: exit %d\n%s%s", code, out, errOut)
	}

	// Reviewed first, reported built from another commit afterwards: the
	// decision ties the review to the build and denies.
	later := "sha256:" + strings.Repeat("d4", 32)
	if out, errOut, code := v.execEnv(job(reviewed), "attest", "pr", "--digest", later, "--name", "code-review"); code != 0 {
		t.Fatalf("attest pr before the build report: exit %d\n%s%s", code, out, errOut)
	}
	build(pushed, later)
	if resp := v.admit("review-4", "prod", "ghcr.io/octo-org/payments-api@"+later); resp.Allowed ||
		!strings.Contains(resp.Result.Message, "that is not about this build: the review is of commit "+reviewed+", but the digest was built from commit "+pushed) {
		t.Errorf("webhook, review of another commit: allowed %v: %s", resp.Allowed, resp.Result.Message)
	}
	// A review is not something to type in.
	if _, errOut, code := v.execEnv(job(reviewed), "attest", "generic", "--digest", good, "--name", "code-review", "--type", "pull-request", "--passed=true",
		"--payload", `{"approvals":5,"repository":"octo-org/payments-api","commit":"`+reviewed+`"}`); code != 2 || !strings.Contains(errOut, "use it") {
		t.Errorf("attest generic --type pull-request: exit %d %s", code, errOut)
	}

	// Without the forge's token nothing is recorded, and it says what to set.
	env := job(reviewed)
	env = append(env[:len(env)-2], env[len(env)-1])
	if _, errOut, code := v.execEnv(env, "attest", "pr", "--digest", good, "--name", "code-review"); code != 2 || !strings.Contains(errOut, "needs GITHUB_TOKEN") {
		t.Errorf("without GITHUB_TOKEN: exit %d %s", code, errOut)
	}
}
