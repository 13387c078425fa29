package sarif_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/sarif"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/test/golden"
)

const digest = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

// TestGolden parses every sample log in testdata and compares the report
// with testdata/<name>.golden.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.sarif")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := parseFile(t, file)
			golden.JSON(t, strings.TrimSuffix(file, ".sarif")+".golden", r)
		})
	}
}

func parseFile(t *testing.T, file string) sarif.Report {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := sarif.Parse(f)
	if err != nil {
		t.Fatalf("Parse(%s): %v", file, err)
	}
	return r
}

func TestSamples(t *testing.T) {
	tests := []struct {
		file           string
		want           sarif.Counts
		wantSuppressed int
		wantTools      []string
	}{
		{"trivy-image.sarif", sarif.Counts{Error: 1, Warning: 2, Note: 1}, 0, []string{"Trivy"}},
		// Results before the tool, levels from the rules, one nosemgrep.
		{"semgrep.sarif", sarif.Counts{Error: 1, Warning: 1, Note: 1}, 1, []string{"Semgrep OSS"}},
		// Rules in an extension; one rule without a level is a warning.
		{"codeql-javascript.sarif", sarif.Counts{Error: 1, Warning: 1, Note: 1}, 0, []string{"CodeQL"}},
		// A rejected suppression does not suppress; kind "pass" is level none.
		{"gosec-clean-and-eslint.sarif", sarif.Counts{Error: 1, Warning: 1, None: 1}, 0, []string{"gosec", "ESLint"}},
	}
	for _, tt := range tests {
		r := parseFile(t, filepath.Join("testdata", tt.file))
		if diff := cmp.Diff(tt.want, r.Totals); diff != "" {
			t.Errorf("Parse(%s).Totals (-want +got):\n%s", tt.file, diff)
		}
		if r.Suppressed != tt.wantSuppressed {
			t.Errorf("Parse(%s).Suppressed = %d, want %d", tt.file, r.Suppressed, tt.wantSuppressed)
		}
		var tools []string
		for _, tl := range r.Tools {
			tools = append(tools, tl.Name)
		}
		if diff := cmp.Diff(tt.wantTools, tools); diff != "" {
			t.Errorf("Parse(%s) tools (-want +got):\n%s", tt.file, diff)
		}
	}
}

// log builds a one-run SARIF log.
func log(rules, results string) string {
	return `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t","rules":[` + rules + `]}},"results":[` + results + `]}]}`
}

func TestLevels(t *testing.T) {
	rules := `{"id":"E","defaultConfiguration":{"level":"error"}},{"id":"N","defaultConfiguration":{"level":"note"}},{"id":"D","defaultConfiguration":{"enabled":false}},{"id":"X"}`
	tests := []struct {
		name    string
		result  string
		want    string
		wantErr string
	}{
		{name: "own level wins over the rule", result: `{"ruleId":"E","level":"note"}`, want: "note"},
		{name: "rule by id", result: `{"ruleId":"E"}`, want: "error"},
		{name: "rule by ruleIndex", result: `{"ruleIndex":1}`, want: "note"},
		{name: "ruleIndex before ruleId", result: `{"ruleId":"E","ruleIndex":1}`, want: "note"},
		{name: "rule.index", result: `{"rule":{"index":0}}`, want: "error"},
		{name: "rule.id", result: `{"rule":{"id":"N"}}`, want: "note"},
		{name: "hierarchical id", result: `{"ruleId":"E/sub"}`, want: "error"},
		{name: "defaultConfiguration without level", result: `{"ruleId":"D"}`, want: "warning"},
		{name: "rule without defaultConfiguration", result: `{"ruleId":"X"}`, want: "warning"},
		{name: "unknown rule", result: `{"ruleId":"nope"}`, want: "warning"},
		{name: "index out of range falls back to the id", result: `{"ruleId":"N","ruleIndex":99}`, want: "note"},
		{name: "no rule at all", result: `{"message":{"text":"m"}}`, want: "warning"},
		{name: "kind pass", result: `{"ruleId":"E","kind":"pass"}`, want: "none"},
		{name: "kind fail uses the rule", result: `{"ruleId":"E","kind":"fail"}`, want: "error"},
		{name: "kind review with a level", result: `{"kind":"review","level":"warning"}`, want: "warning"},
		{name: "level none", result: `{"ruleId":"E","level":"none"}`, want: "none"},
		{name: "null level uses the rule", result: `{"ruleId":"E","level":null}`, want: "error"},
		{name: "unknown level", result: `{"level":"critical"}`, wantErr: `run 0: result 0: level "critical" is not error, warning, note or none`},
		{name: "level not a string", result: `{"level":3}`, wantErr: "run 0: result 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The same whether the tool comes before or after the results.
			before := log(rules, tt.result)
			after := `{"runs":[{"results":[` + tt.result + `],"tool":{"driver":{"name":"t","rules":[` + rules + `]}}}],"version":"2.1.0"}`
			for _, in := range []string{before, after} {
				r, err := sarif.Parse(strings.NewReader(in))
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Errorf("Parse(%s) error = %v, want one containing %q", in, err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Parse(%s): %v", in, err)
				}
				if len(r.Findings) != 1 || r.Findings[0].Level != tt.want {
					t.Errorf("Parse(%s) findings = %+v, want one of level %s", in, r.Findings, tt.want)
				}
			}
		})
	}
}

