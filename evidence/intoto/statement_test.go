package intoto_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/intoto"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/test/golden"
)

// TestGolden reads the provenance and artifacts of every sample statement
// in testdata and compares them with testdata/<name>.golden.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.statement.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			s, err := intoto.ParseStatement(readFile(t, file))
			if err != nil {
				t.Fatalf("ParseStatement(%s): %v", file, err)
			}
			p, err := s.Provenance()
			if err != nil {
				t.Fatalf("Provenance(): %v", err)
			}
			a, err := s.Artifacts()
			if err != nil {
				t.Fatalf("Artifacts(): %v", err)
			}
			golden.JSON(t, strings.TrimSuffix(file, ".statement.json")+".golden", struct {
				Provenance intoto.Provenance         `json:"provenance"`
				Artifacts  []evidence.ArtifactReport `json:"artifacts"`
			}{p, a})
			// Vouch accepts what was read.
			svc := evidence.NewService(nopJournal{}, nil, nil)
			for _, r := range a {
				if _, _, err := svc.ReportArtifact(context.Background(), "ci", r); err != nil {
					t.Errorf("evidence.Service.ReportArtifact(%+v): %v", r, err)
				}
			}
		})
	}
}

type nopJournal struct{}

func (nopJournal) Append(_ context.Context, e journal.Entry) (journal.Appended, error) {
	return journal.Appended{Entry: e}, nil
}

const subject = `[{"name":"app","digest":{"sha256":"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}}]`

func TestParseStatement(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
		notStmt bool // the error is ErrNotStatement
	}{
		{name: "v1", in: `{"_type":"https://in-toto.io/Statement/v1","subject":` + subject + `,"predicateType":"p","predicate":{}}`},
		{name: "v0.1", in: `{"_type":"https://in-toto.io/Statement/v0.1","subject":` + subject + `,"predicateType":"p"}`},
		{name: "null predicate", in: `{"_type":"https://in-toto.io/Statement/v1","subject":` + subject + `,"predicateType":"p","predicate":null}`},
		{name: "not JSON", in: `DSSEv1`, wantErr: "not an in-toto statement", notStmt: true},
		{name: "a DSSE envelope", in: `{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`, wantErr: `_type is ""`, notStmt: true},
		{name: "another _type", in: `{"_type":"https://in-toto.io/Statement/v2","subject":` + subject + `,"predicateType":"p"}`, wantErr: `_type is "https://in-toto.io/Statement/v2"`, notStmt: true},
		{name: "in-toto link", in: `{"_type":"link","name":"build"}`, wantErr: `_type is "link"`, notStmt: true},
		{name: "no subject", in: `{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"p"}`, wantErr: "no subject"},
		{name: "subject without digest", in: `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{}}],"predicateType":"p"}`, wantErr: `subject 0 ("a") has no digest`},
		{name: "no predicateType", in: `{"_type":"https://in-toto.io/Statement/v1","subject":` + subject + `}`, wantErr: "no predicateType"},
		{name: "predicate not an object", in: `{"_type":"https://in-toto.io/Statement/v1","subject":` + subject + `,"predicateType":"p","predicate":[1]}`, wantErr: "predicate is not an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := intoto.ParseStatement([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("ParseStatement(%s): %v", tt.in, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseStatement(%s) = %v, want an error containing %q", tt.in, err, tt.wantErr)
			}
			if errors.Is(err, intoto.ErrNotStatement) != tt.notStmt {
				t.Errorf("ParseStatement(%s) = %v; errors.Is ErrNotStatement = %v, want %v", tt.in, err, !tt.notStmt, tt.notStmt)
			}
		})
	}
}

func TestEnvelopeStatement(t *testing.T) {
	e := intoto.Envelope{PayloadType: "application/vnd.cyclonedx+json", Payload: []byte(`{}`)}
	if _, err := e.Statement(); !errors.Is(err, intoto.ErrNotStatement) {
		t.Errorf("Statement() of a %s payload = %v, want ErrNotStatement", e.PayloadType, err)
	}
}

// statement is a SLSA v1 statement with the given predicate body.
func statement(predicateType, predicate string) intoto.Statement {
	return intoto.Statement{
		Type: intoto.StatementV1, PredicateType: predicateType, Predicate: json.RawMessage(predicate),
		Subject: []intoto.Subject{{Name: "app", Digest: map[string]string{"sha256": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}}},
	}
}

