package sigstore

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/evidence/intoto"
	"github.com/vouch-dev/vouch/test/sigstoretest"
)

const (
	sigstoreJSWorkflow = "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"
	appWorkflow        = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
	statement          = `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"registry.example.com/acme/app","digest":{"sha256":"` +
		"ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12" + `"}}],"predicateType":"https://example.com/test-result","predicate":{}}`
)

var provenanceOnly = []string{"slsa-provenance"}

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func identity(t *testing.T, id Identity) *Identity {
	t.Helper()
	if err := id.Compile(); err != nil {
		t.Fatal(err)
	}
	return &id
}

// A real bundle: npm's provenance of sigstore-js, signed keyless by its
// GitHub Actions release workflow, verified against Sigstore's public
// trusted root with its Rekor entry and SCT.
func TestRealGitHubProvenance(t *testing.T) {
	data := read(t, "bundle-provenance.json")
	if !IsBundle(data) {
		t.Fatal("IsBundle = false")
	}
	b, err := ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.Envelope.Statement()
	if err != nil || st.PredicateType != intoto.SLSAProvenanceV02 {
		t.Fatalf("statement %+v, %v", st.PredicateType, err)
	}
	v, err := NewVerifier(read(t, "trusted-root-public-good.json"))
	if err != nil {
		t.Fatal(err)
	}
	exact := identity(t, Identity{Name: "sigstore-js", Issuer: sigstoretest.GitHubIssuer, Subject: sigstoreJSWorkflow, Attestations: provenanceOnly})
	s, err := v.Verify(b, []*Identity{exact})
	if err != nil {
		t.Fatal(err)
	}
	want := Signer{
		Identity: "sigstore-js", Subject: sigstoreJSWorkflow, Issuer: sigstoretest.GitHubIssuer,
		SourceRepository: "https://github.com/sigstore/sigstore-js", SourceCommit: "dae8bd8eb433a4147b4655c00fe73e0f22bc0fb1",
		SourceRef: "refs/heads/main", BuildConfig: sigstoreJSWorkflow,
		Run:      "https://github.com/sigstore/sigstore-js/actions/runs/4735384265/attempts/1",
		SignedAt: time.Date(2023, 4, 18, 17, 45, 12, 0, time.UTC), Witnesses: []string{"https://rekor.sigstore.dev"},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("signer\n%+v, want\n%+v", s, want)
	}

	// Patterns match the whole subject, and the first identity that
	// matches names the signer.
	for _, tc := range []struct {
		id   Identity
		want string // "" = refused
	}{
		{Identity{Name: "org", Issuer: sigstoretest.GitHubIssuer, SubjectRegexp: `https://github\.com/sigstore/[^/]+/\.github/workflows/release\.yml@refs/heads/main`, Attestations: provenanceOnly}, "org"},
		{Identity{Name: "prefix", Issuer: sigstoretest.GitHubIssuer, SubjectRegexp: `https://github\.com/sigstore/`, Attestations: provenanceOnly}, ""},
		{Identity{Name: "inside", Issuer: sigstoretest.GitHubIssuer, SubjectRegexp: `sigstore-js`, Attestations: provenanceOnly}, ""},
		{Identity{Name: "issuer", Issuer: "https://gitlab.com", Subject: sigstoreJSWorkflow, Attestations: provenanceOnly}, ""},
		{Identity{Name: "other", Issuer: sigstoretest.GitHubIssuer, Subject: appWorkflow, Attestations: provenanceOnly}, ""},
	} {
		s, err := v.Verify(b, []*Identity{identity(t, tc.id)})
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "signed by "+sigstoreJSWorkflow+" (issuer "+sigstoretest.GitHubIssuer+"), which no trusted identity") {
				t.Errorf("%s: %v", tc.id.Name, err)
			}
			continue
		}
		if err != nil || s.Identity != tc.want {
			t.Errorf("%s: %+v, %v", tc.id.Name, s.Identity, err)
		}
	}

	// One byte of the statement changed: the signature no longer verifies.
	tampered := bytes.Replace(data, []byte(`"payload":"eyJfdHlwZSI6`), []byte(`"payload":"eyJfdHlwZSI7`), 1)
	if bytes.Equal(tampered, data) {
		t.Fatal("the payload was not found")
	}
	tb, err := ParseBundle(tampered)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tb, []*Identity{exact}); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("tampered: %v", err)
	}
}

