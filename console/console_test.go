package console_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/console"
	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/sqlite"
	"github.com/vouch-dev/vouch/test/testlog"
)

// fixture is the console over a real SQLite store, with the API beside it.
type fixture struct {
	t        *testing.T
	db       *sqlite.DB
	appender *journal.Appender
	auth     *auth.Service
	tokens   map[string]string // name -> secret
	ids      map[string]string // name -> token id
	srv      *httptest.Server
	logs     *testlog.Buffer
	cp       *journal.Checkpointer
	drift    *drift.Service
	cfg      console.Config // the console's, for replicas of it
}

func newFixture(t *testing.T, tls bool) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(dir, "vouch.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	appender := journal.NewAppender(db, journal.AppenderOptions{})
	t.Cleanup(func() { appender.Close(ctx) })
	f := &fixture{t: t, db: db, appender: appender, auth: auth.NewService(db, nil), tokens: map[string]string{}, ids: map[string]string{}, logs: &testlog.Buffer{}}
	for name, scopes := range map[string][]auth.Scope{
		"auditor": {auth.ScopeAuditRead},
		"ci":      {auth.ScopeEvidenceWrite},
		"admin":   {auth.ScopeAdmin},
	} {
		tok, secret, err := f.auth.Create(ctx, auth.Request{Name: name, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[name], f.ids[name] = secret, tok.ID
	}
	skey, _, err := journal.LoadOrCreateKey(filepath.Join(dir, "journal.key"), "vouch.test/journal")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := journal.VerifierKey(skey)
	f.cp = journal.NewCheckpointer(db, signer, journal.CheckpointerOptions{})
	envs := []string{"prod", "staging"}
	f.drift = &drift.Service{Store: db, Recorder: &drift.Recorder{Journal: appender, Store: db},
		Checker: drift.Checker{Evidence: db, Admitted: db}, Environments: envs, Journal: db}
	log := slog.New(slog.NewJSONHandler(f.logs, nil))
	apiServer := api.New(api.Config{Evidence: evidence.NewService(appender, envs, nil, evidence.WithBlobs(db)), EvidenceStore: db,
		Journal: db, Tokens: f.auth, Blobs: db, Drift: f.drift, Ready: db.Ping, Logger: log})
	f.cfg = console.Config{Tokens: f.auth, Sessions: db, Journal: db, Evidence: db, Blobs: db, Decisions: db, Drift: f.drift,
		Environments: envs, PublicKey: pub, API: apiServer, Logger: log}
	c, err := console.New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tls {
		f.srv = httptest.NewTLSServer(c)
	} else {
		f.srv = httptest.NewServer(c)
	}
	t.Cleanup(f.srv.Close)
	return f
}

// client is a browser: it keeps cookies and does not follow redirects.
func (f *fixture) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	c := *f.srv.Client() // a copy: the server's client is shared
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func (f *fixture) get(c *http.Client, path string) (*http.Response, string) {
	f.t.Helper()
	resp, err := c.Get(f.srv.URL + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs c in with the named token's secret (or secret itself) and
// returns the answer to the sign-in form.
func (f *fixture) signIn(c *http.Client, token, next string) *http.Response {
	f.t.Helper()
	resp, body := f.get(c, "/sign-in")
	m := csrfRE.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil {
		f.t.Fatalf("GET /sign-in = %d, no CSRF field:\n%s", resp.StatusCode, body)
	}
	secret, ok := f.tokens[token]
	if !ok {
		secret = token
	}
	form := url.Values{"csrf": {m[1]}, "token": {secret}, "next": {next}}
	req, _ := http.NewRequest("POST", f.srv.URL+"/sign-in", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.srv.URL)
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, ck := range resp.Cookies() {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

func TestSignInSetsASessionCookie(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) {
			f := newFixture(t, tls)
			c := f.client()
			resp := f.signIn(c, "auditor", "/decisions?outcome=denied")
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/decisions?outcome=denied" {
				t.Fatalf("sign-in = %d to %q, want 303 to /decisions?outcome=denied", resp.StatusCode, resp.Header.Get("Location"))
			}
			name := console.SessionCookie
			if tls {
				name = "__Host-" + name // this host only: no sibling subdomain can plant one
			}
			ck := cookieNamed(resp, name)
			if ck == nil {
				t.Fatalf("no cookie %s in %v", name, resp.Header["Set-Cookie"])
			}
			if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure != tls || ck.Domain != "" {
				t.Errorf("session cookie = %+v, want HttpOnly, SameSite=Strict, Path=/, no Domain, Secure=%v", ck, tls)
			}
			if strings.Contains(ck.Value, f.tokens["auditor"]) || len(ck.Value) < 40 {
				t.Errorf("session cookie value %q: want a random id, not the token", ck.Value)
			}
			if resp, body := f.get(c, "/decisions"); resp.StatusCode != 200 || !strings.Contains(body, "Signed in as <strong>auditor</strong>") {
				t.Errorf("GET /decisions after sign-in = %d:\n%s", resp.StatusCode, body)
			}
			if strings.Contains(f.logs.String(), f.tokens["auditor"]) {
				t.Errorf("the token's secret is in the log:\n%s", f.logs)
			}
			if !strings.Contains(f.logs.String(), `"msg":"console sign-in","token":"auditor"`) {
				t.Errorf("the sign-in is not logged with the token's name:\n%s", f.logs)
			}
		})
	}
}

func TestUnauthenticatedRequestsAreSentToSignIn(t *testing.T) {
	f := newFixture(t, false)
	c := f.client()
	for _, path := range []string{"/", "/decisions?environment=prod", "/journal", "/downloads/export", "/artifacts/sha256:" + strings.Repeat("a", 64)} {
		resp, _ := f.get(c, path)
		want := "/sign-in?next=" + url.QueryEscape(path)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("GET %s = %d to %q, want 303 to %q", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: Cache-Control %q, want no-store", path, resp.Header.Get("Cache-Control"))
		}
	}
	// A forged or expired session id is no session.
	jar := c.Jar
	u, _ := url.Parse(f.srv.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: console.SessionCookie, Value: "forged"}})
	if resp, _ := f.get(c, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET / with a forged session = %d, want 303", resp.StatusCode)
	}
}

