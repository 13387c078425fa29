package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/exempt"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/policy"
	"github.com/vouch-dev/vouch/postgres"
	vrego "github.com/vouch-dev/vouch/rego"
	"github.com/vouch-dev/vouch/replay"
	"github.com/vouch-dev/vouch/sqlite"
	"github.com/vouch-dev/vouch/test/pgtest"
	"github.com/vouch-dev/vouch/webhook"
)

var pg *pgtest.Server

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() {
		var err error
		if pg, err = pgtest.Start(pgtest.Options{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if pg != nil {
		pg.Stop()
	}
	os.Exit(code)
}

// store is what a replay reads, and what the fixture writes through.
type store interface {
	journal.Store
	evidence.Store
	Close() error
}

// The policy in use requires, in prod and canary, a passed security-scan
// besides the configured requirements.
const scanModule = `package vouch.admission

deny contains v if {
	input.environment.name in {"prod", "canary"}
	some a in input.artifacts
	not a.allowed
	not a.latest_attestations["security-scan"].passed
	v := {"msg": sprintf("%s: no passed security-scan", [a.image]), "rule": "security-scan", "requirement": "attestation security-scan"}
}
`

// A candidate rule: prod workloads name their team.
const teamModule = `package vouch.admission

deny contains v if {
	input.environment.name == "prod"
	not input.workload.labels.team
	v := {"msg": sprintf("%s %s: add a \"team\" label", [input.workload.kind, input.workload.name]), "rule": "team-label", "requirement": "team label"}
}
`

var start = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// fixture is a webhook over a real store journaling decisions with the
// policy in use (the built-in policy and scanModule), and a replayer.
type fixture struct {
	t          testing.TB
	db         store
	hook       *webhook.Handler
	evidence   *evidence.Service
	exemptions *exempt.Service
	current    *policy.Engine
	replayer   *replay.Replayer

	mu  sync.Mutex
	now time.Time
}

func newFixture(t testing.TB, backend string) *fixture {
	t.Helper()
	ctx := context.Background()
	var db store
	var err error
	switch backend {
	case "sqlite":
		db, err = sqlite.New(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "vouch.db")})
	case "postgres":
		if pg == nil {
			t.Skip("PostgreSQL tests do not run with -short")
		}
		db, err = postgres.New(ctx, postgres.Config{URL: pg.Database(t)})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{t: t, db: db, now: start}
	appender := journal.NewAppender(db, journal.AppenderOptions{Now: f.clock})
	t.Cleanup(func() { appender.Close(ctx) })
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "scan.rego"), []byte(scanModule), 0o644); err != nil {
		t.Fatal(err)
	}
	if f.current, err = policy.New(ctx, policy.Config{Builtin: vrego.FS, Dir: dir}); err != nil {
		t.Fatal(err)
	}
	envs, err := policy.NewEnvironments("default", []policy.Environment{{
		Name: "prod", Namespaces: []string{"prod"},
		Require: policy.Requirements{Digest: true, Provenance: true, Attestations: []string{"unit-tests"}},
		Allow:   []string{"registry.k8s.io/pause"},
	}, {
		Name: "canary", Namespaces: []string{"canary"}, Mode: policy.ModeWarn,
		Require: policy.Requirements{Digest: true, Provenance: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.exemptions = exempt.New(appender, db, envs.Names())
	f.hook, err = webhook.New(webhook.Config{
		Policy: f.current, Evidence: db, Journal: appender, Environments: envs, Now: f.clock, Exemptions: f.exemptions,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.evidence = evidence.NewService(appender, envs.Names(), f.clock)
	f.replayer = &replay.Replayer{Journal: db, Evidence: db, Webhook: f.hook, Current: f.current}
	return f
}

// clock is the fixture's time; each reading advances it by a minute.
func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(time.Minute)
	return f.now
}

func digest(n int) string { return fmt.Sprintf("sha256:%064x", n) }

func image(n int) string { return fmt.Sprintf("registry.example.com/app%d@%s", n, digest(n)) }

// admit sends a Deployment through the webhook and returns whether it was
// admitted. labels are the Deployment's; no images makes an object
// without a pod template, which Vouch cannot decide.
func (f *fixture) admit(uid, namespace, name string, labels map[string]string, images ...string) bool {
	f.t.Helper()
	var containers []string
	for i, img := range images {
		containers = append(containers, fmt.Sprintf(`{"name":"c%d","image":%q}`, i, img))
	}
	spec := `{"template":{"spec":{"containers":[` + strings.Join(containers, ",") + `]}}}`
	if len(images) == 0 {
		spec = `{}`
	}
	l, _ := json.Marshal(labels)
	body := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
		"uid":%q,"kind":{"group":"apps","version":"v1","kind":"Deployment"},
		"resource":{"group":"apps","version":"v1","resource":"deployments"},
		"namespace":%q,"name":%q,"operation":"CREATE","userInfo":{"username":"alice","groups":["dev"]},
		"object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%q,"namespace":%q,"labels":%s},"spec":%s}}}`,
		uid, namespace, name, name, namespace, l, spec)
	req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.hook.ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		f.t.Fatalf("admit %s: not an AdmissionReview: %s", uid, rec.Body)
	}
	return out.Response.Allowed
}

func (f *fixture) artifact(n int) {
	f.t.Helper()
	if _, _, err := f.evidence.ReportArtifact(context.Background(), "ci", evidence.ArtifactReport{Name: fmt.Sprintf("registry.example.com/app%d", n), Digest: digest(n)}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) attest(n int, name string, passed bool) {
	f.t.Helper()
	if _, _, err := f.evidence.Attest(context.Background(), "ci", evidence.AttestationReport{Digest: digest(n), Name: name, Passed: &passed}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) candidate(modules map[string]string) *policy.Engine {
	f.t.Helper()
	e, err := policy.New(context.Background(), policy.Config{Builtin: vrego.FS, Modules: modules})
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

// history journals the decisions the replay tests expect, each checked
// as it is made. It returns the decisions' journal indices by UID.
func (f *fixture) history() map[string]uint64 {
	f.t.Helper()
	team := map[string]string{"team": "shop"}
	f.artifact(1)
	f.attest(1, "unit-tests", true)
	steps := []struct {
		uid, namespace, name string
		labels               map[string]string
		images               []string
		want                 bool
		then                 func()
	}{
		// Denied: no security-scan yet. It is posted right after, and must
		// not count when u1 is replayed.
		{"u1", "prod", "web", team, []string{image(1)}, false, func() { f.attest(1, "security-scan", true) }},
		{"u2", "prod", "web", team, []string{image(1), "registry.k8s.io/pause:3.10"}, true, nil},
		{"u3", "prod", "api", nil, []string{image(1)}, true, nil},
		{"u4", "dev", "tool", nil, []string{image(2)}, false, func() { f.artifact(2) }},
		{"u5", "dev", "tool", nil, []string{image(2)}, true, nil},
		// Denied twice over: no unit-tests, no security-scan.
		{"u6", "prod", "api", nil, []string{image(2)}, false, nil},
		// No pod template: Vouch could not decide (journaled with an error).
		{"u7", "prod", "broken", team, nil, false, nil},
	}
	for _, s := range steps {
		if got := f.admit(s.uid, s.namespace, s.name, s.labels, s.images...); got != s.want {
			f.t.Fatalf("history: %s admitted = %v, want %v", s.uid, got, s.want)
		}
		if s.then != nil {
			s.then()
		}
	}
	return f.indices()
}

// indices returns the journal indices of the decisions by UID.
func (f *fixture) indices() map[string]uint64 {
	f.t.Helper()
	entries, err := f.db.Entries(context.Background(), journal.Query{Kind: journal.KindAdmission, Limit: journal.MaxLimit})
	if err != nil {
		f.t.Fatal(err)
	}
	index := map[string]uint64{}
	for _, e := range entries {
		index[strings.TrimPrefix(e.Key, "admission:")] = e.Index
	}
	return index
}

// flip is what the tests compare of a group's examples.
type flip struct {
	Index         uint64
	UID           string
	Before, After []string
}

func flips(examples []replay.Example) []flip {
	var out []flip
	for _, e := range examples {
		out = append(out, flip{e.Index, e.UID, e.Before, e.After})
	}
	return out
}

type ruleGroup struct {
	Change, Rule, Requirement string
	Decisions                 int
	Examples                  []flip
}

type workloadGroup struct {
	Environment, Namespace, Kind, Name string
	AdmitToDeny, DenyToAdmit           int
	Examples                           []flip
}

func groups(rep replay.Report) ([]ruleGroup, []workloadGroup) {
	var rules []ruleGroup
	for _, g := range rep.Rules {
		rules = append(rules, ruleGroup{g.Change, g.Rule, g.Requirement, g.Decisions, flips(g.Examples)})
	}
	var workloads []workloadGroup
	for _, w := range rep.Workloads {
		workloads = append(workloads, workloadGroup{w.Environment, w.Namespace, w.Kind, w.Name, w.AdmitToDeny, w.DenyToAdmit, flips(w.Examples)})
	}
	return rules, workloads
}

func TestReplay(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			f := newFixture(t, backend)
			idx := f.history()
			ctx := context.Background()
			opts := replay.Options{Since: start, Until: start.Add(24 * time.Hour)}
			scanMsg := image(1) + ": no passed security-scan"

			tests := []struct {
				name          string
				modules       map[string]string
				wantTotals    replay.Totals
				wantRules     []ruleGroup
				wantWorkloads []workloadGroup
			}{{
				// The policy in use again: every decision comes out as it
				// was, which only holds with the evidence as of each
				// decision (u1 was denied for want of a scan posted later).
				name:       "current policy",
				modules:    map[string]string{"scan.rego": scanModule},
				wantTotals: replay.Totals{Decisions: 7, Replayed: 6, Unchanged: 6, Skipped: 1},
			}, {
				name:    "adds a rule",
				modules: map[string]string{"scan.rego": scanModule, "team.rego": teamModule},
				// u3 (no team label) is denied now; u6 was denied and is
				// denied for one more reason; u1 stays denied: the scan
				// came after it.
				wantTotals: replay.Totals{Decisions: 7, Replayed: 6, Unchanged: 5, AdmitToDeny: 1, Skipped: 1, ReasonsChanged: 1},
				wantRules: []ruleGroup{{replay.AdmitToDeny, "team-label", "team label", 1,
					[]flip{{idx["u3"], "u3", []string{}, []string{`Deployment api: add a "team" label`}}}}},
				wantWorkloads: []workloadGroup{{"prod", "prod", "Deployment", "api", 1, 0,
					[]flip{{idx["u3"], "u3", []string{}, []string{`Deployment api: add a "team" label`}}}}},
			}, {
				name:    "removes a requirement",
				modules: nil, // the built-in policy alone: no security-scan rule
				// u1 lacked only the scan: admitted now. u6 still lacks
				// unit-tests.
				wantTotals: replay.Totals{Decisions: 7, Replayed: 6, Unchanged: 5, DenyToAdmit: 1, Skipped: 1, ReasonsChanged: 1},
				wantRules: []ruleGroup{{replay.DenyToAdmit, "security-scan", "attestation security-scan", 1,
					[]flip{{idx["u1"], "u1", []string{scanMsg}, []string{}}}}},
				wantWorkloads: []workloadGroup{{"prod", "prod", "Deployment", "web", 0, 1,
					[]flip{{idx["u1"], "u1", []string{scanMsg}, []string{}}}}},
			}}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					cand := f.candidate(tt.modules)
					rep, err := f.replayer.Replay(ctx, cand, opts)
					if err != nil {
						t.Fatalf("Replay: %v", err)
					}
					if diff := cmp.Diff(tt.wantTotals, rep.Totals); diff != "" {
						t.Errorf("Replay totals (-want +got):\n%s", diff)
					}
					rules, workloads := groups(rep)
					if diff := cmp.Diff(tt.wantRules, rules); diff != "" {
						t.Errorf("Replay rules (-want +got):\n%s", diff)
					}
					if diff := cmp.Diff(tt.wantWorkloads, workloads); diff != "" {
						t.Errorf("Replay workloads (-want +got):\n%s", diff)
					}
					wantSkips := []replay.SkipCount{{Reason: replay.SkipErrored, Count: 1}}
					if diff := cmp.Diff(wantSkips, rep.Skips); diff != "" {
						t.Errorf("Replay skips (-want +got):\n%s", diff)
					}
					if rep.PolicyVersion != cand.Version() || rep.CurrentPolicyVersion != f.current.Version() || rep.Truncated {
						t.Errorf("Replay report = %+v", rep)
					}
				})
			}
			// One environment: u1 u2 u3 u6 u7.
			rep, err := f.replayer.Replay(ctx, f.candidate(map[string]string{"scan.rego": scanModule, "team.rego": teamModule}),
				replay.Options{Since: start, Until: start.Add(24 * time.Hour), Environment: "prod"})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Totals.Decisions != 5 || rep.Totals.ReasonsChanged != 1 {
				t.Errorf("prod only: totals %+v, want 5 decisions, one with changed reasons (u6)", rep.Totals)
			}
		})
	}
}

