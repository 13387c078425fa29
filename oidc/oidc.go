// Package oidc lets CI jobs call the API with the OpenID Connect ID token
// their CI system issues them — GitHub Actions, GitLab CI, any issuer that
// publishes its keys — instead of a long-lived Vouch token. A token is
// verified against the keys its issuer publishes (discovery, then JWKS;
// RS256 or ES256), must be for Vouch's audience, unexpired, and from a
// subject the issuer is trusted for (a branch's workflows, say). It becomes
// an API identity with the issuer's scopes, limited to the job's own
// repository, named after the subject so that what it reports says which
// workflow reported it.
package oidc

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/auth"
)

// IssuerConfig trusts one issuer (config `oidc_issuers`).
type IssuerConfig struct {
	// Issuer is the token's iss, an https URL: its keys are found from
	// Issuer + "/.well-known/openid-configuration".
	Issuer string `json:"issuer"`
	// Name prefixes the identity recorded: "github" records what a job
	// reports as "github:<sub>" (reported_by).
	Name string `json:"name"`
	// Audience the token must be for (aud); "vouch" when empty.
	Audience string `json:"audience"`
	// Subjects are the sub claims accepted, as patterns in which '*'
	// matches within one part between ':' or '/' (path.Match):
	// "repo:bank/*:ref:refs/heads/main". Required: an issuer such as
	// GitHub's issues tokens to every repository on it.
	Subjects []string `json:"subjects"`
	// Claims are further claims the token must carry, each a string
	// matching one of its patterns (as Subjects): on GitHub,
	// job_workflow_ref: ["bank/ci/.github/workflows/build.yml@refs/heads/main"]
	// accepts only jobs of the organisation's own build workflow, whatever
	// repository calls it.
	Claims map[string][]string `json:"claims,omitempty"`
	// Scopes the token gets; evidence:write when empty. Never admin.
	Scopes []auth.Scope `json:"scopes"`
	// RepositoryClaim names the claim holding the job's repository
	// ("repository" on GitHub, "project_path" on GitLab), and
	// RepositoryPrefix what goes before it ("github.com/"): the token is
	// limited to that repository's builds (auth.Token.Repositories).
	// Both are required.
	RepositoryClaim  string `json:"repository_claim"`
	RepositoryPrefix string `json:"repository_prefix"`
	// CAFile is a PEM file of CAs to trust for the issuer, besides the
	// system's (a self-hosted GitLab).
	CAFile string `json:"ca_file"`
	// DeploymentReviews names the forges entry (type github) that Vouch
	// asks who approved a job's deployment: a release decision made with
	// the job's token is recorded with those people, read from the job's
	// workflow run (claims run_id, run_attempt, environment and sha), not
	// the job alone. RepositoryClaim must be "repository".
	DeploymentReviews string `json:"deployment_reviews,omitempty"`
	// DeploymentEnvironments map a GitHub environment to the Vouch
	// environments its jobs may decide for ({production: [prod]}); a
	// GitHub environment not listed decides for the Vouch environment of
	// its name only.
	DeploymentEnvironments map[string][]string `json:"deployment_environments,omitempty"`
}

// Clock skew allowed on exp and nbf, and how often an issuer's keys may be
// fetched again for a key id not seen yet (a key rotation).
const (
	Leeway       = time.Minute
	RefetchAfter = 30 * time.Second
	// MaxKeyAge is how long fetched keys are used before they are fetched
	// again, so that a key the issuer withdrew stops being trusted.
	MaxKeyAge    = time.Hour
	fetchTimeout = 10 * time.Second
	maxToken     = 16 << 10
	maxDocument  = 1 << 20
)

// Verifier authenticates ID tokens from the configured issuers.
type Verifier struct {
	issuers map[string]*issuer
	now     func() time.Time
}

// Option configures a Verifier.
type Option func(*Verifier)

// WithClock sets the verifier's clock (for tests).
func WithClock(now func() time.Time) Option { return func(v *Verifier) { v.now = now } }

// issuer is one trusted issuer and the keys it published.
type issuer struct {
	cfg    IssuerConfig
	client *http.Client

	mu       sync.Mutex
	keys     map[string]crypto.PublicKey // by kid
	fetched  time.Time                   // when keys were fetched
	tried    time.Time                   // the last fetch started
	fetching chan struct{}               // closed when the fetch in flight ends; nil when none is
	fetchErr error                       // how the last fetch failed
}

