package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/exempt"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/sqlite"
)

// apiServer is a real API on SQLite for the client commands.
type apiServer struct {
	url, token string
	db         *sqlite.DB
	srv        *httptest.Server
}

func newAPIServer(t *testing.T) apiServer {
	t.Helper()
	return startAPIServer(t, httptest.NewServer)
}

// startAPIServer serves the API on a SQLite store with start
// (httptest.NewServer or NewTLSServer).
func startAPIServer(t *testing.T, start func(http.Handler) *httptest.Server) apiServer {
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
	_, secret, err := tokens.Create(ctx, auth.Request{Name: "admin", Scopes: []auth.Scope{auth.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	srv := start(api.New(api.Config{
		Evidence: evidence.NewService(appender, []string{"prod"}, nil, evidence.WithBlobs(db), evidence.WithHistory(db)), EvidenceStore: db, Blobs: db,
		Journal: db, Tokens: tokens, Ready: db.Ping, Exemptions: exempt.New(appender, db, []string{"prod"}),
	}))
	t.Cleanup(srv.Close)
	return apiServer{url: srv.URL, token: secret, db: db, srv: srv}
}

// vouch runs a command against s and returns its output and exit status.
func (s apiServer) vouch(args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), append(args, "--server", s.url, "--token", s.token), &out, &errOut)
	return out.String(), errOut.String(), code
}

// fastRetries makes the clients' waits between retries a millisecond.
func fastRetries(t *testing.T) {
	old := retryBackoff
	retryBackoff = time.Millisecond
	t.Cleanup(func() { retryBackoff = old })
}

// noCI clears the variables CI systems are detected by.
func noCI(t *testing.T) {
	for _, v := range []string{"GITHUB_ACTIONS", "GITLAB_CI", "TF_BUILD", "JENKINS_URL", "JENKINS_HOME"} {
		t.Setenv(v, "")
	}
}

func TestArtifactReportDefaultsFromCI(t *testing.T) {
	s := newAPIServer(t)
	noCI(t)
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("GITHUB_SHA", "4b825dc642cb6eb9a060e54bf8d69288fbee4904")
	t.Setenv("GITHUB_SERVER_URL", "https://github.com")
	t.Setenv("GITHUB_REPOSITORY", "shop/web")
	t.Setenv("GITHUB_RUN_ID", "77")
	t.Setenv("GITHUB_WORKFLOW", "release")
	d := evidence.BlobDigest([]byte("app"))
	out, errOut, code := s.vouch("artifact", "report", "registry.example.com/shop/web", "--digest", "registry.example.com/shop/web@"+d, "--pipeline", "hotfix", "-o", "json")
	if code != 0 {
		t.Fatalf("artifact report: exit %d: %s", code, errOut)
	}
	var a evidence.Artifact
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatal(err)
	}
	want := evidence.Artifact{Name: "registry.example.com/shop/web", Digest: d, GitCommit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
		Repository: "https://github.com/shop/web", BuildURL: "https://github.com/shop/web/actions/runs/77", Pipeline: "hotfix"}
	if a.Name != want.Name || a.Digest != want.Digest || a.GitCommit != want.GitCommit || a.Repository != want.Repository || a.BuildURL != want.BuildURL || a.Pipeline != want.Pipeline {
		t.Errorf("recorded %+v, want the CI's values and the --pipeline flag's: %+v", a, want)
	}
}

