package sbom_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/sbom"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/test/golden"
)

const digest = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

// TestGolden summarises every sample SBOM in testdata and compares the
// summary with testdata/<name>.golden.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			s := parseFile(t, file)
			golden.JSON(t, strings.TrimSuffix(file, ".json")+".golden", s)
		})
	}
}

func parseFile(t *testing.T, file string) sbom.Summary {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := sbom.Parse(f)
	if err != nil {
		t.Fatalf("Parse(%s): %v", file, err)
	}
	return s
}

func TestSamples(t *testing.T) {
	tests := []struct {
		file string
		want sbom.Summary
	}{
		{"cyclonedx-1.5-syft-image.json", sbom.Summary{
			Format: "cyclonedx", SpecVersion: "1.5", ID: "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
			Name: "registry.example.com/team/app", Version: digest, Components: 5, Tools: []string{"syft 1.16.0"},
		}},
		{"cyclonedx-1.4-maven.json", sbom.Summary{
			Format: "cyclonedx", SpecVersion: "1.4", ID: "urn:uuid:9f1c0a3e-6a50-4d3b-8f0e-2b7d7f2d6e11",
			Name: "billing-service", Version: "3.2.0", Components: 5, Tools: []string{"CycloneDX Maven plugin 2.8.1"},
		}},
		{"spdx-2.3-syft.json", sbom.Summary{
			Format: "spdx", SpecVersion: "SPDX-2.3", ID: "https://anchore.com/syft/image/registry.example.com/team/app-5e0b9a3c-1c57-4a7e-9b0e-2f1d6a8c4e21",
			Name: "registry.example.com/team/app", Version: digest, Components: 4, Tools: []string{"syft-1.16.0"},
		}},
		{"spdx-2.2-npm.json", sbom.Summary{
			Format: "spdx", SpecVersion: "SPDX-2.2", ID: "http://spdx.org/spdxdocs/web-frontend-4.1.0-8b0c2f14-3f1e-4a35-9d86-6a1f2c9b7e54",
			Name: "web-frontend@4.1.0", Version: "4.1.0", Components: 3, Tools: []string{"npm/cli-10.9.0", "spdx-sbom-generator"},
		}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, parseFile(t, filepath.Join("testdata", tt.file))); diff != "" {
			t.Errorf("Parse(%s) (-want +got):\n%s", tt.file, diff)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    sbom.Summary
		wantErr string
	}{
		{name: "minimal CycloneDX", in: `{"bomFormat":"CycloneDX","specVersion":"1.6"}`, want: sbom.Summary{Format: "cyclonedx", SpecVersion: "1.6"}},
		{name: "byte order mark", in: "\ufeff\n" + `{"bomFormat":"CycloneDX","specVersion":"1.2","components":[{},{}]}`, want: sbom.Summary{Format: "cyclonedx", SpecVersion: "1.2", Components: 2}},
		{name: "minimal SPDX", in: `{"spdxVersion":"SPDX-2.3","name":"doc"}`, want: sbom.Summary{Format: "spdx", SpecVersion: "SPDX-2.3", Name: "doc"}},
		{
			name: "SPDX describing two packages has no version",
			in:   `{"spdxVersion":"SPDX-2.3","name":"d","documentDescribes":["a","b"],"packages":[{"SPDXID":"a","versionInfo":"1"},{"SPDXID":"b","versionInfo":"2"}]}`,
			want: sbom.Summary{Format: "spdx", SpecVersion: "SPDX-2.3", Name: "d", Components: 2},
		},
		{
			name: "tools limited and clipped",
			in:   `{"bomFormat":"CycloneDX","specVersion":"1.4","metadata":{"tools":[` + strings.Repeat(`{"name":"t"},`, 11) + `{"name":"` + strings.Repeat("x", 300) + `"},{"version":"no name"}]}}`,
			want: sbom.Summary{Format: "cyclonedx", SpecVersion: "1.4", Tools: strings.Split(strings.Repeat("t,", 10)[:19], ",")},
		},
		{
			name: "tools of an unknown shape are ignored",
			in:   `{"bomFormat":"CycloneDX","specVersion":"1.5","metadata":{"tools":"syft"}}`,
			want: sbom.Summary{Format: "cyclonedx", SpecVersion: "1.5"},
		},
		{name: "empty", in: " \n", wantErr: "empty input"},
		{name: "CycloneDX XML", in: `<?xml version="1.0"?><bom xmlns="http://cyclonedx.org/schema/bom/1.5"/>`, wantErr: "this is XML"},
		{name: "SPDX tag-value", in: "SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n", wantErr: "SPDX tag-value"},
		{name: "SPDX tag-value after a comment", in: "## Document\nSPDXVersion: SPDX-2.2\n", wantErr: "SPDX tag-value"},
		{name: "SPDX 3 JSON-LD", in: `{"@context":"https://spdx.org/rdf/3.0.1/spdx-context.jsonld","@graph":[]}`, wantErr: "SPDX 3 JSON-LD"},
		{name: "SPDX 3 version", in: `{"spdxVersion":"SPDX-3.0"}`, wantErr: "SPDX 3 is not supported"},
		{name: "in-toto statement", in: `{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://cyclonedx.org/bom","predicate":{}}`, wantErr: `in-toto statement (predicateType "https://cyclonedx.org/bom")`},
		{name: "SARIF", in: `{"version":"2.1.0","runs":[]}`, wantErr: "no bomFormat or spdxVersion"},
		{name: "array", in: `[{"bomFormat":"CycloneDX"}]`, wantErr: "not a JSON object"},
		{name: "bad JSON", in: `{"bomFormat":"CycloneDX",}`, wantErr: "invalid character"},
		{name: "other bomFormat", in: `{"bomFormat":"cyclonedx","specVersion":"1.5"}`, wantErr: `bomFormat is "cyclonedx"`},
		{name: "CycloneDX specVersion a number", in: `{"bomFormat":"CycloneDX","specVersion":1.5}`, wantErr: `specVersion is 1.5, want "1.N"`},
		{name: "CycloneDX without specVersion", in: `{"bomFormat":"CycloneDX"}`, wantErr: "specVersion is absent"},
		{name: "CycloneDX 2", in: `{"bomFormat":"CycloneDX","specVersion":"2.0"}`, wantErr: `specVersion is "2.0"`},
		{name: "SPDX 1.2", in: `{"spdxVersion":"SPDX-1.2"}`, wantErr: `spdxVersion is "SPDX-1.2"`},
		{name: "fields of the wrong type", in: `{"bomFormat":"CycloneDX","specVersion":"1.5","components":{}}`, wantErr: "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sbom.ParseBytes([]byte(tt.in))
			if tt.wantErr != "" {
				if !errors.Is(err, sbom.ErrNotSBOM) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseBytes(%q) = %v, want ErrNotSBOM containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseBytes(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseBytes(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseReadErrors(t *testing.T) {
	if _, err := sbom.Parse(iotest.ErrReader(errors.New("disk on fire"))); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Parse(failing reader) = %v", err)
	}
}

type nopJournal struct{}

func (nopJournal) Append(_ context.Context, e journal.Entry) (journal.Appended, error) {
	return journal.Appended{Entry: e}, nil
}

func TestAttestation(t *testing.T) {
	s := parseFile(t, "testdata/cyclonedx-1.4-maven.json")
	a := s.Attestation(digest, "sbom")
	if a.Digest != digest || a.Name != "sbom" || a.Type != "sbom" || a.Passed == nil || !*a.Passed {
		t.Errorf("Attestation() = %+v, want a passed sbom attestation of %s", a, digest)
	}
	want := `{"format":"cyclonedx","spec_version":"1.4","id":"urn:uuid:9f1c0a3e-6a50-4d3b-8f0e-2b7d7f2d6e11","name":"billing-service","version":"3.2.0","components":5,"tools":["CycloneDX Maven plugin 2.8.1"]}`
	if string(a.Payload) != want {
		t.Errorf("Attestation().Payload = %s, want %s", a.Payload, want)
	}
	if _, _, err := evidence.NewService(nopJournal{}, nil, nil).Attest(context.Background(), "ci", a); err != nil {
		t.Errorf("evidence.Service.Attest(%+v): %v", a, err)
	}
}

func ExampleParse() {
	s, err := sbom.Parse(strings.NewReader(`{"bomFormat":"CycloneDX","specVersion":"1.6",
  "metadata":{"component":{"name":"app","version":"1.0.0"}},
  "components":[{"name":"zlib"},{"name":"openssl"}]}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Format, s.SpecVersion, s.Name, s.Version, s.Components)
	// Output: cyclonedx 1.6 app 1.0.0 2
}
