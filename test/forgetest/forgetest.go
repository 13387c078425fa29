// Package forgetest serves the parts of GitHub's, GitLab's and Azure
// DevOps' REST APIs that review evidence reads — the pull or merge
// requests of a commit, one request, its reviews, approvals or votes; on
// GitHub also a commit and the deployment reviews of a workflow run —
// from requests a test sets up, answering as the real APIs do (their
// documented JSON, 404 and 401 bodies). The real forges cannot be reached
// from CI.
package forgetest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Review is one review of a GitHub pull request.
type Review struct {
	User   string
	Bot    bool   // a GitHub App (type Bot)
	State  string // APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED
	Commit string // the head it reviewed
}

// Request is a pull or merge request.
type Request struct {
	Number      int
	Title       string
	Author      string
	Commits     []string // the commits it brought (merge commit included)
	Head        string
	MergeCommit string // what merging it made on the base
	Base        string
	MergedBy    string // "" = not merged
	Open        bool   // not merged: open, else closed
	// Contributors wrote commits of a GitHub pull request besides its
	// Author, who wrote Commits; Committers committed commits the Author
	// wrote (a rebase); Unlinked commits are by an email GitHub ties to no
	// account.
	Contributors []string
	Committers   []string
	Unlinked     int
	Reviews      []Review
	// Approvers is GitLab's approved_by list, and the Azure DevOps
	// reviewers who voted "approved" (besides them, a group votes too).
	Approvers []string
	// Votes are other Azure DevOps reviewers' votes: 5 approved with
	// suggestions, 0 none, -5 waiting for the author, -10 rejected.
	Votes map[string]int
}

// DeploymentReview is a reviewer's verdict on a GitHub Actions workflow
// run's deployment to an environment.
type DeploymentReview struct {
	Run         int64
	Environment string
	User        string
	State       string // approved, rejected
}

// Commit is a GitHub commit's author and committer: their emails, and the
// accounts GitHub ties those to ("" for none).
type Commit struct {
	SHA                                            string
	Author, AuthorEmail, Committer, CommitterEmail string
}

// Approved is pull request #42 by alice, merged into main by mona as
// commit merge, with bob's approval of its head: a review that passes.
func Approved(merge, head string) Request {
	return Request{Number: 42, Author: "alice", Commits: []string{merge}, Head: head, MergeCommit: merge, Base: "main", MergedBy: "mona",
		Reviews: []Review{{User: "bob", State: "APPROVED", Commit: head}}}
}

// Forge is a GitHub or GitLab API on loopback.
type Forge struct {
	URL   string // the API base URL
	Token string // the token it requires
	// RedirectTo, when set, answers every request with a redirect to the
	// same path there.
	RedirectTo string
	mu         sync.Mutex
	app        *App // GitHub only: see InstallApp
	repo       string
	reqs       []Request
	deploys    []DeploymentReview
	commits    []Commit
	Calls      []string // the paths asked for
}

// GitHub serves GitHub's API for repository repo ("owner/name"), with a
// token in "Authorization: Bearer".
func GitHub(t testing.TB, repo string) *Forge {
	f := &Forge{Token: "ghs_forgetest", repo: repo}
	f.serve(t, f.github)
	return f
}

// GitLab serves GitLab's v4 API for project ("group/project"), with a
// token in PRIVATE-TOKEN.
func GitLab(t testing.TB, project string) *Forge {
	f := &Forge{Token: "glpat-forgetest", repo: project}
	f.serve(t, f.gitlab)
	return f
}

// Azure serves Azure DevOps' API for repo ("project/repository"), with
// the token as a PAT (Basic, empty user) or a pipeline's access token
// (Bearer).
func Azure(t testing.TB, repo string) *Forge {
	f := &Forge{Token: "azdo-forgetest", repo: repo}
	f.serve(t, f.azure)
	return f
}

// Bitbucket serves Bitbucket Data Center's REST API (URL is
// …/rest/api/latest) for repo ("PROJECT/repo"), with an HTTP access token
// as a bearer. Approvers are reviewers whose status is APPROVED at the
// head; Reviews more reviewers, at their Commit.
func Bitbucket(t testing.TB, repo string) *Forge {
	f := &Forge{Token: "bbdc-forgetest", repo: repo}
	f.serve(t, f.bitbucket)
	f.URL += "/rest/api/latest"
	return f
}