func TestAttestArguments(t *testing.T) {
	s := newAPIServer(t)
	noCI(t)
	d := evidence.BlobDigest([]byte("app"))
	junitFile := "../../evidence/junit/testdata/pytest.xml"
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no name", []string{"attest", "junit", "--digest", d, junitFile}, 2, "needs --name"},
		{"no subject", []string{"attest", "junit", "--name", "unit-tests", junitFile}, 2, "one of --digest, --file, --dir or --oci"},
		{"two subjects", []string{"attest", "junit", "--name", "unit-tests", "--digest", d, "--file", junitFile, junitFile}, 2, "name the artifact once"},
		{"bad digest", []string{"attest", "junit", "--name", "unit-tests", "--digest", "sha256:abc", junitFile}, 2, `--digest "sha256:abc"`},
		{"no report", []string{"attest", "junit", "--name", "unit-tests", "--digest", d}, 2, "needs the report file"},
		{"missing report", []string{"attest", "junit", "--name", "unit-tests", "--digest", d, "nope.xml"}, 2, "nope.xml: no such file"},
		{"missing subject file", []string{"attest", "junit", "--name", "unit-tests", "--file", "nope.tar.gz", junitFile}, 2, "nope.tar.gz: no such file"},
		{"not junit", []string{"attest", "junit", "--name", "unit-tests", "--digest", d, "../../evidence/sarif/testdata/semgrep.sarif"}, 1, "semgrep.sarif"},
		{"two sarif files", []string{"attest", "sarif", "--name", "scan", "--digest", d, "a.sarif", "b.sarif"}, 2, "reads one file"},
		{"bad fail-on", []string{"attest", "sarif", "--name", "scan", "--digest", d, "--fail-on", "fatal", "../../evidence/sarif/testdata/semgrep.sarif"}, 2, "--fail-on"},
		{"fail-on is sarif's", []string{"attest", "junit", "--name", "unit-tests", "--digest", d, "--fail-on", "error", junitFile}, 2, "-fail-on"},
		{"generic without passed", []string{"attest", "generic", "--name", "review", "--digest", d}, 2, "--passed=true or --passed=false"},
		{"generic payload not an object", []string{"attest", "generic", "--name", "review", "--digest", d, "--passed=true", "--payload", "[1]"}, 2, "JSON object"},
		{"unknown format", []string{"attest", "cobertura", "coverage.xml"}, 2, "unknown attest format"},
		{"bad name", []string{"attest", "generic", "--name", "Code Review", "--digest", d, "--passed=true"}, 1, "name: must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := s.vouch(tt.args...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("vouch %v: exit %d %q, want %d with %q", tt.args, code, errOut, tt.wantCode, tt.wantErr)
			}
		})
	}

	// A failed attestation is recorded: exit 0, or 1 with --exit-code.
	failing := "../../evidence/junit/testdata/surefire-TEST-com.example.billing.InvoiceServiceTest.xml"
	out, _, code := s.vouch("attest", "junit", "--name", "unit-tests", "--digest", d, failing)
	if code != 0 || !strings.HasPrefix(out, "recorded: FAILED unit-tests (junit) for "+d) {
		t.Errorf("failed attestation: exit %d %q, want 0 and recorded: FAILED", code, out)
	}
	if out, _, code := s.vouch("attest", "junit", "--name", "unit-tests", "--digest", d, failing, "--exit-code"); code != 1 || !strings.HasPrefix(out, "already recorded: FAILED") {
		t.Errorf("failed attestation with --exit-code: exit %d %q, want 1", code, out)
	}
	if out, _, code := s.vouch("attest", "junit", "--name", "unit-tests", "--digest", d, junitFile, "--exit-code"); code != 1 {
		t.Errorf("pytest.xml has failures: exit %d %q, want 1 with --exit-code", code, out)
	}
}

// TestTokenCreateExpiry: a lifetime that is not positive is refused (it
// made a token that never expires), and days are accepted.
func TestTokenCreateExpiry(t *testing.T) {
	s := newAPIServer(t)
	for _, v := range []string{"-5h", "0s", "0d", "soon"} {
		if _, errOut, code := s.vouch("token", "create", "--name", "bad", "--scopes", "audit:read", "--expires-in", v); code != 2 || !strings.Contains(errOut, "--expires-in") {
			t.Errorf("--expires-in %s: exit %d %q, want 2 naming --expires-in", v, code, errOut)
		}
	}
	out, errOut, code := s.vouch("token", "create", "--name", "auditor", "--scopes", "audit:read", "--expires-in", "3d", "-o", "json")
	var created struct {
		ExpiresAt *time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(out), &created); code != 0 || err != nil || created.ExpiresAt == nil {
		t.Fatalf("--expires-in 3d: exit %d %q %q, want a token with an expiry", code, out, errOut)
	}
	if d := time.Until(*created.ExpiresAt); d < 71*time.Hour || d > 72*time.Hour {
		t.Errorf("--expires-in 3d: expires in %s", d)
	}
	out, _, _ = s.vouch("token", "list")
	if strings.Contains(out, "bad") {
		t.Errorf("a refused token was created:\n%s", out)
	}
}