// New checks the configurations and returns their verifier. Keys are
// fetched when first needed.
func New(cfgs []IssuerConfig, opts ...Option) (*Verifier, error) {
	v := &Verifier{issuers: map[string]*issuer{}, now: time.Now}
	for _, o := range opts {
		o(v)
	}
	for i, c := range cfgs {
		field := fmt.Sprintf("oidc_issuers[%d]", i)
		u, err := url.Parse(c.Issuer)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%s.issuer: %q must be an https URL such as https://token.actions.githubusercontent.com", field, c.Issuer)
		}
		if _, dup := v.issuers[c.Issuer]; dup {
			return nil, fmt.Errorf("%s.issuer: %s is listed twice", field, c.Issuer)
		}
		if c.Name == "" || strings.ContainsAny(c.Name, ": \t\n") {
			return nil, fmt.Errorf("%s.name: a short name without spaces or ':' is required, e.g. github", field)
		}
		if len(c.Subjects) == 0 {
			return nil, fmt.Errorf("%s.subjects: list the subjects (sub claims) to accept, e.g. \"repo:bank/*:ref:refs/heads/main\": the issuer issues tokens to others too", field)
		}
		for _, s := range c.Subjects {
			if _, err := path.Match(segments(s), ""); err != nil {
				return nil, fmt.Errorf("%s.subjects: %q is not a valid pattern: %v", field, s, err)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(c.Claims)) {
			if name == "" || len(c.Claims[name]) == 0 {
				return nil, fmt.Errorf("%s.claims: %q: want a claim name and the patterns its value must match", field, name)
			}
			for _, p := range c.Claims[name] {
				if _, err := path.Match(segments(p), ""); err != nil {
					return nil, fmt.Errorf("%s.claims.%s: %q is not a valid pattern: %v", field, name, p, err)
				}
			}
		}
		c.Audience = cmp.Or(c.Audience, "vouch")
		if len(c.Scopes) == 0 {
			c.Scopes = []auth.Scope{auth.ScopeEvidenceWrite}
		}
		for _, s := range c.Scopes {
			// snapshots:write is not limited by repository, as every OIDC token is.
			if s == auth.ScopeAdmin || s == auth.ScopeSnapshotsWrite || !slices.Contains(auth.AllScopes, s) {
				return nil, fmt.Errorf("%s.scopes: %q is not a scope a CI job can be given", field, s)
			}
		}
		if c.RepositoryClaim == "" || c.RepositoryPrefix == "" {
			return nil, fmt.Errorf("%s: repository_claim and repository_prefix are required, so that a job writes evidence only about its own repository (GitHub: \"repository\" and \"github.com/\"; GitLab: \"project_path\" and your GitLab's host and \"/\")", field)
		}
		if len(c.DeploymentEnvironments) > 0 && c.DeploymentReviews == "" {
			return nil, fmt.Errorf("%s.deployment_environments: is for deployment_reviews", field)
		}
		envs := map[string][]string{} // by the GitHub environment's name in lower case, as GitHub compares them
		for name, targets := range c.DeploymentEnvironments {
			if name == "" || len(targets) == 0 {
				return nil, fmt.Errorf("%s.deployment_environments: %q: want a GitHub environment and the Vouch environments its jobs decide for", field, name)
			}
			envs[strings.ToLower(name)] = targets
		}
		c.DeploymentEnvironments = envs
		client, err := httpClient(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", field, err)
		}
		v.issuers[c.Issuer] = &issuer{cfg: c, client: client}
	}
	return v, nil
}

func httpClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: fetchTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return errors.New("redirects are not followed")
	}}, nil
}

// segments makes '*' in a subject pattern, and the subject, stop at ':' as
// path.Match stops it at '/'.
func segments(s string) string { return strings.ReplaceAll(s, ":", "/") }

// matchesOne reports whether v matches one of patterns.
func matchesOne(patterns []string, v string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { ok, _ := path.Match(segments(p), segments(v)); return ok })
}