func TestToolComponents(t *testing.T) {
	in := `{"version":"2.1.0","runs":[{"tool":{
		"driver":{"name":"CodeQL","rules":[{"id":"r","defaultConfiguration":{"level":"note"}}]},
		"extensions":[{"name":"pack-a","rules":[{"id":"r","defaultConfiguration":{"level":"warning"}}]},
		              {"name":"pack-b","rules":[{"id":"r","defaultConfiguration":{"level":"error"}}]}]},
		"results":[
			{"ruleId":"r"},
			{"rule":{"id":"r","toolComponent":{"index":0}}},
			{"rule":{"id":"r","index":0,"toolComponent":{"index":1}}},
			{"rule":{"id":"r","toolComponent":{"name":"pack-b"}}},
			{"rule":{"id":"r","toolComponent":{"name":"CodeQL"}}},
			{"rule":{"id":"r","toolComponent":{"index":7}}},
			{"rule":{"id":"r","toolComponent":{"name":"pack-z"}}}
		]}]}`
	r, err := sarif.Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	// Driver note, pack-a warning, pack-b error, pack-b error, driver note,
	// and two warnings for components that do not exist.
	want := sarif.Counts{Error: 2, Warning: 3, Note: 2}
	if diff := cmp.Diff(want, r.Totals); diff != "" {
		t.Errorf("Parse(%s).Totals (-want +got):\n%s", in, diff)
	}
}

func TestNotSARIF(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "empty input"},
		{"array", `[{"version":"2.1.0"}]`, "not a JSON object"},
		{"not JSON", `<?xml version="1.0"?><testsuite/>`, "not a SARIF 2.1.0 log: invalid character"},
		{"CycloneDX", `{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,"components":[]}`, "version is 1"},
		{"SARIF 2.0", `{"version":"2.0.0","runs":[]}`, `version "2.0.0" is not supported`},
		{"no version", `{"runs":[]}`, "no version"},
		{"no runs", `{"version":"2.1.0"}`, "no runs"},
		{"run without tool", `{"version":"2.1.0","runs":[{"results":[]}]}`, "run 0 has no tool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sarif.Parse(strings.NewReader(tt.in))
			if !errors.Is(err, sarif.ErrNotSARIF) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) = %v, want ErrNotSARIF containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"truncated", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t"}},"results":[{"level":"error"}`, "unexpected EOF"},
		{"trailing data", `{"version":"2.1.0","runs":[]} {}`, "data after the log"},
		{"runs not an array", `{"version":"2.1.0","runs":{}}`, "runs is {, want an array"},
		{"bad default level", log(`{"id":"r","defaultConfiguration":{"level":"high"}}`, ``), `rule "r": defaultConfiguration.level "high"`},
		{"too deep", `{"version":"2.1.0","runs":[],"x":` + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + `}`, "nested deeper than 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sarif.Parse(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) = %v, want an error containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestNullRunsAndResults(t *testing.T) {
	for _, in := range []string{
		`{"version":"2.1.0","runs":null}`,
		`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t"}},"results":null}]}`,
	} {
		r, err := sarif.Parse(strings.NewReader(in))
		if err != nil || r.Totals != (sarif.Counts{}) || !r.Passed(sarif.FailOnNote) {
			t.Errorf("Parse(%s) = %+v, %v; want an empty passing report", in, r, err)
		}
	}
}

