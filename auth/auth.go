// Package auth issues and checks the API's bearer tokens.
//
// A token is shown once, when created; the store keeps only its SHA-256
// hash (tokens are 256-bit random strings, so a fast hash is enough: there
// is nothing to brute-force). Each token has a name (the identity recorded
// as reporter or approver), scopes, an optional expiry, and can be revoked.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Scope is a permission a token carries.
type Scope string

// Scopes.
const (
	ScopeEvidenceWrite  Scope = "evidence:write"  // report artifacts and attestations
	ScopeApprovalsWrite Scope = "approvals:write" // approve or reject releases
	ScopeAuditRead      Scope = "audit:read"      // read evidence and the journal
	ScopeSnapshotsWrite Scope = "snapshots:write" // report what runs (vouch snapshot)
	ScopeAdmin          Scope = "admin"           // everything, including tokens
)

// AllScopes lists every scope.
var AllScopes = []Scope{ScopeEvidenceWrite, ScopeApprovalsWrite, ScopeAuditRead, ScopeSnapshotsWrite, ScopeAdmin}

// Errors callers branch on.
var (
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrNotFound        = errors.New("token not found")
	ErrNameTaken       = errors.New("token name already in use")
	// ErrUnavailable means the token store could not be asked; a retry
	// may succeed.
	ErrUnavailable = errors.New("token store unavailable")
)

// Token is a stored API token. The secret itself is never stored.
type Token struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []Scope    `json:"scopes"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// Identities name the person the token belongs to: emails and logins
	// as CI reports commit authors, lower case. Four eyes compares them
	// with the author of the commit an approval is for.
	Identities []string `json:"identities,omitempty"`
	// Repositories limit what the token may write evidence about to the
	// builds of these source repositories (patterns, see
	// MatchRepository); none means any.
	Repositories []string `json:"repositories,omitempty"`
	Hash         string   `json:"-"` // hex SHA-256 of the secret
	// Deployment is the CI job an OIDC token names when its issuer has
	// Vouch record who approved the job's deployment (oidc_issuers
	// deployment_reviews); nil otherwise.
	Deployment *Deployment `json:"-"`
}

// Deployment is a CI job that deploys to a protected environment: the
// forge records who approved it.
type Deployment struct {
	Forge       string // the forges entry that reads the approvals
	Repository  string // owner/name
	Run         string // the workflow run's id
	Attempt     string // the run's attempt, from "1"
	Environment string // the forge's environment; "" when the job names none
	Commit      string // the commit the run is of
	// Decides are the Vouch environments the job may make release
	// decisions for.
	Decides []string
}

// Allows reports whether the token carries scope s (admin carries all).
func (t Token) Allows(s Scope) bool {
	return slices.Contains(t.Scopes, s) || slices.Contains(t.Scopes, ScopeAdmin)
}

// Active reports whether the token is neither revoked nor expired at now.
func (t Token) Active(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// Store keeps tokens.
type Store interface {
	CreateToken(ctx context.Context, t Token) error // ErrNameTaken if the name is in use by an unrevoked token
	TokenByHash(ctx context.Context, hash string) (Token, error)
	Tokens(ctx context.Context) ([]Token, error)
	RevokeToken(ctx context.Context, id string, at time.Time) error // ErrNotFound if unknown
}

// Prefix starts every token, so that secret scanners can recognise them.
const Prefix = "vouch_"

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9._@:-]{0,126}[a-zA-Z0-9])?$`)

// Service creates and verifies tokens.
type Service struct {
	store Store
	now   func() time.Time
}

// NewService returns a token service over store.
func NewService(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now}
}

// Request asks for a token.
type Request struct {
	Name   string
	Scopes []Scope
	TTL    time.Duration // 0: no expiry
	// Identities name the person the token belongs to (emails, logins).
	Identities []string
	// Repositories limit the token's evidence to these repositories'
	// builds (patterns).
	Repositories []string
}

