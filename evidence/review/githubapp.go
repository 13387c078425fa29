package review

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// GitHubAppConfig has Vouch ask GitHub as an installation of a GitHub
// App rather than with a token: the app belongs to the organisation, not
// to a person, and its installation tokens live an hour.
type GitHubAppConfig struct {
	// ClientID is the app's client ID (or its numeric app ID): the issuer
	// of the JWTs it signs.
	ClientID string `json:"client_id"`
	// InstallationID, when set, is the installation asked about every
	// repository. Without it, Vouch asks GitHub for the app's
	// installation on each repository's owner, which must be one of
	// Owners: an app installable elsewhere (a public app) would otherwise
	// let any account have Vouch read reviews of its own repositories.
	InstallationID int64    `json:"installation_id,omitempty"`
	Owners         []string `json:"owners,omitempty"`
	// PrivateKeyFile holds the app's private key, PEM as GitHub issues it
	// (a mounted Secret).
	PrivateKeyFile string `json:"private_key_file"`
}

// githubApp holds an installation token per owner (one for all with a
// configured installation) and buys the next, with a JWT signed by the
// app's key, when one has less than refreshBefore left or GitHub refused
// it.
type githubApp struct {
	cfg    GitHubAppConfig
	key    *rsa.PrivateKey
	client Client // authenticates with the JWT
	now    func() time.Time

	mu     sync.Mutex // guards tokens and buying
	tokens map[string]installationToken
	buying map[string]chan struct{} // one purchase per owner at a time; waiting honours ctx
}

type installationToken struct {
	token   string
	expires time.Time
}

// refreshBefore is how long before its expiry an installation token is
// replaced: longer than a review takes to read.
const refreshBefore = 5 * time.Minute

// newGitHubApp reads the app's key. client is the forge's client, whose
// URL, HTTP client and redirect rules the token requests share.
func newGitHubApp(cfg GitHubAppConfig, client Client) (*githubApp, error) {
	switch {
	case cfg.ClientID == "":
		return nil, errors.New("client_id: is required (the app's client ID or app ID)")
	case cfg.InstallationID < 0:
		return nil, errors.New("installation_id: must be positive")
	case cfg.InstallationID == 0 && len(cfg.Owners) == 0:
		return nil, errors.New("owners: list the organisations whose repositories Vouch asks about as the app, or set installation_id")
	case cfg.PrivateKeyFile == "":
		return nil, errors.New("private_key_file: is required (the app's private key, from a mounted Secret)")
	}
	b, err := os.ReadFile(cfg.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("private_key_file: %w", err)
	}
	key, err := parseRSAKey(b)
	if err != nil {
		return nil, fmt.Errorf("private_key_file: %w", err)
	}
	client.Header, client.Token, client.Source, client.Reject = "", "", nil, nil
	return &githubApp{cfg: cfg, key: key, client: client, now: time.Now, tokens: map[string]installationToken{}, buying: map[string]chan struct{}{}}, nil
}

// parseRSAKey reads an RSA private key in PEM: PKCS #1, as GitHub issues
// app keys, or PKCS #8.
func parseRSAKey(b []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block: want the app's private key as GitHub issues it (BEGIN RSA PRIVATE KEY)")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not an RSA private key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an RSA private key: GitHub signs app JWTs with RS256", k)
	}
	return rk, nil
}

// on returns the forge's client for requests about repo (owner/name),
// authenticated as the app's installation there.
func (a *githubApp) on(repo string) Client {
	c := a.client
	c.Header, c.Reject = "Authorization", a.reject
	c.Source = func(ctx context.Context) (string, error) { return a.header(ctx, repo) }
	return c
}

// current returns the token held for key while it has more than
// refreshBefore left.
func (a *githubApp) current(key string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tokens[key]
	return t.token, t.token != "" && a.now().Add(refreshBefore).Before(t.expires)
}

// header is the Authorization value for a request about repo: the
// installation's current token, or a new one. Purchases for one owner
// wait for each other, not for other owners'.
func (a *githubApp) header(ctx context.Context, repo string) (string, error) {
	owner, _, _ := strings.Cut(repo, "/")
	key := strings.ToLower(owner)
	if a.cfg.InstallationID != 0 {
		key = ""
	} else if !slices.ContainsFunc(a.cfg.Owners, func(o string) bool { return strings.EqualFold(o, owner) }) {
		return "", fmt.Errorf("github app %s: %s is not among github_app.owners", a.cfg.ClientID, owner)
	}
	if tok, ok := a.current(key); ok {
		return "Bearer " + tok, nil
	}
	a.mu.Lock()
	lock := a.buying[key]
	if lock == nil {
		lock = make(chan struct{}, 1)
		a.buying[key] = lock
	}
	a.mu.Unlock()
	select {
	case lock <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-lock }()
	if tok, ok := a.current(key); ok { // bought while this one waited
		return "Bearer " + tok, nil
	}
	t, err := a.buy(ctx, repo, owner)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	a.tokens[key] = t
	a.mu.Unlock()
	return "Bearer " + t.token, nil
}

