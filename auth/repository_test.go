package auth

import "testing"

func TestRepositoryKey(t *testing.T) {
	for in, want := range map[string]string{
		"https://github.com/Bank/Payments.git":         "github.com/bank/payments",
		"git@github.com:bank/payments.git":             "github.com/bank/payments",
		"ssh://git@gitlab.example.com/group/sub/repo/": "gitlab.example.com/group/sub/repo",
		"https://ci:s3cret@git.example.com/bank/pay":   "git.example.com/bank/pay",
		" github.com/bank/payments ":                   "github.com/bank/payments",
		"github.com/bank/payments@v1":                  "github.com/bank/payments@v1",
		"dev.azure.com/bank/project/_git/payments":     "dev.azure.com/bank/project/_git/payments",
		"": "",
	} {
		if got := RepositoryKey(in); got != want {
			t.Errorf("RepositoryKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMatchRepository(t *testing.T) {
	limited := Token{Repositories: []string{"github.com/bank/payments-*", "gitlab.example.com/group/*/repo"}}
	for repo, want := range map[string]bool{
		"https://github.com/bank/payments-api":      true,
		"git@github.com:Bank/payments-web.git":      true,
		"github.com/bank/payments":                  false, // the pattern wants "payments-"
		"github.com/bank/payments-api/sub":          false, // '*' stays within a segment
		"github.com/evil/payments-api":              false,
		"https://gitlab.example.com/group/a/repo":   true,
		"https://gitlab.example.com/group/a/b/repo": false,
		"": false,
	} {
		if got := limited.MatchRepository(repo); got != want {
			t.Errorf("MatchRepository(%q) = %v, want %v", repo, got, want)
		}
	}
	if !(Token{}).MatchRepository("") {
		t.Error("a token without repositories is limited")
	}
}
