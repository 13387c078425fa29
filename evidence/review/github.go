package review

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"
)

type ghUser struct {
	Login string `json:"login"`
	Type  string `json:"type"` // User, Bot, Organization
}

// GitHub asks GitHub which pull requests brought commit into repo
// ("owner/name") and who approved them. GitHub lists the merged pull
// request of a commit on the default branch; for other branches, only
// open ones.
func (c *Client) GitHub(ctx context.Context, repo, commit string, allowStale bool) (Review, error) {
	owner, name, err := splitRepo(repo, "owner/name")
	if err != nil {
		return Review{}, err
	}
	prefix := "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name)
	r := Review{Forge: "github", Repository: repo, Commit: commit}
	pulls, err := list[struct {
		Number      int                  `json:"number"`
		HTMLURL     string               `json:"html_url"`
		Title       string               `json:"title"`
		State       string               `json:"state"`
		User        ghUser               `json:"user"`
		Merged      time.Time            `json:"merged_at"`
		MergeCommit string               `json:"merge_commit_sha"`
		Head        struct{ SHA string } `json:"head"`
		Base        struct{ Ref string } `json:"base"`
	}](ctx, c, true, fmt.Sprintf("%s/commits/%s/pulls?per_page=%d", prefix, url.PathEscape(commit), perPage))
	if err != nil {
		return Review{}, err
	}
	for _, p := range pulls {
		var contributors map[string]bool
		q := Request{Number: p.Number, URL: p.HTMLURL, Title: p.Title, Author: p.User.Login, State: p.State, Base: p.Base.Ref, Head: p.Head.SHA, Approvers: []string{}}
		if !p.Merged.IsZero() {
			q.State, q.MergedAt = "merged", p.Merged
			if p.MergeCommit != "" {
				q.Merged = []string{p.MergeCommit}
			}
			var detail struct {
				MergedBy ghUser `json:"merged_by"`
				Commits  int    `json:"commits"`
			}
			if _, err := c.get(ctx, true, fmt.Sprintf("%s/pulls/%d", prefix, p.Number), &detail); err != nil {
				return Review{}, err
			}
			q.MergedBy = detail.MergedBy.Login
			if contributors, q.UnattributedCommits, err = c.githubContributors(ctx, prefix, p.Number, detail.Commits); err != nil {
				return Review{}, err
			}
		}
		reviews, err := list[struct {
			User     ghUser `json:"user"`
			State    string `json:"state"`
			CommitID string `json:"commit_id"`
		}](ctx, c, true, fmt.Sprintf("%s/pulls/%d/reviews?per_page=%d", prefix, p.Number, perPage))
		if err != nil {
			return Review{}, err
		}
		// Reviews come oldest first: each reviewer's last verdict stands.
		verdict := map[string]string{} // reviewer → commit approved, or "" for none
		var order []string
		for _, rv := range reviews {
			who := rv.User.Login
			if who == "" || rv.User.Type == "Bot" || strings.EqualFold(who, q.Author) {
				continue
			}
			if _, seen := verdict[who]; !seen {
				order, verdict[who] = append(order, who), ""
			}
			switch rv.State {
			case "APPROVED":
				verdict[who] = rv.CommitID
			case "CHANGES_REQUESTED", "DISMISSED":
				verdict[who] = ""
			}
		}
		for _, who := range order {
			if at := verdict[who]; at != "" {
				q.count(who, contributors, at == q.Head || allowStale)
			}
		}
		r.Requests = append(r.Requests, q)
	}
	return r, nil
}

// maxPullCommits is the most commits GitHub lists of a pull request.
const maxPullCommits = 250

// githubContributors returns who wrote or committed the commits of a pull
// request (lower-case logins): their approvals are not a second person's.
// unattributed counts the commits whose author or committer GitHub ties to
// no account (an email it does not know): who wrote those is unknown.
func (c *Client) githubContributors(ctx context.Context, prefix string, number, commits int) (who map[string]bool, unattributed int, err error) {
	if commits > maxPullCommits {
		return nil, 0, fmt.Errorf("pull request #%d has %d commits; GitHub lists only %d, so who wrote the others is unknown", number, commits, maxPullCommits)
	}
	listed, err := list[struct{ Author, Committer *ghUser }](ctx, c, true, fmt.Sprintf("%s/pulls/%d/commits?per_page=%d", prefix, number, perPage))
	if err != nil {
		return nil, 0, err
	}
	login := func(u *ghUser) string {
		if u == nil {
			return ""
		}
		return u.Login
	}
	pairs := make([][2]string, len(listed))
	for i, cm := range listed {
		pairs[i] = [2]string{login(cm.Author), login(cm.Committer)}
	}
	who, unattributed = contributorsOf(pairs)
	return who, unattributed, nil
}
