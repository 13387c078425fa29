// Package review finds out whether a commit was reviewed before it was
// merged: it asks the forge (GitHub, GitLab, Azure DevOps or Bitbucket
// Data Center, over their REST APIs) for
// the pull or merge requests that brought the commit in and who approved
// them, and judges the four-eyes rule regulated change management asks
// for — merged, and approved by someone other than its author.
//
// A request counts for a commit only if the commit is what it merged (its
// merge or squash commit, or its head): a commit inside a request, before
// its last push, is a tree nobody approved as a whole. On GitHub an
// approval counts only if it was given to the request's final head commit
// (a push after the approval is code nobody approved), unless stale
// approvals are allowed; a reviewer's latest approving or
// change-requesting review is their verdict, and a dismissed one none;
// bots do not count, and neither do reviewers who wrote or committed
// commits of the request (GitHub, Bitbucket Data Center). On GitLab and
// Bitbucket the approvals are as the forge keeps them (its settings
// decide whether a push resets them).
package review

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/evidence"
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
	// Merged are the commits merging it made on its base: the merge
	// commit, or the squashed one.
	Merged []string `json:"merge_commits,omitempty"`
	// Approvers approved it, not being its author. These do not count:
	// StaleApprovers approved an earlier head commit only (GitHub),
	// ContributingApprovers wrote or committed commits of it, and
	// UncheckedApprovers approved a request of which UnattributedCommits
	// commits are by no account of the forge, so whether they wrote them
	// is unknown (GitHub, Bitbucket).
	Approvers             []string `json:"approvers"`
	StaleApprovers        []string `json:"stale_approvers,omitempty"`
	ContributingApprovers []string `json:"contributing_approvers,omitempty"`
	UncheckedApprovers    []string `json:"unchecked_approvers,omitempty"`
	UnattributedCommits   int      `json:"unattributed_commits,omitempty"`
}

// count files an approval of the request by who: it counts when current
// (given to the request's final head commit, or stale ones allowed),
// unless who wrote or committed commits of it (contributors) or some
// commit's author is unknown.
func (q *Request) count(who string, contributors map[string]bool, current bool) {
	switch {
	case contributors[strings.ToLower(who)]:
		q.ContributingApprovers = append(q.ContributingApprovers, who)
	case q.UnattributedCommits > 0:
		q.UncheckedApprovers = append(q.UncheckedApprovers, who)
	case current:
		q.Approvers = append(q.Approvers, who)
	default:
		q.StaleApprovers = append(q.StaleApprovers, who)
	}
}

// contributorsOf are the accounts (lower case) among the authors and
// committers of a request's commits, and how many commits have one that
// is no account ("").
func contributorsOf(commits [][2]string) (who map[string]bool, unattributed int) {
	who = map[string]bool{}
	for _, c := range commits {
		if c[0] == "" || c[1] == "" {
			unattributed++
		}
		for _, account := range c {
			if account != "" {
				who[strings.ToLower(account)] = true
			}
		}
	}
	return who, unattributed
}

// result reports whether commit is what the request merged.
func (q Request) result(commit string) bool {
	return strings.EqualFold(commit, q.Head) || slices.ContainsFunc(q.Merged, func(c string) bool { return strings.EqualFold(c, commit) })
}

// Review is what the forge says about a commit, and the verdict.
type Review struct {
	Forge      string    `json:"forge"` // github, gitlab, azure or bitbucket
	Repository string    `json:"repository"`
	Commit     string    `json:"commit"`
	Requests   []Request `json:"requests"`
	// MinApprovals is the rule judged: a request merged (into Base, when
	// given) with at least this many approvers other than its author.
	MinApprovals int    `json:"min_approvals"`
	Base         string `json:"base,omitempty"`
	Passed       bool   `json:"passed"`
	// Approvals is the most approvers of a request that merged the
	// commit (into Base): what an environment's code_review requirement
	// compares with its own minimum; MergedInto is that request's base.
	Approvals  int    `json:"approvals"`
	MergedInto string `json:"merged_into,omitempty"`
	// Reason says why it passed (the request) or why not.
	Reason string `json:"reason"`
}

