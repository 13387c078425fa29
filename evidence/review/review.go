// Package review finds out whether a commit was reviewed before it was
// merged: it asks the forge (GitHub or GitLab, over their REST APIs) for
// the pull or merge requests that brought the commit in and who approved
// them, and judges the four-eyes rule regulated change management asks
// for — merged, and approved by someone other than its author.
//
// On GitHub an approval counts only if it was given to the request's final
// head commit (a push after the approval is code nobody approved), unless
// stale approvals are allowed; a reviewer's latest approving or
// change-requesting review is their verdict, and a dismissed one none. On
// GitLab the merge request's approvals are as GitLab keeps them (its
// project settings decide whether a push resets them).
package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Request is a pull request (GitHub) or merge request (GitLab).
type Request struct {
	Number   int       `json:"number"`
	URL      string    `json:"url"`
	Title    string    `json:"title"`
	Author   string    `json:"author"`
	State    string    `json:"state"` // merged, open or closed
	Base     string    `json:"base,omitempty"`
	Head     string    `json:"head_commit,omitempty"`
	MergedBy string    `json:"merged_by,omitempty"`
	MergedAt time.Time `json:"merged_at,omitzero"`
	// Approvers approved it, not being its author; StaleApprovers
	// approved an earlier head commit only (GitHub).
	Approvers      []string `json:"approvers"`
	StaleApprovers []string `json:"stale_approvers,omitempty"`
}

// Review is what the forge says about a commit, and the verdict.
type Review struct {
	Forge      string    `json:"forge"` // github or gitlab
	Repository string    `json:"repository"`
	Commit     string    `json:"commit"`
	Requests   []Request `json:"requests"`
	// MinApprovals is the rule judged: a request merged (into Base, when
	// given) with at least this many approvers other than its author.
	MinApprovals int    `json:"min_approvals"`
	Base         string `json:"base,omitempty"`
	Passed       bool   `json:"passed"`
	// Reason says why it passed (the request) or why not.
	Reason string `json:"reason"`
}

// Judge decides the review: passed when one of the requests merged into
// base (any branch when "") has at least min approvers.
func (r *Review) Judge(min int, base string) {
	r.MinApprovals, r.Base, r.Passed = min, base, false
	var merged, elsewhere []Request
	for _, q := range r.Requests {
		switch {
		case q.State != "merged":
		case base == "" || q.Base == base:
			merged = append(merged, q)
		default:
			elsewhere = append(elsewhere, q)
		}
	}
	for _, q := range merged {
		if len(q.Approvers) >= min {
			r.Passed = true
			r.Reason = fmt.Sprintf("#%d merged, approved by %s", q.Number, strings.Join(q.Approvers, ", "))
			return
		}
	}
	switch {
	case len(r.Requests) == 0:
		r.Reason = fmt.Sprintf("no pull or merge request contains commit %s: it was pushed without review", r.Commit)
	case len(merged) == 0 && len(elsewhere) > 0:
		r.Reason = fmt.Sprintf("#%d was merged into %s, not %s: no reviewed request brought commit %s into %s", elsewhere[0].Number, elsewhere[0].Base, base, r.Commit, base)
	case len(merged) == 0:
		r.Reason = fmt.Sprintf("#%d contains commit %s but is %s, not merged", r.Requests[0].Number, r.Commit, r.Requests[0].State)
	default:
		q := merged[0]
		r.Reason = fmt.Sprintf("#%d was merged with %d approval(s) by someone other than its author %s, %d required", q.Number, len(q.Approvers), q.Author, min)
		if len(q.StaleApprovers) > 0 {
			r.Reason += fmt.Sprintf(" (%s approved an earlier commit of it only)", strings.Join(q.StaleApprovers, ", "))
		}
	}
}

// Client calls a forge's API.
type Client struct {
	HTTP    *http.Client
	BaseURL string // https://api.github.com, https://gitlab.example.com/api/v4
	// Header is the authentication header and its value, e.g.
	// Authorization: Bearer …, PRIVATE-TOKEN: …, JOB-TOKEN: ….
	Header, Token string
}

// maxPage is the page size asked for; a request with more reviews than
// that has its first page judged.
const maxPage = 100

// get decodes a JSON answer from GitHub (github) or GitLab. Errors name
// the status and the forge's message.
func (c *Client) get(ctx context.Context, github bool, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if github {
		req.Header.Set("Accept", "application/vnd.github+json")
		req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	}
	if c.Token != "" {
		req.Header.Set(c.Header, c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var m struct {
			Message string `json:"message"`
		}
		json.Unmarshal(body, &m)
		msg := m.Message
		if msg == "" {
			msg = strings.TrimSpace(string(body[:min(len(body), 200)]))
		}
		hint := ""
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
			hint = " (does the token have read access to the repository and its pull or merge requests?)"
		}
		return fmt.Errorf("GET %s: %s: %s%s", req.URL.Path, resp.Status, msg, hint)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("GET %s: %w", req.URL.Path, err)
	}
	return nil
}