// A bundle signed with a key (npm's publish attestation) is verified as
// a DSSE envelope against trusted keys.
func TestKeySignedBundle(t *testing.T) {
	b, err := ParseBundle(read(t, "bundle-publish.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !b.KeySigned() {
		t.Fatal("KeySigned = false")
	}
	key, err := intoto.ParsePublicKey(read(t, "publish_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Envelope.Verify(key); err != nil {
		t.Fatal(err)
	}
	p, err := ParseBundle(read(t, "bundle-provenance.json"))
	if err != nil || p.KeySigned() {
		t.Fatalf("certificate bundle: KeySigned, %v", err)
	}
}

func TestVerifyKeyless(t *testing.T) {
	ss := sigstoretest.New(t)
	v, err := NewVerifier(ss.TrustedRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	id := identity(t, Identity{Name: "acme-release", Issuer: sigstoretest.GitHubIssuer, SubjectRegexp: `https://github\.com/acme/[^/]+/\.github/workflows/release\.yml@refs/heads/main`, Attestations: provenanceOnly})
	job := sigstoretest.Job{Subject: appWorkflow, Repository: "https://github.com/acme/app", Commit: "0123456789abcdef0123456789abcdef01234567"}
	b, err := ParseBundle(ss.Attest(t, job, []byte(statement)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.Verify(b, []*Identity{id})
	if err != nil {
		t.Fatal(err)
	}
	if s.Identity != "acme-release" || s.Subject != appWorkflow || s.SourceRepository != job.Repository || s.SourceCommit != job.Commit ||
		len(s.Witnesses) != 2 || time.Since(s.SignedAt) > time.Minute {
		t.Errorf("signer %+v", s)
	}

	refused := func(what string, data []byte, v *Verifier, want string) {
		t.Helper()
		b, err := ParseBundle(data)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(b, []*Identity{id}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", what, err, want)
		}
	}
	// This root lists a transparency log, so an entry in it is required.
	refused("no log entry", ss.Attest(t, sigstoretest.Job{Subject: appWorkflow, NoLog: true}, []byte(statement)), v, "transparency log")
	// Another Sigstore's certificate authority is not trusted.
	other := sigstoretest.New(t)
	refused("other authority", other.Attest(t, job, []byte(statement)), v, "does not verify")
	refused("other workflow", ss.Attest(t, sigstoretest.Job{Subject: "https://github.com/acme/app/.github/workflows/ci.yml@refs/heads/main"}, []byte(statement)), v, "which no trusted identity")
	refused("other issuer", ss.Attest(t, sigstoretest.Job{Subject: appWorkflow, Issuer: "https://oidc.example.com"}, []byte(statement)), v, "(issuer https://oidc.example.com)")

	// GitHub's own root (private repositories) has no log: a timestamp from
	// its authority is enough.
	timestamps, err := NewVerifier(ss.TrustedRootWith(t, false, false))
	if err != nil {
		t.Fatal(err)
	}
	noLog, err := ParseBundle(ss.Attest(t, sigstoretest.Job{Subject: appWorkflow, NoLog: true}, []byte(statement)))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := timestamps.Verify(noLog, []*Identity{id}); err != nil || len(s.Witnesses) != 1 {
		t.Errorf("timestamp-only root: %+v, %v", s, err)
	}
	// A root with CT logs requires the certificate's SCT.
	ct, err := NewVerifier(ss.TrustedRootWith(t, true, true))
	if err != nil {
		t.Fatal(err)
	}
	refused("no SCT", ss.Attest(t, job, []byte(statement)), ct, "signed certificate timestamp")

	// Trusted roots as JSON Lines (gh attestation trusted-root): a bundle of
	// either verifies; when none does, each root's reason is given.
	both, err := NewVerifier(append(append(other.TrustedRoot(t), '\n'), ss.TrustedRoot(t)...))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := both.Verify(b, []*Identity{id}); err != nil || s.Identity != "acme-release" {
		t.Errorf("second root: %+v, %v", s, err)
	}
	refused("neither root", sigstoretest.New(t).Attest(t, job, []byte(statement)), both, "trusted root 1 (https://fulcio.test): ")
	var none *Verifier
	if _, err := none.Verify(b, []*Identity{id}); err == nil || !strings.Contains(err.Error(), "sigstore_trusted_root") {
		t.Errorf("no roots: %v", err)
	}
}

func TestParseBundleRefuses(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"not JSON", `{`, "not a valid Sigstore bundle"},
		{"no content", `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`, "not a valid Sigstore bundle"},
		{"blob", string(sigstoretest.BlobSignature(t, read(t, "bundle-provenance.json"))), "signs a blob, not an attestation"},
	} {
		if _, err := ParseBundle([]byte(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if IsBundle([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":[]}`)) || IsBundle([]byte(`[`)) {
		t.Error("IsBundle of a DSSE envelope or garbage")
	}
}

func TestIdentityCompile(t *testing.T) {
	for _, tc := range []struct {
		id   Identity
		want string
	}{
		{Identity{Issuer: "i", Subject: "s"}, "name: is required"},
		{Identity{Name: "n", Subject: "s"}, "issuer: is required"},
		{Identity{Name: "n", Issuer: "i"}, "give subject or subject_regexp"},
		{Identity{Name: "n", Issuer: "i", Subject: "s", SubjectRegexp: "s"}, "give subject or subject_regexp"},
		{Identity{Name: "n", Issuer: "i", SubjectRegexp: "(", Attestations: []string{"a"}}, "subject_regexp: error parsing regexp"},
		{Identity{Name: "n", Issuer: "i", Subject: "s"}, "attestations: list the attestation names"},
	} {
		if err := tc.id.Compile(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.id, err, tc.want)
		}
	}
	id := Identity{Name: "n", Issuer: "i", Subject: "s", Attestations: []string{"slsa-provenance"}}
	typed := Identity{Name: "n", Issuer: "i", Subject: "s", Attestations: []string{"slsa-provenance"}, PredicateTypes: []string{intoto.SLSAProvenanceV1}}
	if !id.Signs("slsa-provenance", "x") || id.Signs("unit-tests", "x") || !typed.Signs("slsa-provenance", intoto.SLSAProvenanceV1) || typed.Signs("slsa-provenance", "https://spdx.dev/Document") {
		t.Error("Signs")
	}
}
