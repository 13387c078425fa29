package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/metrics"
	"github.com/vouch-dev/vouch/policy"
	vrego "github.com/vouch-dev/vouch/rego"
	"github.com/vouch-dev/vouch/sqlite"
	"github.com/vouch-dev/vouch/webhook"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fixture is a webhook over a real SQLite store, journal and policy engine.
type fixture struct {
	t        testing.TB
	db       *sqlite.DB
	handler  *webhook.Handler
	evidence *evidence.Service
	appender *journal.Appender
}

func newFixture(t testing.TB, configure ...func(*webhook.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "vouch.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := func() time.Time { return now }
	appender := journal.NewAppender(db, journal.AppenderOptions{Now: clock})
	t.Cleanup(func() { appender.Close(ctx) })
	engine, err := policy.New(ctx, policy.Config{Builtin: vrego.FS})
	if err != nil {
		t.Fatal(err)
	}
	envs, err := policy.NewEnvironments("default", []policy.Environment{{
		Name: "prod", Namespaces: []string{"prod", "payments-*"},
		Require: policy.Requirements{Digest: true, Provenance: true, Attestations: []string{"unit-tests"}, Approval: true},
		Allow:   []string{"registry.k8s.io/pause"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := webhook.Config{
		Policy: engine, Evidence: db, Journal: appender, Environments: envs,
		ExemptNamespaces: []string{"kube-system", "vouch-system"}, MaxBodyBytes: 64 << 10, Now: clock,
		Logger: slog.New(slog.DiscardHandler),
	}
	for _, c := range configure {
		c(&cfg)
	}
	h, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, db: db, handler: h, evidence: evidence.NewService(appender, envs.Names(), clock), appender: appender}
}

func digest(n int) string { return fmt.Sprintf("sha256:%064x", n) }

// review builds an AdmissionReview for a Deployment with the given images.
func review(uid, namespace, op string, dryRun bool, images ...string) []byte {
	var containers []string
	for i, img := range images {
		containers = append(containers, fmt.Sprintf(`{"name":"c%d","image":%q}`, i, img))
	}
	return []byte(fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
		"uid":%q,"kind":{"group":"apps","version":"v1","kind":"Deployment"},
		"resource":{"group":"apps","version":"v1","resource":"deployments"},
		"namespace":%q,"name":"web","operation":%q,"dryRun":%v,"userInfo":{"username":"alice","groups":["dev"]},
		"object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":%q},
		"spec":{"template":{"spec":{"containers":[%s]}}}}}}`, uid, namespace, op, dryRun, namespace, strings.Join(containers, ",")))
}

func (f *fixture) post(body []byte, contentType string) (*http.Response, admissionv1.AdmissionReview) {
	f.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		f.t.Fatalf("response is not an AdmissionReview: %v\n%s", err, rec.Body)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
		f.t.Fatalf("response is not a valid AdmissionReview: %s", rec.Body)
	}
	return rec.Result(), out
}

func (f *fixture) decide(body []byte) *admissionv1.AdmissionResponse {
	f.t.Helper()
	resp, out := f.post(body, "application/json")
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	return out.Response
}

func (f *fixture) decisions() []webhook.Record {
	f.t.Helper()
	entries, err := f.db.Entries(context.Background(), journal.Query{Kind: journal.KindAdmission, Limit: journal.MaxLimit})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []webhook.Record
	for _, e := range entries {
		var r webhook.Record
		if err := json.Unmarshal(e.Body, &r); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func (f *fixture) report(d string, attest, approve bool) {
	f.t.Helper()
	ctx := context.Background()
	if _, _, err := f.evidence.ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: "registry.example.com/app", Digest: d}); err != nil {
		f.t.Fatal(err)
	}
	if attest {
		yes := true
		if _, _, err := f.evidence.Attest(ctx, "ci", evidence.AttestationReport{Digest: d, Name: "unit-tests", Passed: &yes}); err != nil {
			f.t.Fatal(err)
		}
	}
	if approve {
		if _, err := f.evidence.Approve(ctx, "release-manager", evidence.ApprovalRequest{Digest: d, Environment: "prod", Decision: "approved"}); err != nil {
			f.t.Fatal(err)
		}
	}
}

func TestDenyThenAdmitAfterEvidence(t *testing.T) {
	f := newFixture(t)
	img := "registry.example.com/app@" + digest(1)

	resp := f.decide(review("u1", "default", "CREATE", false, img, "nginx:1.27"))
	if resp.Allowed || resp.Result == nil || resp.Result.Code != 403 {
		t.Fatalf("response = %+v, want a 403 denial", resp)
	}
	wantMsg := `container "c0": image ` + img + ` has no provenance: no build with this digest was reported to Vouch (required in default)` + "\n" +
		`container "c1": image nginx:1.27 is not pinned by digest (required in default); deploy it as docker.io/library/nginx@sha256:<digest>`
	if resp.Result.Message != wantMsg {
		t.Errorf("message =\n%s\nwant\n%s", resp.Result.Message, wantMsg)
	}

	f.report(digest(1), false, false)
	resp = f.decide(review("u2", "default", "CREATE", false, img))
	if !resp.Allowed || resp.UID != "u2" {
		t.Fatalf("after evidence: response = %+v, want allowed", resp)
	}

	recs := f.decisions()
	if len(recs) != 2 || recs[0].Allowed || !recs[1].Allowed {
		t.Fatalf("journal holds %+v, want the denial then the admission", recs)
	}
	if recs[1].Environment != "default" || recs[1].User != "alice" || recs[1].Kind != "Deployment" || recs[1].APIVersion != "apps/v1" ||
		len(recs[1].Evidence) != 1 || !strings.HasPrefix(recs[1].PolicyVersion, "sha256:") {
		t.Errorf("admission record = %+v", recs[1])
	}
	if diff := cmp.Diff([]webhook.RecordImage{{Container: "c0", ContainerType: "container", Image: img, Digest: digest(1)}}, recs[1].Images); diff != "" {
		t.Errorf("record images (-want +got):\n%s", diff)
	}
}

func TestProdRequiresAttestationAndApproval(t *testing.T) {
	f := newFixture(t)
	img := "registry.example.com/app@" + digest(2)
	f.report(digest(2), true, false)
	resp := f.decide(review("p1", "payments-eu", "CREATE", false, img, "registry.k8s.io/pause:3.10"))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "has no release approval for prod (required in prod)") {
		t.Fatalf("without approval: %+v", resp)
	}
	if strings.Contains(resp.Result.Message, "pause") {
		t.Errorf("allow-listed image reported: %s", resp.Result.Message)
	}
	f.report(digest(3), true, true) // another digest: still denied
	f.evidence.Approve(context.Background(), "rm", evidence.ApprovalRequest{Digest: digest(2), Environment: "prod", Decision: "approved"})
	resp = f.decide(review("p2", "prod", "UPDATE", false, img, "registry.k8s.io/pause:3.10"))
	if !resp.Allowed {
		t.Fatalf("with approval: %+v", resp)
	}
	recs := f.decisions()
	last := recs[len(recs)-1]
	if last.Environment != "prod" || !last.Images[1].Allowed || last.Images[0].Allowed {
		t.Errorf("record = %+v; want environment prod and the pause image marked allowed", last)
	}
}

func TestDryRunIsDecidedButNotJournaled(t *testing.T) {
	f := newFixture(t)
	resp := f.decide(review("d1", "default", "CREATE", true, "nginx"))
	if resp.Allowed {
		t.Fatal("dry run of a tag image admitted")
	}
	if n := len(f.decisions()); n != 0 {
		t.Errorf("dry run journaled %d decisions", n)
	}
}

func TestRetriedUIDIsJournaledOnceAndAnsweredFromJournal(t *testing.T) {
	f := newFixture(t)
	img := "registry.example.com/app@" + digest(4)
	first := f.decide(review("r1", "default", "CREATE", false, img))
	if first.Allowed {
		t.Fatal("admitted without evidence")
	}
	f.report(digest(4), false, false)
	// The apiserver retries the same request: the journaled answer stands.
	again := f.decide(review("r1", "default", "CREATE", false, img))
	if again.Allowed || again.Result.Message != first.Result.Message {
		t.Errorf("retry answered %+v, want the journaled denial %+v", again, first)
	}
	if n := len(f.decisions()); n != 1 {
		t.Errorf("journal holds %d decisions for one UID, want 1", n)
	}
}

func TestNotEvaluated(t *testing.T) {
	f := newFixture(t)
	tests := []struct{ name, body string }{
		{"kube-system", string(review("n1", "kube-system", "CREATE", false, "nginx"))},
		{"own namespace", string(review("n2", "vouch-system", "CREATE", false, "nginx"))},
		{"delete", string(review("n3", "default", "DELETE", false, "nginx"))},
		{"scale subresource", strings.Replace(string(review("n4", "default", "UPDATE", false, "nginx")), `"namespace"`, `"subResource":"scale","namespace"`, 1)},
		{"config map", strings.Replace(string(review("n5", "default", "CREATE", false, "nginx")), `"kind":"Deployment"}`, `"kind":"ConfigMap"}`, 1)},
		{"a ReplicaSet's pod, made by its controller", asUser(review("n6", "default", "CREATE", false, "nginx"), "system:serviceaccount:kube-system:replicaset-controller")},
		{"a Deployment's ReplicaSet, updated by its controller", asUser(review("n7", "default", "UPDATE", false, "nginx"), "system:serviceaccount:kube-system:deployment-controller")},
		{"the controller manager without per-controller credentials", asUser(review("n8", "default", "CREATE", false, "nginx"), "system:kube-controller-manager")},
	}
	for _, tt := range tests {
		if resp := f.decide([]byte(tt.body)); !resp.Allowed {
			t.Errorf("%s: denied: %+v", tt.name, resp.Result)
		}
	}
	if n := len(f.decisions()); n != 0 {
		t.Errorf("journal holds %d decisions, want none", n)
	}
}

// asUser makes body a request by user.
func asUser(body []byte, user string) string {
	return strings.Replace(string(body), `"username":"alice"`, fmt.Sprintf(`"username":%q`, user), 1)
}

// TestOthersAreEvaluated: only the controller manager's own identities
// skip evaluation; a name that merely looks like one does not.
func TestOthersAreEvaluated(t *testing.T) {
	f := newFixture(t)
	for i, user := range []string{"alice", "system:serviceaccount:default:replicaset-controller", "system:serviceaccount:kube-system:replicaset-controller-x", "replicaset-controller"} {
		if resp := f.decide([]byte(asUser(review(fmt.Sprintf("e%d", i), "default", "CREATE", false, "nginx"), user))); resp.Allowed {
			t.Errorf("a Deployment with an unreported image, by %q: admitted", user)
		}
	}
	if n := len(f.decisions()); n != 4 {
		t.Errorf("journal holds %d decisions, want 4", n)
	}
}

func TestEphemeralContainersSubresourceChecksOnlyNewContainers(t *testing.T) {
	f := newFixture(t)
	d := "registry.example.com/app@" + digest(5)
	f.report(digest(5), false, false)
	pod := func(ephemeral string) string {
		return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default"},"spec":{"containers":[{"name":"app","image":"nginx:old"}],"ephemeralContainers":[` + ephemeral + `]}}`
	}
	body := func(uid, newEph string) []byte {
		return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"` + uid + `",
			"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"subResource":"ephemeralcontainers",
			"namespace":"default","name":"p","operation":"UPDATE","userInfo":{"username":"dev"},
			"object":` + pod(newEph) + `,"oldObject":` + pod("") + `}}`)
	}
	if resp := f.decide(body("e1", `{"name":"debug","image":"busybox"}`)); resp.Allowed || !strings.Contains(resp.Result.Message, `ephemeral container "debug": image busybox is not pinned`) {
		t.Errorf("unpinned debug container: %+v", resp)
	}
	// The pod's own unpinned container is not re-checked by the subresource.
	if resp := f.decide(body("e2", `{"name":"debug","image":"`+d+`"}`)); !resp.Allowed {
		t.Errorf("debug container with evidence denied: %+v", resp.Result)
	}
}

// TestInFlightLimit: with MaxInFlight reviews being read, one more is
// answered 429 at once (a valid AdmissionReview), without reading its body.
func TestInFlightLimit(t *testing.T) {
	m := metrics.New()
	f := newFixture(t, func(c *webhook.Config) { c.MaxInFlight, c.Observer = 1, m })
	slow, release := io.Pipe()
	done := make(chan int)
	go func() {
		req := httptest.NewRequest(http.MethodPost, "/validate", slow)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		f.handler.ServeHTTP(rec, req)
		done <- rec.Code
	}()
	body := review("slow", "default", "CREATE", false, "nginx")
	release.Write(body[:1]) // returns once the handler reads: it holds the one slot
	resp, out := f.post(review("busy", "default", "CREATE", false, "nginx"), "application/json")
	if resp.StatusCode != http.StatusTooManyRequests || out.Response.Allowed || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a review beyond the limit = %d %+v, want 429 with Retry-After, not allowed", resp.StatusCode, out.Response)
	}
	release.Write(body[1:])
	release.Close()
	if code := <-done; code != http.StatusOK {
		t.Errorf("the slow review = %d, want 200", code)
	}
	if resp, _ := f.post(review("after", "default", "CREATE", false, "nginx"), "application/json"); resp.StatusCode != http.StatusOK {
		t.Errorf("a review after the slow one finished = %d, want 200", resp.StatusCode)
	}
	if scraped := scrape(t, m); !strings.Contains(scraped, "vouch_admissions_throttled_total 1\n") {
		t.Errorf("/metrics does not count the 429 once:\n%s", grepLines(scraped, "vouch_admissions_throttled_total"))
	}
}

func TestInternalErrorFailsClosed(t *testing.T) {
	m := metrics.New()
	f := newFixture(t, func(c *webhook.Config) { c.Observer = m })
	f.db.Close() // the store is gone: evidence lookups and journal appends fail
	resp := f.decide(review("x1", "default", "CREATE", false, "registry.example.com/app@"+digest(6)))
	if resp.Allowed || resp.Result.Code != 500 || !strings.Contains(resp.Result.Message, "the change is refused") {
		t.Errorf("response with a failed store = %+v, want a 500 denial that says the change is refused", resp)
	}
	// Refused because the decision could not be recorded: not a denial.
	scraped := scrape(t, m)
	if want := `vouch_admissions_total{decision="unrecorded",dry_run="false",environment="default"} 1`; !strings.Contains(scraped, want) {
		t.Errorf("/metrics lacks %s:\n%s", want, grepLines(scraped, "vouch_admissions_total"))
	}
}

// TestRefusalsAreCountedApart: vouch_admissions_total tells a policy
// denial from a change refused because Vouch could not decide (error) and
// one refused because it could not record the decision (unrecorded).
func TestRefusalsAreCountedApart(t *testing.T) {
	m := metrics.New()
	f := newFixture(t, func(c *webhook.Config) { c.Observer = m })
	f.decide(review("denied", "default", "CREATE", false, "nginx:1.27"))
	f.decide(review("denied", "default", "CREATE", false, "nginx:1.27")) // a retry, answered from the journal
	f.decide(review("no-evidence", "default", "CREATE", false, "registry.example.com/app@"+digest(7)))
	f.decide(review("dry", "default", "CREATE", true, "nginx:1.27"))
	// A Deployment without a template: Vouch cannot decide, and refuses.
	broken := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
		"uid":"broken","kind":{"group":"apps","version":"v1","kind":"Deployment"},
		"resource":{"group":"apps","version":"v1","resource":"deployments"},
		"namespace":"default","name":"web","operation":"CREATE","userInfo":{"username":"alice"},
		"object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{}}}}`)
	if resp := f.decide(broken); resp.Allowed || resp.Result.Code != 500 {
		t.Errorf("a Deployment without a template: %+v, want a 500 refusal", resp)
	}
	f.db.Close()
	f.decide(review("unrecorded", "default", "CREATE", false, "nginx:1.27"))
	scraped := scrape(t, m)
	for _, want := range []string{
		`vouch_admissions_total{decision="denied",dry_run="false",environment="default"} 3`,
		`vouch_admissions_total{decision="denied",dry_run="true",environment="default"} 1`,
		`vouch_admissions_total{decision="error",dry_run="false",environment="default"} 1`,
		`vouch_admissions_total{decision="unrecorded",dry_run="false",environment="default"} 1`,
	} {
		if !strings.Contains(scraped, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(scraped, "vouch_admissions_total"))
		}
	}
	if strings.Contains(scraped, `decision="allowed"`) {
		t.Errorf("/metrics counts an allowed change:\n%s", grepLines(scraped, "vouch_admissions_total"))
	}
}