func TestReplaySelection(t *testing.T) {
	f := newFixture(t, "sqlite")
	idx := f.history()
	ctx := context.Background()
	cand := f.candidate(nil)
	entries, err := f.db.Entries(ctx, journal.Query{Kind: journal.KindAdmission, Limit: journal.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	timeOf := map[uint64]time.Time{}
	for _, e := range entries {
		timeOf[e.Index] = e.Time
	}
	at := func(uid string) time.Time { return timeOf[idx[uid]] }
	tests := []struct {
		name          string
		opts          replay.Options
		wantDecisions int
		wantTruncated bool
		wantResume    *time.Time
	}{
		{"all", replay.Options{Since: start}, 7, false, nil},
		{"since u3", replay.Options{Since: at("u3")}, 5, false, nil},
		{"until u3", replay.Options{Since: start, Until: at("u3")}, 2, false, nil},
		{"environment", replay.Options{Since: start, Environment: "default"}, 2, false, nil},
		{"limit", replay.Options{Since: start, Limit: 3}, 3, true, new(at("u4"))},
		{"limit equal to the decisions", replay.Options{Since: start, Limit: 7}, 7, false, nil},
		{"empty range", replay.Options{Since: start.Add(-time.Hour), Until: start}, 0, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Now = func() time.Time { return start.Add(24 * time.Hour) }
			rep, err := f.replayer.Replay(ctx, cand, tt.opts)
			if err != nil {
				t.Fatalf("Replay: %v", err)
			}
			if rep.Totals.Decisions != tt.wantDecisions || rep.Truncated != tt.wantTruncated || !cmp.Equal(rep.ResumeSince, tt.wantResume) {
				t.Errorf("Replay(%+v) = %d decisions, truncated %v, resume %v; want %d, %v, %v", tt.opts, rep.Totals.Decisions, rep.Truncated, rep.ResumeSince,
					tt.wantDecisions, tt.wantTruncated, tt.wantResume)
			}
		})
	}
	if _, err := f.replayer.Replay(ctx, cand, replay.Options{Limit: replay.MaxLimit + 1}); err == nil {
		t.Error("Replay with a limit above MaxLimit succeeded")
	}
}

func TestReplayProgressAndCancel(t *testing.T) {
	f := newFixture(t, "sqlite")
	f.history()
	var got []replay.Progress
	rep, err := f.replayer.Replay(context.Background(), f.candidate(nil), replay.Options{Since: start, Progress: func(p replay.Progress) { got = append(got, p) }})
	if err != nil {
		t.Fatal(err)
	}
	want := []replay.Progress{{Decisions: 7, Index: rep.To, From: rep.From, To: rep.To}}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.replayer.Replay(ctx, f.candidate(nil), replay.Options{Since: start}); !errors.Is(err, context.Canceled) {
		t.Errorf("Replay with a cancelled context: err = %v, want context.Canceled", err)
	}
}

// TestReplayExemptionsAndModes: an exemption a decision used counts again
// though revoked since, and in warn mode it is the policy's verdict that
// flips, not the admission.
func TestReplayExemptionsAndModes(t *testing.T) {
	f := newFixture(t, "sqlite")
	ctx := context.Background()
	f.now = time.Now().UTC() // exemptions are created at the real time
	since := f.now
	f.artifact(1)
	f.attest(1, "unit-tests", true)
	e, err := f.exemptions.Create(ctx, "rm", exempt.Request{Environment: "prod", Digest: digest(3), Reason: "INC-1", ExpiresAt: f.now.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	team := map[string]string{"team": "shop"}
	if !f.admit("x1", "prod", "web", team, image(3)) {
		t.Fatal("exempted image denied")
	}
	if _, err := f.exemptions.Revoke(ctx, "rm", e.ID); err != nil {
		t.Fatal(err)
	}
	if f.admit("x2", "prod", "web", team, image(3)) {
		t.Fatal("image admitted after its exemption was revoked")
	}
	// Warn mode: no security-scan, admitted, the policy's denial journaled.
	if !f.admit("x3", "canary", "web", team, image(1)) {
		t.Fatal("warn mode denied")
	}
	idx := f.indices()
	opts := replay.Options{Since: since, Until: f.clock()}

	rep, err := f.replayer.Replay(ctx, f.candidate(map[string]string{"scan.rego": scanModule}), opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := (replay.Totals{Decisions: 3, Replayed: 3, Unchanged: 3}); rep.Totals != want || rep.Truncated {
		t.Errorf("the policy in use: totals %+v, want %+v (x1 exempted as it was)", rep.Totals, want)
	}

	rep, err = f.replayer.Replay(ctx, f.candidate(nil), opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := (replay.Totals{Decisions: 3, Replayed: 3, Unchanged: 2, DenyToAdmit: 1, ReasonsChanged: 1}); rep.Totals != want {
		t.Errorf("without the scan rule: totals %+v, want %+v", rep.Totals, want)
	}
	if len(rep.Rules) != 1 || rep.Rules[0].Rule != "security-scan" || len(rep.Rules[0].Examples) != 1 {
		t.Fatalf("rules = %+v, want security-scan flipping x3", rep.Rules)
	}
	if ex := rep.Rules[0].Examples[0]; ex.UID != "x3" || ex.Mode != policy.ModeWarn || ex.Index != idx["x3"] {
		t.Errorf("example = %+v, want x3 in warn mode", ex)
	}
}
