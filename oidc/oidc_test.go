package oidc_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/oidc"
	"github.com/vouch-dev/vouch/test/oidctest"
)

func TestAuthenticate(t *testing.T) {
	is := oidctest.New(t)
	now := time.Now()
	clock := now
	v, err := oidc.New([]oidc.IssuerConfig{{Issuer: is.URL(), Name: "github", Subjects: []string{"repo:bank/*:ref:refs/heads/main"},
		RepositoryClaim: "repository", RepositoryPrefix: "github.com/", CAFile: is.CAFile}}, oidc.WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exp := now.Add(5 * time.Minute)
	good := is.GitHubClaims("bank/payments", "refs/heads/main", exp)

	for _, kid := range []string{"r1", "e1"} {
		tok, err := v.Authenticate(ctx, is.Sign(t, kid, "", good))
		if err != nil {
			t.Fatalf("%s: %v", kid, err)
		}
		if tok.Name != "github:repo:bank/payments:ref:refs/heads/main" || !slices.Equal(tok.Scopes, []auth.Scope{auth.ScopeEvidenceWrite}) ||
			!slices.Equal(tok.Repositories, []string{"github.com/bank/payments"}) || tok.ExpiresAt == nil || tok.ExpiresAt.Unix() != exp.Unix() || !strings.HasPrefix(tok.ID, "oidc-") {
			t.Errorf("%s: token %+v", kid, tok)
		}
		if !tok.MatchRepository("https://github.com/bank/payments") || tok.MatchRepository("https://github.com/bank/cards") {
			t.Errorf("%s: the token is not limited to its repository", kid)
		}
	}

	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for key, val := range good {
			c[key] = val
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	tampered := is.Sign(t, "r1", "", good)
	parts := strings.Split(tampered, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(mustDecode(t, parts[1])), "bank/payments", "bank/cardsxyz", 2)))
	other := oidctest.New(t)
	for _, tc := range []struct {
		name, token, says string
	}{
		{"another branch", is.Sign(t, "r1", "", with("sub", "repo:bank/payments:ref:refs/heads/feature")), `subject "repo:bank/payments:ref:refs/heads/feature" is not among those trusted`},
		{"another organisation", is.Sign(t, "e1", "", with("sub", "repo:evil/payments:ref:refs/heads/main")), "is not among those trusted"},
		{"another audience", is.Sign(t, "r1", "", with("aud", []string{"sigstore"})), `not for audience "vouch"`},
		{"expired", is.Sign(t, "r1", "", with("exp", now.Add(-2*time.Minute).Unix())), "expired at"},
		{"no exp", is.Sign(t, "r1", "", with("exp", nil)), "no valid exp"},
		{"not yet valid", is.Sign(t, "r1", "", with("nbf", now.Add(10*time.Minute).Unix())), "not valid before"},
		{"no repository claim", is.Sign(t, "r1", "", with("repository", nil)), `no "repository" claim`},
		{"untrusted issuer", other.Sign(t, "r1", "", other.GitHubClaims("bank/payments", "refs/heads/main", exp)), "is not trusted (oidc_issuers)"},
		{"iss claimed, signed by another issuer's key", other.Sign(t, "r1", "", good), "bad signature"},
		{"tampered claims", strings.Join(parts, "."), "bad signature"},
		{"alg none", unsigned(good, "none"), "want RS256"},
		{"HS256 with the public key", is.Sign(t, "r1", "HS256", good), "want RS256"},
		{"unknown key", reKid(t, is.Sign(t, "e1", "", good), "e9"), `has no key "e9"`},
		{"a Vouch token", "vouch_" + strings.Repeat("a", 43), "not a JWT"},
		{"'*' does not cross ':'", is.Sign(t, "r1", "", with("sub", "repo:bank/payments:environment:x:ref:refs/heads/main")), "is not among those trusted"},
		{"exp as a string", is.Sign(t, "r1", "", with("exp", fmt.Sprint(exp.Unix()))), "no valid exp"},
	} {
		_, err := v.Authenticate(ctx, tc.token)
		if !errors.Is(err, auth.ErrUnauthenticated) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: err = %v; want unauthenticated, saying %q", tc.name, err, tc.says)
		}
	}

	// Claims are read by their exact names: a "SUB" beside "sub" is not the subject.
	twice := with("SUB", "repo:bank/cards:ref:refs/heads/main")
	if tok, err := v.Authenticate(ctx, is.Sign(t, "r1", "", twice)); err != nil || tok.Name != "github:repo:bank/payments:ref:refs/heads/main" {
		t.Errorf("a token with sub and SUB = %+v, %v; want the sub claim's subject", tok, err)
	}
	// A repository claim is a name, not a pattern.
	if tok, err := v.Authenticate(ctx, is.Sign(t, "r1", "", with("repository", "bank/*"))); err != nil || tok.MatchRepository("github.com/bank/payments") || !tok.MatchRepository("github.com/bank/*") {
		t.Errorf("repository claim bank/*: %+v, %v; want it to match only itself", tok, err)
	}

	// A rotated key is fetched when first seen, but the keys are not
	// fetched again for every unknown kid.
	hits := is.Hits.Load()
	is.AddKeys(t, "r2")
	if _, err := v.Authenticate(ctx, is.Sign(t, "r2", "", good)); !errors.Is(err, auth.ErrUnauthenticated) || is.Hits.Load() != hits {
		t.Errorf("a new key right after a fetch: err %v, %d fetches; want refused without fetching", err, is.Hits.Load()-hits)
	}
	clock = clock.Add(oidc.RefetchAfter)
	if _, err := v.Authenticate(ctx, is.Sign(t, "r2", "", good)); err != nil || is.Hits.Load() != hits+1 {
		t.Errorf("a new key %s later: err %v, %d fetches; want accepted after one fetch", oidc.RefetchAfter, err, is.Hits.Load()-hits)
	}

	// A key the issuer withdrew stops being trusted once the keys are
	// MaxKeyAge old: the next use fetches them again, in the background.
	late := is.GitHubClaims("bank/payments", "refs/heads/main", clock.Add(oidc.MaxKeyAge+5*time.Minute))
	withdrawn := is.Sign(t, "e1", "", late)
	is.RemoveKey("e1")
	clock = clock.Add(oidc.MaxKeyAge)
	hits = is.Hits.Load()
	v.Authenticate(ctx, withdrawn) // may still pass: the keys it holds are used while they are fetched
	waitFor(t, func() bool { return is.Hits.Load() == hits+1 })
	if _, err := v.Authenticate(ctx, withdrawn); !errors.Is(err, auth.ErrUnauthenticated) || !strings.Contains(err.Error(), `has no key "e1"`) {
		t.Errorf("a withdrawn key after %s: err = %v, want refused", oidc.MaxKeyAge, err)
	}

	// While a fetch is slow, tokens whose key is held are not held up.
	hold := make(chan struct{})
	is.Hold.Store(&hold)
	clock = clock.Add(oidc.RefetchAfter)
	go v.Authenticate(ctx, reKid(t, is.Sign(t, "r1", "", late), "r7")) // unknown: waits for the fetch
	waitFor(t, func() bool { return is.Hits.Load() == hits+2 })
	done := make(chan error)
	go func() { _, err := v.Authenticate(ctx, is.Sign(t, "r1", "", late)); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("a held key during a fetch: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("a token whose key is held waited for another's key fetch")
	}
	// A request that waits for the fetch gives up when its caller does.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := v.Authenticate(gone, reKid(t, is.Sign(t, "r1", "", late), "r8")); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled request waiting for a fetch: err = %v, want context.Canceled", err)
	}
	close(hold)
}

