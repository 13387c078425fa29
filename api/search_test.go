package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/journal"
)

func TestApprovalsList(t *testing.T) {
	f := newFixture(t)
	for _, b := range []string{
		`{"digest":"` + digest(1) + `","environment":"prod","decision":"approved","reason":"CAB-1"}`,
		`{"digest":"` + digest(2) + `","environment":"default","decision":"approved"}`,
		`{"digest":"` + digest(1) + `","environment":"prod","decision":"rejected","reason":"rolled back"}`,
	} {
		if code, out := f.postJSON("/api/v1/approvals", "rm", b); code != 201 {
			t.Fatalf("approve: %d %v", code, out)
		}
	}
	list := func(q string) []string {
		code, out, _ := f.do("GET", "/api/v1/approvals"+q, "auditor", "", "")
		if code != 200 {
			t.Fatalf("GET /approvals%s = %d %v", q, code, out)
		}
		var got []string
		for _, a := range out["approvals"].([]any) {
			a := a.(map[string]any)
			got = append(got, fmt.Sprintf("%s %s %s", a["digest"].(string)[70:], a["environment"], a["decision"]))
		}
		return got
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"1 prod rejected", "2 default approved", "1 prod approved"}},
		{"?digest=" + digest(1), []string{"1 prod rejected", "1 prod approved"}},
		{"?digest=" + strings.TrimPrefix(digest(2), "sha256:"), []string{"2 default approved"}},
		{"?environment=prod&limit=1", []string{"1 prod rejected"}},
		{"?environment=staging", nil},
	}
	for _, tt := range tests {
		if got := list(tt.query); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("GET /approvals%s = %v, want %v", tt.query, got, tt.want)
		}
	}
	for _, q := range []string{"?digest=sha256:abc", "?environment=Prod!", "?limit=0", "?limit=x"} {
		if code, out, _ := f.do("GET", "/api/v1/approvals"+q, "auditor", "", ""); code != 400 {
			t.Errorf("GET /approvals%s = %d %v, want 400", q, code, out)
		}
	}
	if code, _, _ := f.do("GET", "/api/v1/approvals", "ci", "", ""); code != 403 {
		t.Errorf("GET /approvals with evidence:write = %d, want 403", code)
	}
}

func TestSearch(t *testing.T) {
	f := newFixture(t)
	const commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
	app := "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	web := "sha256:4b825dc6" + strings.Repeat("0", 56) // starts like the commit
	for _, b := range []string{
		`{"name":"registry.example.com/app","digest":"` + app + `","git_commit":"` + commit + `"}`,
		`{"name":"registry.example.com/web","digest":"` + web + `"}`,
		`{"name":"registry.example.com/other","digest":"` + digest(3) + `","git_commit":"` + strings.Repeat("9", 40) + `"}`,
	} {
		if code, out := f.postJSON("/api/v1/artifacts", "ci", b); code != 201 {
			t.Fatalf("report: %d %v", code, out)
		}
	}
	f.postJSON("/api/v1/attestations", "ci", `{"digest":"`+app+`","name":"unit-tests","type":"junit","passed":false,"payload":{"failures":1}}`)
	f.postJSON("/api/v1/approvals", "rm", `{"digest":"`+app+`","environment":"prod","decision":"approved"}`)
	// Admitted into prod by the webhook; running in prod by a snapshot.
	body, _ := json.Marshal(map[string]any{"uid": "u1", "allowed": true, "environment": "prod", "images": []any{map[string]string{"digest": app}}})
	if _, err := f.journal.Append(t.Context(), journal.Entry{Kind: journal.KindAdmission, Time: time.Now(), Environment: "prod", Key: "admission:u1", Body: body}); err != nil {
		t.Fatal(err)
	}
	snap := `{"workloads":[{"namespace":"shop","kind":"Deployment","name":"app","pods":1,"started":"2026-01-01T00:00:00Z",
		"containers":[{"name":"app","image":"registry.example.com/app@` + app + `","digest":"` + app + `"}]}]}`
	if code, out, _ := f.do("PUT", "/api/v1/environments/prod/snapshot", "admin", "application/json", snap); code != 200 {
		t.Fatalf("snapshot: %d %v", code, out)
	}

	search := func(q string) []map[string]any {
		code, out, _ := f.do("GET", "/api/v1/search?q="+q, "auditor", "", "")
		if code != 200 {
			t.Fatalf("GET /search?q=%s = %d %v", q, code, out)
		}
		var rs []map[string]any
		for _, r := range out["results"].([]any) {
			rs = append(rs, r.(map[string]any))
		}
		return rs
	}
	names := func(rs []map[string]any) string {
		var s []string
		for _, r := range rs {
			s = append(s, fmt.Sprintf("%s(%s)", r["artifact"].(map[string]any)["name"], r["matched"]))
		}
		return strings.Join(s, " ")
	}
	tests := []struct{ q, want string }{
		{"4b825dc", "registry.example.com/web(digest) registry.example.com/app(git_commit)"},
		{"sha256:4b825dc", "registry.example.com/web(digest)"},
		{commit, "registry.example.com/app(git_commit)"},
		{"2C26B46", "registry.example.com/app(digest)"},
		{app, "registry.example.com/app(digest)"},
		{"1234567", ""},
	}
	for _, tt := range tests {
		if got := names(search(tt.q)); got != tt.want {
			t.Errorf("search %q = %q, want %q", tt.q, got, tt.want)
		}
	}
	r := search("2c26b46")[0]
	atts, apps := r["attestations"].([]any), r["approvals"].([]any)
	if len(atts) != 1 || atts[0].(map[string]any)["passed"] != false || atts[0].(map[string]any)["payload"] != nil || len(apps) != 1 {
		t.Errorf("evidence of the result: attestations %v approvals %v, want one failed attestation without payload and one approval", atts, apps)
	}
	envs := r["environments"].([]any)
	if len(envs) != 1 {
		t.Fatalf("environments = %v, want prod", envs)
	}
	prod := envs[0].(map[string]any)
	if prod["environment"] != "prod" || prod["first_admitted"] == nil || prod["first_ran"] == nil || prod["running_now"] != true {
		t.Errorf("prod sighting = %v, want admitted, ran and running now", prod)
	}
	for _, q := range []string{"", "abc", "sha256:abc", "main", "4b825dc-"} {
		if code, out, _ := f.do("GET", "/api/v1/search?q="+q, "auditor", "", ""); code != 400 {
			t.Errorf("GET /search?q=%s = %d %v, want 400", q, code, out)
		}
	}
}