// scrape returns m's /metrics page.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// grepLines returns the lines of s that start with prefix.
func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestTransportErrors compares the exact JSON written on the wire.
func TestTransportErrors(t *testing.T) {
	f := newFixture(t)
	errReview := func(uid string, code int, msg string) string {
		b, _ := json.Marshal(msg)
		return `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{"uid":"` + uid + `","allowed":false,"status":{"metadata":{},"status":"Failure","message":` + string(b) + `,"code":` + fmt.Sprint(code) + `}}}` + "\n"
	}
	tests := []struct {
		name        string
		method      string
		contentType string
		body        io.Reader
		wantStatus  int
		wantBody    string
	}{
		{"empty body", "POST", "application/json", strings.NewReader(""), 400, errReview("", 400, "request body is empty: send an AdmissionReview")},
		{"wrong content type", "POST", "text/plain", strings.NewReader("{}"), 415, errReview("", 415, `content type "text/plain" is not supported: send application/json`)},
		{"no content type", "POST", "", strings.NewReader("{}"), 415, errReview("", 415, `content type "" is not supported: send application/json`)},
		{"garbage", "POST", "application/json", strings.NewReader("{not json"), 400, errReview("", 400, "request body is not an AdmissionReview: invalid character 'n' looking for beginning of object key string")},
		{"wrong kind", "POST", "application/json", strings.NewReader(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"a"}}`), 400,
			errReview("a", 400, `want apiVersion admission.k8s.io/v1, kind AdmissionReview; got apiVersion "admission.k8s.io/v1beta1", kind "AdmissionReview"`)},
		{"no request", "POST", "application/json", strings.NewReader(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), 400, errReview("", 400, "AdmissionReview has no request")},
		{"endless body", "POST", "application/json", endless{}, 413, errReview("", 413, "request body is larger than 65536 bytes")},
		{"GET", "GET", "application/json", nil, 405, errReview("", 405, "method GET not allowed: send the AdmissionReview with POST")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/validate", tt.body)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			rec := httptest.NewRecorder()
			f.handler.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if rec.Body.String() != tt.wantBody {
				t.Errorf("body =\n%s\nwant\n%s", rec.Body, tt.wantBody)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
}

// endless is a request body that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func TestAllowedResponseOnTheWire(t *testing.T) {
	f := newFixture(t)
	f.report(digest(7), false, false)
	req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(review("w1", "default", "CREATE", false, "registry.example.com/app@"+digest(7))))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	want := `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{"uid":"w1","allowed":true}}` + "\n"
	if rec.Code != 200 || rec.Body.String() != want {
		t.Errorf("got %d %s, want 200 %s", rec.Code, rec.Body, want)
	}
}

// TestDenialsAreRecheckedAgainstTheStore gives the webhook a cache that
// missed a write (as on a replica whose change feed lags): the denial from
// the stale entry is decided again from the store, and the change admitted.
func TestDenialsAreRecheckedAgainstTheStore(t *testing.T) {
	f := newFixture(t)
	cache := evidence.NewCache(f.db, 100, true)
	h, err := webhook.New(webhook.Config{
		Policy: mustEngine(t), Evidence: cache, FreshEvidence: f.db, Journal: f.appender, Environments: mustEnvs(t),
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.handler = h
	img := "registry.example.com/app@" + digest(8)
	if resp := f.decide(review("c1", "default", "CREATE", false, img)); resp.Allowed {
		t.Fatal("admitted without evidence")
	}
	f.report(digest(8), false, false) // written past the cache: it still holds "no evidence"
	if m, _ := cache.Lookup(context.Background(), []string{digest(8)}); len(m) != 0 {
		t.Fatal("test setup: the cache already sees the evidence")
	}
	if resp := f.decide(review("c2", "default", "CREATE", false, img)); !resp.Allowed {
		t.Errorf("stale cache denied the change: %s", resp.Result.Message)
	}
}

func mustEngine(t *testing.T) *policy.Engine {
	e, err := policy.New(context.Background(), policy.Config{Builtin: vrego.FS})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustEnvs(t *testing.T) *policy.Environments {
	envs, err := policy.NewEnvironments("default", nil)
	if err != nil {
		t.Fatal(err)
	}
	return envs
}

// TestSourceRequirement: with require.source, a build reported by name and
// digest alone does not admit; one naming its repository and commit does.
func TestSourceRequirement(t *testing.T) {
	f := newFixture(t, func(cfg *webhook.Config) {
		envs, err := policy.NewEnvironments("default", []policy.Environment{{Name: "default", Require: policy.Requirements{Digest: true, Provenance: true, Source: true}}})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Environments = envs
	})
	f.report(digest(7), false, false) // name and digest only
	img := "registry.example.com/app@" + digest(7)
	resp := f.decide(review("s1", "default", "CREATE", false, img))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "its build report names no repository or commit, so where it was built from is unknown") {
		t.Fatalf("a build without its source: %+v", resp)
	}
	if _, _, err := f.evidence.ReportArtifact(context.Background(), "ci", evidence.ArtifactReport{Name: "registry.example.com/app", Digest: digest(8),
		Repository: "https://git.example.com/app", GitCommit: strings.Repeat("b", 40)}); err != nil {
		t.Fatal(err)
	}
	if resp := f.decide(review("s2", "default", "CREATE", false, "registry.example.com/app@"+digest(8))); !resp.Allowed {
		t.Fatalf("a build naming its source: %+v", resp.Result)
	}
}

// A keyless attestation's age counts from its verified signing time: a
// bundle signed long ago and posted now is not fresh.
func TestKeylessAttestationAgesFromItsSignature(t *testing.T) {
	f := newFixture(t, func(c *webhook.Config) {
		envs, err := policy.NewEnvironments("default", []policy.Environment{{
			Name: "prod", Namespaces: []string{"prod"},
			Require: policy.Requirements{Digest: true, MaxAge: map[string]policy.Duration{"sbom": policy.Duration(24 * time.Hour)}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		c.Environments = envs
	})
	yes := true
	sbom := func(d string, signedAt time.Time) string {
		if _, _, err := f.evidence.Attest(context.Background(), "ci", evidence.AttestationReport{Digest: d, Name: "sbom", Type: "in-toto", Passed: &yes,
			Verified: true, KeyID: "release-workflow", SignedAt: &signedAt}); err != nil {
			t.Fatal(err)
		}
		return "registry.example.com/app@" + d
	}
	if resp := f.decide(review("k1", "prod", "CREATE", false, sbom(digest(7), now.Add(-time.Hour)))); !resp.Allowed {
		t.Errorf("signed an hour ago: %+v", resp.Result)
	}
	old := now.Add(-40 * 24 * time.Hour)
	resp := f.decide(review("k2", "prod", "CREATE", false, sbom(digest(8), old)))
	if want := `the latest attestation "sbom" (id 2) was signed at ` + old.Format(time.RFC3339) + `, more than 24h0m0s before this change; sign and report a new one`; resp.Allowed || !strings.Contains(resp.Result.Message, want) {
		t.Errorf("signed 40 days ago, reported now: %+v; want denied saying %q", resp.Result, want)
	}
}

// namespacesFunc answers namespace lookups in tests (kube.Namespaces reads
// them from a real apiserver in test/kube).
type namespacesFunc func(ctx context.Context, name string) (map[string]string, map[string]string, error)

func (f namespacesFunc) Namespace(ctx context.Context, name string) (map[string]string, map[string]string, error) {
	return f(ctx, name)
}

// TestNamespaceOfTheDecision: the namespace's labels and annotations are
// journaled with the decision (replays and the console read them there);
// a namespace Vouch cannot read leaves the change refused, as any error,
// and break-glass admits it as any error; a reported environment's
// namespaces are another cluster's and are not looked up here.
func TestNamespaceOfTheDecision(t *testing.T) {
	var looked []string
	f := newFixture(t, func(c *webhook.Config) {
		envs, err := policy.NewEnvironments("default", []policy.Environment{
			{Name: "prod", Namespaces: []string{"prod", "payments-*", "broken"}, BreakGlass: true,
				Require: policy.Requirements{Digest: true, Provenance: true, Attestations: []string{"unit-tests"}, Approval: true}},
			{Name: "edge"}, // reported by a cluster Vouch does not run in
		})
		if err != nil {
			t.Fatal(err)
		}
		c.Environments = envs
		c.Namespaces = namespacesFunc(func(_ context.Context, name string) (map[string]string, map[string]string, error) {
			looked = append(looked, name)
			if name == "broken" {
				return nil, nil, errors.New("apiserver unreachable")
			}
			return map[string]string{"team": name}, map[string]string{"vouch.dev/configuration-item": "Payments API"}, nil
		})
	})
	d := digest(11)
	f.report(d, true, true)
	if resp := f.decide(review("ns-1", "payments-eu", "CREATE", false, "registry.example.com/app@"+d)); !resp.Allowed {
		t.Fatalf("denied: %s", resp.Result.Message)
	}
	recs := f.decisions()
	if len(recs) != 1 || recs[0].NamespaceLabels["team"] != "payments-eu" || recs[0].NamespaceAnnotations["vouch.dev/configuration-item"] != "Payments API" {
		t.Fatalf("journaled %+v", recs)
	}
	resp := f.decide(review("ns-2", "broken", "CREATE", false, "registry.example.com/app@"+d))
	if resp.Allowed || resp.Result.Code != 500 || !strings.Contains(resp.Result.Message, "namespace broken could not be read: apiserver unreachable") {
		t.Errorf("namespace unreadable: %+v", resp.Result)
	}
	glass := strings.Replace(string(review("ns-3", "broken", "CREATE", false, "registry.example.com/app@"+d)),
		`"metadata":{"name":"web","namespace":"broken"}`, `"metadata":{"name":"web","namespace":"broken","annotations":{"vouch.dev/break-glass":"INC-7"}}`, 1)
	if resp := f.decide([]byte(glass)); !resp.Allowed {
		t.Errorf("break-glass with the namespace unreadable: %+v", resp.Result)
	}

	looked = nil
	obj := []byte(`{"metadata":{"name":"web","namespace":"payments-eu"},"spec":{"template":{"spec":{"containers":[{"name":"a","image":"registry.example.com/app@` + d + `"}]}}}}`)
	if _, err := f.handler.Assess(context.Background(), "edge", "Deployment", obj); err != nil || looked != nil {
		t.Errorf("a reported environment's workload: looked up %v, %v", looked, err)
	}
	if _, err := f.handler.Assess(context.Background(), "prod", "Deployment", obj); err != nil || !slices.Equal(looked, []string{"payments-eu"}) {
		t.Errorf("an admitted environment's workload: looked up %v, %v", looked, err)
	}
}