// GitHub asks GitHub which pull requests brought commit into repo
// ("owner/name") and who approved them.
func (c *Client) GitHub(ctx context.Context, repo, commit string, allowStale bool) (Review, error) {
	if strings.Count(repo, "/") != 1 {
		return Review{}, fmt.Errorf("repository %q: want owner/name", repo)
	}
	r := Review{Forge: "github", Repository: repo, Commit: commit}
	var pulls []struct {
		Number  int                  `json:"number"`
		HTMLURL string               `json:"html_url"`
		Title   string               `json:"title"`
		State   string               `json:"state"`
		User    ghUser               `json:"user"`
		Merged  time.Time            `json:"merged_at"`
		Head    struct{ SHA string } `json:"head"`
		Base    struct{ Ref string } `json:"base"`
	}
	if err := c.get(ctx, true, fmt.Sprintf("/repos/%s/commits/%s/pulls?per_page=%d", repo, url.PathEscape(commit), maxPage), &pulls); err != nil {
		return Review{}, err
	}
	for _, p := range pulls {
		q := Request{Number: p.Number, URL: p.HTMLURL, Title: p.Title, Author: p.User.Login, State: p.State, Base: p.Base.Ref, Head: p.Head.SHA, Approvers: []string{}}
		if !p.Merged.IsZero() {
			q.State, q.MergedAt = "merged", p.Merged
			var detail struct {
				MergedBy ghUser `json:"merged_by"`
			}
			if err := c.get(ctx, true, fmt.Sprintf("/repos/%s/pulls/%d", repo, p.Number), &detail); err != nil {
				return Review{}, err
			}
			q.MergedBy = detail.MergedBy.Login
		}
		var reviews []struct {
			User     ghUser `json:"user"`
			State    string `json:"state"`
			CommitID string `json:"commit_id"`
		}
		if err := c.get(ctx, true, fmt.Sprintf("/repos/%s/pulls/%d/reviews?per_page=%d", repo, p.Number, maxPage), &reviews); err != nil {
			return Review{}, err
		}
		// Reviews come oldest first: each reviewer's last verdict stands.
		verdict := map[string]string{} // reviewer → commit approved, or "" for none
		var order []string
		for _, rv := range reviews {
			who := rv.User.Login
			if who == "" || strings.EqualFold(who, q.Author) {
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
			switch at := verdict[who]; {
			case at == "":
			case at == q.Head || allowStale:
				q.Approvers = append(q.Approvers, who)
			default:
				q.StaleApprovers = append(q.StaleApprovers, who)
			}
		}
		r.Requests = append(r.Requests, q)
	}
	return r, nil
}

type ghUser struct {
	Login string `json:"login"`
}

// GitLab asks GitLab which merge requests brought commit into project
// (its path, "group/project") and who approved them.
func (c *Client) GitLab(ctx context.Context, project, commit string) (Review, error) {
	if project == "" {
		return Review{}, errors.New("the GitLab project path is required (group/project)")
	}
	r := Review{Forge: "gitlab", Repository: project, Commit: commit}
	id := url.PathEscape(project)
	var mrs []struct {
		IID       int       `json:"iid"`
		WebURL    string    `json:"web_url"`
		Title     string    `json:"title"`
		State     string    `json:"state"` // opened, closed, locked, merged
		Author    glUser    `json:"author"`
		MergeUser *glUser   `json:"merge_user"`
		MergedBy  *glUser   `json:"merged_by"`
		MergedAt  time.Time `json:"merged_at"`
		SHA       string    `json:"sha"`
		Target    string    `json:"target_branch"`
	}
	if err := c.get(ctx, false, fmt.Sprintf("/projects/%s/repository/commits/%s/merge_requests", id, url.PathEscape(commit)), &mrs); err != nil {
		return Review{}, err
	}
	for _, m := range mrs {
		q := Request{Number: m.IID, URL: m.WebURL, Title: m.Title, Author: m.Author.Username, State: m.State, Base: m.Target, Head: m.SHA, MergedAt: m.MergedAt, Approvers: []string{}}
		if q.State == "opened" {
			q.State = "open"
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
		if err := c.get(ctx, false, fmt.Sprintf("/projects/%s/merge_requests/%d/approvals", id, m.IID), &approvals); err != nil {
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

type glUser struct {
	Username string `json:"username"`
}