// TestTrustedCA: a server whose certificate the system does not trust is
// reached with --ca (VOUCH_CA); a --server that is not an http(s) URL is a
// usage error, not an unreachable server.
func TestTrustedCA(t *testing.T) {
	s := startAPIServer(t, httptest.NewTLSServer)
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	// Retrying never helps: the setup must change (exit 2), and the
	// message says how.
	if _, errOut, code := s.vouch("token", "list"); code != 2 || !strings.Contains(errOut, "certificate") || !strings.Contains(errOut, "--ca (VOUCH_CA)") {
		t.Errorf("without --ca: exit %d %q, want 2 naming the certificate and --ca", code, errOut)
	}
	if out, errOut, code := s.vouch("token", "list", "--ca", ca); code != 0 || !strings.Contains(out, "admin") {
		t.Errorf("with --ca: exit %d %q %q, want the token list", code, out, errOut)
	}
	t.Setenv("VOUCH_CA", ca)
	if _, errOut, code := s.vouch("token", "list"); code != 0 {
		t.Errorf("with VOUCH_CA: exit %d %q", code, errOut)
	}
	if _, errOut, code := s.vouch("token", "list", "--ca", filepath.Join(t.TempDir(), "none.crt")); code != 2 || !strings.Contains(errOut, "--ca") {
		t.Errorf("--ca of a missing file: exit %d %q, want 2", code, errOut)
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"token", "list", "--server", "localhost:8080", "--token", s.token}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "http:// or https://") {
		t.Errorf("--server without a scheme: exit %d %q, want 2", code, errOut.String())
	}
}

func TestApproveArguments(t *testing.T) {
	s := newAPIServer(t)
	d := evidence.BlobDigest([]byte("app"))
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no digest", []string{"approve", "--environment", "prod"}, 2, "needs one DIGEST"},
		{"no environment", []string{"approve", d}, 2, "needs --environment"},
		{"reject without reason", []string{"approve", d, "--environment", "prod", "--reject"}, 2, "needs --reason"},
		{"bad expiry", []string{"approve", d, "--environment", "prod", "--expires", "soon"}, 2, "--expires"},
		{"unknown environment", []string{"approve", d, "--environment", "qa"}, 1, `"qa" is not a configured environment`},
		{"list with an argument", []string{"approvals", "list", d}, 2, "use --digest"},
		{"unknown approvals command", []string{"approvals", "show"}, 2, "unknown approvals command"},
	}
	for _, tt := range tests {
		_, errOut, code := s.vouch(tt.args...)
		if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
			t.Errorf("%s: vouch %v: exit %d %q, want %d with %q", tt.name, tt.args, code, errOut, tt.wantCode, tt.wantErr)
		}
	}
	out, errOut, code := s.vouch("approve", d, "--environment", "prod", "--reason", "CAB-1234", "--expires", "7d", "-o", "json")
	var a evidence.Approval
	if code != 0 || json.Unmarshal([]byte(out), &a) != nil || a.Decision != "approved" || a.Reason != "CAB-1234" || a.ExpiresAt == nil ||
		a.ExpiresAt.Sub(time.Now()) < 6*24*time.Hour {
		t.Fatalf("approve: exit %d %s %s", code, out, errOut)
	}
	if out, _, code := s.vouch("approvals", "list", "--digest", d); code != 0 || !strings.Contains(out, "prod         approved  admin") {
		t.Errorf("approvals list: exit %d\n%s", code, out)
	}
}