// Judge decides the review: passed when a request that merged the commit
// into base (any branch when "") has at least min approvers.
func (r *Review) Judge(min int, base string) {
	r.MinApprovals, r.Base, r.Passed, r.Approvals, r.MergedInto = min, base, false, 0, ""
	var merged, elsewhere, inside []Request
	for _, q := range r.Requests {
		switch {
		case q.State != "merged":
		case !q.result(r.Commit):
			inside = append(inside, q)
		case base == "" || q.Base == base:
			merged = append(merged, q)
		default:
			elsewhere = append(elsewhere, q)
		}
	}
	// The request with the most approvals counts.
	slices.SortStableFunc(merged, func(a, b Request) int { return len(b.Approvers) - len(a.Approvers) })
	if len(merged) > 0 {
		r.Approvals, r.MergedInto = len(merged[0].Approvers), merged[0].Base
	}
	switch {
	case len(merged) > 0 && r.Approvals >= min:
		r.Passed = true
		r.Reason = fmt.Sprintf("#%d merged, approved by %s", merged[0].Number, strings.Join(merged[0].Approvers, ", "))
	case len(merged) > 0:
		q := merged[0]
		r.Reason = fmt.Sprintf("#%d was merged with %d approval(s) by someone other than its author %s, %d required", q.Number, len(q.Approvers), q.Author, min)
		if len(q.StaleApprovers) > 0 {
			r.Reason += fmt.Sprintf(" (%s approved an earlier commit of it only)", strings.Join(q.StaleApprovers, ", "))
		}
		if len(q.ContributingApprovers) > 0 {
			r.Reason += fmt.Sprintf(" (%s approved it but also wrote or committed commits of it)", strings.Join(q.ContributingApprovers, ", "))
		}
		if len(q.UncheckedApprovers) > 0 {
			r.Reason += fmt.Sprintf(" (%d commit(s) of it are by an email the forge ties to no account, so whether %s wrote them is unknown)", q.UnattributedCommits, strings.Join(q.UncheckedApprovers, ", "))
		}
	case len(elsewhere) > 0:
		r.Reason = fmt.Sprintf("#%d was merged into %s, not %s: no reviewed request brought commit %s into %s", elsewhere[0].Number, elsewhere[0].Base, base, r.Commit, base)
	case len(inside) > 0:
		q := inside[0]
		r.Reason = fmt.Sprintf("commit %s is inside #%d but is not what it merged (head %s): that tree was never approved as a whole; build the merge result", r.Commit, q.Number, q.Head)
	case len(r.Requests) > 0:
		r.Reason = fmt.Sprintf("#%d contains commit %s but is %s, not merged", r.Requests[0].Number, r.Commit, r.Requests[0].State)
	default:
		r.Reason = fmt.Sprintf("no pull or merge request contains commit %s: it was pushed without review", r.Commit)
	}
}

// Report is the review as an attestation named name about digest (type
// pull-request, linking the merged request), passed as judged.
func (r Review) Report(digest, name string) (evidence.AttestationReport, error) {
	payload, err := json.Marshal(r)
	if err != nil {
		return evidence.AttestationReport{}, err
	}
	if len(payload) > evidence.MaxReviewPayload {
		return evidence.AttestationReport{}, fmt.Errorf("the review of commit %s (%d requests) is %d bytes, more than an attestation of it may hold (%d)", r.Commit, len(r.Requests), len(payload), evidence.MaxReviewPayload)
	}
	passed := r.Passed
	a := evidence.AttestationReport{Digest: digest, Name: name, Type: evidence.TypePullRequest, Passed: &passed, Payload: payload}
	for _, q := range r.Requests {
		if q.State == "merged" {
			a.URL = q.URL
			break
		}
	}
	return a, nil
}
