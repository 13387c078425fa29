package review

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/test/forgetest"
)

const (
	merge = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
	head  = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
	early = "2c26b46b68ffc68ff99b453c1d30413413422d70"
)

func TestGitHub(t *testing.T) {
	gh := forgetest.GitHub(t, "octo-org/payments-api")
	gh.Add(forgetest.Request{
		Number: 42, Title: "Pay by card", Author: "alice", Commits: []string{early, head, merge}, Head: head, MergeCommit: merge, Base: "main", MergedBy: "mona",
		Contributors: []string{"Gina"}, Committers: []string{"hal"},
		Reviews: []forgetest.Review{
			{User: "gina", State: "APPROVED", Commit: head},   // she wrote a commit of it
			{User: "hal", State: "APPROVED", Commit: head},    // he committed one (a rebase)
			{User: "carol", State: "APPROVED", Commit: early}, // then alice pushed: stale
			{User: "bob", State: "COMMENTED", Commit: early},
			{User: "bob", State: "APPROVED", Commit: head},
			{User: "dave", State: "APPROVED", Commit: head},
			{User: "dave", State: "CHANGES_REQUESTED", Commit: head}, // his last verdict
			{User: "erin", State: "APPROVED", Commit: head},
			{User: "erin", State: "DISMISSED", Commit: head},
			{User: "Alice", State: "APPROVED", Commit: head}, // the author herself
			{User: "frank", State: "COMMENTED", Commit: head},
			{User: "dependabot[bot]", Bot: true, State: "APPROVED", Commit: head}, // bots do not count
		},
	})
	gh.Add(forgetest.Request{Number: 43, Title: "Draft", Author: "zed", Commits: []string{"open1"}, Head: "open1", Open: true})
	c := &Client{BaseURL: gh.URL, Header: "Authorization", Token: "Bearer " + gh.Token}
	ctx := context.Background()

	r, err := c.GitHub(ctx, "octo-org/payments-api", merge, false)
	if err != nil {
		t.Fatal(err)
	}
	want := Request{
		Number: 42, URL: "https://github.com/octo-org/payments-api/pull/42", Title: "Pay by card", Author: "alice", State: "merged",
		Base: "main", Head: head, MergedBy: "mona", MergedAt: r.Requests[0].MergedAt, Merged: []string{merge},
		Approvers: []string{"bob"}, StaleApprovers: []string{"carol"}, ContributingApprovers: []string{"gina", "hal"},
	}
	if len(r.Requests) != 1 || !reflect.DeepEqual(r.Requests[0], want) || r.Requests[0].MergedAt.IsZero() {
		t.Fatalf("requests %+v, want %+v", r.Requests, want)
	}
	r.Judge(1, "")
	if !r.Passed || r.Reason != "#42 merged, approved by bob" {
		t.Errorf("one approval: %v %q", r.Passed, r.Reason)
	}
	r.Judge(2, "")
	if r.Passed || r.Reason != "#42 was merged with 1 approval(s) by someone other than its author alice, 2 required (carol approved an earlier commit of it only) (gina, hal approved it but also wrote or committed commits of it)" {
		t.Errorf("two approvals: %v %q", r.Passed, r.Reason)
	}
	stale, err := c.GitHub(ctx, "octo-org/payments-api", merge, true)
	if err != nil {
		t.Fatal(err)
	}
	if stale.Judge(2, "main"); !stale.Passed || !reflect.DeepEqual(stale.Requests[0].Approvers, []string{"carol", "bob"}) {
		t.Errorf("stale approvals allowed: %+v", stale)
	}

	if r.Judge(1, "release"); r.Passed || r.Reason != "#42 was merged into main, not release: no reviewed request brought commit "+merge+" into release" {
		t.Errorf("another base: %v %q", r.Passed, r.Reason)
	}

	for _, tc := range []struct{ commit, reason string }{
		{"0000000000000000000000000000000000000000", "no pull or merge request contains commit 0000000000000000000000000000000000000000: it was pushed without review"},
		{"open1", "#43 contains commit open1 but is open, not merged"},
		// A commit inside the pull request, before its last push: that
		// tree was never approved.
		{early, "commit " + early + " is inside #42 but is not what it merged (head " + head + "): that tree was never approved as a whole; build the merge result"},
	} {
		r, err := c.GitHub(ctx, "octo-org/payments-api", tc.commit, false)
		if err != nil {
			t.Fatal(err)
		}
		if r.Judge(1, ""); r.Passed || r.Reason != tc.reason {
			t.Errorf("%s: %v %q", tc.commit, r.Passed, r.Reason)
		}
	}

	// Every page of reviews is read: bob's approval on the first page is
	// withdrawn on the second.
	busy := forgetest.Request{Number: 44, Author: "alice", Commits: []string{"busy"}, Head: "busy", MergeCommit: "busy", Base: "main", MergedBy: "mona",
		Reviews: []forgetest.Review{{User: "bob", State: "APPROVED", Commit: "busy"}}}
	for range 150 {
		busy.Reviews = append(busy.Reviews, forgetest.Review{User: "carol", State: "COMMENTED", Commit: "busy"})
	}
	busy.Reviews = append(busy.Reviews, forgetest.Review{User: "bob", State: "CHANGES_REQUESTED", Commit: "busy"})
	gh.Add(busy)
	if r, err := c.GitHub(ctx, "octo-org/payments-api", "busy", false); err != nil || len(r.Requests) != 1 || len(r.Requests[0].Approvers) != 0 {
		t.Errorf("reviews over two pages: %+v, %v", r, err)
	}
	// A list too long to read is an error, never judged on part of it.
	huge := forgetest.Request{Number: 45, Author: "alice", Commits: []string{"huge"}, Head: "huge", MergeCommit: "huge", MergedBy: "mona"}
	for range maxPages*perPage + 1 {
		huge.Reviews = append(huge.Reviews, forgetest.Review{User: "carol", State: "COMMENTED", Commit: "huge"})
	}
	gh.Add(huge)
	if _, err := c.GitHub(ctx, "octo-org/payments-api", "huge", false); err == nil || !strings.Contains(err.Error(), "more than 10 pages of 100: too many to judge") {
		t.Errorf("1,001 reviews: %v", err)
	}

	// A commit by an email GitHub ties to no account could be anyone's,
	// an approver's included: no approval counts.
	unlinked := forgetest.Request{Number: 47, Author: "alice", Commits: []string{"unlinked"}, Head: "unlinked", MergeCommit: "unlinked", Base: "main", MergedBy: "mona",
		Unlinked: 1, Reviews: []forgetest.Review{{User: "bob", State: "APPROVED", Commit: "unlinked"}}}
	gh.Add(unlinked)
	if r, err := c.GitHub(ctx, "octo-org/payments-api", "unlinked", false); err != nil || len(r.Requests) != 1 || len(r.Requests[0].Approvers) != 0 ||
		!slices.Equal(r.Requests[0].UncheckedApprovers, []string{"bob"}) || r.Requests[0].UnattributedCommits != 1 {
		t.Errorf("an unlinked commit: %+v, %v", r, err)
	} else if r.Judge(1, ""); r.Passed || !strings.HasSuffix(r.Reason, "(1 commit(s) of it are by an email the forge ties to no account, so whether bob wrote them is unknown)") {
		t.Errorf("an unlinked commit: %v %q", r.Passed, r.Reason)
	}

	// Who wrote a pull request's commits must be known in full.
	many := forgetest.Request{Number: 46, Author: "alice", Head: "many", MergeCommit: "many", Base: "main", MergedBy: "mona"}
	for i := range maxPullCommits {
		many.Commits = append(many.Commits, fmt.Sprintf("c%d", i))
	}
	many.Commits = append(many.Commits, "many")
	gh.Add(many)
	if _, err := c.GitHub(ctx, "octo-org/payments-api", "many", false); err == nil || !strings.Contains(err.Error(), "pull request #46 has 251 commits; GitHub lists only 250") {
		t.Errorf("251 commits: %v", err)
	}

	// Errors say what the forge said, and what to check.
	if _, err := c.GitHub(ctx, "octo-org/other", merge, false); err == nil || !strings.Contains(err.Error(), "404 Not Found: Not Found (does the token have read access") {
		t.Errorf("another repository: %v", err)
	}
	bad := &Client{BaseURL: gh.URL, Header: "Authorization", Token: "Bearer wrong"}
	if _, err := bad.GitHub(ctx, "octo-org/payments-api", merge, false); err == nil || !strings.Contains(err.Error(), "401 Unauthorized: Bad credentials") {
		t.Errorf("bad token: %v", err)
	}
	if _, err := c.GitHub(ctx, "payments-api", merge, false); err == nil || !strings.Contains(err.Error(), "want owner/name") {
		t.Errorf("repository without owner: %v", err)
	}
}

