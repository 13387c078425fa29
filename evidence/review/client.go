package review

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Client calls a forge's API.
type Client struct {
	HTTP    *http.Client
	BaseURL string // https://api.github.com, https://gitlab.example.com/api/v4
	// Header is the authentication header and its value, e.g.
	// Authorization: Bearer …, PRIVATE-TOKEN: ….
	Header, Token string
	// Source, when set, gives the header's value for each request instead
	// of Token: a GitHub App's installation token, renewed as it expires;
	// Reject is told a value the forge refused (HTTP 401).
	Source func(context.Context) (string, error)
	Reject func(value string)
}

// Credential is the header and value that carry a token to a forge of
// type kind: a GitHub token or a Bitbucket Data Center HTTP access token
// as a bearer, a GitLab token in PRIVATE-TOKEN,
// an Azure DevOps personal access token as Basic with an empty user.
func Credential(kind, token string) (header, value string) {
	switch kind {
	case "gitlab":
		return "PRIVATE-TOKEN", token
	case "azure":
		return "Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(":"+token))
	}
	return "Authorization", "Bearer " + token
}

// Ask asks a forge of type kind (github, gitlab, azure or bitbucket)
// which requests merged commit in repo (owner/name, group/project,
// project/repository, an Azure DevOps ORG/PROJECT/_git/REPO path or a
// Bitbucket Data Center scm/PROJECT/repo path) and who approved them.
func (c *Client) Ask(ctx context.Context, kind, repo, commit string, allowStale bool) (Review, error) {
	switch kind {
	case "github":
		return c.GitHub(ctx, repo, commit, allowStale)
	case "gitlab":
		return c.GitLab(ctx, repo, commit)
	case "azure":
		return c.Azure(ctx, azurePath(repo), commit)
	case "bitbucket":
		return c.Bitbucket(ctx, bitbucketPath(repo), commit, allowStale)
	}
	return Review{}, fmt.Errorf("forge %q: want github, gitlab, azure or bitbucket", kind)
}

// splitRepo is a repository's two path parts, "a/b", or an error that
// names the form wanted ("owner/name").
func splitRepo(repo, want string) (string, string, error) {
	a, b, ok := strings.Cut(repo, "/")
	if !ok || a == "" || b == "" || strings.Contains(b, "/") {
		return "", "", fmt.Errorf("repository %q: want %s", repo, want)
	}
	return a, b, nil
}

// azurePath is project/repository from ORG/PROJECT/_git/REPO (or itself).
func azurePath(p string) string {
	if before, repo, ok := strings.Cut(p, "/_git/"); ok {
		if i := strings.LastIndexByte(before, '/'); i >= 0 {
			before = before[i+1:]
		}
		return before + "/" + repo
	}
	return p
}

const (
	// perPage is the page size asked for.
	perPage = 100
	// maxPages bounds the pages read of one list; a longer list is an
	// error, never judged on part of it.
	maxPages = 10
	// maxBody bounds one answer.
	maxBody = 8 << 20
)

// base parses BaseURL: https, or http on loopback only (the token would
// cross the network in clear).
func (c *Client) base() (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(c.BaseURL, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("the forge's API URL %q is not a URL", c.BaseURL)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return nil, fmt.Errorf("the forge's API URL %q: use https (the token must not cross the network in clear)", c.BaseURL)
	}
	return u, nil
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// client is c.HTTP following redirects within the forge only: a redirect
// elsewhere would take the token with it (Go keeps headers such as
// PRIVATE-TOKEN across hosts).
func (c *Client) client(base *url.URL) *http.Client {
	hc := http.Client{}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != base.Scheme || req.URL.Host != base.Host {
			return fmt.Errorf("the forge redirected to %s, outside %s: not followed", req.URL.Redacted(), base.Host)
		}
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		return nil
	}
	return &hc
}

