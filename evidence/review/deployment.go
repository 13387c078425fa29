package review

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
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
// stands for them: their logins and, where the forge ties the author or
// committer of commit to one of them, that email and author, what the
// build reported as its author — four eyes compares that with them. Lower
// case, sorted.
func (f *Forges) DeploymentApprovers(ctx context.Context, d auth.Deployment, commit, author string) ([]string, error) {
	if f != nil {
		for _, fg := range f.list {
			if fg.cfg.Name == d.Forge {
				return fg.clientFor(d.Repository).gitHubDeploymentApprovers(ctx, d, commit, author)
			}
		}
	}
	return nil, fmt.Errorf("%w: no forge %q", ErrNoForge, d.Forge)
}

func (c *Client) gitHubDeploymentApprovers(ctx context.Context, d auth.Deployment, commit, author string) ([]string, error) {
	owner, name, err := splitRepo(d.Repository, "owner/name")
	if err != nil {
		return nil, err
	}
	if _, err := strconv.ParseUint(d.Run, 10, 64); err != nil {
		return nil, fmt.Errorf("workflow run %q: want a number", d.Run)
	}
	prefix := "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name)
	var reviews []struct {
		State        string `json:"state"` // approved, rejected
		User         ghUser `json:"user"`
		Environments []struct{ Name string }
	}
	if _, err := c.get(ctx, true, fmt.Sprintf("%s/actions/runs/%s/approvals", prefix, d.Run), &reviews); err != nil {
		return nil, err
	}
	people := map[string]bool{} // logins; emails (with @, which logins never have) once known
	for _, rv := range reviews {
		if rv.State == "approved" && rv.User.Login != "" && rv.User.Type != "Bot" &&
			slices.ContainsFunc(rv.Environments, func(e struct{ Name string }) bool { return strings.EqualFold(e.Name, d.Environment) }) {
			people[strings.ToLower(rv.User.Login)] = true
		}
	}
	if len(people) == 0 {
		return nil, fmt.Errorf("%w: GitHub records no approval of environment %q in workflow run %s of %s: give the environment required reviewers", ErrDeploymentNotApproved, d.Environment, d.Run, d.Repository)
	}
	// The first page, of one, of the commits from commit: the commit
	// without its files, which a large merge would fill. Its history is
	// not read.
	var commits []struct {
		SHA               string `json:"sha"`
		Author, Committer *ghUser
		Commit            struct{ Author, Committer struct{ Email string } }
	}
	_, err = c.get(ctx, true, fmt.Sprintf("%s/commits?sha=%s&per_page=1", prefix, url.QueryEscape(commit)), &commits)
	switch {
	case err != nil:
		return nil, err
	case len(commits) == 0 || commits[0].SHA != commit:
		return nil, fmt.Errorf("GitHub does not list commit %s of %s", commit, d.Repository)
	}
	cm := commits[0]
	if cm.Author == nil || cm.Author.Login == "" || cm.Committer == nil || cm.Committer.Login == "" {
		return nil, fmt.Errorf("%w: GitHub ties the author or committer of commit %s (%s, %s) to no account, so whether %s wrote it is unknown",
			ErrUnattributedCommit, commit, cm.Commit.Author.Email, cm.Commit.Committer.Email, strings.Join(slices.Sorted(maps.Keys(people)), ", "))
	}
	var also []string // an approver wrote or committed it: their email, and whoever the build named its author
	for _, p := range [][2]string{{cm.Author.Login, cm.Commit.Author.Email}, {cm.Committer.Login, cm.Commit.Committer.Email}} {
		if people[strings.ToLower(p[0])] {
			also = append(also, p[1], author)
		}
	}
	for _, id := range also {
		if id != "" {
			people[strings.ToLower(id)] = true
		}
	}
	return slices.Sorted(maps.Keys(people)), nil
}