func TestSignInRefused(t *testing.T) {
	f := newFixture(t, false)
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"wrong scope", "ci", http.StatusUnauthorized},
		{"unknown token", "vouch_" + strings.Repeat("x", 43), http.StatusUnauthorized},
		{"empty", " ", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.client()
			resp := f.signIn(c, tc.token, "/")
			if resp.StatusCode != tc.want || cookieNamed(resp, console.SessionCookie) != nil {
				t.Errorf("sign-in with %s = %d (cookies %v), want %d and no session", tc.name, resp.StatusCode, resp.Header["Set-Cookie"], tc.want)
			}
			if r, _ := f.get(c, "/"); r.StatusCode != http.StatusSeeOther {
				t.Errorf("GET / after a refused sign-in = %d, want 303", r.StatusCode)
			}
		})
	}
	if strings.Contains(f.logs.String(), f.tokens["ci"]) {
		t.Errorf("a refused token's secret is in the log")
	}
}

func TestSignInNeedsTheFormsCSRFToken(t *testing.T) {
	f := newFixture(t, false)
	post := func(c *http.Client, origin string, form url.Values) int {
		req, _ := http.NewRequest("POST", f.srv.URL+"/sign-in", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	c := f.client()
	if got := post(c, f.srv.URL, url.Values{"token": {f.tokens["auditor"]}}); got != http.StatusForbidden {
		t.Errorf("sign-in without the form's CSRF token = %d, want 403", got)
	}
	_, body := f.get(c, "/sign-in")
	csrf := csrfRE.FindStringSubmatch(body)[1]
	if got := post(c, "https://evil.example", url.Values{"token": {f.tokens["auditor"]}, "csrf": {csrf}}); got != http.StatusForbidden {
		t.Errorf("sign-in from another origin = %d, want 403", got)
	}
	if got := post(c, f.srv.URL, url.Values{"token": {f.tokens["auditor"]}, "csrf": {csrf + "x"}}); got != http.StatusForbidden {
		t.Errorf("sign-in with a wrong CSRF token = %d, want 403", got)
	}
	_, body = f.get(c, "/sign-in") // each refusal gives a new form
	csrf = csrfRE.FindStringSubmatch(body)[1]
	if got := post(c, f.srv.URL, url.Values{"token": {f.tokens["auditor"]}, "csrf": {csrf}}); got != http.StatusSeeOther {
		t.Errorf("sign-in with the form's CSRF token = %d, want 303", got)
	}
}

func TestSignInRedirectsOnlyWithinTheConsole(t *testing.T) {
	f := newFixture(t, false)
	for next, want := range map[string]string{
		"/artifacts?q=web":     "/artifacts?q=web",
		"//evil.example/":      "/",
		"/\\evil.example":      "/",
		"/\t/evil.example":     "/",
		"/%09/evil.example":    "/%09/evil.example", // an escaped tab stays a path
		"/a\\b":                "/",
		"/\n/evil.example":     "/",
		"https://evil.example": "/",
		"/sign-out":            "/",
		"":                     "/",
	} {
		resp := f.signIn(f.client(), "auditor", next)
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("sign-in with next=%q redirects to %q, want %q", next, got, want)
		}
	}
}

func TestSignOut(t *testing.T) {
	f := newFixture(t, false)
	c := f.client()
	f.signIn(c, "auditor", "/")
	_, body := f.get(c, "/")
	csrf := csrfRE.FindStringSubmatch(body)
	if csrf == nil {
		t.Fatalf("no sign-out form on the overview:\n%s", body)
	}
	signOut := func(token string) *http.Response {
		req, _ := http.NewRequest("POST", f.srv.URL+"/sign-out", strings.NewReader(url.Values{"csrf": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := signOut("forged"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out with a forged CSRF token = %d, want 403", resp.StatusCode)
	}
	if resp, _ := f.get(c, "/"); resp.StatusCode != 200 {
		t.Fatalf("a forged sign-out ended the session: GET / = %d", resp.StatusCode)
	}
	resp := signOut(csrf[1])
	if resp.StatusCode != http.StatusSeeOther || cookieNamed(resp, console.SessionCookie) == nil || cookieNamed(resp, console.SessionCookie).MaxAge >= 0 {
		t.Errorf("sign-out = %d %v, want 303 clearing the session cookie", resp.StatusCode, resp.Header["Set-Cookie"])
	}
	if resp, _ := f.get(c, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET / after sign-out = %d, want 303", resp.StatusCode)
	}
}

// replica serves another console over the fixture's database, with its
// own clock: another replica, or the same one after a restart.
func (f *fixture) replica(now func() time.Time) *httptest.Server {
	f.t.Helper()
	cfg := f.cfg
	cfg.Now = now
	c, err := console.New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	f.t.Cleanup(srv.Close)
	return srv
}

// getFrom is get at another server, with c's cookies for f's.
func (f *fixture) getFrom(c *http.Client, srv *httptest.Server, path string) (*http.Response, string) {
	f.t.Helper()
	u, _ := url.Parse(f.srv.URL)
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	for _, ck := range c.Jar.Cookies(u) {
		req.AddCookie(ck)
	}
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestSessionsAreSharedByReplicas signs in on one replica and reads pages
// and downloads on another; signing out on that one ends the session on
// both. The database holds neither the cookie nor the token's secret.
func TestSessionsAreSharedByReplicas(t *testing.T) {
	f := newFixture(t, false)
	f.seed()
	other := f.replica(nil)
	c := f.client()
	f.signIn(c, "auditor", "/")
	resp, body := f.getFrom(c, other, "/")
	if resp.StatusCode != 200 || !strings.Contains(body, "auditor") {
		t.Fatalf("GET / on the other replica = %d, want the overview for auditor:\n%s", resp.StatusCode, body)
	}
	if resp, body := f.getFrom(c, other, "/downloads/export?kind=admission"); resp.StatusCode != 200 {
		t.Errorf("journal export through the other replica's API = %d:\n%s", resp.StatusCode, body)
	}

	u, _ := url.Parse(f.srv.URL)
	var cookie string
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == console.SessionCookie {
			cookie = ck.Value
		}
	}
	stored, err := f.db.Session(context.Background(), auth.Hash(cookie))
	if err != nil {
		t.Fatalf("the session's hash is not stored: %v", err)
	}
	for _, v := range []string{stored.IDHash, stored.TokenHash, stored.Name, stored.CSRF} {
		if cookie == "" || v == cookie || v == f.tokens["auditor"] {
			t.Errorf("the stored session %+v holds the cookie or the token's secret", stored)
		}
	}

	csrf := csrfRE.FindStringSubmatch(body)
	if csrf == nil {
		t.Fatalf("no sign-out form on the other replica's overview:\n%s", body)
	}
	req, _ := http.NewRequest("POST", other.URL+"/sign-out", strings.NewReader(url.Values{"csrf": {csrf[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: console.SessionCookie, Value: cookie})
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out on the other replica = %d, want 303", resp.StatusCode)
	}
	if resp, _ := f.get(c, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET / on the first replica after signing out on the other = %d, want 303 to sign in", resp.StatusCode)
	}
}

// TestSessionsEndWhenIdleOrOld: a session ends after DefaultSessionIdle
// unused, and DefaultSessionMax after sign-in however much it is used.
func TestSessionsEndWhenIdleOrOld(t *testing.T) {
	f := newFixture(t, false)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	later := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	srv := f.replica(clock)
	status := func(c *http.Client) int {
		resp, _ := f.getFrom(c, srv, "/")
		return resp.StatusCode
	}

	idle := f.client()
	f.signIn(idle, "auditor", "/") // at the fixture's console, on the real clock: now
	busy := f.client()
	f.signIn(busy, "auditor", "/")
	if status(idle) != 200 || status(busy) != 200 {
		t.Fatal("fresh sessions refused")
	}
	step := console.DefaultSessionIdle / 2
	for i := 1; i <= 5; i++ {
		later(step)
		if got := status(busy); got != 200 {
			t.Fatalf("a session used every %s refused %s after sign-in: %d", step, time.Duration(i)*step, got)
		}
	}
	if got := status(idle); got != http.StatusSeeOther {
		t.Errorf("a session unused for %s = %d, want 303 to sign in", 5*step, got)
	}
	later(3 * time.Hour)
	if got := status(busy); got != 200 {
		t.Errorf("a session used %s ago, %s after sign-in = %d, want 200", 3*time.Hour, 5*step+3*time.Hour, got)
	}
	later(2 * time.Hour)
	if got := status(busy); got != http.StatusSeeOther {
		t.Errorf("a session %s after sign-in = %d, want 303 to sign in", 5*step+5*time.Hour, got)
	}
}

func TestRevokingTheTokenEndsTheSession(t *testing.T) {
	f := newFixture(t, false)
	c := f.client()
	f.signIn(c, "auditor", "/")
	if resp, _ := f.get(c, "/"); resp.StatusCode != 200 {
		t.Fatalf("GET / = %d", resp.StatusCode)
	}
	if err := f.auth.Revoke(context.Background(), f.ids["auditor"]); err != nil {
		t.Fatal(err)
	}
	if resp, _ := f.get(c, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET / after the token was revoked = %d, want 303 to sign in", resp.StatusCode)
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t, false)
	resp, _ := f.get(f.client(), "/sign-in")
	for k, want := range map[string]string{
		"Content-Security-Policy": console.ContentSecurityPolicy,
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
		"Cache-Control":           "no-store",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("GET /sign-in: %s = %q, want %q", k, got, want)
		}
	}
	for _, path := range []string{"/assets/style.css", "/assets/console.js"} {
		if resp, body := f.get(f.client(), path); resp.StatusCode != 200 || body == "" {
			t.Errorf("GET %s = %d", path, resp.StatusCode)
		}
	}
	if h := resp.Header.Get("Strict-Transport-Security"); h != "" {
		t.Errorf("plain HTTP answered with Strict-Transport-Security %q", h)
	}
	tlsFixture := newFixture(t, true)
	if resp, _ := tlsFixture.get(tlsFixture.client(), "/sign-in"); resp.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
		t.Errorf("over TLS: Strict-Transport-Security = %q", resp.Header.Get("Strict-Transport-Security"))
	}
}

func TestTheAPIIsServedBesideTheConsole(t *testing.T) {
	f := newFixture(t, false)
	resp, body := f.get(f.client(), "/api/v1/journal/entries")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET /api/v1/journal/entries without a token = %d %s, want 401 problem+json: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	// A console session is no API credential.
	c := f.client()
	f.signIn(c, "auditor", "/")
	if resp, _ := f.get(c, "/api/v1/journal/entries"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/journal/entries with a console session = %d, want 401", resp.StatusCode)
	}
	if resp, _ := f.get(c, "/healthz"); resp.StatusCode != 200 {
		t.Errorf("GET /healthz = %d", resp.StatusCode)
	}
}

// seeded is what seed recorded.
type seeded struct {
	v1, v2   string // digests
	between  time.Time
	deniedNS string
}

// seed records a release of web to prod: v1 built, tested, approved,
// admitted and running; then v2 built and denied (no approval), approved
// and admitted, running; and an unknown image running beside it.
func (f *fixture) seed() seeded {
	t := f.t
	t.Helper()
	ctx := context.Background()
	svc := evidence.NewService(f.appender, []string{"prod", "staging"}, nil)
	s := seeded{v1: "sha256:" + strings.Repeat("1a", 32), v2: "sha256:" + strings.Repeat("2b", 32), deniedNS: "prod"}
	passed := true
	admit := func(uid string, allowed bool, digest string, msgs ...string) {
		body, _ := json.Marshal(map[string]any{"uid": uid, "kind": "Deployment", "namespace": "prod", "name": "web", "user": "alice@example.com",
			"environment": "prod", "allowed": allowed, "messages": msgs,
			"images": []map[string]string{{"container": "web", "image": "registry.example.com/shop/web@" + digest, "digest": digest}}})
		if _, err := f.appender.Append(ctx, journal.Entry{Kind: journal.KindAdmission, Environment: "prod", Key: "admission:" + uid, Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	running := func(digest string) {
		ws := []drift.Workload{
			{Namespace: "prod", Kind: "Deployment", Name: "web", Pods: 3, Containers: []drift.Container{{Name: "web", Image: "registry.example.com/shop/web@" + digest, Digest: digest}}},
			{Namespace: "prod", Kind: "Deployment", Name: "debug", Pods: 1, Containers: []drift.Container{{Name: "sh", Image: "busybox:1.36", Digest: "sha256:" + strings.Repeat("ee", 32)}}},
		}
		if _, err := f.drift.Report(ctx, "prod", "test", ws); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range []string{s.v1, s.v2} {
		if _, _, err := svc.ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: "registry.example.com/shop/web", Digest: d,
			GitCommit: fmt.Sprintf("%d%039x", i+1, i), BuildURL: fmt.Sprintf("https://ci.example.com/builds/%d?tab=tests&attempt=1", i+1)}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.Attest(ctx, "ci", evidence.AttestationReport{Digest: d, Name: "unit-tests", Type: "junit", Passed: &passed}); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			admit("uid-v2-denied", false, d, `container "web": has no release approval for prod`)
		}
		if _, err := svc.Approve(ctx, "release-manager", evidence.ApprovalRequest{Digest: d, Environment: "prod", Decision: evidence.Approved, Reason: fmt.Sprintf("CAB-%d", 100+i)}); err != nil {
			t.Fatal(err)
		}
		admit(fmt.Sprintf("uid-v%d", i+1), true, d)
		running(d)
		if i == 0 {
			time.Sleep(20 * time.Millisecond)
			s.between = time.Now().UTC()
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, _, err := f.cp.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPages(t *testing.T) {
	f := newFixture(t, false)
	s := f.seed()
	if _, err := f.drift.Recorder.Record(context.Background(), drift.Snapshot{Environment: drift.ExemptEnvironment, Time: time.Now(), Workloads: []drift.Workload{
		{Namespace: "kube-system", Kind: "Deployment", Name: "coredns", Pods: 2, Containers: []drift.Container{{Name: "coredns", Image: "registry.k8s.io/coredns:v1.12.0"}}},
	}}, ""); err != nil {
		t.Fatal(err)
	}
	c := f.client()
	f.signIn(c, "auditor", "/")
	at := s.between.Format("2006-01-02T15:04:05.000000")
	for _, tc := range []struct {
		path     string
		want     int
		contains []string
		absent   []string
	}{
		{"/", 200, []string{`<a href="/environments/prod">prod</a>`, `<span class="badge bad">1</span>`, "staging", "no snapshot yet"}, nil},
		{"/environments/prod", 200, []string{"What runs now", "registry.example.com/shop/web@" + s.v2, "busybox:1.36", "unknown", "admitted", "denied", "started"}, nil},
		{"/environments/prod?at=" + url.QueryEscape(at), 200, []string{"What ran at", "registry.example.com/shop/web@" + s.v1}, []string{"registry.example.com/shop/web@" + s.v2 + "</td>"}},
		{"/environments/prod?at=yesterday-ish", 200, []string{"As of: ", "is not a date"}, nil},
		{"/", 200, []string{`<a href="/environments/exempt">exempt</a>`, "1 recorded, not evaluated"}, nil},
		{"/environments/exempt", 200, []string{"exempt from admission control", "registry.k8s.io/coredns:v1.12.0", `badge muted">exempt`}, []string{"0 undocumented"}},
		{"/environments/nowhere", 404, []string{"There is no environment"}, nil},
		{"/environments/prod/diff?from=" + url.QueryEscape(at), 200, []string{"Changed (1)", s.v1[:19], s.v2[:19]}, nil},
		{"/decisions", 200, []string{"uid-v2-denied", "has no release approval for prod"}[1:], nil},
		{"/decisions?outcome=denied", 200, []string{"has no release approval for prod", `class="no-print">why?</a>`}, []string{`badge ok">allowed`}},
		{"/decisions?outcome=allowed&environment=prod&namespace=prod", 200, []string{`badge ok">allowed`}, []string{`badge bad">denied`}},
		{"/decisions?q=ALICE", 200, []string{"alice@example.com"}, nil},
		{"/decisions?q=nobody-at-all", 200, []string{"No decisions match."}, nil},
		{"/decisions?outcome=maybe", 400, []string{"Outcome must be allowed or denied."}, nil},
		{"/decisions?to=" + url.QueryEscape(at), 200, []string{"uid"[:0]}, []string{"has no release approval"}},
		{"/artifacts", 200, []string{"registry.example.com/shop/web", s.v1[:19]}, nil},
		{"/artifacts/" + s.v1, 200, []string{"Provenance", "https://ci.example.com/builds/1", "unit-tests", "passed", "unsigned", "CAB-100", "release-manager", "Where it ran", "Periods it ran in prod"}, []string{"still running"}},
		{"/artifacts/" + s.v2, 200, []string{"running now", "still running", "has no release approval for prod", "denied"}, nil},
		{"/artifacts/sha256:" + strings.Repeat("0", 64), 404, []string{"Vouch knows nothing about"}, nil},
		{"/artifacts/not-a-digest", 400, []string{"sha256:"}, nil},
		{"/journal", 200, []string{"Latest signed checkpoint", "vouch.test/journal", "vouch journal verify --public-key"}, nil},
		{"/journal?verify=1", 200, []string{"Verified:", "signature of the latest checkpoint"}, []string{"FAILED"}},
		{"/journal/entries/0", 200, []string{"Journal entry 0", "Leaf hash", "proven"}, nil},
		{"/journal/entries/99999", 404, []string{"no entry 99999"}, nil},
		{"/downloads", 200, []string{"Download decisions", "Verifiable journal export", "Audit package"}, nil},
		{"/no-such-page", 404, []string{"There is no such page."}, nil},
	} {
		resp, body := f.get(c, tc.path)
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s = %d, want %d:\n%s", tc.path, resp.StatusCode, tc.want, body)
			continue
		}
		for _, s := range tc.contains {
			if !strings.Contains(body, s) {
				t.Errorf("GET %s: page lacks %q", tc.path, s)
			}
		}
		for _, s := range tc.absent {
			if strings.Contains(body, s) {
				t.Errorf("GET %s: page has %q", tc.path, s)
			}
		}
		if resp.StatusCode == 200 && !strings.Contains(body, `<main id="main"`) {
			t.Errorf("GET %s: no main landmark", tc.path)
		}
	}
	if strings.Contains(f.logs.String(), `"level":"ERROR"`) {
		t.Errorf("errors logged:\n%s", f.logs)
	}
}

func TestDecisionsDownload(t *testing.T) {
	f := newFixture(t, false)
	f.seed()
	c := f.client()
	f.signIn(c, "auditor", "/")
	resp, body := f.get(c, "/decisions/export?format=csv&environment=prod")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || !strings.Contains(resp.Header.Get("Content-Disposition"), "vouch-decisions.csv") {
		t.Fatalf("CSV download = %d %v", resp.StatusCode, resp.Header)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[0][0] != "journal_index" || rows[1][3] != "allowed" || rows[2][3] != "denied" {
		t.Errorf("CSV rows = %q, want a header and 3 decisions newest first", rows)
	}
	resp, body = f.get(c, "/decisions/export?format=jsonl&outcome=denied")
	lines := strings.Split(strings.TrimSpace(body), "\n")
	var d drift.Decision
	if resp.StatusCode != 200 || len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &d) != nil || d.Allowed || d.UID != "uid-v2-denied" {
		t.Errorf("JSONL download of denied decisions = %d %q", resp.StatusCode, body)
	}
	if resp, _ := f.get(c, "/decisions/export?format=xml"); resp.StatusCode != 400 {
		t.Errorf("format=xml = %d, want 400", resp.StatusCode)
	}
}

func TestJournalExportGoesThroughTheAPI(t *testing.T) {
	f := newFixture(t, false)
	f.seed()
	c := f.client()
	f.signIn(c, "auditor", "/")
	resp, body := f.get(c, "/downloads/export?kind=admission")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/jsonl" || !strings.Contains(body, `"checkpoint"`) {
		t.Errorf("export = %d %s:\n%.500s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if !strings.Contains(f.logs.String(), `"path":"/api/v1/audit/export","status":200`) || !strings.Contains(f.logs.String(), `"token":"auditor"`) {
		t.Errorf("the export was not served by the API as the auditor:\n%s", f.logs)
	}
}

func TestAuditPackage(t *testing.T) {
	f := newFixture(t, false)
	s := f.seed()
	// Recorded after the seed's checkpoint: not in the package yet.
	yes := true
	if _, _, err := evidence.NewService(f.appender, nil, nil).Attest(context.Background(), "ci",
		evidence.AttestationReport{Digest: s.v2, Name: "late-scan", Type: "sarif", Passed: &yes}); err != nil {
		t.Fatal(err)
	}
	c := f.client()
	f.signIn(c, "auditor", "/")
	resp, body := f.get(c, "/artifacts/"+s.v2+"/audit-package")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("audit package = %d %v", resp.StatusCode, resp.Header)
	}
	zr, err := zip.NewReader(strings.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, zf := range zr.File {
		rc, _ := zf.Open()
		files[zf.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	dir := "vouch-audit-" + strings.TrimPrefix(s.v2, "sha256:")[:12] + "/"
	for _, name := range []string{"README.md", "evidence.json", "entries.jsonl", "checkpoint", "public-key.txt"} {
		if len(files[dir+name]) == 0 {
			t.Errorf("audit package lacks %s (has %v)", name, keys(files))
		}
	}
	// artifact, attestation, approval, and two decisions.
	if n := bytes.Count(files[dir+"entries.jsonl"], []byte("\n")); n != 5 {
		t.Errorf("entries.jsonl has %d entries, want 5", n)
	}
	pkg := fstest.MapFS{}
	for name, b := range files {
		pkg[strings.TrimPrefix(name, dir)] = &fstest.MapFile{Data: b}
	}
	v, err := journal.NewVerifier(strings.TrimSpace(string(files[dir+"public-key.txt"])))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := console.VerifyPackage(pkg, v)
	if err != nil || rep.Proven != 5 || rep.Digest != s.v2 {
		t.Fatalf("VerifyPackage = %+v, %v; want 5 entries about %s proven", rep, err, s.v2)
	}
	if bytes.Contains(files[dir+"evidence.json"], []byte("late-scan")) {
		t.Error("evidence.json shows a record newer than the package's checkpoint")
	}
	// Any change to an entry's leaf is found.
	orig := pkg["entries.jsonl"].Data
	pkg["entries.jsonl"] = &fstest.MapFile{Data: bytes.Replace(orig, []byte("CAB-101"), []byte("CAB-999"), 1)}
	if _, err := console.VerifyPackage(pkg, v); !errors.Is(err, console.ErrPackage) {
		t.Errorf("VerifyPackage of an edited approval = %v, want ErrPackage", err)
	}
	// An entry the checkpoint does not cover proves nothing, and fails.
	extra := regexp.MustCompile(`^\{"index":\d+`).ReplaceAll(bytes.SplitAfter(orig, []byte("\n"))[0], []byte(`{"index":100`))
	pkg["entries.jsonl"] = &fstest.MapFile{Data: append(slices.Clone(orig), extra...)}
	if _, err := console.VerifyPackage(pkg, v); !errors.Is(err, console.ErrPackage) || !strings.Contains(err.Error(), "nothing proves it") {
		t.Errorf("VerifyPackage with an entry past the checkpoint = %v, want ErrPackage", err)
	}
	pkg["entries.jsonl"] = &fstest.MapFile{Data: orig}
	// Every entry must be about the package's artifact.
	ev0 := pkg["evidence.json"].Data
	pkg["evidence.json"] = &fstest.MapFile{Data: bytes.ReplaceAll(ev0, []byte(s.v2), []byte(s.v1))}
	if _, err := console.VerifyPackage(pkg, v); !errors.Is(err, console.ErrPackage) || !strings.Contains(err.Error(), "is not about") {
		t.Errorf("VerifyPackage of another artifact's entries = %v, want ErrPackage", err)
	}
	pkg["evidence.json"] = &fstest.MapFile{Data: ev0}
	cp := pkg["checkpoint"].Data
	pkg["checkpoint"] = &fstest.MapFile{Data: bytes.Replace(cp, []byte("\n"), []byte("\n\n"), 1)}
	if _, err := console.VerifyPackage(pkg, v); !errors.Is(err, console.ErrPackage) {
		t.Errorf("VerifyPackage with a forged checkpoint = %v, want ErrPackage", err)
	}
	pkg["checkpoint"] = &fstest.MapFile{Data: cp}
	// evidence.json's records are checked against their entries: an edited
	// one, or one whose entry is missing, fails.
	ev := pkg["evidence.json"].Data
	for what, edited := range map[string][]byte{
		"an approval's reason":    bytes.Replace(ev, []byte("CAB-101"), []byte("CAB-999"), 1),
		"an attestation's result": bytes.Replace(ev, []byte(`"passed": true`), []byte(`"passed": false`), 1),
		"a decision's outcome":    bytes.Replace(ev, []byte(`"allowed": true`), []byte(`"allowed": false`), 1),
	} {
		if bytes.Equal(edited, ev) {
			t.Fatalf("evidence.json has no %s to edit:\n%s", what, ev)
		}
		pkg["evidence.json"] = &fstest.MapFile{Data: edited}
		if _, err := console.VerifyPackage(pkg, v); !errors.Is(err, console.ErrPackage) || !strings.Contains(err.Error(), "evidence.json") {
			t.Errorf("VerifyPackage with %s edited in evidence.json = %v, want ErrPackage naming evidence.json", what, err)
		}
	}
	pkg["evidence.json"] = &fstest.MapFile{Data: ev}
	lines := bytes.SplitAfter(orig, []byte("\n"))
	pkg["entries.jsonl"] = &fstest.MapFile{Data: bytes.Join(lines[1:], nil)}
	if _, err := console.VerifyPackage(pkg, v); !errors.Is(err, console.ErrPackage) || !strings.Contains(err.Error(), "lacks") {
		t.Errorf("VerifyPackage without the entry of an evidence.json record = %v, want ErrPackage", err)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestTimelineShowsTheLatest(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	for i := range console.TimelineLimit + 10 {
		d := fmt.Sprintf("sha256:%064x", i+1)
		ws := []drift.Workload{{Namespace: "prod", Kind: "Deployment", Name: "web", Pods: 1,
			Containers: []drift.Container{{Name: "web", Image: fmt.Sprintf("registry.example.com/web:%d", i), Digest: d}}}}
		if _, err := f.drift.Report(ctx, "prod", "test", ws); err != nil {
			t.Fatal(err)
		}
	}
	c := f.client()
	f.signIn(c, "auditor", "/")
	_, body := f.get(c, "/environments/prod")
	last := fmt.Sprintf("registry.example.com/web:%d<", console.TimelineLimit+9)
	if !strings.Contains(body, last) || strings.Contains(body, "registry.example.com/web:0<") || !strings.Contains(body, "Only the latest 200 are shown") {
		t.Errorf("the timeline of %d changes does not show the latest %d, saying so:\n%s", console.TimelineLimit+10, console.TimelineLimit, body)
	}
	if n := strings.Count(body, `badge ok">changed</span>`); n != console.TimelineLimit {
		t.Errorf("the timeline shows %d changes, want %d", n, console.TimelineLimit)
	}
}

func TestDecisionsPages(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	for i := range 60 {
		body, _ := json.Marshal(map[string]any{"uid": fmt.Sprintf("uid-%02d", i), "kind": "Deployment", "namespace": "prod", "name": fmt.Sprintf("app-%02d", i),
			"user": "ci", "environment": "prod", "allowed": true})
		if _, err := f.appender.Append(ctx, journal.Entry{Kind: journal.KindAdmission, Environment: "prod", Key: fmt.Sprintf("admission:uid-%02d", i), Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	c := f.client()
	f.signIn(c, "auditor", "/")
	_, body := f.get(c, "/decisions?environment=prod")
	next := regexp.MustCompile(`href="(/decisions\?[^"]*before=\d+[^"]*)" rel="next"`).FindStringSubmatch(body)
	if strings.Count(body, "<tr>")-1 != 50 || !strings.Contains(body, "prod/app-59") || strings.Contains(body, "prod/app-09<") || next == nil {
		t.Fatalf("first page: want the newest 50 decisions and a link to older ones:\n%s", body)
	}
	_, body = f.get(c, strings.ReplaceAll(next[1], "&amp;", "&"))
	if strings.Count(body, "<tr>")-1 != 10 || !strings.Contains(body, "prod/app-09<") || strings.Contains(body, "prod/app-10<") ||
		strings.Contains(body, `rel="next"`) || !strings.Contains(body, "← Newest") {
		t.Errorf("second page: want the oldest 10, a link back to the newest and none to older:\n%s", body)
	}
}

// TestSignInLimitPerClientBehindAProxy: behind a trusted proxy, sign-in
// attempts are limited per client (X-Forwarded-For), so one client cannot
// lock everyone out; from anyone else the header is ignored, so varying it
// does not get around the limit.
func TestSignInLimitPerClientBehindAProxy(t *testing.T) {
	f := newFixture(t, false)
	attempt := func(srv *httptest.Server, forwardedFor string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/sign-in", strings.NewReader("token=wrong"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", forwardedFor)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cfg := f.cfg
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	c, err := console.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	proxied := httptest.NewServer(c)
	defer proxied.Close()
	for i := 0; i < console.DefaultSignInLimit; i++ {
		attempt(proxied, "203.0.113.1")
	}
	if got := attempt(proxied, "203.0.113.1"); got != http.StatusTooManyRequests {
		t.Errorf("attempt %d from one client behind the proxy = %d, want 429", console.DefaultSignInLimit+1, got)
	}
	if got := attempt(proxied, "10.9.8.7, 203.0.113.2"); got == http.StatusTooManyRequests {
		t.Error("another client behind the proxy was limited too")
	}

	for i := 0; i <= console.DefaultSignInLimit; i++ {
		attempt(f.srv, fmt.Sprintf("198.51.100.%d", i))
	}
	if got := attempt(f.srv, "198.51.100.200"); got != http.StatusTooManyRequests {
		t.Errorf("untrusted peer varying X-Forwarded-For = %d, want 429", got)
	}
}