// list reads every page of a JSON list at path (GitHub's and GitLab's Link
// headers), up to maxPages.
func list[T any](ctx context.Context, c *Client, github bool, path string) ([]T, error) {
	var all []T
	next := path
	for page := 0; next != ""; page++ {
		if page == maxPages {
			return nil, fmt.Errorf("GET %s: more than %d pages of %d: too many to judge", path, maxPages, perPage)
		}
		var items []T
		var err error
		if next, err = c.get(ctx, github, next, &items); err != nil {
			return nil, err
		}
		all = append(all, items...)
	}
	return all, nil
}

// get decodes a JSON answer from GitHub (github) or another forge at path
// (or at an absolute URL on the forge, a next page) and returns the next
// page's URL, "" when none.
func (c *Client) get(ctx context.Context, github bool, path string, into any) (string, error) {
	return c.call(ctx, http.MethodGet, github, path, nil, into)
}

// call sends a request, with a JSON body when body is not nil, and decodes
// the JSON answer. Errors name the status and the forge's message, never
// the token.
func (c *Client) call(ctx context.Context, method string, github bool, path string, body any, into any) (string, error) {
	return c.attempt(ctx, method, github, path, body, into, c.Reject != nil)
}

// attempt is one call; with retry, a credential the forge refuses is
// rejected and the call made once more with the next.
func (c *Client) attempt(ctx context.Context, method string, github bool, path string, body any, into any, retry bool) (string, error) {
	base, err := c.base()
	if err != nil {
		return "", err
	}
	target := base.String() + path
	if strings.HasPrefix(path, "https://") || strings.HasPrefix(path, "http://") {
		target = path
	}
	var content io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return "", err
		}
		content = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, content)
	if err != nil {
		return "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.URL.Scheme != base.Scheme || req.URL.Host != base.Host {
		return "", fmt.Errorf("the forge's next page %s is outside %s: not followed", req.URL.Redacted(), base.Host)
	}
	req.Header.Set("Accept", "application/json")
	if github {
		req.Header.Set("Accept", "application/vnd.github+json")
		req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	}
	value := c.Token
	if c.Source != nil {
		if value, err = c.Source(ctx); err != nil {
			return "", err
		}
	}
	if value != "" {
		req.Header.Set(c.Header, value)
	}
	resp, err := c.client(base).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return "", err
	}
	if len(answer) > maxBody {
		return "", fmt.Errorf("%s %s: the answer is larger than %d bytes", method, req.URL.Path, maxBody)
	}
	if resp.StatusCode == http.StatusUnauthorized && c.Reject != nil {
		c.Reject(value)
		if retry {
			return c.attempt(ctx, method, github, path, body, into, false)
		}
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		var m struct {
			Message string `json:"message"`
			Errors  []struct {
				Message string `json:"message"`
			} `json:"errors"` // Bitbucket's
		}
		json.Unmarshal(answer, &m)
		msg := m.Message
		if msg == "" && len(m.Errors) > 0 {
			msg = m.Errors[0].Message
		}
		if msg == "" {
			msg = strings.TrimSpace(string(answer[:min(len(answer), 200)]))
		}
		hint := ""
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
			hint = " (does the token have read access to the repository: its pull or merge requests, and its Actions for deployment reviews?)"
		}
		return "", fmt.Errorf("%s %s: %s: %s%s", method, req.URL.Path, resp.Status, msg, hint)
	}
	if err := json.Unmarshal(answer, into); err != nil {
		return "", fmt.Errorf("%s %s: %w", method, req.URL.Path, err)
	}
	return nextLink(resp.Header.Get("Link")), nil
}

// nextLink is the rel="next" URL of a Link header (RFC 8288), as GitHub
// and GitLab paginate.
func nextLink(header string) string {
	for _, part := range strings.Split(header, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok {
			continue
		}
		for _, p := range strings.Split(params, ";") {
			// rel may list several relations: rel="next last".
			if k, v, _ := strings.Cut(strings.TrimSpace(p), "="); k == "rel" && slices.Contains(strings.Fields(strings.Trim(v, `"`)), "next") {
				return strings.Trim(strings.TrimSpace(target), "<>")
			}
		}
	}
	return ""
}
