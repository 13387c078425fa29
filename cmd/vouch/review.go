package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/review"
)

// reviewFlags are the flags of `vouch attest pr`.
type reviewFlags struct {
	forge, repository, commit, apiURL, base string
	minApprovals                            int
	allowStale, serverSide                  bool
}

func (f *reviewFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.forge, "forge", "", "github, gitlab, azure or bitbucket (Data Center) (default: the CI system's, else from --repository; bitbucket outside GitHub Actions when the repository is on VOUCH_BITBUCKET_API_URL's host)")
	fs.StringVar(&f.repository, "repository", "", "owner/name (GitHub), group/project (GitLab), project/repository (Azure DevOps) or PROJECT/repo (Bitbucket), or its URL (default: the CI build's)")
	fs.StringVar(&f.commit, "commit", "", "the commit built (default: the CI build's)")
	fs.StringVar(&f.base, "base", "", "count only requests merged into this branch (default: the branch CI builds; \"\" outside CI: any)")
	fs.StringVar(&f.apiURL, "api-url", "", "the forge's API (default: GITHUB_API_URL or https://api.github.com; CI_API_V4_URL or https://gitlab.com/api/v4; Azure DevOps: SYSTEM_COLLECTIONURI; Bitbucket: VOUCH_BITBUCKET_API_URL)")
	fs.IntVar(&f.minApprovals, "min-approvals", 1, "approvals required from people other than the request's author")
	fs.BoolVar(&f.allowStale, "allow-stale-approvals", false, "GitHub and Bitbucket: count approvals of an earlier head commit of the pull request too")
	fs.BoolVar(&f.serverSide, "server-side", false, "let Vouch ask the forge with its own token (forges in its configuration) about the build's reported repository and commit: the review is verified, the pipeline cannot write it")
}

// reviewAttestation asks the forge how commit was reviewed: an attestation
// of type pull-request, passed when a merged request had the approvals.
// The forge's token comes from the environment, never a flag.
func reviewAttestation(ctx context.Context, digest, name string, f reviewFlags, getenv func(string) string) (attestation, error) {
	ci := detectCI(getenv)
	commit := first(f.commit, ci.Commit)
	if commit == "" {
		return attestation{}, usageError{"attest pr needs --commit: the commit that was built (outside CI)"}
	}
	if f.minApprovals < 1 {
		return attestation{}, usageError{"--min-approvals must be at least 1"}
	}
	forge := f.forge
	if forge == "" {
		switch {
		case ci.System == "GitLab CI", strings.Contains(f.repository, "gitlab"):
			forge = "gitlab"
		case ci.System == "Azure Pipelines" && getenv("BUILD_REPOSITORY_PROVIDER") == "GitHub":
			forge = "github" // a GitHub repository built by Azure Pipelines
		case ci.System == "Azure Pipelines", strings.Contains(f.repository, "dev.azure.com"):
			forge = "azure"
		case ci.System != "GitHub Actions" && sameHost(getenv("VOUCH_BITBUCKET_API_URL"), first(f.repository, ci.Repository)):
			forge = "bitbucket"
		default:
			forge = "github"
		}
	}
	c := &review.Client{HTTP: &http.Client{Timeout: 30 * time.Second}}
	var repo string
	switch forge {
	case "github":
		repo = repoPath(first(f.repository, getenv("GITHUB_REPOSITORY")))
		c.BaseURL = first(f.apiURL, getenv("GITHUB_API_URL"), "https://api.github.com")
		token := first(getenv("GITHUB_TOKEN"), getenv("GH_TOKEN"))
		if token == "" {
			return attestation{}, usageError{"attest pr needs GITHUB_TOKEN (or GH_TOKEN) to read the pull requests: in GitHub Actions, env: {GITHUB_TOKEN: ${{ github.token }}} and permissions: {pull-requests: read}"}
		}
		c.Header, c.Token = review.Credential(forge, token)
		if repo == "" {
			return attestation{}, usageError{"attest pr needs --repository owner/name (outside GitHub Actions)"}
		}
	case "gitlab":
		repo = repoPath(first(f.repository, getenv("CI_PROJECT_PATH")))
		c.BaseURL = first(f.apiURL, getenv("CI_API_V4_URL"), "https://gitlab.com/api/v4")
		token := first(getenv("VOUCH_GITLAB_TOKEN"), getenv("GITLAB_TOKEN"))
		if token == "" {
			return attestation{}, usageError{"attest pr needs VOUCH_GITLAB_TOKEN (or GITLAB_TOKEN): a project access token with read_api, to read the merge requests and their approvals"}
		}
		c.Header, c.Token = review.Credential(forge, token)
		if repo == "" {
			return attestation{}, usageError{"attest pr needs --repository group/project (outside GitLab CI)"}
		}
	case "azure":
		repo = repoPath(first(f.repository, path.Join(getenv("SYSTEM_TEAMPROJECT"), getenv("BUILD_REPOSITORY_NAME"))))
		c.BaseURL = first(f.apiURL, getenv("SYSTEM_COLLECTIONURI"))
		switch {
		case getenv("SYSTEM_ACCESSTOKEN") != "": // the pipeline's own token is a bearer
			c.Header, c.Token = "Authorization", "Bearer "+getenv("SYSTEM_ACCESSTOKEN")
		case getenv("AZURE_DEVOPS_EXT_PAT") != "":
			c.Header, c.Token = review.Credential(forge, getenv("AZURE_DEVOPS_EXT_PAT"))
		default:
			return attestation{}, usageError{"attest pr needs SYSTEM_ACCESSTOKEN (in Azure Pipelines: env: {SYSTEM_ACCESSTOKEN: $(System.AccessToken)}) or AZURE_DEVOPS_EXT_PAT (a PAT with Code: Read)"}
		}
		if c.BaseURL == "" || repo == "" {
			return attestation{}, usageError{"attest pr needs --api-url (the collection, https://dev.azure.com/ORG) and --repository project/repository (outside Azure Pipelines)"}
		}
	case "bitbucket":
		repo = repoPath(first(f.repository, getenv("GIT_URL")))
		c.BaseURL = first(f.apiURL, getenv("VOUCH_BITBUCKET_API_URL"))
		token := first(getenv("VOUCH_BITBUCKET_TOKEN"), getenv("BITBUCKET_TOKEN"))
		if token == "" {
			return attestation{}, usageError{"attest pr needs VOUCH_BITBUCKET_TOKEN (or BITBUCKET_TOKEN): an HTTP access token with repository read, to read the pull requests"}
		}
		c.Header, c.Token = review.Credential(forge, token)
		if c.BaseURL == "" || repo == "" {
			return attestation{}, usageError{"attest pr needs --api-url (or VOUCH_BITBUCKET_API_URL: the server's REST API, https://bitbucket.example.com/rest/api/latest) and --repository (PROJECT/repo, or its clone URL; default: GIT_URL)"}
		}
	default:
		return attestation{}, usageError{fmt.Sprintf("--forge %q: want github, gitlab, azure or bitbucket", forge)}
	}
	r, err := c.Ask(ctx, forge, repo, commit, f.allowStale)
	if err != nil {
		return attestation{}, fmt.Errorf("asking %s about commit %s: %w", forge, commit, err)
	}
	r.Judge(f.minApprovals, first(f.base, ciBranch(getenv)))
	report, err := r.Report(digest, name)
	if err != nil {
		return attestation{}, err
	}
	return attestation{report: report, summary: r.Reason}, nil
}

