package junit_test

import (
	"bytes"
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
	"github.com/vouch-dev/vouch/evidence/junit"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/test/golden"
)

const digest = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

// TestGolden parses every sample report in testdata and compares the
// report with testdata/<name>.golden.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := parseFile(t, file)
			golden.JSON(t, strings.TrimSuffix(file, ".xml")+".golden", r)
		})
	}
}

func parseFile(t *testing.T, file string) junit.Report {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := junit.Parse(f)
	if err != nil {
		t.Fatalf("Parse(%s): %v", file, err)
	}
	return r
}

func TestSamples(t *testing.T) {
	tests := []struct {
		file       string
		want       junit.Counts
		wantPassed bool
	}{
		{"surefire-TEST-com.example.billing.InvoiceServiceTest.xml", junit.Counts{Tests: 6, Failures: 1, Errors: 1, Skipped: 1, Time: 1.342}, false},
		{"pytest.xml", junit.Counts{Tests: 7, Failures: 1, Errors: 1, Skipped: 2, Time: 2.481}, false},
		{"go-junit-report.xml", junit.Counts{Tests: 9, Failures: 1, Skipped: 1, Time: 0.017}, false},
		{"gradle-TEST-com.example.ledger.LedgerTest.xml", junit.Counts{Tests: 3, Time: 0.087}, true},
		{"concatenated.xml", junit.Counts{Tests: 5, Failures: 1, Time: 0.099}, false},
		// unit: 5 tests, 1 failure, 1 skipped, 0.875 s; e2e declares 3 tests
		// and no failures, and has an error.
		{"nested-no-counts.xml", junit.Counts{Tests: 8, Failures: 1, Errors: 1, Skipped: 1, Time: 0.875}, false},
	}
	for _, tt := range tests {
		r := parseFile(t, filepath.Join("testdata", tt.file))
		if diff := cmp.Diff(tt.want, r.Totals); diff != "" {
			t.Errorf("Parse(%s).Totals (-want +got):\n%s", tt.file, diff)
		}
		if got := r.Passed(); got != tt.wantPassed {
			t.Errorf("Parse(%s).Passed() = %v, want %v", tt.file, got, tt.wantPassed)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     junit.Counts
		wantFail []string // names of the failing cases listed
		wantErr  string
	}{
		{
			name: "counts computed when attributes are absent",
			in:   `<testsuite><testcase name="a" time="0.1"/><testcase name="b" time="0.2"><failure/></testcase><testcase name="c"><skipped/></testcase></testsuite>`,
			want: junit.Counts{Tests: 3, Failures: 1, Skipped: 1, Time: 0.3}, wantFail: []string{"b"},
		},
		{
			name: "a failing case is not hidden by failures=0",
			in:   `<testsuite tests="1" failures="0" errors="0"><testcase name="a"><failure message="boom"/></testcase></testsuite>`,
			want: junit.Counts{Tests: 1, Failures: 1}, wantFail: []string{"a"},
		},
		{
			name: "counts from attributes without cases",
			in:   `<testsuites><testsuite name="s" tests="12" failures="2" errors="1" skipped="3" time="4.5"/></testsuites>`,
			want: junit.Counts{Tests: 12, Failures: 2, Errors: 1, Skipped: 3, Time: 4.5},
		},
		{
			name: "testsuites attributes larger than the sum",
			in:   `<testsuites tests="4" failures="1"><testsuite name="s"><testcase name="a"/></testsuite></testsuites>`,
			want: junit.Counts{Tests: 4, Failures: 1},
		},
		{
			name: "nose skip attribute",
			in:   `<testsuite name="nosetests" tests="2" errors="0" failures="0" skip="1"><testcase name="a"/><testcase name="b"/></testsuite>`,
			want: junit.Counts{Tests: 2, Skipped: 1},
		},
		{
			name: "failure and error in one case count once each, skipped not counted",
			in:   `<testsuite><testcase name="a"><failure/><failure/><error/><skipped/></testcase></testsuite>`,
			want: junit.Counts{Tests: 1, Failures: 1, Errors: 1}, wantFail: []string{"a"},
		},
		{
			name: "flaky and rerun results are not failures",
			in:   `<testsuite><testcase name="a"><flakyFailure/><flakyError/></testcase><testcase name="b"><rerunFailure/></testcase></testsuite>`,
			want: junit.Counts{Tests: 2},
		},
		{
			name: "testcase directly in testsuites",
			in:   `<testsuites name="jest"><testcase name="a"><failure>x</failure></testcase></testsuites>`,
			want: junit.Counts{Tests: 1, Failures: 1}, wantFail: []string{"a"},
		},
		{
			name: "testcase outside a suite is not read",
			in:   `<testsuite><properties><testcase name="x"><failure/></testcase></properties></testsuite>`,
			want: junit.Counts{},
		},
		{
			name: "namespaced root",
			in:   `<j:testsuite xmlns:j="urn:example"><j:testcase name="a"/></j:testsuite>`,
			want: junit.Counts{Tests: 1},
		},
		{
			name: "time with thousands separator, decimal comma and junk",
			in:   `<testsuites><testsuite time="1,234.5"/><testsuite time="0,25"/><testsuite time="NaN"/><testsuite time="-1"/><testsuite time="Inf"/></testsuites>`,
			want: junit.Counts{Time: 1234.75},
		},
		{
			name: "counts that are not numbers are ignored",
			in:   `<testsuite tests="many" failures="-3" errors="1e3" skipped="99999999999999999999"><testcase name="a"/></testsuite>`,
			want: junit.Counts{Tests: 1},
		},
		{
			name: "byte order mark",
			in:   "\ufeff<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite tests=\"1\"/>",
			want: junit.Counts{Tests: 1},
		},
		{
			name: "ISO-8859-1",
			in:   "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><testsuite><testcase name=\"gr\xfc\xdfe\"><failure message=\"\xe9chec\"/></testcase></testsuite>",
			want: junit.Counts{Tests: 1, Failures: 1}, wantFail: []string{"grüße"},
		},
		{name: "unsupported encoding", in: `<?xml version="1.0" encoding="Shift_JIS"?><testsuite/>`, wantErr: "unsupported encoding"},
		{name: "empty input", wantErr: "not a JUnit XML report: no <testsuites> or <testsuite> element"},
		{name: "JSON", in: `{"tests": 3}`, wantErr: "not a JUnit XML report: no <testsuites>"},
		{name: "HTML", in: `<!DOCTYPE html><html><body>Tests</body></html>`, wantErr: "not a JUnit XML report: the root element is <html>"},
		{name: "NUnit", in: `<test-run id="2" testcasecount="3"/>`, wantErr: "the root element is <test-run>"},
		{name: "second root not JUnit", in: `<testsuite/><checkstyle/>`, wantErr: "the root element is <checkstyle>"},
		{name: "truncated", in: `<testsuite><testcase name="a">`, wantErr: "unexpected EOF"},
		{name: "mismatched tags", in: `<testsuite><testcase></testsuite>`, wantErr: "closed by"},
		{name: "undefined entity", in: `<testsuite name="&bogus;"/>`, wantErr: "invalid character entity"},
		{name: "too deep", in: strings.Repeat("<testsuite>", 65) + strings.Repeat("</testsuite>", 65), wantErr: "nested deeper than 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := junit.Parse(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, r.Totals); diff != "" {
				t.Errorf("Parse(%q).Totals (-want +got):\n%s", tt.in, diff)
			}
			var names []string
			for _, f := range r.Failures {
				names = append(names, f.Name)
			}
			if diff := cmp.Diff(tt.wantFail, names); diff != "" {
				t.Errorf("Parse(%q) failing names (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestNotJUnitIsErrNotJUnit(t *testing.T) {
	for _, in := range []string{"", "<html/>", "plain text"} {
		if _, err := junit.Parse(strings.NewReader(in)); !errors.Is(err, junit.ErrNotJUnit) {
			t.Errorf("Parse(%q) = %v, want ErrNotJUnit", in, err)
		}
	}
	if _, err := junit.Parse(strings.NewReader("<testsuite>")); err == nil || errors.Is(err, junit.ErrNotJUnit) {
		t.Errorf("Parse(truncated) = %v, want a syntax error, not ErrNotJUnit", err)
	}
}

func TestFailureDetails(t *testing.T) {
	in := `<testsuites><testsuite name="pkg"><testcase classname="pkg" name="TestX" time="0.1">` +
		`<failure message="Failed" type="assert"><![CDATA[

    x_test.go:12: got 1, want 2
]]></failure><system-out>noise</system-out></testcase>` +
		`<testcase name="TestY"><error message=" boom "/></testcase></testsuite></testsuites>`
	r, err := junit.Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []junit.Failure{
		{Suite: "pkg", Classname: "pkg", Name: "TestX", Kind: "failure", Type: "assert", Message: "Failed", Detail: "x_test.go:12: got 1, want 2"},
		{Suite: "pkg", Name: "TestY", Kind: "error", Message: "boom"},
	}
	if diff := cmp.Diff(want, r.Failures); diff != "" {
		t.Errorf("Parse(%q).Failures (-want +got):\n%s", in, diff)
	}
}

func TestLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString("<testsuites>")
	for i := range 5 {
		fmt.Fprintf(&b, `<testsuite name="s%d"><testcase name="t%d"><failure message="%s">%s</failure></testcase></testsuite>`,
			i, i, strings.Repeat("é", 40), strings.Repeat("x", 100))
	}
	b.WriteString("</testsuites>")
	p := junit.Parser{MaxFailures: 2, MaxSuites: 3, MaxMessage: 21}
	r, err := p.Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if r.Totals.Tests != 5 || r.Totals.Failures != 5 {
		t.Errorf("Totals = %+v, want 5 tests, 5 failures: limits must not change counts", r.Totals)
	}
	if len(r.Failures) != 2 || r.FailuresOmitted != 3 {
		t.Errorf("%d failures listed, %d omitted; want 2 and 3", len(r.Failures), r.FailuresOmitted)
	}
	if len(r.Suites) != 3 || r.SuitesOmitted != 2 {
		t.Errorf("%d suites listed, %d omitted; want 3 and 2", len(r.Suites), r.SuitesOmitted)
	}
	// 21 bytes: nine two-byte runes and the three-byte cut mark.
	if got, want := r.Failures[0].Message, strings.Repeat("é", 9)+"…"; got != want {
		t.Errorf("Message = %q, want %q", got, want)
	}
	if got, want := r.Failures[0].Detail, strings.Repeat("x", 18)+"…"; got != want {
		t.Errorf("Detail = %q, want %q", got, want)
	}
}

// TestMaxToken shows that one huge token fails cleanly instead of taking
// unbounded memory, and that large output within the limit is fine.
func TestMaxToken(t *testing.T) {
	in := `<testsuite><testcase name="a"><system-out>` + strings.Repeat("log line\n", 1000) + `</system-out></testcase></testsuite>`
	if _, err := (junit.Parser{MaxToken: 1024}).Parse(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "larger than 1024 bytes") {
		t.Errorf("Parse with MaxToken 1024 = %v, want a token size error", err)
	}
	if r, err := (junit.Parser{MaxToken: 16 << 10}).Parse(strings.NewReader(in)); err != nil || r.Totals.Tests != 1 {
		t.Errorf("Parse with MaxToken 16 KiB = %+v, %v; want one test", r.Totals, err)
	}
}

// TestStreaming reads a report far larger than the token limit.
func TestStreaming(t *testing.T) {
	const n = 20000
	pr, pw := io.Pipe()
	go func() {
		fmt.Fprint(pw, `<testsuites><testsuite name="big">`)
		for i := range n {
			if i%1000 == 0 {
				fmt.Fprintf(pw, `<testcase name="t%d"><failure message="m"/><system-out>%s</system-out></testcase>`, i, strings.Repeat("o", 500))
			} else {
				fmt.Fprintf(pw, `<testcase name="t%d" time="0.001"/>`, i)
			}
		}
		fmt.Fprint(pw, `</testsuite></testsuites>`)
		pw.Close()
	}()
	r, err := (junit.Parser{MaxToken: 4096}).Parse(pr)
	if err != nil {
		t.Fatal(err)
	}
	want := junit.Counts{Tests: n, Failures: n / 1000, Time: float64(n-n/1000) / 1000}
	if diff := cmp.Diff(want, r.Totals); diff != "" {
		t.Errorf("Totals (-want +got):\n%s", diff)
	}
	if len(r.Failures) != junit.DefaultMaxFailures || r.FailuresOmitted != n/1000-junit.DefaultMaxFailures {
		t.Errorf("%d failures listed, %d omitted", len(r.Failures), r.FailuresOmitted)
	}
}

// TestMerge shows that merging the reports of two files gives the report of
// their concatenation.
func TestMerge(t *testing.T) {
	a := parseFile(t, "testdata/gradle-TEST-com.example.ledger.LedgerTest.xml")
	whole := parseFile(t, "testdata/concatenated.xml")
	second := `<testsuite name="com.example.ledger.PeriodTest" tests="2" failures="1" time="0.012"><testcase name="opensNextPeriod()" classname="com.example.ledger.PeriodTest" time="0.004"/><testcase name="refusesReopening()" classname="com.example.ledger.PeriodTest" time="0.008"><failure message="Expected java.lang.IllegalStateException to be thrown, but nothing was thrown." type="org.opentest4j.AssertionFailedError">org.opentest4j.AssertionFailedError: Expected java.lang.IllegalStateException to be thrown, but nothing was thrown.
	at com.example.ledger.PeriodTest.refusesReopening(PeriodTest.java:33)
</failure></testcase></testsuite>`
	b, err := junit.Parse(strings.NewReader(second))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(whole, junit.Merge(a, b)); diff != "" {
		t.Errorf("Merge(a, b) differs from Parse(a+b) (-want +got):\n%s", diff)
	}

	m := junit.Parser{MaxFailures: 1, MaxSuites: 1}.Merge(b, b, b)
	if m.Totals.Tests != 6 || len(m.Failures) != 1 || m.FailuresOmitted != 2 || len(m.Suites) != 1 || m.SuitesOmitted != 2 {
		t.Errorf("Merge with limits = %+v", m)
	}
}

type nopJournal struct{}

func (nopJournal) Append(_ context.Context, e journal.Entry) (journal.Appended, error) {
	return journal.Appended{Entry: e}, nil
}

func TestAttestation(t *testing.T) {
	r := parseFile(t, "testdata/go-junit-report.xml")
	a := r.Attestation(digest, "unit-tests")
	if a.Digest != digest || a.Name != "unit-tests" || a.Type != "junit" || a.Passed == nil || *a.Passed {
		t.Errorf("Attestation() = %+v, want a failed junit attestation of %s", a, digest)
	}
	want := `{"tests":9,"failures":1,"errors":0,"skipped":1,"time":0.017,` +
		`"failing":[{"suite":"github.com/example/shop/cart","classname":"github.com/example/shop/cart","name":"TestTotal/discounted","kind":"failure","message":"Failed","detail":"cart_test.go:48: Total() = 90, want 81"}]}`
	if got := string(a.Payload); got != want {
		t.Errorf("Attestation().Payload = %s, want %s", got, want)
	}
	if _, _, err := evidence.NewService(nopJournal{}, nil, nil).Attest(context.Background(), "ci", a); err != nil {
		t.Errorf("evidence.Service.Attest(%+v): %v", a, err)
	}

	ok := parseFile(t, "testdata/gradle-TEST-com.example.ledger.LedgerTest.xml").Attestation(digest, "unit-tests")
	if !*ok.Passed || string(ok.Payload) != `{"tests":3,"failures":0,"errors":0,"skipped":0,"time":0.087}` {
		t.Errorf("Attestation() of a passing report = passed %v, payload %s", *ok.Passed, ok.Payload)
	}
}

// TestAttestationPayloadBounded shows that the payload stays within
// evidence.MaxPayload whatever the parser's limits.
func TestAttestationPayloadBounded(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("<testsuite>")
	for i := range 500 {
		fmt.Fprintf(&b, `<testcase name="t%d"><failure message="%s"/></testcase>`, i, strings.Repeat("m", 4000))
	}
	b.WriteString("</testsuite>")
	r, err := (junit.Parser{MaxFailures: 500, MaxMessage: 4000}).Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	a := r.Attestation(digest, "unit-tests")
	if len(a.Payload) > evidence.MaxPayload {
		t.Fatalf("payload is %d bytes, more than %d", len(a.Payload), evidence.MaxPayload)
	}
	var p struct {
		Failing        []json.RawMessage `json:"failing"`
		FailingOmitted int               `json:"failing_omitted"`
	}
	if err := json.Unmarshal(a.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Failing) == 0 || len(p.Failing)+p.FailingOmitted != 500 {
		t.Errorf("payload lists %d failures and omits %d, want them to add up to 500", len(p.Failing), p.FailingOmitted)
	}
	if _, _, err := evidence.NewService(nopJournal{}, nil, nil).Attest(context.Background(), "ci", a); err != nil {
		t.Errorf("evidence.Service.Attest: %v", err)
	}
}

func ExampleParse() {
	r, err := junit.Parse(strings.NewReader(`<testsuite name="pkg" tests="2" failures="1">
  <testcase name="TestA"/>
  <testcase name="TestB"><failure message="got 1, want 2"/></testcase>
</testsuite>`))
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Totals.Tests, r.Totals.Failures, r.Passed())
	fmt.Println(r.Failures[0].Name+":", r.Failures[0].Message)
	// Output:
	// 2 1 false
	// TestB: got 1, want 2
}
