package junit_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/junit"
)

// FuzzParse checks that no input panics and that every report read gives a
// well-formed attestation. The samples in testdata are the seed corpus.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.xml")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`<testsuites><testsuite><testcase><failure/></testcase></testsuite></testsuites>`))
	p := junit.Parser{MaxFailures: 3, MaxSuites: 3, MaxMessage: 16, MaxToken: 4096}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := p.Parse(bytes.NewReader(in))
		if err != nil {
			return
		}
		c := r.Totals
		if c.Tests < 0 || c.Failures < 0 || c.Errors < 0 || c.Skipped < 0 || c.Time < 0 {
			t.Fatalf("negative totals %+v", c)
		}
		if len(r.Failures) > 3 || len(r.Suites) > 3 {
			t.Fatalf("limits exceeded: %d failures, %d suites", len(r.Failures), len(r.Suites))
		}
		if len(r.Failures) > 0 && r.Passed() {
			t.Fatalf("Passed() with failing cases %+v", r.Failures)
		}
		a := r.Attestation(digest, "tests")
		if len(a.Payload) > evidence.MaxPayload || !json.Valid(a.Payload) || a.Payload[0] != '{' {
			t.Fatalf("bad payload %q", a.Payload)
		}
		if *a.Passed != r.Passed() {
			t.Fatalf("attestation passed %v, report %v", *a.Passed, r.Passed())
		}
	})
}