// TestRecordedJSON: -o json of the commands that record evidence prints
// the record's fields, as it did, and "created": false when the server
// answered with the record it already kept ("already recorded").
func TestRecordedJSON(t *testing.T) {
	s := newAPIServer(t)
	noCI(t)
	d := evidence.BlobDigest([]byte("app"))
	report := []string{"artifact", "report", "registry.example.com/shop/web", "--digest", d, "--commit", strings.Repeat("4b", 20), "-o", "json"}
	attest := []string{"attest", "generic", "--name", "review", "--digest", d, "--passed=true", "-o", "json"}
	approve := []string{"approve", d, "--environment", "prod", "--reason", "CAB-1234", "-o", "json"}
	artifact := func() any { return new(evidence.Artifact) }
	attestation := func() any { return new(evidence.Attestation) }
	approval := func() any { return new(evidence.Approval) }
	tests := []struct {
		name        string
		args        []string
		record      func() any // a record of the type the command prints
		wantCreated bool
	}{
		{"artifact report", report, artifact, true},
		{"artifact report again", report, artifact, false},
		{"attest generic", attest, attestation, true},
		{"attest generic again", attest, attestation, false},
		{"approve", approve, approval, true},
		{"approve again", approve, approval, true}, // a new decision
	}
	for _, tt := range tests {
		out, errOut, code := s.vouch(tt.args...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tt.name, code, errOut)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%s: %v\n%s", tt.name, err, out)
		}
		if got["created"] != tt.wantCreated {
			t.Errorf("%s: created = %v, want %v\n%s", tt.name, got["created"], tt.wantCreated, out)
		}
		delete(got, "created")
		// The rest is the record as it was printed before "created" was added.
		rec := tt.record()
		if err := json.Unmarshal([]byte(out), rec); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: -o json but created (-record +got):\n%s", tt.name, diff)
		}
	}
}

// TestExemptExpiry: exempt --expires is read as token create --expires-in
// is (lifetime): a positive duration, also in days; the server holds the
// limit of 30 days.
func TestExemptExpiry(t *testing.T) {
	s := newAPIServer(t)
	args := func(expires string) []string {
		return []string{"exempt", "--environment", "prod", "--image", "registry.example.com/vendor/*", "--reason", "INC-4711", "--expires", expires, "-o", "json"}
	}
	for _, v := range []string{"soon", "-1h", "0", "0d", "d"} {
		if _, errOut, code := s.vouch(args(v)...); code != 2 || !strings.Contains(errOut, fmt.Sprintf("--expires %q: want a positive duration such as 72h or 7d", v)) {
			t.Errorf("exempt --expires %q: exit %d %q, want 2 naming --expires", v, code, errOut)
		}
	}
	if _, errOut, code := s.vouch(args("31d")...); code != 1 || !strings.Contains(errOut, "must be within 720h0m0s of now") {
		t.Errorf("exempt --expires 31d: exit %d %q, want 1: the server's limit", code, errOut)
	}
	before := time.Now()
	out, errOut, code := s.vouch(args("7d")...)
	var e exempt.Exemption
	if code != 0 || json.Unmarshal([]byte(out), &e) != nil {
		t.Fatalf("exempt --expires 7d: exit %d %s %s", code, out, errOut)
	}
	if week := 7 * 24 * time.Hour; e.ExpiresAt.Before(before.Add(week).Truncate(time.Second)) || e.ExpiresAt.After(time.Now().Add(week)) {
		t.Errorf("exempt --expires 7d between %v and now: expires at %v, want a week later", before, e.ExpiresAt)
	}
}

func TestExpiry(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Time{
		"72h": now.Add(72 * time.Hour), "7d": now.Add(7 * 24 * time.Hour), "2026-12-01T00:00:00Z": time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, err := expiry(v, now); err != nil || !got.Equal(want) {
			t.Errorf("expiry(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"", "soon", "-1h", "0d", "d"} {
		if _, err := expiry(v, now); err == nil {
			t.Errorf("expiry(%q) succeeded", v)
		}
	}
}

func TestDigestArg(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		d: d, strings.Repeat("AB", 32): d, "registry.example.com:5000/app@" + d: d, "sha256:abc": "", "": "", "app:1.0": "",
	} {
		got, ok := digestArg(in)
		if ok != (want != "") || ok && got != want {
			t.Errorf("digestArg(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestFingerprintCommand(t *testing.T) {
	tests := []struct {
		args     []string
		want     string
		wantCode int
	}{
		{[]string{"../../evidence/fingerprint/testdata/oci-buildx"}, "sha256:9fa1d18cb7a448f0b87606e2b2aafd9e20ff5ebca4fd60d379a208d16458c7f0\n", 0},
		{[]string{"../../evidence/fingerprint/testdata/oci-two-tags", "--oci-ref", "1.4.2"}, "sha256:2636d978251a131e09fd295cbb4c26fb3ec3ff61767398003f0a2cea0e38f2b7\n", 0},
		{[]string{"../../evidence/fingerprint/testdata/oci-two-tags"}, "", 1},
		{[]string{"../../go.mod", "--oci-ref", "1.4.2"}, "", 2},
		{[]string{}, "", 2},
		{[]string{"a", "b"}, "", 2},
		{[]string{"no-such-file"}, "", 2}, // a path that is not there: the command line is wrong
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"fingerprint"}, tt.args...), &out, &errOut)
		if code != tt.wantCode || out.String() != tt.want {
			t.Errorf("vouch fingerprint %v: exit %d %q (%s), want %d %q", tt.args, code, out.String(), errOut.String(), tt.wantCode, tt.want)
		}
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"fingerprint", "-o", "json", "../../evidence/junit/testdata"}, &out, &out); code != 0 ||
		!strings.Contains(out.String(), `"kind": "dir"`) {
		t.Errorf("fingerprint of a directory as JSON: exit %d %s", code, out.String())
	}
}

