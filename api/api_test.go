package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/sqlite"
)

type fixture struct {
	t       *testing.T
	srv     *httptest.Server
	tokens  map[string]string // name -> secret
	auth    *auth.Service
	db      *sqlite.DB
	journal *journal.Appender
}

// newFixture serves the API over a real SQLite store; configure may add to
// the server's configuration.
func newFixture(t *testing.T, configure ...func(*fixture, *api.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "vouch.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	appender := journal.NewAppender(db, journal.AppenderOptions{})
	t.Cleanup(func() { appender.Close(ctx) })
	tokens := auth.NewService(db, nil)
	f := &fixture{t: t, tokens: map[string]string{}, auth: tokens, db: db, journal: appender}
	for name, scopes := range map[string][]auth.Scope{
		"ci":      {auth.ScopeEvidenceWrite},
		"rm":      {auth.ScopeApprovalsWrite},
		"auditor": {auth.ScopeAuditRead},
		"admin":   {auth.ScopeAdmin},
	} {
		_, secret, err := tokens.Create(ctx, auth.Request{Name: name, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[name] = secret
	}
	cfg := api.Config{
		Evidence: evidence.NewService(appender, []string{"default", "prod"}, nil, evidence.WithBlobs(db), evidence.WithHistory(db)), EvidenceStore: db, Journal: db, Tokens: tokens,
		Blobs: db, Drift: &drift.Service{Store: db, Recorder: &drift.Recorder{Journal: appender, Store: db}, Environments: []string{"default", "prod"}},
		Ready: db.Ping, MaxBodyBytes: 4096, MaxBlobBytes: 8192,
	}
	for _, c := range configure {
		c(f, &cfg)
	}
	s := api.New(cfg)
	f.srv = httptest.NewServer(s)
	t.Cleanup(f.srv.Close)
	return f
}

// do sends a request as the named token ("" for none) and returns the status
// and the decoded JSON body.
func (f *fixture) do(method, path, token, contentType, body string) (int, map[string]any, http.Header) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if secret, ok := f.tokens[token]; ok {
		req.Header.Set("Authorization", "Bearer "+secret)
	} else if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			f.t.Fatalf("%s %s: body is not a JSON object: %s", method, path, raw)
		}
	}
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			f.t.Errorf("%s %s: error with Content-Type %q, want application/problem+json", method, path, ct)
		}
		if out["status"] != float64(resp.StatusCode) || out["title"] == "" || !strings.HasPrefix(fmt.Sprint(out["type"]), api.ProblemBase) {
			f.t.Errorf("%s %s: not a problem document: %v", method, path, out)
		}
	}
	return resp.StatusCode, out, resp.Header
}

// inBackground sends a request as the named token from another goroutine
// and delivers its status (0 when it could not be sent): a request held in
// flight while the test sends others.
func (f *fixture) inBackground(method, path, token, contentType, body string) <-chan int {
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Set("Authorization", "Bearer "+f.tokens[token])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	return done
}

func (f *fixture) postJSON(path, token, body string) (int, map[string]any) {
	f.t.Helper()
	code, out, _ := f.do("POST", path, token, "application/json", body)
	return code, out
}

func digest(n int) string { return fmt.Sprintf("sha256:%064x", n) }

// refusingStore is the real store, refusing every entry whose body holds
// marker, as PostgreSQL refuses content it cannot store.
type refusingStore struct {
	*sqlite.DB
	marker string
}

func (s refusingStore) AppendBatch(ctx context.Context, entries []journal.Entry) ([]journal.Appended, error) {
	for _, e := range entries {
		if strings.Contains(string(e.Body), s.marker) {
			return nil, journal.ErrRefused
		}
	}
	return s.DB.AppendBatch(ctx, entries)
}

