package review

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

type glUser struct {
	Username string `json:"username"`
}

// GitLab asks GitLab which merge requests brought commit into project
// (its path, "group/project") and who approved them.
func (c *Client) GitLab(ctx context.Context, project, commit string) (Review, error) {
	if project == "" {
		return Review{}, errors.New("the GitLab project path is required (group/project)")
	}
	r := Review{Forge: "gitlab", Repository: project, Commit: commit}
	prefix := "/projects/" + url.PathEscape(project)
	mrs, err := list[struct {
		IID          int       `json:"iid"`
		WebURL       string    `json:"web_url"`
		Title        string    `json:"title"`
		State        string    `json:"state"` // opened, closed, locked, merged
		Author       glUser    `json:"author"`
		MergeUser    *glUser   `json:"merge_user"`
		MergedBy     *glUser   `json:"merged_by"`
		MergedAt     time.Time `json:"merged_at"`
		SHA          string    `json:"sha"`
		MergeCommit  string    `json:"merge_commit_sha"`
		SquashCommit string    `json:"squash_commit_sha"`
		Target       string    `json:"target_branch"`
	}](ctx, c, false, fmt.Sprintf("%s/repository/commits/%s/merge_requests?per_page=%d", prefix, url.PathEscape(commit), perPage))
	if err != nil {
		return Review{}, err
	}
	for _, m := range mrs {
		q := Request{Number: m.IID, URL: m.WebURL, Title: m.Title, Author: m.Author.Username, State: m.State, Base: m.Target, Head: m.SHA, MergedAt: m.MergedAt, Approvers: []string{}}
		if q.State == "opened" {
			q.State = "open"
		}
		for _, c := range []string{m.MergeCommit, m.SquashCommit} {
			if c != "" {
				q.Merged = append(q.Merged, c)
			}
		}
		for _, u := range []*glUser{m.MergeUser, m.MergedBy} {
			if u != nil && q.MergedBy == "" {
				q.MergedBy = u.Username
			}
		}
		var approvals struct {
			ApprovedBy []struct {
				User glUser `json:"user"`
			} `json:"approved_by"`
		}
		if _, err := c.get(ctx, false, fmt.Sprintf("%s/merge_requests/%d/approvals", prefix, m.IID), &approvals); err != nil {
			return Review{}, err
		}
		for _, a := range approvals.ApprovedBy {
			if who := a.User.Username; who != "" && !strings.EqualFold(who, q.Author) && !slices.Contains(q.Approvers, who) {
				q.Approvers = append(q.Approvers, who)
			}
		}
		r.Requests = append(r.Requests, q)
	}
	return r, nil
}