func TestExitCodes(t *testing.T) {
	fastRetries(t)
	s := newAPIServer(t)
	d := evidence.BlobDigest([]byte("app"))
	if _, _, code := s.vouch("artifact", "get", d); code != 1 {
		t.Errorf("artifact get of an unknown digest: exit %d, want 1 (404)", code)
	}
	if _, _, code := s.vouch("search", "0123456"); code != 1 {
		t.Errorf("search without a match: exit %d, want 1", code)
	}
	if _, _, code := s.vouch("search", "main"); code != 1 {
		t.Errorf("search for a branch name: exit %d, want 1 (400 from the server)", code)
	}
	s.db.Close() // the server now answers 503, Retry-After: 1
	if _, errOut, code := s.vouch("approvals", "list"); code != 3 || !strings.Contains(errOut, "gave up after 4 attempts") {
		t.Errorf("server error: exit %d %s, want 3 after retries", code, errOut)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"search", "0123456", "--server", "http://" + addr, "--token", "x"}, &out, &errOut); code != 3 ||
		!strings.Contains(errOut.String(), "server unreachable") {
		t.Errorf("unreachable server: exit %d %s, want 3", code, errOut.String())
	}
	for _, args := range [][]string{{"artifact"}, {"attest", "--help"}, {"approve", "-h"}, {"search", "--help"}, {"fingerprint", "-h"}} {
		out.Reset()
		errOut.Reset()
		if code := run(context.Background(), args, &out, &errOut); code != 0 || strings.Count(out.String(), "Examples:") != 1 || errOut.Len() > 0 {
			t.Errorf("vouch %v: exit %d, want help with examples once on stdout, nothing on stderr:\n%s\nstderr: %s", args, code, out.String(), errOut.String())
		}
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"token", "create", "--nope"}, &out, &errOut); code != 2 ||
		strings.Count(errOut.String(), "-nope") != 1 || strings.Count(errOut.String(), "Usage:") != 1 {
		t.Errorf("vouch token create --nope: exit %d, want 2 with the error and the usage once:\n%s", code, errOut.String())
	}
	for _, args := range [][]string{{"artifact", "publish"}, {"artifact", "report"}, {"artifact", "get"}, {"search"}, {"attest", "junit", "--nope"}} {
		if code := run(context.Background(), append(args, "--token", "x"), &out, &errOut); code != 2 {
			t.Errorf("vouch %v: exit %d, want 2", args, code)
		}
	}
}

func TestRangeList(t *testing.T) {
	for _, tc := range []struct {
		rs   [][2]uint64
		max  int
		want string
	}{
		{[][2]uint64{{7, 7}, {9, 9}, {12, 40}}, 20, "7, 9, 12-40"},
		{[][2]uint64{{1, 1}, {3, 3}, {5, 6}}, 2, "1, 3, … (3 ranges in all)"},
	} {
		if got := rangeList(tc.rs, tc.max); got != tc.want {
			t.Errorf("rangeList(%v, %d) = %q, want %q", tc.rs, tc.max, got, tc.want)
		}
	}
}