// Create makes a token and returns it with its secret, which is shown only
// this once.
func (s *Service) Create(ctx context.Context, r Request) (Token, string, error) {
	r.Identities, r.Repositories = normalizeList(r.Identities, strings.ToLower), normalizeList(r.Repositories, RepositoryKey)
	if err := r.validate(); err != nil {
		return Token{}, "", err
	}
	secret := NewSecret()
	t := Token{ID: randomHex(8), Name: r.Name, Scopes: slices.Clone(r.Scopes), CreatedAt: s.now().UTC().Truncate(time.Microsecond), Hash: Hash(secret),
		Identities: r.Identities, Repositories: r.Repositories}
	if r.TTL > 0 {
		exp := t.CreatedAt.Add(r.TTL)
		t.ExpiresAt = &exp
	}
	if err := s.store.CreateToken(ctx, t); err != nil {
		return Token{}, "", fmt.Errorf("create token %q: %w", r.Name, err)
	}
	return t, secret, nil
}

// Seed stores a token with a given secret (VOUCH_ADMIN_TOKEN) unless a
// token with that secret exists already.
func (s *Service) Seed(ctx context.Context, name, secret string, scopes []Scope) error {
	if len(secret) < 32 {
		return fmt.Errorf("seed token %q: the secret must be at least 32 characters", name)
	}
	if _, err := s.store.TokenByHash(ctx, Hash(secret)); err == nil {
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("seed token %q: %w", name, err)
	}
	t := Token{ID: randomHex(8), Name: name, Scopes: scopes, CreatedAt: s.now().UTC().Truncate(time.Microsecond), Hash: Hash(secret)}
	if err := s.store.CreateToken(ctx, t); err != nil {
		return fmt.Errorf("seed token %q: %w", name, err)
	}
	return nil
}

// Authenticate returns the active token for a bearer secret, or an error
// wrapping ErrUnauthenticated that says why (unknown, revoked, expired).
func (s *Service) Authenticate(ctx context.Context, secret string) (Token, error) {
	if !strings.HasPrefix(secret, Prefix) && len(secret) < 32 {
		return Token{}, fmt.Errorf("%w: malformed token", ErrUnauthenticated)
	}
	return s.AuthenticateHash(ctx, Hash(secret))
}

// AuthenticateHash is Authenticate for a token known by its hash (a
// console session's).
func (s *Service) AuthenticateHash(ctx context.Context, hash string) (Token, error) {
	t, err := s.store.TokenByHash(ctx, hash)
	switch {
	case errors.Is(err, ErrNotFound):
		return Token{}, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
	case err != nil:
		return Token{}, fmt.Errorf("authenticate: %w: %w", ErrUnavailable, err)
	case t.RevokedAt != nil:
		return Token{}, fmt.Errorf("%w: token %q was revoked", ErrUnauthenticated, t.Name)
	case !t.Active(s.now()):
		return Token{}, fmt.Errorf("%w: token %q expired at %s", ErrUnauthenticated, t.Name, t.ExpiresAt.Format(time.RFC3339))
	}
	return t, nil
}

// List returns all tokens, without secrets.
func (s *Service) List(ctx context.Context) ([]Token, error) { return s.store.Tokens(ctx) }

// Revoke revokes a token by id.
func (s *Service) Revoke(ctx context.Context, id string) error {
	return s.store.RevokeToken(ctx, id, s.now().UTC())
}

// MaxIdentities bounds a token's identities.
const MaxIdentities = 10

var identityRE = regexp.MustCompile(`^[^\s,\x00-\x1f\x7f]{1,256}$`)

// MaxRepositories bounds a token's repositories.
const MaxRepositories = 50

var repositoryRE = regexp.MustCompile(`^[^\s,\x00-\x1f\x7f]{1,512}$`)