func TestFindings(t *testing.T) {
	var results []string
	for i := range 30 {
		level := []string{"note", "warning", "error"}[i%3]
		results = append(results, fmt.Sprintf(`{"ruleId":"R%d","level":%q,"message":{"text":"m%d"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"src/f%d.go"},"region":{"startLine":%d,"startColumn":2}}}]}`, i, level, i, i, i+1))
	}
	results = append(results, `{"ruleId":"L","level":"error","message":{"markdown":"**md**"},"locations":[{"logicalLocations":[{"name":"f","fullyQualifiedName":"pkg.f"}]}]}`)
	r, err := (sarif.Parser{MaxFindings: 4}).Parse(strings.NewReader(log("", strings.Join(results, ","))))
	if err != nil {
		t.Fatal(err)
	}
	want := []sarif.Finding{
		{Tool: "t", RuleID: "R2", Level: "error", Message: "m2", Location: "src/f2.go:3:2"},
		{Tool: "t", RuleID: "R5", Level: "error", Message: "m5", Location: "src/f5.go:6:2"},
		{Tool: "t", RuleID: "R8", Level: "error", Message: "m8", Location: "src/f8.go:9:2"},
		{Tool: "t", RuleID: "R11", Level: "error", Message: "m11", Location: "src/f11.go:12:2"},
	}
	if diff := cmp.Diff(want, r.Findings); diff != "" {
		t.Errorf("Findings (-want +got):\n%s", diff)
	}
	if want := (sarif.Counts{Error: 11, Warning: 10, Note: 10}); r.Totals != want {
		t.Errorf("Totals = %+v, want %+v", r.Totals, want)
	}

	r, err = (sarif.Parser{MaxMessage: 10}).Parse(strings.NewReader(log("", results[30]+`,{"level":"note","message":{"text":"ünïcödé text"}}`)))
	if err != nil {
		t.Fatal(err)
	}
	want = []sarif.Finding{
		{Tool: "t", RuleID: "L", Level: "error", Message: "**md**", Location: "pkg.f"},
		{Tool: "t", Level: "note", Message: "ünïc…"},
	}
	if diff := cmp.Diff(want, r.Findings); diff != "" {
		t.Errorf("Findings (-want +got):\n%s", diff)
	}
}

// TestToolNames shows findings name the tool of their own run, also when a
// driver has no name.
func TestToolNames(t *testing.T) {
	in := `{"version":"2.1.0","runs":[
		{"tool":{"driver":{"name":"a","version":"1"}},"results":[{"level":"error","message":{"text":"x"}}]},
		{"tool":{"driver":{"name":""}},"results":[{"level":"error","message":{"text":"y"}}]},
		{"results":[{"message":{"text":"z"}}],"tool":{"driver":{"name":"a","version":"2"}}}]}`
	r, err := sarif.Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	wantTools := []sarif.Tool{{Name: "a", Version: "1", Counts: sarif.Counts{Error: 1, Warning: 1}}, {Name: "", Counts: sarif.Counts{Error: 1}}}
	if diff := cmp.Diff(wantTools, r.Tools); diff != "" {
		t.Errorf("Tools (-want +got):\n%s", diff)
	}
	var got []string
	for _, f := range r.Findings {
		got = append(got, f.Tool+":"+f.Message)
	}
	if diff := cmp.Diff([]string{"a:x", ":y", "a:z"}, got); diff != "" {
		t.Errorf("finding tools (-want +got):\n%s", diff)
	}
}

