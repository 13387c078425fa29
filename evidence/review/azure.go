package review

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Azure DevOps reviewer votes.
const (
	azureApproved                = 10
	azureApprovedWithSuggestions = 5
)

type azureIdentity struct {
	ID          string `json:"id"`
	UniqueName  string `json:"uniqueName"`
	DisplayName string `json:"displayName"`
	IsContainer bool   `json:"isContainer"` // a group: its vote is a member's
	Vote        int    `json:"vote"`
}

type azureCommit struct {
	CommitID string `json:"commitId"`
}

type azurePullRequest struct {
	ID            int             `json:"pullRequestId"`
	Title         string          `json:"title"`
	Status        string          `json:"status"` // active, abandoned, completed
	CreatedBy     azureIdentity   `json:"createdBy"`
	ClosedBy      *azureIdentity  `json:"closedBy"`
	ClosedDate    time.Time       `json:"closedDate"`
	TargetRefName string          `json:"targetRefName"`
	SourceCommit  azureCommit     `json:"lastMergeSourceCommit"`
	MergeCommit   azureCommit     `json:"lastMergeCommit"`
	Reviewers     []azureIdentity `json:"reviewers"`
}

// Azure asks Azure DevOps (Services, or Server 2020 and later: API 6.0;
// BaseURL is the collection, e.g. https://dev.azure.com/ORG) which completed pull request created
// commit as its merge commit in repo ("project/repository") and whose
// votes approved it. Azure DevOps does not tie a vote to a commit: its
// branch policy decides whether a push resets votes.
func (c *Client) Azure(ctx context.Context, repo, commit string) (Review, error) {
	project, name, err := splitRepo(repo, "project/repository")
	if err != nil {
		return Review{}, err
	}
	prefix := "/" + url.PathEscape(project) + "/_apis/git/repositories/" + url.PathEscape(name)
	var query struct {
		Results []map[string][]azurePullRequest `json:"results"`
	}
	// lastMergeCommit: the pull requests that created the commit by
	// merging; a commit inside a pull request is not what it merged.
	body := map[string]any{"queries": []map[string]any{{"type": "lastMergeCommit", "items": []string{commit}}}}
	if _, err := c.call(ctx, http.MethodPost, false, prefix+"/pullrequestquery?api-version=6.0", body, &query); err != nil {
		return Review{}, err
	}
	r := Review{Forge: "azure", Repository: repo, Commit: commit}
	for _, res := range query.Results {
		for _, found := range res {
			for _, p := range found {
				// The query's answer may leave reviewers out: read the pull request.
				var pr azurePullRequest
				if _, err := c.get(ctx, false, fmt.Sprintf("%s/pullrequests/%d?api-version=6.0", prefix, p.ID), &pr); err != nil {
					return Review{}, err
				}
				r.Requests = append(r.Requests, azureRequest(c.BaseURL, project, name, pr))
			}
		}
	}
	return r, nil
}

func azureRequest(base, project, repo string, p azurePullRequest) Request {
	q := Request{
		Number: p.ID, Title: p.Title, Author: p.CreatedBy.UniqueName, Base: strings.TrimPrefix(p.TargetRefName, "refs/heads/"),
		Head: p.SourceCommit.CommitID, Approvers: []string{},
		URL: fmt.Sprintf("%s/%s/_git/%s/pullrequest/%d", strings.TrimRight(base, "/"), url.PathEscape(project), url.PathEscape(repo), p.ID),
	}
	switch p.Status {
	case "completed":
		q.State, q.MergedAt = "merged", p.ClosedDate
		if p.MergeCommit.CommitID != "" {
			q.Merged = []string{p.MergeCommit.CommitID}
		}
		if p.ClosedBy != nil {
			q.MergedBy = p.ClosedBy.UniqueName
		}
	case "active":
		q.State = "open"
	default:
		q.State = "closed"
	}
	for _, v := range p.Reviewers {
		if v.IsContainer || v.ID == p.CreatedBy.ID || strings.EqualFold(v.UniqueName, p.CreatedBy.UniqueName) {
			continue
		}
		if v.Vote == azureApproved || v.Vote == azureApprovedWithSuggestions {
			q.Approvers = append(q.Approvers, v.UniqueName)
		}
	}
	return q
}
