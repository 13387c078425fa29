package review

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// bbUser is a Bitbucket Data Center user, or a commit's author or
// committer: Slug is set only when Bitbucket ties the commit's email to
// a user.
type bbUser struct {
	Name string `json:"name"`
	Slug string `json:"slug"`
	Type string `json:"type"` // NORMAL, or SERVICE: an access token's
}

// bbPage is one page of a Bitbucket Data Center list.
type bbPage[T any] struct {
	Values        []T  `json:"values"`
	IsLastPage    bool `json:"isLastPage"`
	NextPageStart int  `json:"nextPageStart"`
}

// bbList reads every page of a Bitbucket list at path (start and limit
// parameters; isLastPage and nextPageStart in the answer), up to maxPages.
func bbList[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	var all []T
	start := 0
	for page := 0; ; page++ {
		if page == maxPages {
			return nil, fmt.Errorf("GET %s: more than %d pages of %d: too many to judge", path, maxPages, perPage)
		}
		var p bbPage[T]
		if _, err := c.get(ctx, false, fmt.Sprintf("%s?start=%d&limit=%d", path, start, perPage), &p); err != nil {
			return nil, err
		}
		all = append(all, p.Values...)
		if p.IsLastPage || len(p.Values) == 0 {
			return all, nil
		}
		start = p.NextPageStart
	}
}

// bbPull is a Bitbucket Data Center pull request.
type bbPull struct {
	ID     int    `json:"id"`
	Title  string `json:"title"`
	State  string `json:"state"` // OPEN, MERGED, DECLINED
	Closed int64  `json:"closedDate"`
	Author struct {
		User bbUser `json:"user"`
	} `json:"author"`
	Reviewers []struct {
		User         bbUser `json:"user"`
		Status       string `json:"status"` // APPROVED, NEEDS_WORK, UNAPPROVED
		LastReviewed string `json:"lastReviewedCommit"`
	} `json:"reviewers"`
	FromRef struct {
		LatestCommit string `json:"latestCommit"`
	} `json:"fromRef"`
	ToRef struct {
		DisplayID string `json:"displayId"`
	} `json:"toRef"`
	Properties struct {
		MergeCommit struct {
			ID string `json:"id"`
		} `json:"mergeCommit"`
	} `json:"properties"`
	Links struct {
		Self []struct {
			Href string `json:"href"`
		} `json:"self"`
	} `json:"links"`
}

