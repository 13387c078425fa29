package review

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/vouch-dev/vouch/auth"
)

var (
	// ErrDeploymentNotApproved means the forge records no approval of the
	// job's deployment to its environment.
	ErrDeploymentNotApproved = errors.New("the deployment was not approved on the forge")
	// ErrUnattributedCommit means the forge ties the commit's author or
	// committer to no account: whether an approver wrote it is unknown.
	ErrUnattributedCommit = errors.New("the commit's author is not a forge account")
)

// DeploymentApprovers returns the people who approved d's deployment on
// its forge (a forges entry of type github), as an approval by d's job
// stands for them: their logins and, where the forge ties commit's author
// or committer to one of them, that email — what a build reports as its
// author, which four eyes compares. Lower case, sorted.
func (f *Forges) DeploymentApprovers(ctx context.Context, d auth.Deployment, commit string) ([]string, error) {
	if f != nil {
		for _, fg := range f.list {
			if fg.cfg.Name != d.Forge || fg.cfg.Type != "github" {
				continue
			}
			client := fg.client
			if fg.app != nil {
				on := fg.app.on(d.Repository)
				client = &on
			}
			return client.gitHubDeploymentApprovers(ctx, d, commit)
		}
	}
	return nil, fmt.Errorf("%w: no forge %q of type github", ErrNoForge, d.Forge)
}

func (c *Client) gitHubDeploymentApprovers(ctx context.Context, d auth.Deployment, commit string) ([]string, error) {
	owner, name, ok := strings.Cut(d.Repository, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("repository %q: want owner/name", d.Repository)
	}
	prefix := "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name)
	var reviews []struct {
		State        string `json:"state"` // approved, rejected
		User         ghUser `json:"user"`
		Environments []struct{ Name string }
	}
	if _, err := c.get(ctx, true, fmt.Sprintf("%s/actions/runs/%s/approvals", prefix, url.PathEscape(d.Run)), &reviews); err != nil {
		return nil, err
	}
	approvers := map[string]bool{}
	for _, rv := range reviews {
		for _, e := range rv.Environments {
			if rv.State == "approved" && rv.User.Login != "" && strings.EqualFold(e.Name, d.Environment) {
				approvers[strings.ToLower(rv.User.Login)] = true
			}
		}
	}
	if len(approvers) == 0 {
		return nil, fmt.Errorf("%w: GitHub records no approval of environment %q in workflow run %s of %s: give the environment required reviewers", ErrDeploymentNotApproved, d.Environment, d.Run, d.Repository)
	}
	var cm struct {
		Author, Committer *ghUser
		Commit            struct{ Author, Committer struct{ Email string } }
	}
	if _, err := c.get(ctx, true, fmt.Sprintf("%s/commits/%s", prefix, url.PathEscape(commit)), &cm); err != nil {
		return nil, err
	}
	if cm.Author == nil || cm.Author.Login == "" || cm.Committer == nil || cm.Committer.Login == "" {
		return nil, fmt.Errorf("%w: GitHub ties the author or committer of commit %s (%s, %s) to no account, so whether %s wrote it is unknown",
			ErrUnattributedCommit, commit, cm.Commit.Author.Email, cm.Commit.Committer.Email, strings.Join(slices.Sorted(maps.Keys(approvers)), ", "))
	}
	people := maps.Clone(approvers)
	for _, p := range [][2]string{{cm.Author.Login, cm.Commit.Author.Email}, {cm.Committer.Login, cm.Commit.Committer.Email}} {
		if approvers[strings.ToLower(p[0])] && p[1] != "" {
			people[strings.ToLower(p[1])] = true
		}
	}
	return slices.Sorted(maps.Keys(people)), nil
}