// TestRefusedRecord: content the store refuses is a 422 the client should
// not retry, not a 503 it would retry for ever; nothing is stored.
func TestRefusedRecord(t *testing.T) {
	f := newFixture(t, func(f *fixture, cfg *api.Config) {
		app := journal.NewAppender(refusingStore{f.db, "refuse-me"}, journal.AppenderOptions{})
		t.Cleanup(func() { app.Close(context.Background()) })
		cfg.Evidence = evidence.NewService(app, []string{"default", "prod"}, nil)
	})
	code, out, header := f.do("POST", "/api/v1/artifacts", "ci", "application/json", `{"name":"registry.example.com/refuse-me","digest":"`+digest(7)+`"}`)
	if code != 422 || out["type"] != api.ProblemBase+"refused" || header.Get("Retry-After") != "" {
		t.Errorf("refused record = %d %v (Retry-After %q), want 422 refused without Retry-After", code, out, header.Get("Retry-After"))
	}
	if code, _, _ := f.do("GET", "/api/v1/artifacts/"+digest(7), "auditor", "", ""); code != 404 {
		t.Errorf("refused artifact: GET = %d, want 404", code)
	}
	if code, _ := f.postJSON("/api/v1/artifacts", "ci", `{"name":"registry.example.com/app","digest":"`+digest(8)+`"}`); code != 201 {
		t.Errorf("next record = %d, want 201", code)
	}
}

func TestArtifactIdempotencyAndConflict(t *testing.T) {
	f := newFixture(t)
	body := `{"name":"registry.example.com/app","digest":"` + digest(1) + `","git_commit":"0123456789abcdef0123456789abcdef01234567","build_url":"https://ci.example.com/1"}`
	code, first := f.postJSON("/api/v1/artifacts", "ci", body)
	if code != 201 || first["reported_by"] != "ci" {
		t.Fatalf("first POST = %d %v, want 201 reported by ci", code, first)
	}
	code, again := f.postJSON("/api/v1/artifacts", "ci", body)
	if code != 200 || again["id"] != first["id"] {
		t.Errorf("same POST again = %d %v, want 200 and the stored record", code, again)
	}
	// A re-run of the job, or the image under another registry name: the
	// same source, answered with the first record.
	rerun := strings.Replace(strings.Replace(body, "ci.example.com/1", "ci.example.com/1/attempts/2", 1), "registry.example.com/app", "prod.example.com/app", 1)
	code, again = f.postJSON("/api/v1/artifacts", "ci", rerun)
	if code != 200 || again["id"] != first["id"] || again["build_url"] != "https://ci.example.com/1" {
		t.Errorf("a re-run = %d %v, want 200 and the first record", code, again)
	}
	code, conflict := f.postJSON("/api/v1/artifacts", "ci", strings.Replace(body, "0123456789abcdef0123", "fedcba9876543210fedc", 1))
	if code != 409 || !strings.Contains(fmt.Sprint(conflict["detail"]), "another source") {
		t.Errorf("another commit = %d %v, want 409", code, conflict)
	}
}