// buy buys an installation token, for the configured installation or the
// app's installation on owner, with a new JWT.
func (a *githubApp) buy(ctx context.Context, repo, owner string) (installationToken, error) {
	jwt, err := a.jwt()
	if err != nil {
		return installationToken{}, err
	}
	c := a.client
	c.Header, c.Token = "Authorization", "Bearer "+jwt
	// The installation, asked with each new token (an app may be
	// installed again, or given other permissions).
	var inst struct {
		ID      int64 `json:"id"`
		Account struct {
			Login string `json:"login"`
		} `json:"account"`
		Permissions map[string]string `json:"permissions"`
	}
	installation, which := a.cfg.InstallationID, "installation_id"
	if installation == 0 {
		if _, err := c.call(ctx, "GET", true, "/repos/"+repoPath(repo)+"/installation", nil, &inst); err != nil {
			return installationToken{}, fmt.Errorf("github app %s: its installation on %s (is the app installed there?): %w", a.cfg.ClientID, repo, err)
		}
		if !strings.EqualFold(inst.Account.Login, owner) { // a moved repository: the token would be another owner's
			return installationToken{}, fmt.Errorf("github app %s: the installation GitHub gave for %s is %s's, not %s's", a.cfg.ClientID, repo, inst.Account.Login, owner)
		}
		installation, which = inst.ID, "the installation found"
	} else if _, err := c.call(ctx, "GET", true, fmt.Sprintf("/app/installations/%d", installation), nil, &inst); err != nil {
		return installationToken{}, fmt.Errorf("github app %s: installation %d (are client_id, installation_id and private_key_file the app's?): %w", a.cfg.ClientID, installation, err)
	}
	// Read access to what Vouch reads, of what the installation may do:
	// an app that may also write gives Vouch a token that cannot.
	narrowed := map[string]string{}
	for _, p := range readPermissions {
		if inst.Permissions[p] != "" {
			narrowed[p] = "read"
		}
	}
	var answer struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if _, err := c.call(ctx, "POST", true, fmt.Sprintf("/app/installations/%d/access_tokens", installation), map[string]any{"permissions": narrowed}, &answer); err != nil {
		return installationToken{}, fmt.Errorf("github app %s: a token for installation %d (are client_id, %s and private_key_file the app's?): %w", a.cfg.ClientID, installation, which, err)
	}
	if answer.Token == "" || answer.ExpiresAt.IsZero() {
		return installationToken{}, fmt.Errorf("github app %s: the installation token answer has no token or expiry", a.cfg.ClientID)
	}
	return installationToken{token: answer.Token, expires: answer.ExpiresAt}, nil
}

// readPermissions are the installation permissions Vouch reads with:
// pull requests and their reviews, commits, and workflow runs' deployment
// reviews.
var readPermissions = []string{"pull_requests", "contents", "actions", "metadata"}

// reject forgets the token GitHub refused (revoked, or the installation
// suspended): the next request buys another instead of failing until it
// expires.
func (a *githubApp) reject(value string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, t := range a.tokens {
		if "Bearer "+t.token == value {
			delete(a.tokens, k)
		}
	}
}

// repoPath escapes owner/name for a URL path.
func repoPath(repo string) string {
	owner, name, _ := strings.Cut(repo, "/")
	return url.PathEscape(owner) + "/" + url.PathEscape(name)
}

// jwt is the app's JSON Web Token (RFC 7519, RS256): issued a minute ago,
// against clock drift, and valid for nine more, within GitHub's ten.
func (a *githubApp) jwt() (string, error) {
	now := a.now()
	enc := base64.RawURLEncoding
	claims, err := json.Marshal(map[string]any{"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(9 * time.Minute).Unix(), "iss": a.cfg.ClientID})
	if err != nil {
		return "", err
	}
	signed := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, a.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signed + "." + enc.EncodeToString(sig), nil
}
