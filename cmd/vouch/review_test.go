package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/evidence/review"
	"github.com/vouch-dev/vouch/test/forgetest"
)

func TestRepoPath(t *testing.T) {
	for in, want := range map[string]string{
		"octo-org/payments-api":                    "octo-org/payments-api",
		"https://github.com/octo-org/payments-api": "octo-org/payments-api",
		"https://gitlab.com/bank/cards/api.git":    "bank/cards/api",
		"git@github.com:octo-org/payments-api.git": "octo-org/payments-api",
		"https://github.example.com/octo/api/":     "octo/api",
		"":                                         "",
	} {
		if got := repoPath(in); got != want {
			t.Errorf("repoPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// In GitHub Actions, attest pr takes the repository, commit, API and token
// from the job's environment.
func TestReviewAttestationInGitHubActions(t *testing.T) {
	gh := forgetest.GitHub(t, "octo-org/payments-api")
	gh.Add(forgetest.Request{Number: 42, Author: "alice", Commits: []string{"c0ffee"}, Head: "c0ffee", Base: "main", MergedBy: "mona",
		Reviews: []forgetest.Review{{User: "bob", State: "APPROVED", Commit: "c0ffee"}}})
	env := map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "octo-org/payments-api", "GITHUB_SHA": "c0ffee", "GITHUB_REF": "refs/heads/main",
		"GITHUB_API_URL": gh.URL, "GITHUB_TOKEN": gh.Token,
	}
	getenv := func(k string) string { return env[k] }
	at, err := reviewAttestation(context.Background(), "sha256:ab", "code-review", reviewFlags{minApprovals: 1}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	var r review.Review
	json.Unmarshal(at.report.Payload, &r)
	if !*at.report.Passed || at.report.Type != "pull-request" || at.report.URL != "https://github.com/octo-org/payments-api/pull/42" ||
		r.Forge != "github" || r.Commit != "c0ffee" || r.Base != "main" || at.summary != "#42 merged, approved by bob" {
		t.Errorf("attestation %+v, payload %+v", at.report, r)
	}
	// A build of another branch needs a request merged into it.
	env["GITHUB_REF"] = "refs/heads/release"
	if at, err := reviewAttestation(context.Background(), "sha256:ab", "code-review", reviewFlags{minApprovals: 1}, getenv); err != nil || *at.report.Passed ||
		!strings.HasPrefix(at.summary, "#42 was merged into main, not release") {
		t.Errorf("built from release: %+v %q, %v", at.report.Passed, at.summary, err)
	}
	if at, err := reviewAttestation(context.Background(), "sha256:ab", "code-review", reviewFlags{minApprovals: 1, base: "main"}, getenv); err != nil || !*at.report.Passed {
		t.Errorf("--base main: %q, %v", at.summary, err)
	}
	env["GITHUB_REF"] = "refs/heads/main"

	for _, tc := range []struct {
		flags reviewFlags
		unset string
		want  string
	}{
		{reviewFlags{minApprovals: 1}, "GITHUB_TOKEN", "needs GITHUB_TOKEN (or GH_TOKEN)"},
		{reviewFlags{minApprovals: 1}, "GITHUB_SHA", "needs --commit"},
		{reviewFlags{minApprovals: 0}, "", "--min-approvals must be at least 1"},
		{reviewFlags{minApprovals: 1, forge: "gitea"}, "", `--forge "gitea": want github, gitlab, azure or bitbucket`},
		{reviewFlags{minApprovals: 1, forge: "bitbucket"}, "", "needs VOUCH_BITBUCKET_TOKEN"},
		{reviewFlags{minApprovals: 1, forge: "gitlab"}, "", "needs VOUCH_GITLAB_TOKEN"},
	} {
		saved := env[tc.unset]
		delete(env, tc.unset)
		_, err := reviewAttestation(context.Background(), "sha256:ab", "code-review", tc.flags, getenv)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v without %s: %v, want a usage error saying %q", tc.flags, tc.unset, err, tc.want)
		}
		if tc.unset != "" {
			env[tc.unset] = saved
		}
	}
	env["GITHUB_TOKEN"] = "wrong"
	if _, err := reviewAttestation(context.Background(), "sha256:ab", "code-review", reviewFlags{minApprovals: 1}, getenv); err == nil ||
		!strings.Contains(err.Error(), "asking github about commit c0ffee: GET /repos/octo-org/payments-api/commits/c0ffee/pulls: 401 Unauthorized: Bad credentials") {
		t.Errorf("a wrong token: %v", err)
	}
}

// In Azure Pipelines: the collection, project, repository, commit, branch
// and the job's access token come from the pipeline's variables.
func TestReviewAttestationInAzurePipelines(t *testing.T) {
	az := forgetest.Azure(t, "payments/api")
	az.Add(forgetest.Request{Number: 17, Author: "alice@bank.example", Head: "h1", MergeCommit: "m1", Base: "main", MergedBy: "alice@bank.example",
		Approvers: []string{"bob@bank.example", "carol@bank.example"}})
	env := map[string]string{
		"TF_BUILD": "True", "SYSTEM_COLLECTIONURI": az.URL + "/", "SYSTEM_TEAMPROJECT": "payments", "BUILD_REPOSITORY_NAME": "api",
		"BUILD_SOURCEVERSION": "m1", "BUILD_SOURCEBRANCH": "refs/heads/main", "SYSTEM_ACCESSTOKEN": az.Token,
	}
	getenv := func(k string) string { return env[k] }
	at, err := reviewAttestation(context.Background(), "sha256:ab", "code-review", reviewFlags{minApprovals: 2}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	var r review.Review
	json.Unmarshal(at.report.Payload, &r)
	if !*at.report.Passed || r.Forge != "azure" || r.Base != "main" || r.Approvals != 2 || at.report.URL != az.URL+"/payments/_git/api/pullrequest/17" {
		t.Errorf("attestation %+v %q, payload %+v", at.report, at.summary, r)
	}
	delete(env, "SYSTEM_ACCESSTOKEN")
	if _, err := reviewAttestation(context.Background(), "sha256:ab", "code-review", reviewFlags{minApprovals: 1}, getenv); err == nil || !strings.Contains(err.Error(), "needs SYSTEM_ACCESSTOKEN") {
		t.Errorf("without a token: %v", err)
	}
	env["AZURE_DEVOPS_EXT_PAT"] = az.Token
	if _, err := reviewAttestation(context.Background(), "sha256:ab", "code-review", reviewFlags{minApprovals: 1}, getenv); err != nil {
		t.Errorf("with a PAT: %v", err)
	}
	// The repository as its URL: https://dev.azure.com/ORG/PROJECT/_git/REPO.
	if at, err := reviewAttestation(context.Background(), "sha256:ab", "code-review", reviewFlags{minApprovals: 1, repository: "https://dev.azure.com/bank/payments/_git/api"}, getenv); err != nil || !*at.report.Passed {
		t.Errorf("repository URL: %+v, %v", at.report, err)
	}
}

// In Jenkins building from Bitbucket Data Center: the repository is the
// job's GIT_URL, the API and the token come from the environment.
func TestReviewAttestationFromBitbucket(t *testing.T) {
	bb := forgetest.Bitbucket(t, "PAY/api")
	bb.Add(forgetest.Request{Number: 5, Author: "alice", Commits: []string{"h5"}, Head: "h5", MergeCommit: "m5", Base: "main", MergedBy: "x", Approvers: []string{"bob"}})
	env := map[string]string{"JENKINS_URL": "https://jenkins.bank.example/", "GIT_URL": strings.TrimSuffix(bb.URL, "/rest/api/latest") + "/scm/pay/api.git", "GIT_COMMIT": "m5",
		"GIT_BRANCH": "refs/remotes/upstream/main", "VOUCH_BITBUCKET_API_URL": bb.URL, "VOUCH_BITBUCKET_TOKEN": bb.Token}
	getenv := func(k string) string { return env[k] }
	at, err := reviewAttestation(context.Background(), "sha256:ab", "code-review", reviewFlags{minApprovals: 1}, getenv) // the forge from VOUCH_BITBUCKET_API_URL
	if err != nil {
		t.Fatal(err)
	}
	var r review.Review
	json.Unmarshal(at.report.Payload, &r)
	if !*at.report.Passed || r.Forge != "bitbucket" || r.Repository != "PAY/api" || r.Base != "main" || at.summary != "#5 merged, approved by bob" {
		t.Errorf("attestation %+v %q, payload %+v", at.report, at.summary, r)
	}
	// A build of another branch: the request merged into main does not count.
	env["BRANCH_NAME"] = "release"
	if at, err := reviewAttestation(context.Background(), "sha256:ab", "code-review", reviewFlags{minApprovals: 1}, getenv); err != nil || *at.report.Passed || !strings.Contains(at.summary, "was merged into main, not release") {
		t.Errorf("a build of release: %q %v", at.summary, err)
	}
	// A tag's build: any base.
	env["TAG_NAME"] = "v1.2"
	if at, err := reviewAttestation(context.Background(), "sha256:ab", "code-review", reviewFlags{minApprovals: 1}, getenv); err != nil || !*at.report.Passed {
		t.Errorf("a tag's build: %q %v", at.summary, err)
	}
	delete(env, "TAG_NAME")
	delete(env, "BRANCH_NAME")
	// A repository on another host than Bitbucket's is not asked there.
	env["GIT_URL"] = "https://github.com/acme/api.git"
	if _, err := reviewAttestation(context.Background(), "sha256:ab", "code-review", reviewFlags{minApprovals: 1}, getenv); err == nil || !strings.Contains(err.Error(), "needs GITHUB_TOKEN") {
		t.Errorf("a GitHub repository built by Jenkins with VOUCH_BITBUCKET_API_URL set: %v", err)
	}
	// In GitHub Actions the forge stays GitHub's.
	if _, err := reviewAttestation(context.Background(), "sha256:ab", "code-review", reviewFlags{minApprovals: 1}, func(k string) string {
		return map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_SHA": "m5", "GITHUB_REPOSITORY": "acme/bitbucket-sync", "VOUCH_BITBUCKET_API_URL": bb.URL}[k]
	}); err == nil || !strings.Contains(err.Error(), "needs GITHUB_TOKEN") {
		t.Errorf("GitHub Actions with VOUCH_BITBUCKET_API_URL set: %v", err)
	}
	delete(env, "VOUCH_BITBUCKET_TOKEN")
	if _, err := reviewAttestation(context.Background(), "sha256:ab", "code-review", reviewFlags{forge: "bitbucket", minApprovals: 1}, getenv); err == nil || !strings.Contains(err.Error(), "needs VOUCH_BITBUCKET_TOKEN") {
		t.Errorf("without a token: %v", err)
	}
}
