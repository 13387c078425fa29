package review

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/test/forgetest"
)

// TestBitbucket: Bitbucket Data Center's pull requests of a commit, their
// approving reviewers, and the commits that make reviewers contributors;
// read through every page.
func TestBitbucket(t *testing.T) {
	ctx := context.Background()
	bb := forgetest.Bitbucket(t, "PAY/cards-api")
	bb.Add(forgetest.Request{Number: 7, Title: "Limits", Author: "alice", Commits: []string{head}, Head: head, MergeCommit: merge, Base: "main", MergedBy: "x",
		Approvers: []string{"bob", "carol", "dave", "erin"}, Votes: map[string]int{"frank": -5}, Contributors: []string{"carol"}, Committers: []string{"dave"},
		Reviews: []forgetest.Review{{User: "gina", State: "APPROVED", Commit: early}, {User: "ci-bot", Bot: true, State: "APPROVED", Commit: head}}})
	bb.Add(forgetest.Request{Number: 8, Title: "Open", Author: "alice", Commits: []string{merge}, Head: merge, Base: "main", Open: true, Approvers: []string{"bob"}})
	// 130 commits by the author: two pages.
	bb.Add(forgetest.Request{Number: 9, Author: "alice", Commits: append(make([]string, 129), early), Head: early, MergeCommit: early, Base: "release", MergedBy: "x", Approvers: []string{"bob"}})
	c := &Client{BaseURL: bb.URL, Header: "Authorization", Token: "Bearer " + bb.Token}
	r, err := c.Ask(ctx, "bitbucket", "scm/PAY/cards-api", merge, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Requests) != 2 {
		t.Fatalf("requests %+v", r.Requests)
	}
	slices.SortFunc(r.Requests, func(a, b Request) int { return a.Number - b.Number }) // as listed: the open one contains the merge commit
	q := r.Requests[0]
	want := Request{Number: 7, URL: "https://bitbucket.example.com/projects/PAY/repos/cards-api/pull-requests/7", Title: "Limits", Author: "alice", State: "merged", Base: "main", Head: head,
		MergedAt: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC), Merged: []string{merge}, Approvers: []string{"bob", "erin"}, ContributingApprovers: []string{"carol", "dave"},
		StaleApprovers: []string{"gina"}}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("request\n got %+v\nwant %+v", q, want)
	}
	if r.Requests[1].State != "open" {
		t.Errorf("the open request: %+v", r.Requests[1])
	}
	if r.Judge(2, "main"); !r.Passed || r.Reason != "#7 merged, approved by bob, erin" {
		t.Errorf("judge: %v %q", r.Passed, r.Reason)
	}
	if r.Judge(3, ""); r.Passed || !strings.Contains(r.Reason, "(gina approved an earlier commit of it only) (carol, dave approved it but also wrote or committed commits of it)") {
		t.Errorf("three required: %q", r.Reason)
	}
	// The merge commit is not listed as the request's: it was found
	// through its second parent. Stale approvals may be allowed.
	if got := strings.Join(bb.Calls, " "); !strings.Contains(got, "/commits/"+merge+" ") || !strings.Contains(got, "/commits/"+head+"/pull-requests") {
		t.Errorf("calls %s; want the merge commit's parents read", got)
	}
	if stale, err := c.Ask(ctx, "bitbucket", "scm/PAY/cards-api", merge, true); err != nil || len(stale.Requests) != 2 || !reflect.DeepEqual(stale.Requests[1].Approvers, []string{"bob", "erin", "gina"}) {
		t.Errorf("stale approvals allowed: %+v %v", stale.Requests, err)
	}
	r9, err := c.Bitbucket(ctx, "PAY/cards-api", early, false)
	if err != nil || len(r9.Requests) != 1 || !reflect.DeepEqual(r9.Requests[0].Approvers, []string{"bob"}) {
		t.Errorf("a request of 130 commits: %+v %v", r9, err)
	}
	if got := strings.Join(bb.Calls, " "); !strings.Contains(got, "/pull-requests/9/commits") || strings.Count(got, "/pull-requests/9/commits") != 2 {
		t.Errorf("calls %s; want the 130 commits read in two pages", got)
	}

	// A commit by an email Bitbucket ties to no user: nobody's approval counts.
	bb.Add(forgetest.Request{Number: 10, Author: "alice", Commits: []string{"c10"}, Head: "c10", MergeCommit: "m10", Base: "main", MergedBy: "x", Approvers: []string{"bob"}, Unlinked: 1})
	r10, err := c.Bitbucket(ctx, "PAY/cards-api", "m10", false)
	if r10.Judge(1, ""); err != nil || r10.Passed || !strings.Contains(r10.Reason, "1 commit(s) of it are by an email the forge ties to no account, so whether bob wrote them is unknown") {
		t.Errorf("an unlinked commit: %q %v", r10.Reason, err)
	}

	for _, tc := range []struct{ in, want string }{
		{"scm/PAY/cards-api", "PAY/cards-api"},
		{"bitbucket/scm/pay/cards-api", "PAY/cards-api"},
		{"projects/PAY/repos/cards-api/browse", "PAY/cards-api"},
		{"pay/cards-api", "PAY/cards-api"},
		{"scm/~alice/tools", "~alice/tools"},
		{"users/alice/repos/tools/browse", "~alice/tools"},
		{"projects/PAY/repos/cards-api/browse/scm/x", "PAY/cards-api"},
		{"a/b/c/d", "a/b/c/d"},
	} {
		if got := bitbucketPath(tc.in); got != tc.want {
			t.Errorf("bitbucketPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	bad := &Client{BaseURL: bb.URL, Header: "Authorization", Token: "Bearer wrong"}
	if _, err := bad.Bitbucket(ctx, "PAY/cards-api", merge, false); err == nil || !strings.Contains(err.Error(), "401 Unauthorized: Authentication failed.") {
		t.Errorf("a refused token: %v", err)
	}
	if _, err := c.Bitbucket(ctx, "cards-api", merge, false); err == nil || !strings.Contains(err.Error(), "want PROJECT/repository") {
		t.Errorf("no project: %v", err)
	}
}