// TestMaxValue shows that one huge value fails cleanly, and that a large
// log of small values streams within the limit.
func TestMaxValue(t *testing.T) {
	huge := log("", `{"level":"error","message":{"text":"`+strings.Repeat("x", 8000)+`"}}`)
	if _, err := (sarif.Parser{MaxValue: 4096}).Parse(strings.NewReader(huge)); err == nil || !strings.Contains(err.Error(), "larger than 4096 bytes") {
		t.Errorf("Parse with MaxValue 4096 = %v, want a value size error", err)
	}

	const n = 20000
	pr, pw := io.Pipe()
	go func() {
		fmt.Fprint(pw, `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"big","rules":[{"id":"r","defaultConfiguration":{"level":"error"}}]}},"results":[`)
		for i := range n {
			if i > 0 {
				fmt.Fprint(pw, ",")
			}
			fmt.Fprintf(pw, `{"ruleId":"r","message":{"text":"finding %d"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"f.go"},"region":{"startLine":%d}}}]}`, i, i+1)
		}
		fmt.Fprint(pw, `]}]}`)
		pw.Close()
	}()
	r, err := (sarif.Parser{MaxValue: 4096}).Parse(pr)
	if err != nil {
		t.Fatal(err)
	}
	if r.Totals.Error != n || len(r.Findings) != sarif.DefaultMaxFindings || r.Findings[0].Message != "finding 0" {
		t.Errorf("Parse(%d results) = %+v, %d findings", n, r.Totals, len(r.Findings))
	}
}

func TestPassed(t *testing.T) {
	r := sarif.Report{Totals: sarif.Counts{Warning: 1, Note: 2, None: 5}}
	tests := []struct {
		failOn sarif.FailOn
		want   bool
	}{
		{sarif.FailOnError, true},
		{"", true},
		{sarif.FailOnWarning, false},
		{sarif.FailOnNote, false},
		{sarif.FailOnNone, true},
		{"critical", false},
	}
	for _, tt := range tests {
		if got := r.Passed(tt.failOn); got != tt.want {
			t.Errorf("Passed(%q) = %v, want %v", tt.failOn, got, tt.want)
		}
	}
	notes := sarif.Report{Totals: sarif.Counts{Note: 1}}
	if !notes.Passed(sarif.FailOnWarning) || notes.Passed(sarif.FailOnNote) {
		t.Errorf("a note passes fail-on warning and fails fail-on note")
	}
	errs := sarif.Report{Totals: sarif.Counts{Error: 1}}
	if errs.Passed(sarif.FailOnError) || !errs.Passed(sarif.FailOnNone) {
		t.Errorf("an error fails fail-on error and passes fail-on none")
	}
}

func TestParseFailOn(t *testing.T) {
	for _, s := range []string{"error", "warning", "note", "none"} {
		if f, err := sarif.ParseFailOn(s); err != nil || string(f) != s {
			t.Errorf("ParseFailOn(%q) = %q, %v", s, f, err)
		}
	}
	for _, s := range []string{"", "Error", "high", "critical"} {
		if _, err := sarif.ParseFailOn(s); err == nil {
			t.Errorf("ParseFailOn(%q) = nil error, want one", s)
		}
	}
}

type nopJournal struct{}

func (nopJournal) Append(_ context.Context, e journal.Entry) (journal.Appended, error) {
	return journal.Appended{Entry: e}, nil
}