// normalizeList trims the elements of list and applies norm to them,
// dropping repeats.
func normalizeList(list []string, norm func(string) string) []string {
	var out []string
	for _, x := range list {
		if x = norm(strings.TrimSpace(x)); !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// validate checks the parameters of a new token.
func (r Request) validate() error {
	var problems []string
	if !nameRE.MatchString(r.Name) {
		problems = append(problems, fmt.Sprintf("name: %q must be 1-128 letters, digits, '.', '_', '@', ':' or '-'", r.Name))
	}
	if len(r.Scopes) == 0 {
		problems = append(problems, "scopes: at least one is required ("+scopeList()+")")
	}
	for _, sc := range r.Scopes {
		if !slices.Contains(AllScopes, sc) {
			problems = append(problems, fmt.Sprintf("scopes: %q is not a scope (%s)", sc, scopeList()))
		}
	}
	if r.TTL < 0 {
		problems = append(problems, "expires_in: must not be negative")
	}
	if len(r.Identities) > MaxIdentities {
		problems = append(problems, fmt.Sprintf("identities: at most %d", MaxIdentities))
	}
	for _, id := range r.Identities {
		if !identityRE.MatchString(id) {
			problems = append(problems, fmt.Sprintf("identities: %q must be an email or login: 1-256 characters, no spaces, commas or control characters", id))
		}
	}
	if len(r.Repositories) > MaxRepositories {
		problems = append(problems, fmt.Sprintf("repositories: at most %d", MaxRepositories))
	}
	for _, p := range r.Repositories {
		if _, err := path.Match(p, ""); err != nil || !repositoryRE.MatchString(p) || !strings.Contains(p, "/") {
			problems = append(problems, fmt.Sprintf("repositories: %q must be a repository such as github.com/org/repo, or a pattern such as github.com/org/* ('*' within one path segment): no spaces, commas or control characters", p))
		}
	}
	if slices.Contains(r.Scopes, ScopeAdmin) && len(r.Repositories) > 0 {
		problems = append(problems, "repositories: an admin token cannot be limited to repositories (it can create tokens)")
	}
	if slices.Contains(r.Scopes, ScopeSnapshotsWrite) && len(r.Repositories) > 0 {
		problems = append(problems, "repositories: a snapshots:write token reports what runs, which no repository limits: create it without repositories")
	}
	if len(problems) > 0 {
		return &InvalidError{Problems: problems}
	}
	return nil
}

// RepositoryKey is the form repositories are compared in: lower case,
// without the URL scheme, credentials, ".git" suffix or trailing slash, so
// that https://github.com/Org/Repo.git, git@github.com:org/repo and
// github.com/org/repo are the same repository.
func RepositoryKey(repo string) string {
	r := strings.ToLower(strings.TrimSpace(repo))
	if i := strings.Index(r, "://"); i >= 0 {
		r = r[i+3:]
	} else if at, colon := strings.Index(r, "@"), strings.Index(r, ":"); at >= 0 && colon > at && !strings.Contains(r[:colon], "/") {
		r = r[:colon] + "/" + r[colon+1:] // scp-like git@host:path
	}
	if at := strings.Index(r, "@"); at >= 0 && at < strings.IndexByte(r+"/", '/') {
		r = r[at+1:] // user[:password]@host
	}
	r = strings.TrimSuffix(strings.TrimRight(r, "/"), ".git")
	return strings.TrimRight(r, "/")
}

// MatchRepository reports whether the token may write evidence about a
// build of repository: always when it names no repositories, else when
// one of its patterns matches the repository's RepositoryKey ('*' matches
// within one path segment, as in path.Match).
func (t Token) MatchRepository(repository string) bool {
	if len(t.Repositories) == 0 {
		return true
	}
	key := RepositoryKey(repository)
	return key != "" && slices.ContainsFunc(t.Repositories, func(p string) bool {
		ok, _ := path.Match(p, key)
		return ok
	})
}

// InvalidError lists what is wrong with a token request.
type InvalidError struct{ Problems []string }

func (e *InvalidError) Error() string {
	return "invalid token request: " + strings.Join(e.Problems, "; ")
}

// ParseScopes splits a comma-separated scope list.
func ParseScopes(s string) []Scope {
	var out []Scope
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, Scope(p))
		}
	}
	return out
}

func scopeList() string {
	names := make([]string, len(AllScopes))
	for i, s := range AllScopes {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// Hash returns the hex SHA-256 of a token secret, as stored.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// NewSecret returns a fresh random token secret.
func NewSecret() string { return Prefix + randomString(32) }

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
