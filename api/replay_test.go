package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/policy"
	vrego "github.com/vouch-dev/vouch/rego"
	"github.com/vouch-dev/vouch/replay"
	"github.com/vouch-dev/vouch/webhook"
)

// replayFixture journals two admitted decisions through the webhook (one
// Deployment with a team label, one without) and serves the replay API.
func replayFixture(t *testing.T, wrap func(api.Replayer) api.Replayer) *fixture {
	t.Helper()
	return newFixture(t, func(f *fixture, cfg *api.Config) {
		ctx := context.Background()
		engine, err := policy.New(ctx, policy.Config{Builtin: vrego.FS})
		if err != nil {
			t.Fatal(err)
		}
		envs, err := policy.NewEnvironments("default", []policy.Environment{{Name: "prod", Namespaces: []string{"prod"}, Require: policy.Requirements{Digest: true, Provenance: true}}})
		if err != nil {
			t.Fatal(err)
		}
		hook, err := webhook.New(webhook.Config{Policy: engine, Evidence: f.db, Journal: f.journal, Environments: envs, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := evidence.NewService(f.journal, nil, nil).ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: "registry.example.com/app", Digest: digest(1)}); err != nil {
			t.Fatal(err)
		}
		for i, labels := range []string{`{"team":"shop"}`, `{}`} {
			body := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u%d",
				"kind":{"group":"apps","version":"v1","kind":"Deployment"},"namespace":"prod","name":"web%d","operation":"CREATE","userInfo":{"username":"alice"},
				"object":{"metadata":{"name":"web%d","labels":%s},"spec":{"template":{"spec":{"containers":[{"name":"app","image":"registry.example.com/app@%s"}]}}}}}}`,
				i, i, i, labels, digest(1))
			req := httptest.NewRequest(http.MethodPost, "/validate", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			hook.ServeHTTP(rec, req)
			if !strings.Contains(rec.Body.String(), `"allowed":true`) {
				t.Fatalf("decision %d: %s", i, rec.Body)
			}
		}
		var r api.Replayer = &replay.Replayer{Journal: f.db, Evidence: f.db, Webhook: hook, Current: engine, Builtin: vrego.FS, Environments: envs.Names()}
		if wrap != nil {
			r = wrap(r)
		}
		cfg.Replayer = r
	})
}

const teamRule = `package vouch.admission

deny contains {"msg": sprintf("%s: add a team label", [input.workload.name]), "rule": "team-label"} if {
	not input.workload.labels.team
}
`

func replayBody(modules map[string]string, extra string) string {
	m, _ := json.Marshal(modules)
	return `{"modules":` + string(m) + extra + `}`
}

func TestReplay(t *testing.T) {
	f := replayFixture(t, nil)
	code, out := f.postJSON("/api/v1/policy/replay", "auditor", replayBody(map[string]string{"team.rego": teamRule}, `,"since":"1h","environment":"prod"`))
	if code != 200 {
		t.Fatalf("replay = %d %v", code, out)
	}
	totals := out["totals"].(map[string]any)
	if totals["decisions"] != 2.0 || totals["admit_to_deny"] != 1.0 || totals["unchanged"] != 1.0 {
		t.Errorf("totals = %v, want 2 decisions, 1 admit-to-deny, 1 unchanged", totals)
	}
	rules := out["rules"].([]any)
	if len(rules) != 1 || rules[0].(map[string]any)["rule"] != "team-label" {
		t.Errorf("rules = %v, want team-label", rules)
	}

	// Streamed: progress lines (none for so few), then the report.
	req, _ := http.NewRequest("POST", f.srv.URL+"/api/v1/policy/replay", strings.NewReader(replayBody(map[string]string{}, "")))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+f.tokens["auditor"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/x-ndjson" {
		t.Fatalf("streamed replay = %d %s", resp.StatusCode, ct)
	}
	var last map[string]json.RawMessage
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		last = nil
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
	}
	var rep replay.Report
	if err := json.Unmarshal(last["report"], &rep); err != nil || rep.Totals.Decisions != 2 || rep.Totals.Unchanged != 2 {
		t.Errorf("last line = %s (%v), want the report of 2 unchanged decisions", last, err)
	}
}

func TestReplayRefusals(t *testing.T) {
	f := replayFixture(t, nil)
	tests := []struct {
		name       string
		token      string
		body       string
		wantStatus int
		wantFields map[string]string // field -> a part of its detail
	}{
		{"unparsable Rego", "auditor", replayBody(map[string]string{"rules/team.rego": "package vouch.admission\n\ndeny contains x if {\n"}, ""), 422,
			map[string]string{"modules[rules/team.rego]": "line 4: rego_parse_error: unexpected eof token"}},
		{"Rego that does not compile", "auditor", replayBody(map[string]string{"team.rego": "package vouch.admission\n\ndeny contains x if {\n\tx := nope(1)\n}\n"}, ""), 422,
			map[string]string{"modules[team.rego]": "line 4: rego_type_error: undefined function nope"}},
		{"a built-in reaching out", "auditor", replayBody(map[string]string{"team.rego": "package vouch.admission\n\ndeny contains x if {\n\tx := opa.runtime().env.VOUCH_ADMIN_TOKEN\n}\n"}, ""), 422,
			map[string]string{"modules[team.rego]": "line 4: rego_type_error: unsafe built-in function calls in expression: opa.runtime"}},
		{"bad since", "auditor", replayBody(map[string]string{}, `,"since":"last week"`), 422, map[string]string{"since": `got "last week"`}},
		{"since after until", "auditor", replayBody(map[string]string{}, `,"since":"1h","until":"2h"`), 422, map[string]string{"since": "must be before until"}},
		{"unknown environment", "auditor", replayBody(map[string]string{}, `,"environment":"staging"`), 422, map[string]string{"environment": `unknown environment "staging" (configured: default, prod)`}},
		{"no modules", "auditor", `{"since":"1h"}`, 422, map[string]string{"modules": "is required"}},
		{"bad module names", "auditor", replayBody(map[string]string{"team.txt": "", "builtin/admission.rego": ""}, ""), 422,
			map[string]string{"modules[builtin/admission.rego]": "built-in", "modules[team.txt]": ".rego"}},
		{"limit", "auditor", replayBody(map[string]string{}, `,"limit":1000001`), 422, map[string]string{"limit": "from 1 to 1000000"}},
		{"unknown field", "auditor", replayBody(map[string]string{}, `,"policy_dir":"/etc"`), 400, map[string]string{"policy_dir": "not a known field"}},
		{"no audit:read", "ci", replayBody(map[string]string{}, ""), 403, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := f.postJSON("/api/v1/policy/replay", tt.token, tt.body)
			if code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%v)", code, tt.wantStatus, out)
			}
			got := map[string]string{}
			if errs, ok := out["errors"].([]any); ok {
				for _, e := range errs {
					e := e.(map[string]any)
					got[e["field"].(string)] = e["detail"].(string)
				}
			}
			if len(got) != len(tt.wantFields) {
				t.Errorf("fields = %v, want %v", got, tt.wantFields)
			}
			for field, part := range tt.wantFields {
				if !strings.Contains(got[field], part) {
					t.Errorf("field %s: detail %q, want it to contain %q", field, got[field], part)
				}
			}
		})
	}
}

// blockingReplayer holds a replay in Candidate until released.
type blockingReplayer struct {
	api.Replayer
	entered, release chan struct{}
}

func (b blockingReplayer) Candidate(ctx context.Context, modules map[string]string) (replay.Policy, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Replayer.Candidate(ctx, modules)
}

func TestReplayOneAtATime(t *testing.T) {
	b := blockingReplayer{entered: make(chan struct{}), release: make(chan struct{})}
	f := replayFixture(t, func(r api.Replayer) api.Replayer { b.Replayer = r; return b })
	done := f.inBackground("POST", "/api/v1/policy/replay", "auditor", "application/json", replayBody(map[string]string{}, ""))
	<-b.entered
	code, out, h := f.do("POST", "/api/v1/policy/replay", "auditor", "application/json", replayBody(map[string]string{}, ""))
	if code != 429 || !strings.Contains(fmt.Sprint(out["detail"]), "another policy replay is running") {
		t.Errorf("second replay = %d %v (Retry-After %q), want 429", code, out, h.Get("Retry-After"))
	}
	close(b.release)
	if code := <-done; code != 200 {
		t.Errorf("first replay = %d, want 200", code)
	}
}