func TestAttestation(t *testing.T) {
	r := parseFile(t, "testdata/codeql-javascript.sarif")
	tests := []struct {
		failOn     sarif.FailOn
		wantPassed bool
	}{
		{sarif.FailOnError, false},
		{sarif.FailOnNone, true},
	}
	for _, tt := range tests {
		a := r.Attestation(digest, "codeql", tt.failOn)
		if a.Digest != digest || a.Name != "codeql" || a.Type != "sarif" || *a.Passed != tt.wantPassed {
			t.Errorf("Attestation(%q) = %+v, passed %v; want a sarif attestation of %s, passed %v", tt.failOn, a, *a.Passed, digest, tt.wantPassed)
		}
		if _, _, err := evidence.NewService(nopJournal{}, nil, nil).Attest(context.Background(), "ci", a); err != nil {
			t.Errorf("evidence.Service.Attest(%+v): %v", a, err)
		}
	}
	a := r.Attestation(digest, "codeql", "")
	want := `{"fail_on":"error","error":1,"warning":1,"note":1,"none":0,"suppressed":0,` +
		`"tools":[{"name":"CodeQL","version":"2.19.3","error":1,"warning":1,"note":1,"none":0}],` +
		`"findings":[{"tool":"CodeQL","rule_id":"js/sql-injection","level":"error","message":"This query string depends on a [user-provided value](1).","location":"src/db.js:27:20"},` +
		`{"tool":"CodeQL","rule_id":"js/missing-rate-limiting","level":"warning","message":"This route handler performs [a database access](1), but is not rate-limited.","location":"src/server.js:13:23"},` +
		`{"tool":"CodeQL","rule_id":"js/unused-local-variable","level":"note","message":"Unused variable retries.","location":"src/db.js:9:7"}]}`
	if got := string(a.Payload); got != want {
		t.Errorf("Attestation().Payload =\n%s\nwant\n%s", got, want)
	}
	if empty := (sarif.Report{}).Attestation(digest, "scan", sarif.FailOnWarning); string(empty.Payload) != `{"fail_on":"warning","error":0,"warning":0,"note":0,"none":0,"suppressed":0,"tools":[],"findings":[]}` {
		t.Errorf("empty Attestation().Payload = %s", empty.Payload)
	}
}

func TestAttestationPayloadBounded(t *testing.T) {
	var results []string
	for i := range 300 {
		results = append(results, fmt.Sprintf(`{"level":"error","message":{"text":"%d %s"}}`, i, strings.Repeat("m", 3000)))
	}
	r, err := (sarif.Parser{MaxFindings: 300, MaxMessage: 3000}).Parse(strings.NewReader(log("", strings.Join(results, ","))))
	if err != nil {
		t.Fatal(err)
	}
	a := r.Attestation(digest, "scan", sarif.FailOnError)
	if len(a.Payload) > evidence.MaxPayload || !json.Valid(a.Payload) {
		t.Fatalf("payload of %d bytes, more than %d or not JSON", len(a.Payload), evidence.MaxPayload)
	}
	if _, _, err := evidence.NewService(nopJournal{}, nil, nil).Attest(context.Background(), "ci", a); err != nil {
		t.Errorf("evidence.Service.Attest: %v", err)
	}
}

func ExampleParse() {
	r, err := sarif.Parse(strings.NewReader(`{"version":"2.1.0","runs":[{
  "tool":{"driver":{"name":"gosec","rules":[{"id":"G101","defaultConfiguration":{"level":"error"}}]}},
  "results":[{"ruleId":"G101","message":{"text":"Potential hardcoded credentials"},
    "locations":[{"physicalLocation":{"artifactLocation":{"uri":"config.go"},"region":{"startLine":12}}}]}]}]}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Totals.Error, r.Passed(sarif.FailOnError), r.Passed(sarif.FailOnNone))
	fmt.Println(r.Findings[0].RuleID, r.Findings[0].Location)
	// Output:
	// 1 false true
	// G101 config.go:12
}