func TestGitLab(t *testing.T) {
	gl := forgetest.GitLab(t, "bank/cards/api")
	gl.Add(forgetest.Request{Number: 7, Title: "Limits", Author: "alice", Commits: []string{head, merge}, Head: head, MergeCommit: merge, Base: "main", MergedBy: "mona",
		Approvers: []string{"bob", "alice", "bob"}})
	c := &Client{BaseURL: gl.URL, Header: "PRIVATE-TOKEN", Token: gl.Token}
	r, err := c.GitLab(context.Background(), "bank/cards/api", merge)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Requests) != 1 {
		t.Fatalf("requests %+v", r.Requests)
	}
	q := r.Requests[0]
	if q.State != "merged" || q.MergedBy != "mona" || !reflect.DeepEqual(q.Approvers, []string{"bob"}) || q.URL != "https://gitlab.example.com/bank/cards/api/-/merge_requests/7" {
		t.Errorf("request %+v", q)
	}
	if r.Judge(1, ""); !r.Passed {
		t.Errorf("judge: %q", r.Reason)
	}
	if r.Judge(2, ""); r.Passed || !strings.Contains(r.Reason, "1 approval(s) by someone other than its author alice, 2 required") {
		t.Errorf("two required: %q", r.Reason)
	}
	// The project path is one URL-encoded segment.
	if got := gl.Calls[0]; got != "/projects/bank%2Fcards%2Fapi/repository/commits/"+merge+"/merge_requests" {
		t.Errorf("path %s", got)
	}
	if _, err := c.GitLab(context.Background(), "", merge); err == nil {
		t.Error("no project")
	}
}

