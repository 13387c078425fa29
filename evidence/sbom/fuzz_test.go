package sbom_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/sbom"
)

// FuzzParse checks that no input panics and that every SBOM recognised
// gives a well-formed attestation. The samples in testdata are the seed
// corpus.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := sbom.ParseBytes(in)
		if err != nil {
			return
		}
		if s.Format != sbom.CycloneDX && s.Format != sbom.SPDX || s.Components < 0 {
			t.Fatalf("bad summary %+v", s)
		}
		a := s.Attestation(digest, "sbom")
		if len(a.Payload) > evidence.MaxPayload || !json.Valid(a.Payload) || !*a.Passed {
			t.Fatalf("bad attestation %+v", a)
		}
	})
}
