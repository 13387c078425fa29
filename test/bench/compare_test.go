package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/test/load"
)

func TestOPAVersionMatchesGoMod(t *testing.T) {
	t.Chdir("../..")
	if _, err := checkOPAVersion(); err != nil {
		t.Fatal(err)
	}
}

// complete returns the evidence the benchmark reports for a reviewed image.
func complete(digest string) evidence.Evidence {
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	expires := at.Add(365 * 24 * time.Hour)
	return evidence.Evidence{
		Digest:   digest,
		Artifact: &evidence.Artifact{ID: 1, Name: "registry.example.com/payments/api", Digest: digest, ReportedBy: "ci", ReportedAt: at},
		Attestations: []evidence.Attestation{
			{ID: 2, Digest: digest, Name: "unit-tests", Type: "junit", Passed: true, ReportedBy: "ci", ReportedAt: at},
			{ID: 3, Digest: digest, Name: "security-scan", Type: "sarif", Passed: true, ReportedBy: "ci", ReportedAt: at},
		},
		Approvals: []evidence.Approval{{ID: 4, Digest: digest, Environment: "prod", Decision: "approved", ExpiresAt: &expires, Approver: "rm", ApprovedAt: at}},
	}
}

// TestOPAPolicy checks that the OPA side of the comparison decides as
// Vouch's built-in policy does for the benchmark's environment.
func TestOPAPolicy(t *testing.T) {
	review, err := os.ReadFile("testdata/review-deployment.json")
	if err != nil {
		t.Fatal(err)
	}
	images, err := reviewImages(review)
	if err != nil {
		t.Fatal(err)
	}
	digest := func(i int) string { _, d, _ := strings.Cut(images[i], "@"); return d }
	all := func(edit func(evs []evidence.Evidence)) []evidence.Evidence {
		var evs []evidence.Evidence
		for i := range images {
			evs = append(evs, complete(digest(i)))
		}
		if edit != nil {
			edit(evs)
		}
		return evs
	}
	withReview := func(edit func(req map[string]any)) []byte {
		var doc map[string]any
		json.Unmarshal(review, &doc)
		edit(doc["request"].(map[string]any))
		b, _ := json.Marshal(doc)
		return b
	}
	now := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		review   []byte
		evidence []evidence.Evidence
		want     string // "" for allowed, else a substring of the message
	}{
		{"complete evidence", review, all(nil), ""},
		{"no provenance", review, all(func(e []evidence.Evidence) { e[1].Artifact = nil }), `container "worker": image registry.example.com/payments/worker@sha256:0000000000000000000000000000000000000000000000000000010000000001 has no provenance`},
		{"no evidence at all", review, all(func(e []evidence.Evidence) { e[2].Digest = "sha256:" + strings.Repeat("f", 64) }), `container "envoy"`},
		{"attestation missing", review, all(func(e []evidence.Evidence) { e[0].Attestations = e[0].Attestations[:1] }), `no passed attestation "security-scan"`},
		{"latest attestation failed", review, all(func(e []evidence.Evidence) {
			e[0].Attestations = append(e[0].Attestations, evidence.Attestation{ID: 9, Name: "unit-tests", Passed: false})
		}), `no passed attestation "unit-tests"`},
		{"failed then passed", review, all(func(e []evidence.Evidence) {
			e[0].Attestations = append([]evidence.Attestation{{ID: 9, Name: "unit-tests", Passed: false}}, e[0].Attestations...)
		}), ""},
		{"approval for another environment", review, all(func(e []evidence.Evidence) { e[0].Approvals[0].Environment = "staging" }), "no release approval for prod"},
		{"approval rejected later", review, all(func(e []evidence.Evidence) {
			e[0].Approvals = append(e[0].Approvals, evidence.Approval{ID: 9, Environment: "prod", Decision: "rejected"})
		}), "no release approval for prod"},
		{"approval expired", review, all(func(e []evidence.Evidence) { past := now.Add(-time.Hour); e[0].Approvals[0].ExpiresAt = &past }), "no release approval for prod"},
		{"not pinned", withReview(func(req map[string]any) {
			c := req["object"].(map[string]any)["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
			c["image"] = "registry.example.com/payments/api:1.2"
		}), all(nil), `container "api": image registry.example.com/payments/api:1.2 is not pinned by digest`},
		{"init container of a CronJob", withReview(func(req map[string]any) {
			req["kind"] = map[string]any{"group": "batch", "version": "v1", "kind": "CronJob"}
			req["object"] = map[string]any{"spec": map[string]any{"jobTemplate": map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
				"containers":     []any{map[string]any{"name": "job", "image": images[0]}},
				"initContainers": []any{map[string]any{"name": "migrate", "image": "registry.example.com/payments/migrate:latest"}},
			}}}}}}
		}), all(nil), `init container "migrate"`},
		{"ephemeral container of a Pod", withReview(func(req map[string]any) {
			req["kind"] = map[string]any{"group": "", "version": "v1", "kind": "Pod"}
			req["subResource"] = "ephemeralcontainers"
			req["object"] = map[string]any{"spec": map[string]any{
				"containers":          []any{map[string]any{"name": "app", "image": images[0]}},
				"ephemeralContainers": []any{map[string]any{"name": "debug", "image": "busybox"}},
			}}
		}), all(nil), `ephemeral container "debug"`},
		{"exempt namespace", withReview(func(req map[string]any) { req["namespace"] = "kube-system" }), all(func(e []evidence.Evidence) { e[0].Artifact = nil }), ""},
		{"delete", withReview(func(req map[string]any) { req["operation"] = "DELETE" }), all(func(e []evidence.Evidence) { e[0].Artifact = nil }), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "evidence.json")
			if err := writeOPAData(file, 3, tt.evidence); err != nil {
				t.Fatal(err)
			}
			raw, _ := os.ReadFile(file)
			var data map[string]any
			if err := json.Unmarshal(raw, &data); err != nil {
				t.Fatalf("writeOPAData wrote invalid JSON: %v", err)
			}
			var input any
			json.Unmarshal(tt.review, &input)
			ctx := context.Background()
			pq, err := rego.New(rego.Query("data.system.main"), rego.Module("admission.rego", string(opaPolicy)),
				rego.SetRegoVersion(ast.RegoV1), rego.Store(inmem.NewFromObject(data))).PrepareForEval(ctx)
			if err != nil {
				t.Fatal(err)
			}
			rs, err := pq.Eval(ctx, rego.EvalInput(input), rego.EvalTime(now))
			if err != nil || len(rs) != 1 {
				t.Fatalf("Eval = %v, %v", rs, err)
			}
			got, _ := json.Marshal(rs[0].Expressions[0].Value)
			var answer struct {
				Kind     string `json:"kind"`
				Response struct {
					UID     string `json:"uid"`
					Allowed bool   `json:"allowed"`
					Status  struct {
						Code    int    `json:"code"`
						Message string `json:"message"`
					} `json:"status"`
				} `json:"response"`
			}
			json.NewDecoder(bytes.NewReader(got)).Decode(&answer)
			if answer.Kind != "AdmissionReview" || answer.Response.UID != "00000000-0000-0000-0000-000000000000" {
				t.Errorf("answer %s is not an AdmissionReview response to the request", got)
			}
			switch {
			case tt.want == "" && !answer.Response.Allowed:
				t.Errorf("denied, want allowed: %s", got)
			case tt.want != "" && (answer.Response.Allowed || answer.Response.Status.Code != 403 || !strings.Contains(answer.Response.Status.Message, tt.want)):
				t.Errorf("answer %s, want a denial saying %q", got, tt.want)
			}
		})
	}
}