// The token goes to the forge only: not over plain HTTP beyond loopback,
// not along a redirect to another host.
func TestTokenStaysWithTheForge(t *testing.T) {
	var leaked []string
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = append(leaked, r.Header.Get("PRIVATE-TOKEN"))
		w.Write([]byte("[]"))
	}))
	defer elsewhere.Close()
	gl := forgetest.GitLab(t, "bank/api")
	gl.RedirectTo = elsewhere.URL
	c := &Client{BaseURL: gl.URL, Header: "PRIVATE-TOKEN", Token: gl.Token}
	if _, err := c.GitLab(context.Background(), "bank/api", merge); err == nil || !strings.Contains(err.Error(), "not followed") || len(leaked) > 0 {
		t.Errorf("redirect to another host: %v; the other host saw %q", err, leaked)
	}
	plain := &Client{BaseURL: "http://gitlab.example.com/api/v4", Header: "PRIVATE-TOKEN", Token: "glpat-x"}
	if _, err := plain.GitLab(context.Background(), "bank/api", merge); err == nil || !strings.Contains(err.Error(), "use https") {
		t.Errorf("plain HTTP: %v", err)
	}
}

func TestAzure(t *testing.T) {
	az := forgetest.Azure(t, "payments/api")
	az.Add(forgetest.Request{Number: 17, Title: "Limits", Author: "alice@bank.example", Commits: []string{head, merge}, Head: head, MergeCommit: merge, Base: "main",
		MergedBy: "alice@bank.example", Approvers: []string{"bob@bank.example", "alice@bank.example"},
		Votes: map[string]int{"carol@bank.example": 5, "dave@bank.example": -10, "erin@bank.example": 0, "frank@bank.example": -5}})
	c := &Client{BaseURL: az.URL, Header: "Authorization", Token: "Bearer " + az.Token}
	ctx := context.Background()
	r, err := c.Azure(ctx, "payments/api", merge)
	if err != nil {
		t.Fatal(err)
	}
	want := Request{Number: 17, URL: az.URL + "/payments/_git/api/pullrequest/17", Title: "Limits", Author: "alice@bank.example", State: "merged", Base: "main",
		Head: head, MergedBy: "alice@bank.example", MergedAt: r.Requests[0].MergedAt, Merged: []string{merge}, Approvers: []string{"bob@bank.example", "carol@bank.example"}}
	if len(r.Requests) != 1 || !reflect.DeepEqual(r.Requests[0], want) {
		t.Fatalf("requests %+v, want %+v", r.Requests, want)
	}
	if r.Judge(1, "main"); !r.Passed || r.Reason != "#17 merged, approved by bob@bank.example, carol@bank.example" {
		t.Errorf("judge: %v %q", r.Passed, r.Reason)
	}
	// A commit inside the pull request did not create it: none found.
	if r, err := c.Azure(ctx, "payments/api", head); err != nil || len(r.Requests) != 0 {
		t.Errorf("the head commit: %+v, %v", r, err)
	}
	// A personal access token goes as Basic with an empty user.
	pat := &Client{BaseURL: az.URL, Header: "Authorization", Token: "Basic " + base64.StdEncoding.EncodeToString([]byte(":"+az.Token))}
	if _, err := pat.Azure(ctx, "payments/api", merge); err != nil {
		t.Errorf("PAT: %v", err)
	}
	bad := &Client{BaseURL: az.URL, Header: "Authorization", Token: "Bearer wrong"}
	if _, err := bad.Azure(ctx, "payments/api", merge); err == nil || !strings.Contains(err.Error(), "401 Unauthorized: TF400813") {
		t.Errorf("bad token: %v", err)
	}
	if _, err := c.Azure(ctx, "api", merge); err == nil || !strings.Contains(err.Error(), "want project/repository") {
		t.Errorf("no project: %v", err)
	}
}