// LooksLikeToken reports whether a bearer secret is a JWT rather than a
// Vouch token: three parts, the first a JSON header naming an algorithm.
func LooksLikeToken(s string) bool {
	head, _, ok := strings.Cut(s, ".")
	if strings.HasPrefix(s, auth.Prefix) || strings.Count(s, ".") != 2 || len(s) > maxToken || !ok {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	var h struct {
		Alg string `json:"alg"`
	}
	return err == nil && json.Unmarshal(b, &h) == nil && h.Alg != ""
}

// Authenticate verifies an ID token and returns the API identity it
// stands for. Every refusal wraps auth.ErrUnauthenticated and says why; an
// issuer whose keys cannot be fetched is auth.ErrUnavailable.
func (v *Verifier) Authenticate(ctx context.Context, raw string) (auth.Token, error) {
	deny := func(format string, args ...any) (auth.Token, error) {
		return auth.Token{}, fmt.Errorf("%w: OIDC token: %s", auth.ErrUnauthenticated, fmt.Sprintf(format, args...))
	}
	if !LooksLikeToken(raw) {
		return deny("not a JWT")
	}
	parts := strings.Split(raw, ".")
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var c map[string]json.RawMessage // claims by their exact names
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return deny("not base64url: %v", err)
	}
	if json.Unmarshal(hb, &header) != nil || json.Unmarshal(pb, &c) != nil || c == nil {
		return deny("its header or claims are not JSON objects")
	}
	iss, _ := claimString(c, "iss")
	is, ok := v.issuers[iss]
	if !ok {
		return deny("issuer %q is not trusted (oidc_issuers)", iss)
	}
	key, err := is.key(ctx, header.Kid, v.now())
	if err != nil {
		return auth.Token{}, err
	}
	if err := verifySignature(header.Alg, key, parts[0]+"."+parts[1], sig); err != nil {
		return deny("%v", err)
	}
	now := v.now()
	exp, hasExp, err := claimTime(c, "exp")
	switch {
	case err != nil || !hasExp:
		return deny("no valid exp")
	case !now.Before(exp.Add(Leeway)):
		return deny("expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if nbf, has, err := claimTime(c, "nbf"); err != nil {
		return deny("invalid nbf")
	} else if has && now.Add(Leeway).Before(nbf) {
		return deny("not valid before %s", nbf.UTC().Format(time.RFC3339))
	}
	if !audienceHas(c["aud"], is.cfg.Audience) {
		return deny("not for audience %q", is.cfg.Audience)
	}
	sub, _ := claimString(c, "sub")
	if sub == "" || !matchesOne(is.cfg.Subjects, sub) {
		return deny("subject %q is not among those trusted for %s", sub, is.cfg.Issuer)
	}
	for _, name := range slices.Sorted(maps.Keys(is.cfg.Claims)) {
		if got, ok := claimString(c, name); !ok || got == "" || !matchesOne(is.cfg.Claims[name], got) {
			return deny("claim %s %q is not among those trusted for %s (oidc_issuers claims)", name, got, is.cfg.Issuer)
		}
	}
	repo, ok := claimString(c, is.cfg.RepositoryClaim)
	if !ok || repo == "" {
		return deny("no %q claim: the token cannot be limited to its repository", is.cfg.RepositoryClaim)
	}
	sum := sha256.Sum256([]byte(iss + "\n" + sub))
	t := auth.Token{ID: "oidc-" + hex.EncodeToString(sum[:8]), Name: is.cfg.Name + ":" + sub, Scopes: slices.Clone(is.cfg.Scopes), ExpiresAt: &exp, CreatedAt: now,
		// The claim is a name, not a pattern: its metacharacters match themselves.
		Repositories: []string{patternEscaper.Replace(auth.RepositoryKey(is.cfg.RepositoryPrefix + repo))}}
	if is.cfg.DeploymentReviews != "" {
		claim := func(name string) string { v, _ := claimString(c, name); return v }
		d := &auth.Deployment{Forge: is.cfg.DeploymentReviews, Repository: repo,
			Run: claim("run_id"), Attempt: claim("run_attempt"), Environment: claim("environment"), Commit: claim("sha")}
		if d.Environment != "" {
			d.Decides = slices.Clone(is.cfg.DeploymentEnvironments[strings.ToLower(d.Environment)])
			if d.Decides == nil {
				d.Decides = []string{strings.ToLower(d.Environment)}
			}
		}
		t.Deployment = d
	}
	return t, nil
}

var patternEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)

// claimString is a claim that is a JSON string (not null).
func claimString(c map[string]json.RawMessage, name string) (string, bool) {
	raw := c[name]
	var s string
	return s, raw != nil && string(raw) != "null" && json.Unmarshal(raw, &s) == nil
}