func TestIssuerUnavailable(t *testing.T) {
	ctx := context.Background()
	exp := time.Now().Add(5 * time.Minute)
	is := oidctest.New(t)
	is.Fail.Store(true)
	v, err := oidc.New([]oidc.IssuerConfig{{Issuer: is.URL(), Name: "gl", Subjects: []string{"*"}, RepositoryClaim: "repository", RepositoryPrefix: "github.com/", CAFile: is.CAFile}})
	if err != nil {
		t.Fatal(err)
	}
	// An issuer whose keys cannot be fetched is unavailable, not a
	// refusal, and failing fetches are not repeated for every request.
	for i := range 20 {
		if _, err := v.Authenticate(ctx, is.Sign(t, "r1", "", is.GitHubClaims("a/b", "refs/heads/main", exp))); !errors.Is(err, auth.ErrUnavailable) {
			t.Fatalf("request %d, issuer failing: err = %v, want ErrUnavailable", i, err)
		}
	}
	if n := is.Hits.Load(); n != 1 {
		t.Errorf("%d key fetches for 20 requests within %s, want 1", n, oidc.RefetchAfter)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
	}
}

func TestLooksLikeToken(t *testing.T) {
	for s, want := range map[string]bool{
		"eyJhbGciOiJSUzI1NiJ9.e30.c2ln":          true, // {"alg":"RS256"}.{}.sig
		"vouch_abc.def.ghi":                      false,
		"0123456789abcdef.0123456789.abcdef0123": false, // a long secret with two dots: not a JWT header
		"eyJ0eXAiOiJKV1QifQ.e30.c2ln":            false, // {"typ":"JWT"}: no alg
	} {
		if got := oidc.LooksLikeToken(s); got != want {
			t.Errorf("LooksLikeToken(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  oidc.IssuerConfig
		says string
	}{
		{oidc.IssuerConfig{Issuer: "http://issuer.example", Name: "x", Subjects: []string{"*"}}, "must be an https URL"},
		{oidc.IssuerConfig{Issuer: "https://issuer.example", Subjects: []string{"*"}}, "name: a short name"},
		{oidc.IssuerConfig{Issuer: "https://issuer.example", Name: "x"}, "subjects: list the subjects"},
		{oidc.IssuerConfig{Issuer: "https://issuer.example", Name: "x", Subjects: []string{"["}}, "not a valid pattern"},
		{oidc.IssuerConfig{Issuer: "https://issuer.example", Name: "x", Subjects: []string{"*"}, Scopes: []auth.Scope{auth.ScopeAdmin}}, `"admin" is not a scope a CI job can be given`},
		{oidc.IssuerConfig{Issuer: "https://issuer.example", Name: "x", Subjects: []string{"*"}, Scopes: []auth.Scope{auth.ScopeSnapshotsWrite}}, `"snapshots:write" is not a scope a CI job can be given`},
		{oidc.IssuerConfig{Issuer: "https://issuer.example", Name: "x", Subjects: []string{"*"}, RepositoryClaim: "repository"}, "repository_claim and repository_prefix are required"},
		{oidc.IssuerConfig{Issuer: "https://issuer.example", Name: "x", Subjects: []string{"*"}, Claims: map[string][]string{"job_workflow_ref": {}}}, `claims: "job_workflow_ref": want a claim name and the patterns`},
		{oidc.IssuerConfig{Issuer: "https://issuer.example", Name: "x", Subjects: []string{"*"}, Claims: map[string][]string{"job_workflow_ref": {"["}}}, `claims.job_workflow_ref: "[" is not a valid pattern`},
		{oidc.IssuerConfig{Issuer: "https://issuer.example", Name: "x", Subjects: []string{"*"}, RepositoryClaim: "repository", RepositoryPrefix: "github.com/", DeploymentEnvironments: map[string][]string{"production": {"prod"}}}, "deployment_environments: is for deployment_reviews"},
		{oidc.IssuerConfig{Issuer: "https://issuer.example", Name: "x", Subjects: []string{"*"}, RepositoryClaim: "repository", RepositoryPrefix: "github.com/", DeploymentReviews: "github", DeploymentEnvironments: map[string][]string{"production": {}}}, `deployment_environments: "production": want a GitHub environment and the Vouch environments`},
	} {
		if _, err := oidc.New([]oidc.IssuerConfig{tc.cfg}); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%+v: err = %v, want %q", tc.cfg, err, tc.says)
		}
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unsigned is a token with claims and alg, and no signature.
func unsigned(claims map[string]any, alg string) string {
	h, _ := json.Marshal(map[string]string{"alg": alg, "kid": "r1"})
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

// reKid changes a token's header to name another key, keeping its claims
// and signature.
func reKid(t *testing.T, token, kid string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	var h map[string]string
	json.Unmarshal(mustDecode(t, parts[0]), &h)
	h["kid"] = kid
	b, _ := json.Marshal(h)
	parts[0] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// Claims besides sub narrow who may report: on GitHub, only jobs of the
// organisation's central build workflow, whichever repository runs it.
func TestRequiredClaims(t *testing.T) {
	is := oidctest.New(t)
	const central = "bank/ci/.github/workflows/build.yml@refs/heads/main"
	v, err := oidc.New([]oidc.IssuerConfig{{Issuer: is.URL(), Name: "github", Subjects: []string{"repo:bank/*:ref:refs/heads/main"},
		Claims:          map[string][]string{"job_workflow_ref": {central}, "runner_environment": {"github-hosted", "self-hosted"}, "environment": {"*"}},
		RepositoryClaim: "repository", RepositoryPrefix: "github.com/", CAFile: is.CAFile}})
	if err != nil {
		t.Fatal(err)
	}
	claims := func(workflow any) map[string]any {
		c := is.GitHubClaims("bank/payments", "refs/heads/main", time.Now().Add(5*time.Minute))
		c["runner_environment"], c["environment"] = "github-hosted", "production"
		if workflow != nil {
			c["job_workflow_ref"] = workflow
		}
		return c
	}
	ctx := context.Background()
	if _, err := v.Authenticate(ctx, is.Sign(t, "r1", "", claims(central))); err != nil {
		t.Errorf("the central workflow: %v", err)
	}
	for _, tc := range []struct {
		name     string
		workflow any
		says     string
	}{
		{"the repository's own workflow", "bank/payments/.github/workflows/build.yml@refs/heads/main", `claim job_workflow_ref "bank/payments/.github/workflows/build.yml@refs/heads/main" is not among those trusted`},
		{"the central workflow from a branch", "bank/ci/.github/workflows/build.yml@refs/heads/feature", "is not among those trusted"},
		{"no such claim", nil, `claim job_workflow_ref "" is not among those trusted`},
		{"not a string", []string{central}, "claim job_workflow_ref"},
	} {
		if _, err := v.Authenticate(ctx, is.Sign(t, "r1", "", claims(tc.workflow))); err == nil || !errors.Is(err, auth.ErrUnauthenticated) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.says)
		}
	}
	// A claim required with "*" must be there: empty or null is absent.
	for _, env := range []any{"", nil} {
		c := claims(central)
		c["environment"] = env
		if _, err := v.Authenticate(ctx, is.Sign(t, "r1", "", c)); err == nil || !strings.Contains(err.Error(), `claim environment "" is not among those trusted`) {
			t.Errorf("environment %#v: %v", env, err)
		}
	}
}

// With deployment_reviews, a token names its deployment — the workflow
// run and environment Vouch asks the forge about — and without, none.
func TestDeploymentReviews(t *testing.T) {
	is := oidctest.New(t)
	cfg := oidc.IssuerConfig{Issuer: is.URL(), Name: "github", Subjects: []string{"repo:bank/*:environment:production"}, Scopes: []auth.Scope{auth.ScopeApprovalsWrite},
		RepositoryClaim: "repository", RepositoryPrefix: "github.com/", CAFile: is.CAFile}
	c := is.GitHubClaims("bank/payments", "refs/heads/main", time.Now().Add(5*time.Minute))
	c["sub"], c["environment"], c["run_id"], c["run_attempt"], c["sha"] = "repo:bank/payments:environment:production", "production", "4242", "1", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
	token := is.Sign(t, "r1", "", c)
	job := func(decides ...string) *auth.Deployment {
		return &auth.Deployment{Forge: "github", Repository: "bank/payments", Run: "4242", Attempt: "1", Environment: "production", Commit: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", Decides: decides}
	}
	for _, tc := range []struct {
		reviews string
		envs    map[string][]string
		want    *auth.Deployment
	}{
		{"", nil, nil},
		{"github", nil, job("production")},
		{"github", map[string][]string{"Production": {"prod", "prod-eu"}}, job("prod", "prod-eu")},
		{"github", map[string][]string{"staging": {"staging"}}, job("production")},
	} {
		cfg.DeploymentReviews, cfg.DeploymentEnvironments = tc.reviews, tc.envs
		v, err := oidc.New([]oidc.IssuerConfig{cfg})
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.Authenticate(context.Background(), token)
		if err != nil || !reflect.DeepEqual(got.Deployment, tc.want) {
			t.Errorf("deployment_reviews %q: %+v, %v; want %+v", tc.reviews, got.Deployment, err, tc.want)
		}
	}
}