func TestNextLink(t *testing.T) {
	for header, want := range map[string]string{
		`<https://api.github.com/repositories/1/pulls/2/reviews?per_page=100&page=2>; rel="next", <https://api.github.com/repositories/1/pulls/2/reviews?per_page=100&page=5>; rel="last"`: "https://api.github.com/repositories/1/pulls/2/reviews?per_page=100&page=2",
		`<https://gitlab.example.com/api/v4/projects/1/merge_requests?page=1>; rel="first", <https://gitlab.example.com/api/v4/projects/1/merge_requests?page=3>; rel="next"`:              "https://gitlab.example.com/api/v4/projects/1/merge_requests?page=3",
		`<https://example.com/x?page=2>; rel="next last"`: "https://example.com/x?page=2",
		`<https://example.com/x?page=1>; rel="prev"`:      "",
		``: "",
	} {
		if got := nextLink(header); got != want {
			t.Errorf("nextLink(%q) = %q, want %q", header, got, want)
		}
	}
}

func TestForges(t *testing.T) {
	gh := forgetest.GitHub(t, "octo-org/payments-api")
	gh.Add(forgetest.Approved(merge, head))
	token := gh.TokenFile(t)
	f, err := NewForges([]ForgeConfig{{Name: "github", Type: "github", APIURL: gh.URL, TokenFile: token}})
	if err != nil {
		t.Fatal(err)
	}
	r, name, err := f.Review(context.Background(), "https://github.com/Octo-Org/payments-api.git", merge)
	if err != nil || name != "github" || !r.Passed || r.Repository != "octo-org/payments-api" || r.MergedInto != "main" {
		t.Errorf("review %+v from %q, %v", r, name, err)
	}
	if _, _, err := f.Review(context.Background(), "https://gitlab.com/bank/api", merge); !errors.Is(err, ErrNoForge) || !strings.Contains(err.Error(), "gitlab.com (forges)") {
		t.Errorf("a host no forge serves: %v", err)
	}
	for _, tc := range []struct {
		cfg  ForgeConfig
		want string
	}{
		{ForgeConfig{Type: "github", TokenFile: token}, "forges[0].name: is required"},
		{ForgeConfig{Name: "b", Type: "gitea", TokenFile: token}, `forges[0].type: "gitea": want github, gitlab, azure or bitbucket`},
		{ForgeConfig{Name: "b", Type: "bitbucket", TokenFile: token}, "forges[0].api_url: is required for bitbucket: the server's REST API, https://bitbucket.example.com/rest/api/latest"},
		{ForgeConfig{Name: "a", Type: "azure", TokenFile: token}, "forges[0].api_url: is required for azure"},
		{ForgeConfig{Name: "g", Type: "github"}, "forges[0].token_file: is required"},
		{ForgeConfig{Name: "g", Type: "github", TokenFile: "/nonexistent"}, "forges[0].token_file: open /nonexistent"},
		{ForgeConfig{Name: "g", Type: "gitlab", APIURL: "http://gitlab.example.com/api/v4", TokenFile: token}, "forges[0].api_url: the forge's API URL"},
	} {
		if _, err := NewForges([]ForgeConfig{tc.cfg}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	// Bitbucket Data Center serves its repositories on its own host.
	bb := forgetest.Bitbucket(t, "PAY/cards-api")
	bb.Add(forgetest.Request{Number: 3, Author: "alice", Commits: []string{head}, Head: head, MergeCommit: merge, Base: "main", MergedBy: "x", Approvers: []string{"bob"}})
	fb, err := NewForges([]ForgeConfig{{Name: "bitbucket", Type: "bitbucket", APIURL: bb.URL, TokenFile: bb.TokenFile(t)}})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(strings.TrimSuffix(bb.URL, "/rest/api/latest"), "http://")
	if r, name, err := fb.Review(context.Background(), "http://"+host+"/scm/pay/cards-api.git", merge); err != nil || name != "bitbucket" || !r.Passed {
		t.Errorf("bitbucket review %+v from %q, %v", r, name, err)
	}
	if got := azurePath("bank/payments/_git/api"); got != "payments/api" {
		t.Errorf("azurePath = %q", got)
	}
}

// As a GitHub App, Vouch buys an installation token with a JWT the app's
// key signs, uses it while it has more than refreshBefore left, and then
// buys the next.
func TestForgesAsGitHubApp(t *testing.T) {
	ctx := context.Background()
	forges := func(gh *forgetest.Forge, app *forgetest.App, clientID string) *Forges {
		t.Helper()
		f, err := NewForges([]ForgeConfig{{Name: "github", Type: "github", APIURL: gh.URL,
			GitHubApp: &GitHubAppConfig{ClientID: clientID, InstallationID: app.InstallationID, PrivateKeyFile: app.KeyFile}}})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	pr := forgetest.Approved(merge, head)

	gh := forgetest.GitHub(t, "octo-org/payments-api")
	gh.Add(pr)
	app := gh.InstallApp(t)
	f := forges(gh, app, app.ClientID)
	for range 3 {
		if r, _, err := f.Review(ctx, "https://github.com/octo-org/payments-api", merge); err != nil || !r.Passed {
			t.Fatalf("review as the app: %+v, %v", r, err)
		}
	}
	if app.Issued != 1 {
		t.Errorf("%d installation tokens for three reviews within the hour, want 1", app.Issued)
	}
	// The token can read what the installation may, no more.
	if want := map[string]string{"pull_requests": "read", "contents": "read", "metadata": "read"}; !reflect.DeepEqual(app.Asked, want) {
		t.Errorf("the token asked for %v, want %v", app.Asked, want)
	}
	// A token GitHub refuses is dropped, and the request made again with
	// a new one; an installation that may write gives a token that reads.
	gh.RevokeAppToken()
	app.Permissions = map[string]string{"pull_requests": "write", "contents": "write", "actions": "read", "issues": "write", "metadata": "read"}
	if r, _, err := f.Review(ctx, "https://github.com/octo-org/payments-api", merge); err != nil || !r.Passed || app.Issued != 2 {
		t.Errorf("with the token revoked: %+v, %v; %d tokens issued, want 2", r, err, app.Issued)
	}
	if want := map[string]string{"pull_requests": "read", "contents": "read", "actions": "read", "metadata": "read"}; !reflect.DeepEqual(app.Asked, want) {
		t.Errorf("the token asked for %v, want %v", app.Asked, want)
	}

	// Without installation_id, the installation is the repository
	// owner's (one of owners), asked once per token.
	owners := forgetest.GitHub(t, "octo-org/payments-api")
	owners.Add(pr)
	ownersApp := owners.InstallApp(t)
	f, err := NewForges([]ForgeConfig{{Name: "github", Type: "github", APIURL: owners.URL,
		GitHubApp: &GitHubAppConfig{ClientID: ownersApp.ClientID, PrivateKeyFile: ownersApp.KeyFile, Owners: []string{"Octo-Org", "other-org"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if r, _, err := f.Review(ctx, "https://github.com/octo-org/payments-api", merge); err != nil || !r.Passed {
			t.Fatalf("review as the owner's installation: %+v, %v", r, err)
		}
	}
	if n := slices.Index(owners.Calls, "/repos/octo-org/payments-api/installation"); n < 0 || slices.Contains(owners.Calls[n+1:], owners.Calls[n]) || ownersApp.Issued != 1 {
		t.Errorf("calls %v, %d tokens: want the installation asked once, one token", owners.Calls, ownersApp.Issued)
	}
	if _, _, err := f.Review(ctx, "https://github.com/other-org/api", merge); err == nil || !strings.Contains(err.Error(), "github app "+ownersApp.ClientID+": its installation on other-org/api (is the app installed there?): GET /repos/other-org/api/installation: 404 Not Found") {
		t.Errorf("an owner the app is not installed on: %v", err)
	}
	// An installation of another owner (GitHub followed a moved
	// repository) is not used for this one.
	moved := forgetest.GitHub(t, "octo-org/payments-api")
	movedApp := moved.InstallApp(t)
	movedApp.Account = "new-owner"
	fm, err := NewForges([]ForgeConfig{{Name: "github", Type: "github", APIURL: moved.URL,
		GitHubApp: &GitHubAppConfig{ClientID: movedApp.ClientID, PrivateKeyFile: movedApp.KeyFile, Owners: []string{"octo-org"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := fm.Review(ctx, "https://github.com/octo-org/payments-api", merge); err == nil || !strings.Contains(err.Error(), "the installation GitHub gave for octo-org/payments-api is new-owner's, not octo-org's") || movedApp.Issued != 0 {
		t.Errorf("another owner's installation: %v, %d tokens", err, movedApp.Issued)
	}
	calls := len(owners.Calls)
	if _, _, err := f.Review(ctx, "https://github.com/evil-org/api", merge); err == nil || !strings.Contains(err.Error(), "evil-org is not among github_app.owners") || len(owners.Calls) != calls {
		t.Errorf("an owner not listed: %v, %d calls to GitHub", err, len(owners.Calls)-calls)
	}

	short := forgetest.GitHub(t, "octo-org/payments-api")
	short.Add(pr)
	shortApp := short.InstallApp(t)
	shortApp.TTL = refreshBefore - time.Minute
	f = forges(short, shortApp, shortApp.ClientID)
	for range 2 {
		if _, _, err := f.Review(ctx, "https://github.com/octo-org/payments-api", merge); err != nil {
			t.Fatal(err)
		}
	}
	api := 0
	for _, c := range short.Calls {
		if !strings.HasPrefix(c, "/app/") {
			api++
		}
	}
	if shortApp.Issued != api || api < 2 {
		t.Errorf("%d installation tokens for %d requests with tokens about to expire, want one each", shortApp.Issued, api)
	}

	_, _, err = forges(gh, app, "Iv23liSomeoneElse").Review(ctx, "https://github.com/octo-org/payments-api", merge)
	if want := "github app Iv23liSomeoneElse: installation 4711 (are client_id, installation_id and private_key_file the app's?): GET /app/installations/4711: 401 Unauthorized: A JSON web token could not be decoded: issuer Iv23liSomeoneElse"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("another app's ID: %v, want %q", err, want)
	}

	notPEM := filepath.Join(t.TempDir(), "key")
	os.WriteFile(notPEM, []byte("ghp_not-a-key"), 0o600)
	token := gh.TokenFile(t)
	ok := &GitHubAppConfig{ClientID: app.ClientID, InstallationID: app.InstallationID, PrivateKeyFile: app.KeyFile}
	for _, tc := range []struct {
		cfg  ForgeConfig
		want string
	}{
		{ForgeConfig{Name: "g", Type: "github", TokenFile: token, GitHubApp: ok}, "forges[0]: token_file and github_app: give one"},
		{ForgeConfig{Name: "g", Type: "gitlab", GitHubApp: ok}, "forges[0].github_app: is for type github, not gitlab"},
		{ForgeConfig{Name: "g", Type: "github", GitHubApp: &GitHubAppConfig{InstallationID: 1, PrivateKeyFile: app.KeyFile}}, "forges[0].github_app.client_id: is required"},
		{ForgeConfig{Name: "g", Type: "github", GitHubApp: &GitHubAppConfig{ClientID: "x", InstallationID: -1, PrivateKeyFile: app.KeyFile}}, "forges[0].github_app.installation_id: must be positive"},
		{ForgeConfig{Name: "g", Type: "github", GitHubApp: &GitHubAppConfig{ClientID: "x", PrivateKeyFile: app.KeyFile}}, "forges[0].github_app.owners: list the organisations"},
		{ForgeConfig{Name: "g", Type: "github", GitHubApp: &GitHubAppConfig{ClientID: "x", InstallationID: 1, PrivateKeyFile: notPEM}}, "forges[0].github_app.private_key_file: no PEM block"},
	} {
		if _, err := NewForges([]ForgeConfig{tc.cfg}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// A request waiting for another's token purchase gives up with its
// context, and one owner's purchase does not hold up another's.
func TestGitHubAppWaitHonoursContext(t *testing.T) {
	gh := forgetest.GitHub(t, "octo-org/payments-api")
	app := gh.InstallApp(t)
	a, err := newGitHubApp(GitHubAppConfig{ClientID: app.ClientID, Owners: []string{"octo-org", "other-org"}, PrivateKeyFile: app.KeyFile}, Client{BaseURL: gh.URL})
	if err != nil {
		t.Fatal(err)
	}
	inFlight := make(chan struct{}, 1)
	inFlight <- struct{}{}
	a.buying["other-org"] = inFlight // a purchase for other-org that does not end
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.header(ctx, "other-org/api"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting behind a purchase that does not end: %v, want the context's deadline", err)
	}
	if h, err := a.header(context.Background(), "octo-org/payments-api"); err != nil || !strings.HasPrefix(h, "Bearer ghs_") {
		t.Errorf("another owner's token: %q, %v", h, err)
	}
}