func TestProvenance(t *testing.T) {
	const commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
	v1 := func(ext, deps, invocation string) string {
		return fmt.Sprintf(`{"buildDefinition":{"buildType":"bt","externalParameters":%s,"resolvedDependencies":%s},
			"runDetails":{"builder":{"id":"https://builder.example/b"},"metadata":{"invocationId":%q}}}`, ext, deps, invocation)
	}
	tests := []struct {
		name      string
		statement intoto.Statement
		want      intoto.Provenance
		wantErr   string
	}{
		{
			name: "ssh source with user and ref",
			statement: statement(intoto.SLSAProvenanceV1, v1(`{}`,
				`[{"uri":"git+ssh://git@git.example.com/team/app.git@refs/heads/main","digest":{"gitCommit":"`+strings.ToUpper(commit)+`"}}]`, "")),
			want: intoto.Provenance{Repository: "ssh://git@git.example.com/team/app", Ref: "refs/heads/main", GitCommit: commit, Pipeline: "https://builder.example/b"},
		},
		{
			name: "the named repository wins over the first dependency",
			statement: statement(intoto.SLSAProvenanceV1, v1(`{"repository":"https://git.example.com/team/app","entryPoint":"ci.yml"}`,
				`[{"uri":"git+https://git.example.com/team/lib","digest":{"gitCommit":"1111111111111111111111111111111111111111"}},
				  {"uri":"git+https://git.example.com/team/app.git","digest":{"sha1":"`+commit+`"}}]`, "https://ci.example.com/runs/7")),
			want: intoto.Provenance{Repository: "https://git.example.com/team/app", GitCommit: commit, BuildURL: "https://ci.example.com/runs/7", Pipeline: "ci.yml", InvocationID: "https://ci.example.com/runs/7"},
		},
		{
			name: "Cloud Build",
			statement: statement(intoto.SLSAProvenanceV1, v1(`{"buildConfigSource":{"path":"cloudbuild.yaml","ref":"refs/heads/main","repository":"git+https://github.com/o/r"}}`,
				`[{"uri":"git+https://github.com/o/r","digest":{"gitCommit":"`+commit+`"}}]`, "https://cloudbuild.googleapis.com/v1/projects/p/locations/global/builds/b")),
			want: intoto.Provenance{Repository: "https://github.com/o/r", Ref: "refs/heads/main", GitCommit: commit, Pipeline: "cloudbuild.yaml",
				BuildURL: "https://cloudbuild.googleapis.com/v1/projects/p/locations/global/builds/b", InvocationID: "https://cloudbuild.googleapis.com/v1/projects/p/locations/global/builds/b"},
		},
		{
			name:      "named repository without a commit",
			statement: statement(intoto.SLSAProvenanceV1, v1(`{"source":"https://git.example.com/team/app"}`, `[]`, "not a URL")),
			want:      intoto.Provenance{Repository: "https://git.example.com/team/app", Pipeline: "https://builder.example/b", InvocationID: "not a URL"},
		},
		{
			name: "a sha1 of a non-git dependency is not a commit",
			statement: statement(intoto.SLSAProvenanceV1, v1(`{"parameters":[1,2]}`,
				`[{"uri":"https://example.com/tool.tar.gz","digest":{"sha1":"`+commit+`"}}]`, "")),
			want: intoto.Provenance{Pipeline: "https://builder.example/b"},
		},
		{
			name:      "external parameters of another shape",
			statement: statement(intoto.SLSAProvenanceV1, v1(`{"workflow":"release","source":{"repo":"x"}}`, `null`, "")),
			want:      intoto.Provenance{Pipeline: "https://builder.example/b"},
		},
		{
			name:      "too long to report",
			statement: statement(intoto.SLSAProvenanceV1, v1(`{"repository":"https://example.com/`+strings.Repeat("r", 1100)+`","entryPoint":"`+strings.Repeat("p", 300)+`"}`, `[]`, "")),
			want:      intoto.Provenance{Pipeline: ""},
		},
		{name: "SBOM predicate", statement: statement("https://cyclonedx.org/bom", `{}`), wantErr: "not SLSA provenance"},
		{name: "v1 without buildDefinition", statement: statement(intoto.SLSAProvenanceV1, `{"runDetails":{"builder":{"id":"b"}}}`), wantErr: "buildDefinition is required"},
		{name: "v1 without buildType", statement: statement(intoto.SLSAProvenanceV1, `{"buildDefinition":{},"runDetails":{"builder":{"id":"b"}}}`), wantErr: "buildType is required"},
		{name: "v1 without builder", statement: statement(intoto.SLSAProvenanceV1, `{"buildDefinition":{"buildType":"t"}}`), wantErr: "runDetails.builder.id is required"},
		{name: "v1 of the wrong shape", statement: statement(intoto.SLSAProvenanceV1, `{"buildDefinition":[]}`), wantErr: "https://slsa.dev/provenance/v1: json: cannot unmarshal"},
		{name: "v0.2 without builder", statement: statement(intoto.SLSAProvenanceV02, `{"buildType":"t"}`), wantErr: "builder.id is required"},
		{name: "no predicate", statement: statement(intoto.SLSAProvenanceV1, ``), wantErr: "unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.statement.Provenance()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Provenance() = %+v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Provenance(): %v", err)
			}
			tt.want.PredicateType, tt.want.BuildType, tt.want.BuilderID = intoto.SLSAProvenanceV1, "bt", "https://builder.example/b"
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Provenance() (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := statement("https://spdx.dev/Document", `{}`).Provenance(); !errors.Is(err, intoto.ErrNotProvenance) {
		t.Errorf("Provenance() of an SPDX statement = %v, want ErrNotProvenance", err)
	}
}

func TestArtifactsErrors(t *testing.T) {
	const pred = `{"buildDefinition":{"buildType":"t"},"runDetails":{"builder":{"id":"b"}}}`
	tests := []struct {
		name    string
		subject intoto.Subject
		wantErr string
	}{
		{"no name", intoto.Subject{Digest: map[string]string{"sha256": strings.Repeat("a", 64)}}, "subject 0 has no name"},
		{"no sha256", intoto.Subject{Name: "a", Digest: map[string]string{"sha512": strings.Repeat("a", 128)}}, `subject "a" has no sha256 digest`},
		{"short sha256", intoto.Subject{Name: "a", Digest: map[string]string{"sha256": "abc"}}, `sha256 digest "abc" is not 64 hex characters`},
	}
	for _, tt := range tests {
		s := statement(intoto.SLSAProvenanceV1, pred)
		s.Subject = []intoto.Subject{tt.subject}
		if _, err := s.Artifacts(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Artifacts() = %v, want an error containing %q", tt.name, err, tt.wantErr)
		}
	}
	if _, err := statement("https://cyclonedx.org/bom", `{}`).Artifacts(); !errors.Is(err, intoto.ErrNotProvenance) {
		t.Errorf("Artifacts() of an SBOM statement = %v, want ErrNotProvenance", err)
	}
}

// TestOpen signs a provenance statement with a fresh key, as a pipeline
// would, and reads the artifacts back from the envelope.
func TestOpen(t *testing.T) {
	s := newECDSA(t)
	payload := readFile(t, "testdata/gitlab-runner-v1.statement.json")
	raw, err := json.Marshal(envelope(t, string(payload), false, s))
	if err != nil {
		t.Fatal(err)
	}
	st, k, err := intoto.Open(raw, newEd25519(t).pub, s.pub)
	if err != nil {
		t.Fatalf("Open(): %v", err)
	}
	if k.ID != s.pub.ID {
		t.Errorf("Open() key = %s, want %s", k.ID, s.pub.ID)
	}
	a, err := st.Artifacts()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 2 || a[0].Digest != "sha256:b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c" || a[1].GitCommit != "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3" {
		t.Errorf("Artifacts() = %+v", a)
	}

	if _, _, err := intoto.Open(raw, newEd25519(t).pub); !errors.Is(err, intoto.ErrBadSignature) {
		t.Errorf("Open() with another key = %v, want ErrBadSignature", err)
	}
	if _, _, err := intoto.Open([]byte(`{}`), s.pub); err == nil {
		t.Errorf("Open({}) = nil error")
	}
	other := intoto.Envelope{PayloadType: "application/json", Payload: []byte("{}")}
	other.Signatures = []intoto.Signature{{Sig: s.sign(t, intoto.PAE(other.PayloadType, other.Payload))}}
	raw, _ = json.Marshal(other)
	if _, _, err := intoto.Open(raw, s.pub); !errors.Is(err, intoto.ErrNotStatement) {
		t.Errorf("Open() of a signed application/json payload = %v, want ErrNotStatement", err)
	}
}

func ExampleOpen() {
	// The key and envelope as `cosign attest-blob --key cosign.key` would
	// make them; here made by OpenSSL (see testdata/README.md).
	pub, _ := os.ReadFile("testdata/ecdsa-p256.pub")
	env, _ := os.ReadFile("testdata/openssl-ecdsa-p256.dsse.json")
	key, err := intoto.ParsePublicKey(pub)
	if err != nil {
		panic(err)
	}
	st, by, err := intoto.Open(env, key)
	if err != nil {
		panic(err)
	}
	arts, err := st.Artifacts()
	if err != nil {
		panic(err)
	}
	fmt.Println("verified by", by.ID)
	for _, a := range arts {
		fmt.Println(a.Name, a.GitCommit, a.BuildURL)
	}
	// Output:
	// verified by b3eeb04f081c3910
	// ghcr.io/octo-org/payments-api 4b825dc642cb6eb9a060e54bf8d69288fbee4904 https://github.com/octo-org/payments-api/actions/runs/11874302216/attempts/1
}
