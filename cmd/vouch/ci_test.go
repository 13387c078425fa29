package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDetectCI(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want ciBuild
	}{
		{"none", map[string]string{"GITHUB_SHA": "abc", "CI_COMMIT_SHA": "abc"}, ciBuild{}},
		{"GitHub Actions", map[string]string{
			"GITHUB_ACTIONS": "true", "GITHUB_SHA": "4b825dc642cb6eb9a060e54bf8d69288fbee4904", "GITHUB_SERVER_URL": "https://github.example.com",
			"GITHUB_REPOSITORY": "shop/web", "GITHUB_RUN_ID": "9001", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_WORKFLOW": "release", "GITHUB_ACTOR": "octocat",
		}, ciBuild{System: "GitHub Actions", Commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", Author: "octocat", Repository: "https://github.example.com/shop/web",
			BuildURL: "https://github.example.com/shop/web/actions/runs/9001", Pipeline: "release"}},
		{"GitHub Actions, second attempt, default server", map[string]string{
			"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "shop/web", "GITHUB_RUN_ID": "9001", "GITHUB_RUN_ATTEMPT": "2",
		}, ciBuild{System: "GitHub Actions", Repository: "https://github.com/shop/web", BuildURL: "https://github.com/shop/web/actions/runs/9001/attempts/2"}},
		{"GitLab CI job", map[string]string{
			"GITLAB_CI": "true", "CI_COMMIT_SHA": "4b825dc642cb6eb9a060e54bf8d69288fbee4904", "CI_PROJECT_URL": "https://gitlab.example.com/shop/web",
			"CI_JOB_URL": "https://gitlab.example.com/shop/web/-/jobs/77", "CI_PIPELINE_URL": "https://gitlab.example.com/shop/web/-/pipelines/12",
			"CI_PIPELINE_ID": "12", "CI_COMMIT_AUTHOR": "Alice Example <alice@example.com>",
		}, ciBuild{System: "GitLab CI", Commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", Author: "alice@example.com", Repository: "https://gitlab.example.com/shop/web",
			BuildURL: "https://gitlab.example.com/shop/web/-/jobs/77", Pipeline: "12"}},
		{"GitLab CI pipeline with a name", map[string]string{
			"GITLAB_CI": "true", "CI_PIPELINE_URL": "https://gitlab.example.com/shop/web/-/pipelines/12", "CI_PIPELINE_ID": "12", "CI_PIPELINE_NAME": "nightly",
		}, ciBuild{System: "GitLab CI", BuildURL: "https://gitlab.example.com/shop/web/-/pipelines/12", Pipeline: "nightly"}},
		{"Jenkins", map[string]string{
			"JENKINS_URL": "https://jenkins.example.com/", "GIT_COMMIT": "4b825dc642cb6eb9a060e54bf8d69288fbee4904", "GIT_URL": "git@github.com:shop/web.git",
			"BUILD_URL": "https://jenkins.example.com/job/web/31/", "JOB_NAME": "shop/web", "GIT_AUTHOR_EMAIL": "bob@example.com",
		}, ciBuild{System: "Jenkins", Commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", Author: "bob@example.com", Repository: "git@github.com:shop/web.git",
			BuildURL: "https://jenkins.example.com/job/web/31/", Pipeline: "shop/web"}},
		{"Azure Pipelines", map[string]string{
			"TF_BUILD": "True", "BUILD_SOURCEVERSION": "4b825dc642cb6eb9a060e54bf8d69288fbee4904", "BUILD_REPOSITORY_URI": "https://dev.azure.com/bank/Shop/_git/web",
			"SYSTEM_COLLECTIONURI": "https://dev.azure.com/bank/", "SYSTEM_TEAMPROJECT": "Shop Online", "BUILD_BUILDID": "512", "BUILD_DEFINITIONNAME": "web-ci", "BUILD_REQUESTEDFOREMAIL": "carol@example.com",
		}, ciBuild{System: "Azure Pipelines", Commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", Author: "carol@example.com", Repository: "https://dev.azure.com/bank/Shop/_git/web",
			BuildURL: "https://dev.azure.com/bank/Shop%20Online/_build/results?buildId=512", Pipeline: "web-ci"}},
		{"Azure Pipelines without the collection", map[string]string{"TF_BUILD": "True", "BUILD_BUILDID": "512"}, ciBuild{System: "Azure Pipelines"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, detectCI(env(tt.env))); diff != "" {
				t.Errorf("detectCI (-want +got):\n%s", diff)
			}
		})
	}
}