func TestEvidenceFlowAndQueries(t *testing.T) {
	f := newFixture(t)
	f.postJSON("/api/v1/artifacts", "ci", `{"name":"registry.example.com/app","digest":"`+digest(2)+`","git_commit":"0123456789abcdef0123456789abcdef01234567"}`)
	if code, out := f.postJSON("/api/v1/attestations", "ci", `{"digest":"`+digest(2)+`","name":"unit-tests","type":"junit","passed":true,"payload":{"tests":12}}`); code != 201 {
		t.Fatalf("attestation: %d %v", code, out)
	}
	code, ap := f.postJSON("/api/v1/approvals", "rm", `{"digest":"`+digest(2)+`","environment":"prod","decision":"approved","reason":"CAB-7","expires_at":"2099-01-01T00:00:00Z"}`)
	if code != 201 || ap["approver"] != "rm" {
		t.Fatalf("approval: %d %v, want 201 approved by the token's identity", code, ap)
	}
	// The approver cannot be chosen in the body.
	if code, out := f.postJSON("/api/v1/approvals", "rm", `{"digest":"`+digest(2)+`","environment":"prod","decision":"approved","approver":"ceo"}`); code != 400 {
		t.Errorf("approval naming an approver: %d %v, want 400", code, out)
	}

	code, ev, _ := f.do("GET", "/api/v1/artifacts/"+digest(2), "auditor", "", "")
	if code != 200 || ev["artifact"] == nil || len(ev["attestations"].([]any)) != 1 || len(ev["approvals"].([]any)) != 1 {
		t.Fatalf("GET artifact = %d %v", code, ev)
	}
	if p := ev["attestations"].([]any)[0].(map[string]any)["payload"]; fmt.Sprint(p) != "map[tests:12]" {
		t.Errorf("attestation payload = %v", p)
	}
	if code, _, _ := f.do("GET", "/api/v1/artifacts/"+digest(99), "auditor", "", ""); code != 404 {
		t.Errorf("GET unknown artifact = %d, want 404", code)
	}
	if code, _, _ := f.do("GET", "/api/v1/artifacts/sha256:nope", "auditor", "", ""); code != 400 {
		t.Errorf("GET malformed digest = %d, want 400", code)
	}
	code, list, _ := f.do("GET", "/api/v1/artifacts?commit=0123456789abcdef0123456789abcdef01234567", "auditor", "", "")
	if code != 200 || len(list["artifacts"].([]any)) != 1 {
		t.Errorf("list by commit = %d %v", code, list)
	}

	code, page, _ := f.do("GET", "/api/v1/journal/entries?limit=2", "auditor", "", "")
	if code != 200 || len(page["entries"].([]any)) != 2 || page["next"] != float64(2) {
		t.Fatalf("journal page 1 = %d %v", code, page)
	}
	code, page, _ = f.do("GET", "/api/v1/journal/entries?from=2&kind=approval&environment=prod", "auditor", "", "")
	if code != 200 || len(page["entries"].([]any)) != 1 || page["next"] != nil {
		t.Errorf("journal filtered = %d %v", code, page)
	}
	for _, q := range []string{"from=-1", "from=x", "limit=0", "limit=5000"} {
		if code, _, _ := f.do("GET", "/api/v1/journal/entries?"+q, "auditor", "", ""); code != 400 {
			t.Errorf("journal ?%s = %d, want 400", q, code)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, path, body string
		wantStatus       int
		wantFields       []string
	}{
		{"empty body", "/api/v1/artifacts", ``, 400, nil},
		{"malformed", "/api/v1/artifacts", `{"name":`, 400, nil},
		{"array", "/api/v1/artifacts", `[]`, 400, nil},
		{"trailing data", "/api/v1/artifacts", `{"name":"a","digest":"` + digest(1) + `"} {}`, 400, nil},
		{"unknown field", "/api/v1/artifacts", `{"name":"a","digest":"` + digest(1) + `","extra":1}`, 400, []string{"extra"}},
		{"wrong type", "/api/v1/artifacts", `{"name":42,"digest":"` + digest(1) + `"}`, 400, []string{"name"}},
		{"missing fields", "/api/v1/artifacts", `{}`, 422, []string{"name", "digest"}},
		{"bad digest and url", "/api/v1/artifacts", `{"name":"a","digest":"sha256:ABC","build_url":"javascript:alert(1)","git_commit":"abc"}`, 422, []string{"digest", "git_commit", "build_url"}},
		{"name with digest", "/api/v1/artifacts", `{"name":"a@sha256:00","digest":"` + digest(1) + `"}`, 422, []string{"name"}},
		{"attestation without passed", "/api/v1/attestations", `{"digest":"` + digest(1) + `","name":"unit-tests"}`, 422, []string{"passed"}},
		{"attestation bad name and payload", "/api/v1/attestations", `{"digest":"` + digest(1) + `","name":"Unit Tests","passed":true,"payload":[1]}`, 422, []string{"name", "payload"}},
		{"passed as string", "/api/v1/attestations", `{"digest":"` + digest(1) + `","name":"t","passed":"yes"}`, 400, []string{"passed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := f.postJSON(tt.path, "admin", tt.body)
			if code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%v)", code, tt.wantStatus, out)
			}
			var fields []string
			if errs, ok := out["errors"].([]any); ok {
				for _, e := range errs {
					fields = append(fields, e.(map[string]any)["field"].(string))
				}
			}
			if fmt.Sprint(fields) != fmt.Sprint(tt.wantFields) {
				t.Errorf("fields = %v, want %v (%v)", fields, tt.wantFields, out["detail"])
			}
		})
	}
	approvalTests := []struct{ body, field string }{
		{`{"digest":"` + digest(1) + `","environment":"qa","decision":"approved"}`, "environment"},
		{`{"digest":"` + digest(1) + `","environment":"prod","decision":"maybe"}`, "decision"},
		{`{"digest":"` + digest(1) + `","environment":"prod","decision":"rejected"}`, "reason"},
		{`{"digest":"` + digest(1) + `","environment":"prod","decision":"approved","expires_at":"2001-01-01T00:00:00Z"}`, "expires_at"},
	}
	for _, tt := range approvalTests {
		code, out := f.postJSON("/api/v1/approvals", "rm", tt.body)
		errs, _ := out["errors"].([]any)
		if code != 422 || len(errs) != 1 || errs[0].(map[string]any)["field"] != tt.field {
			t.Errorf("approval %s = %d %v, want 422 on %s", tt.body, code, out, tt.field)
		}
	}
	code, out := f.postJSON("/api/v1/approvals", "rm", `{"digest":"`+digest(1)+`","environment":"prod","decision":"approved","expires_at":"tomorrow"}`)
	errs, _ := out["errors"].([]any)
	if code != 400 || len(errs) != 1 || errs[0].(map[string]any)["field"] != "expires_at" || !strings.Contains(fmt.Sprint(out["detail"]), "RFC 3339") {
		t.Errorf("unparseable time = %d %v, want 400 on expires_at asking for RFC 3339", code, out)
	}
}

