package review

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/test/forgetest"
)

// An approval by a deployment job stands for the people who approved the
// job's run for its environment on GitHub: their logins, and the emails
// GitHub ties to them on the commit deployed, which four eyes compares
// with the author the build reported.
func TestDeploymentApprovers(t *testing.T) {
	ctx := context.Background()
	gh := forgetest.GitHub(t, "bank/payments")
	f, err := NewForges([]ForgeConfig{{Name: "github", Type: "github", APIURL: gh.URL, TokenFile: gh.TokenFile(t)}})
	if err != nil {
		t.Fatal(err)
	}
	gh.AddCommit(forgetest.Commit{SHA: merge, Author: "Alice", AuthorEmail: "Alice@Bank.example", Committer: "web-flow", CommitterEmail: "noreply@github.com"})
	gh.AddCommit(forgetest.Commit{SHA: head, Author: "", AuthorEmail: "laptop@localhost", Committer: "alice", CommitterEmail: "alice@bank.example"})
	gh.AddDeploymentReview(forgetest.DeploymentReview{Run: 7, Environment: "production", User: "Carol", State: "approved"})
	gh.AddDeploymentReview(forgetest.DeploymentReview{Run: 7, Environment: "staging", User: "dave", State: "approved"})
	gh.AddDeploymentReview(forgetest.DeploymentReview{Run: 8, Environment: "Production", User: "alice", State: "approved"})
	gh.AddDeploymentReview(forgetest.DeploymentReview{Run: 8, Environment: "production", User: "bob", State: "rejected"})
	gh.AddDeploymentReview(forgetest.DeploymentReview{Run: 9, Environment: "staging", User: "carol", State: "approved"})
	job := func(run string) auth.Deployment {
		return auth.Deployment{Forge: "github", Repository: "bank/payments", Run: run, Attempt: "1", Environment: "production", Commit: merge}
	}
	gh.AddCommit(forgetest.Commit{SHA: early, Author: "dave", AuthorEmail: "dave@bank.example", Committer: "Carol", CommitterEmail: "carol@bank.example"})
	for _, tc := range []struct {
		name     string
		d        auth.Deployment
		commit   string
		author   string // as the build reported it
		want     []string
		wantErr  error
		errMatch string
	}{
		{"another person approved", job("7"), merge, "alice@bank.example", []string{"carol"}, nil, ""},
		{"the author approved: her commit email is hers", job("8"), merge, "alice@bank.example", []string{"alice", "alice@bank.example"}, nil, ""},
		{"the author approved, the build named the run's actor: that name is hers too", job("8"), merge, "mona", []string{"alice", "alice@bank.example", "mona"}, nil, ""},
		{"the committer approved", job("7"), early, "dave@bank.example", []string{"carol", "carol@bank.example", "dave@bank.example"}, nil, ""},
		{"only another environment was approved", job("9"), merge, "", nil, ErrDeploymentNotApproved, `no approval of environment "production" in workflow run 9 of bank/payments`},
		{"a run nobody reviewed", job("10"), merge, "", nil, ErrDeploymentNotApproved, "give the environment required reviewers"},
		{"a commit by an email GitHub ties to no account", job("7"), head, "", nil, ErrUnattributedCommit, "(laptop@localhost, alice@bank.example) to no account, so whether carol wrote it is unknown"},
		{"an unknown commit", job("7"), "0000000000000000000000000000000000000000", "", nil, nil, "404 Not Found"},
		{"a run that is no number", job("7/../../pulls"), merge, "", nil, nil, `workflow run "7/../../pulls": want a number`},
		{"a forge not configured", auth.Deployment{Forge: "ghe", Repository: "bank/payments", Run: "7", Environment: "production"}, merge, "", nil, ErrNoForge, `no forge "ghe"`},
	} {
		got, err := f.DeploymentApprovers(ctx, tc.d, tc.commit, tc.author)
		switch {
		case tc.errMatch == "" && (err != nil || !reflect.DeepEqual(got, tc.want)):
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		case tc.errMatch != "" && (err == nil || !strings.Contains(err.Error(), tc.errMatch) || tc.wantErr != nil && !errors.Is(err, tc.wantErr)):
			t.Errorf("%s: %v, %v; want an error with %q", tc.name, got, err, tc.errMatch)
		}
	}
}
