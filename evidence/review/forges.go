package review

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/auth"
)

// ForgeConfig is one entry of the forges Vouch itself asks about reviews
// (forges in the configuration), with a read-only token of its own: a
// review it records is the forge's word, not a pipeline's.
type ForgeConfig struct {
	// Name identifies the forge: the review is recorded with key_id
	// "forge:<name>".
	Name string `json:"name"`
	// Type is github, gitlab, azure or bitbucket (Data Center).
	Type string `json:"type"`
	// APIURL defaults to https://api.github.com and
	// https://gitlab.com/api/v4; for azure it is the collection
	// (https://dev.azure.com/ORG), for bitbucket the server's REST API
	// (https://bitbucket.example.com/rest/api/latest), required.
	APIURL string `json:"api_url,omitempty"`
	// Hosts are the repository hosts it serves (default github.com,
	// gitlab.com, dev.azure.com; for bitbucket, APIURL's host — add
	// host:port for SSH clone URLs).
	Hosts []string `json:"hosts,omitempty"`
	// TokenFile holds the token (a mounted Secret): GitHub read access to
	// pull requests, a GitLab read_api token, an Azure DevOps PAT with
	// Code: Read, a Bitbucket HTTP access token with repository read.
	TokenFile string `json:"token_file,omitempty"`
	// GitHubApp, instead of a token, has Vouch ask GitHub as an
	// installation of a GitHub App (github only).
	GitHubApp *GitHubAppConfig `json:"github_app,omitempty"`
}

// Forges are the forges Vouch asks.
type Forges struct {
	list []forge
}

type forge struct {
	cfg    ForgeConfig
	client *Client
	app    *githubApp // when it asks as a GitHub App
}

// forgeDefaults are each type's API URL and host; where it has no API URL
// default, example says what api_url is.
var forgeDefaults = map[string]struct{ api, host, example string }{
	"github":    {api: "https://api.github.com", host: "github.com"},
	"gitlab":    {api: "https://gitlab.com/api/v4", host: "gitlab.com"},
	"azure":     {host: "dev.azure.com", example: "the collection, https://dev.azure.com/ORG"},
	"bitbucket": {example: "the server's REST API, https://bitbucket.example.com/rest/api/latest"}, // hosts: its own
}

// ServedHosts are the repository hosts the forge serves: Hosts, else its
// type's default, else (Bitbucket, which serves its repositories itself)
// its API URL's host.
func (c ForgeConfig) ServedHosts() []string {
	if len(c.Hosts) > 0 {
		return c.Hosts
	}
	d := forgeDefaults[c.Type]
	host := d.host
	if u, err := url.Parse(cmp.Or(c.APIURL, d.api)); host == "" && err == nil {
		host = u.Host
	}
	return []string{host}
}

// NewForges reads the tokens. Errors name the field.
func NewForges(cfgs []ForgeConfig) (*Forges, error) {
	f := &Forges{}
	for i, c := range cfgs {
		field := fmt.Sprintf("forges[%d]", i)
		d, ok := forgeDefaults[c.Type]
		switch {
		case c.Name == "":
			return nil, fmt.Errorf("%s.name: is required", field)
		case !ok:
			return nil, fmt.Errorf("%s.type: %q: want github, gitlab, azure or bitbucket", field, c.Type)
		case c.TokenFile == "" && c.GitHubApp == nil:
			return nil, fmt.Errorf("%s.token_file: is required (a read-only token, from a mounted Secret), or github_app", field)
		case c.TokenFile != "" && c.GitHubApp != nil:
			return nil, fmt.Errorf("%s: token_file and github_app: give one", field)
		case c.GitHubApp != nil && c.Type != "github":
			return nil, fmt.Errorf("%s.github_app: is for type github, not %s", field, c.Type)
		}
		if c.APIURL == "" {
			if c.APIURL = d.api; c.APIURL == "" {
				return nil, fmt.Errorf("%s.api_url: is required for %s: %s", field, c.Type, d.example)
			}
		}
		cl := &Client{HTTP: &http.Client{Timeout: 30 * time.Second}, BaseURL: c.APIURL}
		if _, err := cl.base(); err != nil {
			return nil, fmt.Errorf("%s.api_url: %w", field, err)
		}
		c.Hosts = c.ServedHosts()
		var app *githubApp
		if c.GitHubApp != nil {
			var err error
			if app, err = newGitHubApp(*c.GitHubApp, *cl); err != nil {
				return nil, fmt.Errorf("%s.github_app.%w", field, err)
			}
		} else {
			b, err := os.ReadFile(c.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("%s.token_file: %w", field, err)
			}
			cl.Header, cl.Token = Credential(c.Type, strings.TrimSpace(string(b)))
		}
		f.list = append(f.list, forge{cfg: c, client: cl, app: app})
	}
	return f, nil
}

// ErrNoForge means no configured forge serves a repository's host.
var ErrNoForge = errors.New("no forge is configured for the repository")

// Review asks the forge that serves repository (its URL, as a build report
// names it) how commit was reviewed, judges it for one approval into any
// branch (the environment's rule judges the rest) and names the forge.
func (f *Forges) Review(ctx context.Context, repository, commit string) (Review, string, error) {
	key := auth.RepositoryKey(repository) // host/path
	host, path, ok := strings.Cut(key, "/")
	if !ok || path == "" {
		return Review{}, "", fmt.Errorf("repository %q names no host and path", repository)
	}
	if f != nil {
		for _, fg := range f.list {
			if !slices.Contains(fg.cfg.Hosts, host) {
				continue
			}
			r, err := fg.clientFor(path).Ask(ctx, fg.cfg.Type, path, commit, false)
			if err != nil {
				return Review{}, fg.cfg.Name, err
			}
			r.Judge(1, "")
			return r, fg.cfg.Name, nil
		}
	}
	return Review{}, "", fmt.Errorf("%w: %s (forges)", ErrNoForge, host)
}

// clientFor is the client that asks about repo: as the GitHub App's
// installation there, or with the forge's token.
func (fg forge) clientFor(repo string) *Client {
	if fg.app == nil {
		return fg.client
	}
	on := fg.app.on(repo)
	return &on
}