// claimTime is a NumericDate claim (seconds since 1970, a JSON number);
// has is false when the claim is absent.
func claimTime(c map[string]json.RawMessage, name string) (t time.Time, has bool, err error) {
	raw, ok := c[name]
	if !ok {
		return time.Time{}, false, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f < 0 || f > 1e11 {
		return time.Time{}, true, fmt.Errorf("%s is not a date", name)
	}
	return time.Unix(int64(f), 0), true, nil
}

// audienceHas reports whether aud (a string or an array of strings) holds
// want.
func audienceHas(aud json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(aud, &one) == nil {
		return one == want
	}
	var many []string
	return json.Unmarshal(aud, &many) == nil && slices.Contains(many, want)
}

// verifySignature checks a JWS signature of RS256 (RSA, 2048 bits or more)
// or ES256 (P-256); no other algorithm is accepted.
func verifySignature(alg string, key crypto.PublicKey, signed string, sig []byte) error {
	h := sha256.Sum256([]byte(signed))
	switch k := key.(type) {
	case *rsa.PublicKey:
		if alg != "RS256" {
			return fmt.Errorf("algorithm %q for an RSA key; want RS256", alg)
		}
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig) != nil {
			return errors.New("bad signature")
		}
	case *ecdsa.PublicKey:
		if alg != "ES256" {
			return fmt.Errorf("algorithm %q for an EC key; want ES256", alg)
		}
		if len(sig) != 64 || !ecdsa.Verify(k, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return errors.New("bad signature")
		}
	default:
		return fmt.Errorf("unsupported key type %T", key)
	}
	return nil
}

// key returns the issuer's key kid. Keys are fetched when none are held,
// when they are older than MaxKeyAge, and when kid is unknown — no more
// often than every RefetchAfter, whether the last fetch worked or not. One
// fetch runs at a time, in the background of the requests: a request whose
// key is held never waits for it; one that needs the fetch waits for its
// end (up to its timeout). Stale keys stay in use while a fetch fails.
func (is *issuer) key(ctx context.Context, kid string, now time.Time) (crypto.PublicKey, error) {
	is.mu.Lock()
	k, ok := is.keys[kid]
	stale := is.keys == nil || now.Sub(is.fetched) >= MaxKeyAge
	if (!ok || stale) && is.fetching == nil && now.Sub(is.tried) >= RefetchAfter {
		is.tried, is.fetching = now, make(chan struct{})
		go is.refresh(now)
	}
	wait := is.fetching
	is.mu.Unlock()
	if ok {
		return k, nil
	}
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	if k, ok := is.keys[kid]; ok {
		return k, nil
	}
	if is.keys == nil {
		return nil, fmt.Errorf("%w: keys of OIDC issuer %s: %v", auth.ErrUnavailable, is.cfg.Issuer, is.fetchErr)
	}
	return nil, fmt.Errorf("%w: OIDC token: issuer %s has no key %q", auth.ErrUnauthenticated, is.cfg.Issuer, kid)
}

// refresh fetches the keys, replacing the whole set when it works.
func (is *issuer) refresh(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	keys, err := is.fetch(ctx)
	is.mu.Lock()
	defer is.mu.Unlock()
	if err == nil {
		is.keys, is.fetched = keys, now
	}
	is.fetchErr = err
	close(is.fetching)
	is.fetching = nil
}

// fetch reads the issuer's discovery document, then its JWKS.
func (is *issuer) fetch(ctx context.Context) (map[string]crypto.PublicKey, error) {
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := is.get(ctx, strings.TrimSuffix(is.cfg.Issuer, "/")+"/.well-known/openid-configuration", &disc); err != nil {
		return nil, err
	}
	if disc.Issuer != is.cfg.Issuer {
		return nil, fmt.Errorf("its discovery document names issuer %q", disc.Issuer)
	}
	if u, err := url.Parse(disc.JWKSURI); err != nil || u.Scheme != "https" {
		return nil, fmt.Errorf("jwks_uri %q is not an https URL", disc.JWKSURI)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := is.get(ctx, disc.JWKSURI, &set); err != nil {
		return nil, err
	}
	keys := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		if pub, err := k.public(); err == nil && (k.Use == "" || k.Use == "sig") {
			keys[k.Kid] = pub
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("its JWKS holds no RSA or P-256 signing key")
	}
	return keys, nil
}

func (is *issuer) get(ctx context.Context, u string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := is.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// jwk is a JSON Web Key (RFC 7517) of the kinds Vouch verifies with.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func (k jwk) public() (crypto.PublicKey, error) {
	b := func(s string) []byte {
		v, _ := base64.RawURLEncoding.DecodeString(s)
		return v
	}
	switch k.Kty {
	case "RSA":
		n, e := new(big.Int).SetBytes(b(k.N)), new(big.Int).SetBytes(b(k.E))
		if n.BitLen() < 2048 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31 {
			return nil, errors.New("RSA key too small or malformed")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		x, y := b(k.X), b(k.Y)
		if k.Crv != "P-256" || len(x) != 32 || len(y) != 32 {
			return nil, errors.New("EC key not on P-256")
		}
		// Checks that the point is on the curve.
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), slices.Concat([]byte{4}, x, y))
	}
	return nil, fmt.Errorf("key type %q", k.Kty)
}