func TestTransportLimits(t *testing.T) {
	f := newFixture(t)
	big := `{"name":"` + strings.Repeat("a", 5000) + `"}`
	if code, _ := f.postJSON("/api/v1/artifacts", "ci", big); code != 413 {
		t.Errorf("oversized body = %d, want 413", code)
	}
	if code, _, _ := f.do("POST", "/api/v1/artifacts", "ci", "text/plain", `{}`); code != 415 {
		t.Errorf("text/plain body = %d, want 415", code)
	}
	if code, _, _ := f.do("GET", "/api/v1/nothing", "ci", "", ""); code != 404 {
		t.Errorf("unknown route = %d, want 404", code)
	}
	if code, _, _ := f.do("PUT", "/api/v1/artifacts", "ci", "application/json", `{}`); code != 405 {
		t.Errorf("PUT = %d, want 405", code)
	}
	if code, _, _ := f.do("GET", "/readyz", "", "", ""); code != 200 {
		t.Errorf("readyz = %d", code)
	}
}

// TestLogsThePeerAddress: X-Forwarded-For is anyone's to send, so the
// request log names the peer, not the header's address.
func TestLogsThePeerAddress(t *testing.T) {
	var logs bytes.Buffer
	f := newFixture(t, func(_ *fixture, cfg *api.Config) { cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/v1/journal/entries", nil) // health checks are not logged
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(logs.String(), `"remote":"127.0.0.1"`) || strings.Contains(logs.String(), "6.6.6.6") {
		t.Errorf("request log:\n%s\nwant the peer 127.0.0.1, not the forwarded address", logs.String())
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	body := `{"name":"a","digest":"` + digest(3) + `"}`
	code, _, h := f.do("POST", "/api/v1/artifacts", "", "application/json", body)
	if code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token = %d (WWW-Authenticate %q), want 401 with a Bearer challenge", code, h.Get("WWW-Authenticate"))
	}
	if code, _, _ := f.do("POST", "/api/v1/artifacts", "vouch_forged_token_0123456789abcdefghijkl", "application/json", body); code != 401 {
		t.Errorf("forged token = %d, want 401", code)
	}
	if code, _ := f.postJSON("/api/v1/artifacts", "auditor", body); code != 403 {
		t.Errorf("audit:read token posting evidence = %d, want 403", code)
	}
	// The scheme is case-insensitive (RFC 9110); a scheme alone or another one is not a token.
	for _, tt := range []struct {
		header string
		want   int
	}{{"bearer " + f.tokens["ci"], 201}, {"BEARER " + f.tokens["ci"], 200}, {"Bearer", 401}, {"Basic " + f.tokens["ci"], 401}, {f.tokens["ci"], 401}} {
		header, want := tt.header, tt.want
		req, _ := http.NewRequest("POST", f.srv.URL+"/api/v1/artifacts", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Authorization %.12q… = %d, want %d", header, resp.StatusCode, want)
		}
	}
	if code, _ := f.postJSON("/api/v1/approvals", "ci", `{}`); code != 403 {
		t.Errorf("evidence:write token approving = %d, want 403", code)
	}
	if code, _, _ := f.do("GET", "/api/v1/journal/entries", "ci", "", ""); code != 403 {
		t.Errorf("evidence:write token reading the journal = %d, want 403", code)
	}

	code, created := f.postJSON("/api/v1/tokens", "admin", `{"name":"temp","scopes":["audit:read"],"expires_in":"1h"}`)
	if code != 201 || !strings.HasPrefix(fmt.Sprint(created["secret"]), auth.Prefix) || created["expires_at"] == nil {
		t.Fatalf("create token = %d %v", code, created)
	}
	f.tokens["temp"] = created["secret"].(string)
	if code, _, _ := f.do("GET", "/api/v1/journal/entries", "temp", "", ""); code != 200 {
		t.Errorf("new token = %d, want 200", code)
	}
	if code, _, _ := f.do("DELETE", "/api/v1/tokens/"+created["id"].(string), "admin", "", ""); code != 204 {
		t.Errorf("revoke = %d, want 204", code)
	}
	code, out, _ := f.do("GET", "/api/v1/journal/entries", "temp", "", "")
	if code != 401 || !strings.Contains(fmt.Sprint(out["detail"]), "revoked") {
		t.Errorf("revoked token = %d %v, want 401 saying revoked", code, out)
	}
	if code, _, _ := f.do("DELETE", "/api/v1/tokens/nope", "admin", "", ""); code != 404 {
		t.Errorf("revoke unknown = %d, want 404", code)
	}
	// A token that names its person: its approvals record the person; a
	// client cannot claim identities in the approval itself.
	code, created = f.postJSON("/api/v1/tokens", "admin", `{"name":"rm-alice","scopes":["approvals:write"],"identities":["Alice@Example.com","alice"]}`)
	if code != 201 || fmt.Sprint(created["identities"]) != "[alice@example.com alice]" {
		t.Fatalf("create token with identities = %d %v", code, created)
	}
	f.tokens["rm-alice"] = created["secret"].(string)
	if code, _ := f.postJSON("/api/v1/approvals", "rm-alice", `{"digest":"`+digest(1)+`","environment":"prod","decision":"approved","approver_identities":["bob"]}`); code != 400 {
		t.Errorf("an approval claiming identities = %d, want 400", code)
	}
	code, ap := f.postJSON("/api/v1/approvals", "rm-alice", `{"digest":"`+digest(1)+`","environment":"prod","decision":"approved"}`)
	if code != 201 || ap["approver"] != "rm-alice" || fmt.Sprint(ap["approver_identities"]) != "[alice@example.com alice]" {
		t.Errorf("approval by a token with identities = %d %v; want the token's identities", code, ap)
	}
	if code, out := f.postJSON("/api/v1/tokens", "admin", `{"name":"rm-x","scopes":["approvals:write"],"identities":["two words"]}`); code != 422 || !strings.Contains(fmt.Sprint(out["detail"]), "identities") {
		t.Errorf("an identity with a space = %d %v, want 422 naming identities", code, out)
	}
	if code, _ := f.postJSON("/api/v1/tokens", "admin", `{"name":"ci","scopes":["audit:read"]}`); code != 409 {
		t.Errorf("duplicate token name = %d, want 409", code)
	}
	if code, _ := f.postJSON("/api/v1/tokens", "admin", `{"name":"x","scopes":["root"]}`); code != 422 {
		t.Errorf("unknown scope = %d, want 422", code)
	}
	if code, _ := f.postJSON("/api/v1/tokens", "ci", `{"name":"x","scopes":["admin"]}`); code != 403 {
		t.Errorf("non-admin creating a token = %d, want 403", code)
	}
	code, list, _ := f.do("GET", "/api/v1/tokens", "admin", "", "")
	if code != 200 || len(list["tokens"].([]any)) != 6 || strings.Contains(fmt.Sprint(list), "hash") {
		t.Errorf("list tokens = %d %v, want 6 tokens and no hashes", code, list)
	}
}

// TestStoreDownIs503 takes the evidence store away: a report that cannot be
// recorded is a 503 with Retry-After, never a 201.
func TestStoreDownIs503(t *testing.T) {
	ctx := context.Background()
	open := func() *sqlite.DB {
		db, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "vouch.db")})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	tokenDB, evidenceDB := open(), open()
	defer tokenDB.Close()
	tokens := auth.NewService(tokenDB, nil)
	_, secret, err := tokens.Create(ctx, auth.Request{Name: "ci", Scopes: []auth.Scope{auth.ScopeEvidenceWrite}})
	if err != nil {
		t.Fatal(err)
	}
	appender := journal.NewAppender(evidenceDB, journal.AppenderOptions{})
	defer appender.Close(ctx)
	srv := httptest.NewServer(api.New(api.Config{Evidence: evidence.NewService(appender, nil, nil), EvidenceStore: evidenceDB,
		Journal: evidenceDB, Tokens: tokens, Ready: func(context.Context) error { return nil }, Degraded: evidenceDB.Ping, Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	evidenceDB.Close()

	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/artifacts", strings.NewReader(`{"name":"a","digest":"`+digest(1)+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	problem, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(problem), "sql") || !strings.Contains(string(problem), "nothing was recorded") {
		t.Errorf("503 problem %s: want it to say nothing was recorded, without the database's error", problem)
	}
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("report with the store down = %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	resp, err = http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"degraded"`) {
		t.Errorf("readyz with the store down = %d %s, want 200 degraded", resp.StatusCode, body)
	}
}

func httpGet(t *testing.T, url string) int {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestJournalProofsAndExport checks the audit endpoints against the
// journal package's own verification.
func TestJournalProofsAndExport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(dir, "vouch.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tokens := auth.NewService(db, nil)
	_, secret, _ := tokens.Create(ctx, auth.Request{Name: "auditor", Scopes: []auth.Scope{auth.ScopeAuditRead, auth.ScopeEvidenceWrite}})
	appender := journal.NewAppender(db, journal.AppenderOptions{})
	defer appender.Close(ctx)
	srv := httptest.NewServer(api.New(api.Config{Evidence: evidence.NewService(appender, nil, nil), EvidenceStore: db, Journal: db, Tokens: tokens,
		Ready: db.Ping, Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	get := func(path string) (int, []byte, http.Header) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, resp.Header
	}
	if code, _, _ := get("/api/v1/journal/checkpoint"); code != 404 {
		t.Errorf("checkpoint before any = %d, want 404", code)
	}
	if code, _, _ := get("/api/v1/audit/export"); code != 404 {
		t.Errorf("export before any checkpoint = %d, want 404", code)
	}

	svc := evidence.NewService(appender, nil, nil)
	for i := 0; i < 9; i++ {
		if _, _, err := svc.ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: fmt.Sprintf("app%d", i), Digest: digest(i)}); err != nil {
			t.Fatal(err)
		}
	}
	skey, _, _ := journal.LoadOrCreateKey(filepath.Join(dir, "journal.key"), "vouch.test/api")
	signer, _ := note.NewSigner(skey)
	cp, _, err := journal.NewCheckpointer(db, signer, journal.CheckpointerOptions{}).Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vkey, _ := journal.VerifierKey(skey)
	verifier, _ := journal.NewVerifier(vkey)

	code, body, h := get("/api/v1/journal/checkpoint")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || string(body) != string(cp.Note) {
		t.Fatalf("checkpoint = %d %q", code, body)
	}
	var incl struct {
		Size     uint64
		LeafHash journal.Hash `json:"leaf_hash"`
		Root     journal.Hash
		Hashes   []journal.Hash
	}
	code, body, _ = get("/api/v1/journal/proof/inclusion?index=4")
	if err := json.Unmarshal(body, &incl); code != 200 || err != nil {
		t.Fatalf("inclusion proof = %d %s", code, body)
	}
	if incl.Size != 9 || incl.Root != cp.Root || journal.VerifyInclusion(4, 9, incl.LeafHash, incl.Hashes, cp.Root) != nil {
		t.Errorf("inclusion proof %+v does not verify against the checkpoint", incl)
	}
	var cons struct {
		Root   journal.Hash
		Hashes []journal.Hash
	}
	code, body, _ = get("/api/v1/journal/proof/consistency?from=3&to=9")
	if err := json.Unmarshal(body, &cons); code != 200 || err != nil {
		t.Fatalf("consistency proof = %d %s", code, body)
	}
	root3, _ := journal.RootAt(ctx, db, 3)
	if journal.VerifyConsistency(3, 9, cons.Hashes, root3, cp.Root) != nil {
		t.Error("consistency proof does not verify")
	}
	for _, q := range []string{"inclusion?index=9", "inclusion?index=x", "inclusion?index=1&size=10", "consistency?from=0&to=9", "consistency?from=5&to=4"} {
		if code, _, _ := get("/api/v1/journal/proof/" + q); code != 400 {
			t.Errorf("proof/%s = %d, want 400", q, code)
		}
	}

	code, body, h = get("/api/v1/audit/export?from=2&to=7")
	if code != 200 || h.Get("Content-Type") != "application/jsonl" {
		t.Fatalf("export = %d %s", code, h.Get("Content-Type"))
	}
	rep, err := journal.VerifyExport(bytes.NewReader(body), verifier, journal.VerifyOptions{})
	if err != nil || rep.Entries != 5 || rep.From != 2 || rep.To != 7 {
		t.Errorf("export verifies: %+v, %v", rep, err)
	}
	code, body, _ = get("/api/v1/audit/export?from=" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + "&format=csv")
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if code != 200 || err != nil || len(rows) != 10 || rows[0][0] != "index" || rows[3][2] != "artifact" || rows[3][4] != "app2@"+digest(2) || rows[3][6] != "ci" {
		t.Errorf("csv export = %d %v %v", code, rows, err)
	}
	if code, _, _ := get("/api/v1/audit/export?format=xml"); code != 400 {
		t.Errorf("export format=xml = %d, want 400", code)
	}
	if code, _, _ := get("/api/v1/audit/export?from=yesterday"); code != 400 {
		t.Errorf("export from=yesterday = %d, want 400", code)
	}
}
