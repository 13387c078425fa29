package sarif_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/sarif"
)

// FuzzParse checks that no input panics and that every log read gives
// consistent counts and a well-formed attestation. The samples in testdata
// are the seed corpus.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.sarif")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(log(`{"id":"r","defaultConfiguration":{"level":"note"}}`, `{"ruleId":"r/x"},{"kind":"pass"},{"level":"error","suppressions":[{}]}`)))
	p := sarif.Parser{MaxFindings: 3, MaxMessage: 16, MaxValue: 1 << 16}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := p.Parse(bytes.NewReader(in))
		if err != nil {
			return
		}
		var sum sarif.Counts
		for _, tl := range r.Tools {
			sum.Error += tl.Error
			sum.Warning += tl.Warning
			sum.Note += tl.Note
			sum.None += tl.None
		}
		if sum != r.Totals {
			t.Fatalf("tools add up to %+v, totals are %+v", sum, r.Totals)
		}
		if len(r.Findings) > 3 || len(r.Findings) > r.Totals.Error+r.Totals.Warning+r.Totals.Note+r.Totals.None {
			t.Fatalf("%d findings for totals %+v", len(r.Findings), r.Totals)
		}
		for _, fo := range []sarif.FailOn{sarif.FailOnError, sarif.FailOnWarning, sarif.FailOnNote, sarif.FailOnNone} {
			a := r.Attestation(digest, "scan", fo)
			if len(a.Payload) > evidence.MaxPayload || !json.Valid(a.Payload) || a.Payload[0] != '{' {
				t.Fatalf("bad payload %q", a.Payload)
			}
		}
		if r.Totals.Error > 0 && r.Passed(sarif.FailOnError) {
			t.Fatalf("errors pass: %+v", r.Totals)
		}
	})
}