// Bitbucket asks Bitbucket Data Center (BaseURL its /rest/api/latest)
// which pull requests contain or made commit in repo (PROJECT/repo) and
// who approved them. As on GitHub, an approval counts when the reviewer
// last reviewed the request's final commit (unless allowStale), is a
// person (not a SERVICE user, which access tokens act as), and wrote or
// committed none of its commits, and none does while a commit is by an
// email Bitbucket ties to no user.
func (c *Client) Bitbucket(ctx context.Context, repo, commit string, allowStale bool) (Review, error) {
	project, slug, err := splitRepo(repo, "PROJECT/repository")
	if err != nil {
		return Review{}, err
	}
	prefix := "/projects/" + url.PathEscape(project) + "/repos/" + url.PathEscape(slug)
	r := Review{Forge: "bitbucket", Repository: repo, Commit: commit}
	pulls, err := bbList[bbPull](ctx, c, fmt.Sprintf("%s/commits/%s/pull-requests", prefix, url.PathEscape(commit)))
	if err != nil {
		return Review{}, err
	}
	if !slices.ContainsFunc(pulls, func(p bbPull) bool { return strings.EqualFold(p.Properties.MergeCommit.ID, commit) }) {
		// A merge commit may not be listed as its request's: ask about its
		// second parent, the merged head, and let result() check the merge.
		var cm struct {
			Parents []struct {
				ID string `json:"id"`
			} `json:"parents"`
		}
		if _, err := c.get(ctx, false, fmt.Sprintf("%s/commits/%s", prefix, url.PathEscape(commit)), &cm); err != nil {
			return Review{}, err
		}
		if len(cm.Parents) == 2 {
			more, err := bbList[bbPull](ctx, c, fmt.Sprintf("%s/commits/%s/pull-requests", prefix, url.PathEscape(cm.Parents[1].ID)))
			if err != nil {
				return Review{}, err
			}
			for _, p := range more {
				if !slices.ContainsFunc(pulls, func(q bbPull) bool { return q.ID == p.ID }) {
					pulls = append(pulls, p)
				}
			}
		}
	}
	for _, p := range pulls {
		q := Request{Number: p.ID, Title: p.Title, Author: p.Author.User.Slug, State: strings.ToLower(p.State), Base: p.ToRef.DisplayID, Head: p.FromRef.LatestCommit, Approvers: []string{}}
		if len(p.Links.Self) > 0 {
			q.URL = p.Links.Self[0].Href
		}
		if q.State == "declined" {
			q.State = "closed"
		}
		var contributors map[string]bool
		if q.State == "merged" {
			q.MergedAt = time.UnixMilli(p.Closed).UTC()
			if p.Properties.MergeCommit.ID != "" {
				q.Merged = []string{p.Properties.MergeCommit.ID}
			}
			if contributors, q.UnattributedCommits, err = c.bitbucketContributors(ctx, prefix, p.ID); err != nil {
				return Review{}, err
			}
		}
		for _, rv := range p.Reviewers {
			if who := rv.User.Slug; rv.Status == "APPROVED" && who != "" && rv.User.Type != "SERVICE" && !strings.EqualFold(who, q.Author) {
				q.count(who, contributors, strings.EqualFold(rv.LastReviewed, q.Head) || allowStale) // none recorded: stale
			}
		}
		r.Requests = append(r.Requests, q)
	}
	return r, nil
}

// bitbucketContributors returns the users (lower-case slugs) who wrote or
// committed commits of a pull request, and how many of its commits have
// an author or committer Bitbucket ties to no user.
func (c *Client) bitbucketContributors(ctx context.Context, prefix string, id int) (who map[string]bool, unattributed int, err error) {
	commits, err := bbList[struct{ Author, Committer bbUser }](ctx, c, fmt.Sprintf("%s/pull-requests/%d/commits", prefix, id))
	if err != nil {
		return nil, 0, err
	}
	pairs := make([][2]string, len(commits))
	for i, cm := range commits {
		pairs[i] = [2]string{cm.Author.Slug, cm.Committer.Slug}
	}
	who, unattributed = contributorsOf(pairs)
	return who, unattributed, nil
}

// bitbucketPath is PROJECT/repository from a repository's path on the
// server: [context/]projects/PROJECT/repos/repo[/…] or
// [context/]users/name/repos/repo[/…] (its web pages, a user's as
// ~name), [context/]scm/PROJECT/repo (HTTP clone), PROJECT/repo (SSH
// clone), or itself. Project keys are upper case (a path compared as a
// repository key is lower case), except a user's "~name".
func bitbucketPath(p string) string {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	n := len(parts)
	var project, repo string
	for i := 0; i+3 < n && project == ""; i++ {
		switch {
		case strings.EqualFold(parts[i+2], "repos") && strings.EqualFold(parts[i], "projects"):
			project, repo = parts[i+1], parts[i+3]
		case strings.EqualFold(parts[i+2], "repos") && strings.EqualFold(parts[i], "users"):
			project, repo = "~"+parts[i+1], parts[i+3]
		}
	}
	switch {
	case project != "":
	case n >= 3 && strings.EqualFold(parts[n-3], "scm"):
		project, repo = parts[n-2], parts[n-1]
	case n == 2:
		project, repo = parts[0], parts[1]
	default:
		return p
	}
	if !strings.HasPrefix(project, "~") {
		project = strings.ToUpper(project)
	}
	return project + "/" + repo
}
