package evidence

import (
	"strings"
	"testing"
)

func TestReviewOfTheBuild(t *testing.T) {
	const commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
	f := ReviewFacts{Repository: "Octo-Org/payments-api", Commit: commit, Approvals: 2}
	for _, tc := range []struct {
		build *Artifact
		want  string // "" = the review is about the build
	}{
		{&Artifact{GitCommit: commit, Repository: "https://github.com/octo-org/payments-api.git"}, ""},
		{&Artifact{GitCommit: strings.ToUpper(commit), Repository: "git@github.com:octo-org/payments-api"}, ""},
		{&Artifact{GitCommit: commit}, ""},
		{&Artifact{GitCommit: commit, Repository: "https://dev.azure.com/bank/octo-org/_git/payments-api"}, ""},
		{nil, "no build of the digest was reported"},
		{&Artifact{Repository: "https://github.com/octo-org/payments-api"}, "the build report names no commit"},
		{&Artifact{GitCommit: "60303ae22b998861bce3b28f33eec1be758a213c"}, "the review is of commit " + commit + ", but the digest was built from commit 60303ae"},
		{&Artifact{GitCommit: commit, Repository: "https://github.com/mallory/payments-api"}, "the review is of repository Octo-Org/payments-api, but the digest was built from https://github.com/mallory/payments-api"},
		{&Artifact{GitCommit: commit, Repository: "https://github.com/xocto-org/payments-api"}, "the review is of repository"},
	} {
		if got := f.Of(tc.build); tc.want == "" && got != "" || tc.want != "" && !strings.HasPrefix(got, tc.want) {
			t.Errorf("%+v: %q, want %q", tc.build, got, tc.want)
		}
	}
	for payload, want := range map[string]string{
		`{"commit":"` + commit + `","repository":"a/b","approvals":1}`: "",
		`{"commit":"` + commit + `","approvals":1}`:                    "names the repository and the commit",
		`{"repository":"a/b","approvals":5}`:                           "names the repository and the commit",
		`{"commit":"c","repository":"a/b","approvals":-1}`:             "payload.approvals: cannot be negative",
		`[1]`: "is a JSON object",
		`{"commit":"c","repository":"a/b","pad":"` + strings.Repeat("x", MaxReviewPayload) + `"}`: "at most 65536 bytes",
	} {
		if _, err := ParseReview([]byte(payload)); want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%.60s: %v, want %q", payload, err, want)
		}
	}
}