// ciBranch is the branch a CI job builds, "" for a tag or a merge
// request's pipeline.
func ciBranch(getenv func(string) string) string {
	if ref, ok := strings.CutPrefix(getenv("GITHUB_REF"), "refs/heads/"); ok && getenv("GITHUB_ACTIONS") == "true" {
		return ref
	}
	if ref, ok := strings.CutPrefix(getenv("BUILD_SOURCEBRANCH"), "refs/heads/"); ok && strings.EqualFold(getenv("TF_BUILD"), "true") {
		return ref
	}
	if getenv("JENKINS_URL") != "" && getenv("CI_COMMIT_BRANCH") == "" {
		switch {
		case getenv("CHANGE_ID") != "", getenv("TAG_NAME") != "": // a pull request's or a tag's build
			return ""
		case getenv("BRANCH_NAME") != "":
			return getenv("BRANCH_NAME")
		}
		// GIT_BRANCH is the remote's: origin/main, refs/remotes/origin/main.
		_, branch, _ := strings.Cut(strings.TrimPrefix(getenv("GIT_BRANCH"), "refs/remotes/"), "/")
		return branch
	}
	return getenv("CI_COMMIT_BRANCH") // GitLab: unset for tags and merge request pipelines
}

// sameHost reports whether a forge's API URL is on the host of a
// repository (its URL, clone URL or scp-like address), ports aside.
func sameHost(api, repository string) bool {
	u, err := url.Parse(api)
	host, _, _ := strings.Cut(auth.RepositoryKey(repository), "/")
	return api != "" && err == nil && u.Hostname() != "" && strings.EqualFold(u.Hostname(), strings.Split(host, ":")[0])
}

// repoPath is a repository's path on its forge: owner/name from
// "owner/name", "https://github.com/owner/name(.git)" or
// "git@github.com:owner/name.git".
func repoPath(s string) string {
	s = strings.TrimSuffix(strings.TrimSpace(s), ".git")
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		s = u.Path
	} else if _, after, ok := strings.Cut(s, ":"); ok && strings.Contains(s, "@") {
		s = after
	}
	return strings.Trim(s, "/")
}

// serverSideReview asks Vouch to read the review from the forge itself
// (POST /api/v1/reviews) and prints what it recorded.
func serverSideReview(ctx context.Context, c *client.Client, digest, name, output string, exitCode bool, stdout io.Writer) error {
	var a evidence.Attestation
	code, err := c.Do(ctx, http.MethodPost, "/api/v1/reviews", map[string]string{"digest": digest, "name": name}, &a)
	if err != nil {
		return err
	}
	created := code == http.StatusCreated
	if output == "json" {
		err = writeJSON(stdout, attestationAnswer{a, created})
	} else {
		var r review.Review
		json.Unmarshal(a.Payload, &r)
		what := "recorded"
		if !created {
			what = "already recorded"
		}
		fmt.Fprintf(stdout, "%s: %s %s (pull-request, read by Vouch from %s) for %s: %s (journal entry %d)\n", what, passedWord(a.Passed), a.Name, strings.TrimPrefix(a.KeyID, "forge:"), a.Digest, r.Reason, a.ID)
	}
	if err == nil && exitCode && !a.Passed {
		return exitStatus(1)
	}
	return err
}
