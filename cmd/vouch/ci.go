package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ciBuild is what a CI system's environment says about the running build:
// the defaults of `vouch artifact report` and of attestation URLs.
type ciBuild struct {
	System     string // "GitHub Actions", "GitLab CI", "Jenkins", "Azure Pipelines", or "" outside CI
	Commit     string
	Author     string // of the commit, or who pushed it where that is all CI says
	Repository string
	BuildURL   string
	Pipeline   string
}

// detectCI reads the environment variables of GitHub Actions, GitLab CI,
// Jenkins and Azure Pipelines (docs/ci.md has the table). getenv is
// os.Getenv outside tests.
func detectCI(getenv func(string) string) ciBuild {
	switch {
	case getenv("GITHUB_ACTIONS") == "true":
		server, repo := strings.TrimRight(getenv("GITHUB_SERVER_URL"), "/"), getenv("GITHUB_REPOSITORY")
		if server == "" {
			server = "https://github.com"
		}
		b := ciBuild{System: "GitHub Actions", Commit: getenv("GITHUB_SHA"), Author: getenv("GITHUB_ACTOR"), Pipeline: getenv("GITHUB_WORKFLOW")}
		if repo != "" {
			b.Repository = server + "/" + repo
			if id := getenv("GITHUB_RUN_ID"); id != "" {
				b.BuildURL = b.Repository + "/actions/runs/" + id
				if n := getenv("GITHUB_RUN_ATTEMPT"); n != "" && n != "1" {
					b.BuildURL += "/attempts/" + n
				}
			}
		}
		return b
	case getenv("GITLAB_CI") == "true":
		b := ciBuild{System: "GitLab CI", Commit: getenv("CI_COMMIT_SHA"), Author: commitAuthor(getenv("CI_COMMIT_AUTHOR")), Repository: getenv("CI_PROJECT_URL"),
			BuildURL: first(getenv("CI_JOB_URL"), getenv("CI_PIPELINE_URL")), Pipeline: first(getenv("CI_PIPELINE_NAME"), getenv("CI_PIPELINE_ID"))}
		return b
	case strings.EqualFold(getenv("TF_BUILD"), "true"):
		b := ciBuild{System: "Azure Pipelines", Commit: getenv("BUILD_SOURCEVERSION"), Author: getenv("BUILD_REQUESTEDFOREMAIL"), Repository: getenv("BUILD_REPOSITORY_URI"),
			Pipeline: getenv("BUILD_DEFINITIONNAME")}
		collection, project, id := getenv("SYSTEM_COLLECTIONURI"), getenv("SYSTEM_TEAMPROJECT"), getenv("BUILD_BUILDID")
		if collection != "" && project != "" && id != "" {
			b.BuildURL = strings.TrimRight(collection, "/") + "/" + url.PathEscape(project) + "/_build/results?buildId=" + url.QueryEscape(id)
		}
		return b
	case getenv("JENKINS_URL") != "" || getenv("JENKINS_HOME") != "":
		return ciBuild{System: "Jenkins", Commit: getenv("GIT_COMMIT"), Author: first(getenv("GIT_AUTHOR_EMAIL"), getenv("CHANGE_AUTHOR_EMAIL")),
			Repository: getenv("GIT_URL"), BuildURL: getenv("BUILD_URL"), Pipeline: getenv("JOB_NAME")}
	}
	return ciBuild{}
}

// commitAuthor takes the email out of "Name <email>", as GitLab writes it.
func commitAuthor(s string) string {
	if i, j := strings.LastIndexByte(s, '<'), strings.LastIndexByte(s, '>'); i >= 0 && j > i+1 {
		return s[i+1 : j]
	}
	return s
}

// first returns the first non-empty string.
func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// githubIDToken asks GitHub Actions for the job's OpenID Connect ID token
// for audience (the job needs `permissions: id-token: write`), to call
// Vouch with instead of a stored secret (oidc_issuers on the server).
func githubIDToken(ctx context.Context, getenv func(string) string, audience string) (string, error) {
	reqURL, reqToken := getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
	if reqURL == "" || reqToken == "" {
		return "", errors.New("ACTIONS_ID_TOKEN_REQUEST_URL is not set: run in GitHub Actions with `permissions: id-token: write`")
	}
	u, err := url.Parse(reqURL)
	if err != nil {
		return "", fmt.Errorf("ACTIONS_ID_TOKEN_REQUEST_URL: %w", err)
	}
	q := u.Query()
	q.Set("audience", audience)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+reqToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("ask GitHub Actions for an ID token: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Value string `json:"value"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("ask GitHub Actions for an ID token: %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out); err != nil || out.Value == "" {
		return "", fmt.Errorf("ask GitHub Actions for an ID token: no token in the answer (%v)", err)
	}
	return out.Value, nil
}