func (f *Forge) serve(t testing.TB, h http.HandlerFunc) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.Calls = append(f.Calls, r.URL.EscapedPath())
		redirect := f.RedirectTo
		f.mu.Unlock()
		if redirect != "" {
			http.Redirect(w, r, redirect+r.URL.RequestURI(), http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
}

// TokenFile writes the forge's token to a file, as a mounted Secret holds
// it (with a trailing newline), and returns its path.
func (f *Forge) TokenFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(f.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Add adds a request.
func (f *Forge) Add(r Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, r)
}

// AddDeploymentReview adds a review of a run's deployment (GitHub).
func (f *Forge) AddDeploymentReview(r DeploymentReview) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deploys = append(f.deploys, r)
}

// AddCommit adds a commit (GitHub).
func (f *Forge) AddCommit(c Commit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commits = append(f.commits, c)
}

func (f *Forge) find(pred func(Request) bool) []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Request
	for _, r := range f.reqs {
		if pred(r) {
			out = append(out, r)
		}
	}
	return out
}

func contains(commits []string, c string) bool {
	for _, x := range commits {
		if x == c {
			return true
		}
	}
	return false
}

var mergedAt = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func write(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// page writes one page of a list, as both forges paginate: per_page
// (default 20) and page (from 1), and a Link header to the next page.
func (f *Forge) page(w http.ResponseWriter, r *http.Request, items []any) {
	q := r.URL.Query()
	size, _ := strconv.Atoi(q.Get("per_page"))
	if size <= 0 {
		size = 20
	}
	n, _ := strconv.Atoi(q.Get("page"))
	n = max(n, 1)
	from, to := min((n-1)*size, len(items)), min(n*size, len(items))
	if to < len(items) {
		q.Set("page", strconv.Itoa(n+1))
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?%s>; rel="next"`, f.URL, r.URL.EscapedPath(), q.Encode()))
	}
	write(w, 200, append([]any{}, items[from:to]...))
}

func (f *Forge) github(w http.ResponseWriter, r *http.Request) {
	if f.appAPI(w, r) {
		return
	}
	f.mu.Lock()
	appToken := ""
	if f.app != nil && f.app.token != f.app.revoked {
		appToken = f.app.token
	}
	f.mu.Unlock()
	if auth := r.Header.Get("Authorization"); auth != "Bearer "+f.Token && (appToken == "" || auth != "Bearer "+appToken) {
		write(w, 401, map[string]string{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
		return
	}
	prefix := "/repos/" + f.repo + "/"
	rest, ok := strings.CutPrefix(r.URL.Path, prefix)
	parts := strings.Split(rest, "/")
	notFound := func() {
		write(w, 404, map[string]string{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
	}
	if !ok {
		notFound()
		return
	}
	user := func(login string) any {
		if login == "" {
			return nil
		}
		return map[string]any{"login": login, "type": "User"}
	}
	bot := func(login string) any { return map[string]any{"login": login, "type": "Bot"} }
	pull := func(q Request) map[string]any {
		state, merged := "closed", any(nil)
		if q.Open {
			state = "open"
		}
		if q.MergedBy != "" {
			merged = mergedAt
		}
		return map[string]any{
			"number": q.Number, "title": q.Title, "state": state, "user": user(q.Author), "merged_at": merged,
			"html_url": fmt.Sprintf("https://github.com/%s/pull/%d", f.repo, q.Number),
			"head":     map[string]any{"sha": q.Head}, "base": map[string]any{"ref": q.Base},
			"merged_by": user(q.MergedBy), "merge_commit_sha": q.MergeCommit, "commits": len(q.Commits) + len(q.Contributors) + len(q.Committers) + q.Unlinked,
		}
	}
	switch {
	case len(parts) == 4 && parts[0] == "actions" && parts[1] == "runs" && parts[3] == "approvals":
		// The review history of a run: one list, not paginated.
		out := []any{}
		f.mu.Lock()
		for _, d := range f.deploys {
			if strconv.FormatInt(d.Run, 10) == parts[2] {
				out = append(out, map[string]any{"state": d.State, "user": user(d.User), "comment": "",
					"environments": []any{map[string]any{"id": 1, "name": d.Environment, "html_url": "https://github.com/" + f.repo + "/deployments/activity_log?environments_filter=" + d.Environment}}})
			}
		}
		f.mu.Unlock()
		write(w, 200, out)
	case len(parts) == 1 && parts[0] == "commits":
		// The commits from ?sha=: that one, then its history (here 20
		// ancestors by mona), paginated as GitHub does.
		sha := r.URL.Query().Get("sha")
		f.mu.Lock()
		i := slices.IndexFunc(f.commits, func(c Commit) bool { return c.SHA == sha })
		var c Commit
		if i >= 0 {
			c = f.commits[i]
		}
		f.mu.Unlock()
		if i < 0 {
			notFound()
			return
		}
		commit := func(c Commit) any {
			return map[string]any{"sha": c.SHA, "author": user(c.Author), "committer": user(c.Committer),
				"commit": map[string]any{"author": map[string]any{"name": c.Author, "email": c.AuthorEmail}, "committer": map[string]any{"name": c.Committer, "email": c.CommitterEmail}}}
		}
		history := []any{commit(c)}
		for n := range 20 {
			history = append(history, commit(Commit{SHA: fmt.Sprintf("%040x", n+1), Author: "mona", AuthorEmail: "mona@bank.example", Committer: "mona", CommitterEmail: "mona@bank.example"}))
		}
		f.page(w, r, history)
	case len(parts) == 3 && parts[0] == "commits" && parts[2] == "pulls":
		out := []any{}
		for _, q := range f.find(func(q Request) bool { return contains(q.Commits, parts[1]) }) {
			p := pull(q)
			delete(p, "merged_by") // the list does not say who merged
			out = append(out, p)
		}
		f.page(w, r, out)
	case len(parts) >= 2 && parts[0] == "pulls":
		n, _ := strconv.Atoi(parts[1])
		qs := f.find(func(q Request) bool { return q.Number == n })
		if len(qs) == 0 {
			notFound()
			return
		}
		if len(parts) == 2 {
			write(w, 200, pull(qs[0]))
			return
		}
		if parts[2] == "commits" {
			// What the web pages commit, web-flow commits.
			out := []any{}
			for _, c := range qs[0].Commits {
				out = append(out, map[string]any{"sha": c, "author": user(qs[0].Author), "committer": user("web-flow")})
			}
			extra := func(author, committer any) {
				out = append(out, map[string]any{"sha": fmt.Sprintf("%040x", len(out)+1), "author": author, "committer": committer})
			}
			for _, who := range qs[0].Contributors {
				extra(user(who), user("web-flow"))
			}
			for _, who := range qs[0].Committers {
				extra(user(qs[0].Author), user(who))
			}
			for range qs[0].Unlinked {
				extra(nil, nil)
			}
			f.page(w, r, out)
			return
		}
		out := []any{}
		for i, rv := range qs[0].Reviews {
			u := user(rv.User)
			if rv.Bot {
				u = bot(rv.User)
			}
			out = append(out, map[string]any{"id": i + 1, "user": u, "state": rv.State, "commit_id": rv.Commit,
				"submitted_at": mergedAt.Add(time.Duration(i-len(qs[0].Reviews)) * time.Minute)})
		}
		f.page(w, r, out)
	default:
		notFound()
	}
}

func (f *Forge) gitlab(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("PRIVATE-TOKEN") != f.Token {
		write(w, 401, map[string]string{"message": "401 Unauthorized"})
		return
	}
	// GitLab names the project by its URL-encoded path.
	prefix := "/projects/" + strings.ReplaceAll(f.repo, "/", "%2F") + "/"
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), prefix)
	parts := strings.Split(rest, "/")
	if !ok {
		write(w, 404, map[string]string{"message": "404 Project Not Found"})
		return
	}
	user := func(name string) any {
		if name == "" {
			return nil
		}
		return map[string]any{"username": name, "name": name}
	}
	switch {
	case len(parts) == 4 && parts[0] == "repository" && parts[1] == "commits" && parts[3] == "merge_requests":
		out := []any{}
		for _, q := range f.find(func(q Request) bool { return contains(q.Commits, parts[2]) }) {
			state, merged := "closed", any(nil)
			if q.Open {
				state = "opened"
			}
			if q.MergedBy != "" {
				state, merged = "merged", mergedAt
			}
			out = append(out, map[string]any{
				"iid": q.Number, "title": q.Title, "state": state, "author": user(q.Author), "merge_user": user(q.MergedBy),
				"merged_at": merged, "sha": q.Head, "target_branch": q.Base, "merge_commit_sha": q.MergeCommit, "squash_commit_sha": nil,
				"web_url": fmt.Sprintf("https://gitlab.example.com/%s/-/merge_requests/%d", f.repo, q.Number),
			})
		}
		f.page(w, r, out)
	case len(parts) == 3 && parts[0] == "merge_requests" && parts[2] == "approvals":
		n, _ := strconv.Atoi(parts[1])
		qs := f.find(func(q Request) bool { return q.Number == n })
		if len(qs) == 0 {
			write(w, 404, map[string]string{"message": "404 Not found"})
			return
		}
		by := []any{}
		for _, a := range qs[0].Approvers {
			by = append(by, map[string]any{"user": user(a)})
		}
		write(w, 200, map[string]any{"iid": n, "approved": len(by) > 0, "approved_by": by})
	default:
		write(w, 404, map[string]string{"message": "404 Not found"})
	}
}

func (f *Forge) azure(w http.ResponseWriter, r *http.Request) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(":"+f.Token))
	if a := r.Header.Get("Authorization"); a != basic && a != "Bearer "+f.Token {
		write(w, 401, map[string]string{"message": "TF400813: The user is not authorized to access this resource."})
		return
	}
	project, repo, _ := strings.Cut(f.repo, "/")
	rest, ok := strings.CutPrefix(r.URL.Path, "/"+project+"/_apis/git/repositories/"+repo+"/")
	if !ok || r.URL.Query().Get("api-version") == "" {
		write(w, 404, map[string]string{"message": "TF401019: The Git repository does not exist or you do not have permissions."})
		return
	}
	identity := func(name string) map[string]any {
		return map[string]any{"id": "id-" + name, "uniqueName": name, "displayName": name}
	}
	pull := func(q Request) map[string]any {
		status := "abandoned"
		switch {
		case q.MergedBy != "":
			status = "completed"
		case q.Open:
			status = "active"
		}
		p := map[string]any{
			"pullRequestId": q.Number, "title": q.Title, "status": status, "createdBy": identity(q.Author),
			"targetRefName": "refs/heads/" + q.Base, "lastMergeSourceCommit": map[string]any{"commitId": q.Head},
			"lastMergeCommit": map[string]any{"commitId": q.MergeCommit},
		}
		if q.MergedBy != "" {
			p["closedBy"], p["closedDate"] = identity(q.MergedBy), mergedAt
		}
		reviewers := []any{}
		for _, a := range q.Approvers {
			reviewers = append(reviewers, map[string]any{"id": "id-" + a, "uniqueName": a, "displayName": a, "vote": 10})
		}
		for _, who := range slices.Sorted(maps.Keys(q.Votes)) {
			reviewers = append(reviewers, map[string]any{"id": "id-" + who, "uniqueName": who, "displayName": who, "vote": q.Votes[who]})
		}
		if len(q.Approvers) > 0 {
			reviewers = append(reviewers, map[string]any{"id": "id-team", "uniqueName": `[proj]\\Reviewers`, "isContainer": true, "vote": 10})
		}
		p["reviewers"] = reviewers
		return p
	}
	switch {
	case rest == "pullrequestquery" && r.Method == http.MethodPost:
		var query struct {
			Queries []struct {
				Type  string   `json:"type"`
				Items []string `json:"items"`
			} `json:"queries"`
		}
		if err := json.NewDecoder(r.Body).Decode(&query); err != nil || len(query.Queries) != 1 || query.Queries[0].Type != "lastMergeCommit" {
			write(w, 400, map[string]string{"message": "VS403413: bad query"})
			return
		}
		found := map[string][]any{}
		for _, c := range query.Queries[0].Items {
			found[c] = []any{}
			for _, q := range f.find(func(q Request) bool { return q.MergeCommit == c }) {
				p := pull(q)
				delete(p, "reviewers") // the query's answer leaves them out
				found[c] = append(found[c], p)
			}
		}
		write(w, 200, map[string]any{"queries": query.Queries, "results": []any{found}})
	case strings.HasPrefix(rest, "pullrequests/") && r.Method == http.MethodGet:
		n, _ := strconv.Atoi(strings.TrimPrefix(rest, "pullrequests/"))
		qs := f.find(func(q Request) bool { return q.Number == n })
		if len(qs) == 0 {
			write(w, 404, map[string]string{"message": "TF401180: The requested pull request was not found."})
			return
		}
		write(w, 200, pull(qs[0]))
	default:
		write(w, 404, map[string]string{"message": "not found"})
	}
}

func (f *Forge) bitbucket(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		write(w, status, map[string]any{"errors": []any{map[string]any{"context": nil, "message": msg, "exceptionName": nil}}})
	}
	if r.Header.Get("Authorization") != "Bearer "+f.Token {
		fail(401, "Authentication failed. Please check your credentials and try again.")
		return
	}
	project, slug, _ := strings.Cut(f.repo, "/")
	rest, ok := strings.CutPrefix(r.URL.Path, "/rest/api/latest/projects/"+project+"/repos/"+slug+"/")
	if !ok {
		fail(404, fmt.Sprintf("Repository %s does not exist.", f.repo))
		return
	}
	// A page as Bitbucket pages: start and limit; isLastPage, nextPageStart.
	page := func(items []any) {
		start, _ := strconv.Atoi(r.URL.Query().Get("start"))
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if limit <= 0 {
			limit = 25
		}
		from, to := min(start, len(items)), min(start+limit, len(items))
		out := map[string]any{"size": to - from, "limit": limit, "start": start, "isLastPage": to == len(items), "values": append([]any{}, items[from:to]...)}
		if to < len(items) {
			out["nextPageStart"] = to
		}
		write(w, 200, out)
	}
	user := func(name string) map[string]any {
		return map[string]any{"name": name, "slug": name, "emailAddress": name + "@bank.example", "displayName": name, "id": len(name), "type": "NORMAL"}
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 2 && parts[0] == "commits":
		// A merge commit's parents: the base's commit, then the merged head.
		parents := []any{map[string]any{"id": strings.Repeat("0", 40)}}
		if qs := f.find(func(q Request) bool { return q.MergeCommit == parts[1] }); len(qs) > 0 {
			parents = append(parents, map[string]any{"id": qs[0].Head})
		}
		write(w, 200, map[string]any{"id": parts[1], "parents": parents})
	case len(parts) == 3 && parts[0] == "commits" && parts[2] == "pull-requests":
		// The requests that contain the commit (Commits; as the Javadoc
		// says, not necessarily the merge commit a request made).
		out := []any{}
		for _, q := range f.find(func(q Request) bool { return contains(q.Commits, parts[1]) }) {
			state, props := "DECLINED", map[string]any{}
			switch {
			case q.MergedBy != "":
				state, props["mergeCommit"] = "MERGED", map[string]any{"id": q.MergeCommit, "displayId": q.MergeCommit[:min(11, len(q.MergeCommit))]}
			case q.Open:
				state = "OPEN"
			}
			reviewers := []any{}
			for _, a := range q.Approvers {
				reviewers = append(reviewers, map[string]any{"user": user(a), "role": "REVIEWER", "approved": true, "status": "APPROVED", "lastReviewedCommit": q.Head})
			}
			for _, rv := range q.Reviews { // State APPROVED or NEEDS_WORK, at Commit; Bot: a SERVICE user
				u := user(rv.User)
				if rv.Bot {
					u["type"] = "SERVICE"
				}
				reviewers = append(reviewers, map[string]any{"user": u, "role": "REVIEWER", "approved": rv.State == "APPROVED", "status": rv.State, "lastReviewedCommit": rv.Commit})
			}
			for _, who := range slices.Sorted(maps.Keys(q.Votes)) {
				reviewers = append(reviewers, map[string]any{"user": user(who), "role": "REVIEWER", "approved": false, "status": "NEEDS_WORK"})
			}
			out = append(out, map[string]any{
				"id": q.Number, "title": q.Title, "state": state, "closedDate": mergedAt.UnixMilli(),
				"author":    map[string]any{"user": user(q.Author), "role": "AUTHOR", "approved": false, "status": "UNAPPROVED"},
				"reviewers": reviewers, "properties": props,
				"fromRef": map[string]any{"id": "refs/heads/feature", "displayId": "feature", "latestCommit": q.Head},
				"toRef":   map[string]any{"id": "refs/heads/" + q.Base, "displayId": q.Base},
				"links":   map[string]any{"self": []any{map[string]any{"href": fmt.Sprintf("https://bitbucket.example.com/projects/%s/repos/%s/pull-requests/%d", project, slug, q.Number)}}},
			})
		}
		page(out)
	case len(parts) == 3 && parts[0] == "pull-requests" && parts[2] == "commits":
		n, _ := strconv.Atoi(parts[1])
		qs := f.find(func(q Request) bool { return q.Number == n })
		if len(qs) == 0 {
			fail(404, fmt.Sprintf("Pull request %d does not exist in %s.", n, f.repo))
			return
		}
		q := qs[0]
		out := []any{}
		commit := func(author, committer map[string]any) {
			out = append(out, map[string]any{"id": fmt.Sprintf("%040x", len(out)+1), "author": author, "committer": committer})
		}
		unlinked := map[string]any{"name": "laptop", "emailAddress": "laptop@localhost"}
		for range q.Commits {
			commit(user(q.Author), user(q.Author))
		}
		for _, who := range q.Contributors {
			commit(user(who), user(who))
		}
		for _, who := range q.Committers {
			commit(user(q.Author), user(who))
		}
		for range q.Unlinked {
			commit(unlinked, unlinked)
		}
		page(out)
	default:
		fail(404, "No such resource.")
	}
}