// TestPrintCompare checks the report's plumbing: both servers per load and
// round, their ratio, the memory rows and the targets.
func TestPrintCompare(t *testing.T) {
	run := func(server string, l compareLoad, rps, p99 float64) measured {
		return measured{load: l.name, server: server, round: 1, serverCPU: time.Second, dbCPU: 250 * time.Millisecond, loadCPU: 100 * time.Millisecond,
			rss: 100 << 20, res: load.Result{Requests: 1000, Allowed: 1000, RPS: rps, P50: 1, P99: p99, PacerLateP99: p99 / 4}}
	}
	vouch, opa, floor, journalFloor := &target{name: "vouch", idle: 60 << 20}, &target{name: "opa", idle: 50 << 20}, &target{name: "floor"}, &target{name: "journal floor"}
	for _, l := range compareLoads {
		vouch.runs = append(vouch.runs, run("vouch", l, 3000, 4))
		opa.runs = append(opa.runs, run("opa", l, 1500, 8))
		floor.runs = append(floor.runs, run("floor", l, 6000, 1.5))
		journalFloor.runs = append(journalFloor.runs, run("journal floor", l, 5000, 3))
	}
	var out bytes.Buffer
	printCompare(&out, compareReport{started: time.Now(), loadStart: "1", loadEnd: "2", opaVersion: "v1.22.3", bodyBytes: 3395, vouch: vouch, opa: opa, floors: []*target{floor, journalFloor},
		large:   []memoryRow{{server: "vouch", artifacts: 100003, idle: 55 << 20, load: run("vouch", closed32, 2000, 5), idleFile: 40 << 20, loadFile: 41 << 20}},
		journal: journalFootprint{entries: 10, admissions: 8, admissionLeaf: 1600, otherLeaf: 400, entriesBytes: 20000, nodesBytes: 1000}})
	for _, want := range []string{
		"| closed, 32 clients | 1 | Vouch | 1000 | 0 | 3000 | 1.00 |",
		"| closed, 32 clients | 1 | OPA | 1000 | 0 | 1500 | 1.00 |",
		"| 1000 (PostgreSQL 250) | 100 |",
		"| closed, 32 clients | 1 | 2.00 | 1.00 | 0.50 |",
		"| open, 2000 req/s | 1 | 2.00 | 1.00 | 0.50 |",
		"| Vouch (vouch serve) | 100003 | 55 | 100 (32 clients: 2000 req/s, p99 5.00 ms) |",
		"Of that RSS, file-backed (the executable's pages; the rest is anonymous memory, the heap): Vouch (vouch serve) 40 MB idle, 41 MB after the load",
		"Vouch/OPA 2.00 (per round)",
		"| closed, 32 clients | 1 | floor | 1000 | 0 | 6000 | 1.00 |",
		"| closed, 32 clients | 1 | journal floor | 1000 | 0 | 5000 | 1.00 |",
		"worst p99 over the rounds 4.00 ms (worst of the floors: floor 1.50 ms, journal floor 3.00 ms; the load generator's own pacer, p99 late: 1.00 ms)",
		"2100 bytes on disk per entry",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestParseLoads(t *testing.T) {
	got, err := parseLoads("closed:32, open:2000,open:4000")
	if err != nil {
		t.Fatal(err)
	}
	want := []compareLoad{closed32, open2000, {"open, 4000 req/s", 128, 4000}}
	if !slices.Equal(got, want) {
		t.Errorf("parseLoads = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "closed", "closed:0", "open:x", "burst:5"} {
		if _, err := parseLoads(bad); err == nil {
			t.Errorf("parseLoads(%q) did not fail", bad)
		}
	}
}
