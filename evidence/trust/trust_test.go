package trust

import (
	"os"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/evidence/intoto"
	"github.com/vouch-dev/vouch/evidence/sigstore"
	"github.com/vouch-dev/vouch/test/sigstoretest"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../sigstore/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const sigstoreJS = "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"

func TestNewRefusesIdentities(t *testing.T) {
	root := read(t, "trusted-root-public-good.json")
	id := sigstore.Identity{Name: "release", Issuer: sigstoretest.GitHubIssuer, Subject: sigstoreJS, Attestations: []string{"slsa-provenance"}}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no root", Config{Identities: []sigstore.Identity{id}}, "trusted_identities: sigstore_trusted_root is required"},
		{"bad root", Config{Identities: []sigstore.Identity{id}, TrustedRoot: []byte(`{"mediaType":"x"}`)}, "sigstore_trusted_root: trusted root 1:"},
		{"empty root", Config{TrustedRoot: []byte("\n\n")}, "sigstore_trusted_root: no trusted root in the file"},
		{"no issuer", Config{Identities: []sigstore.Identity{{Name: "x", Subject: "s"}}, TrustedRoot: root}, "trusted_identities[0].issuer: is required"},
		{"no names", Config{Identities: []sigstore.Identity{{Name: "x", Issuer: "i", Subject: "s"}}, TrustedRoot: root}, "trusted_identities[0].attestations: list"},
		{"forge: name", Config{Keys: []KeyConfig{{Name: "forge:github", PublicKey: string(read(t, "publish_key.pub"))}}}, `trusted_keys[0].name: "forge:github": forge: and change: name what Vouch reads from forges and change systems itself`},
		{"change: name", Config{Keys: []KeyConfig{{Name: "change:servicenow", PublicKey: string(read(t, "publish_key.pub"))}}}, `trusted_keys[0].name: "change:servicenow": forge: and change: name what Vouch reads`},
		{"name of a key", Config{
			Keys:       []KeyConfig{{Name: "release", PublicKey: string(read(t, "publish_key.pub"))}},
			Identities: []sigstore.Identity{id}, TrustedRoot: root,
		}, `trusted_identities[0].name: "release" is used twice`},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func parse(t *testing.T, data []byte) (*sigstore.Bundle, intoto.Statement) {
	t.Helper()
	b, err := sigstore.ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.Envelope.Statement()
	if err != nil {
		t.Fatal(err)
	}
	return b, st
}

func TestCheckBundle(t *testing.T) {
	tr, err := New(Config{
		Keys: []KeyConfig{{Name: "npm", PublicKey: string(read(t, "publish_key.pub"))}},
		Identities: []sigstore.Identity{{
			Name: "sigstore-js-release", Issuer: sigstoretest.GitHubIssuer, Subject: sigstoreJS, Attestations: []string{"slsa-provenance"},
		}, {
			Name: "sbom-only", Issuer: sigstoretest.GitHubIssuer, Subject: sigstoreJS, Attestations: []string{"sbom"}, PredicateTypes: []string{"https://spdx.dev/Document"},
		}},
		TrustedRoot: read(t, "trusted-root-public-good.json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	prov, st := parse(t, read(t, "bundle-provenance.json"))
	v := tr.CheckBundle(prov, st, "slsa-provenance")
	if !v.Verified || v.KeyID != "sigstore-js-release" || v.Signer == nil || v.Signer.SourceRepository != "https://github.com/sigstore/sigstore-js" {
		t.Errorf("keyless provenance: %+v", v)
	}
	if v := tr.CheckBundle(prov, st, "unit-tests"); v.Verified || v.Problem != `no trusted identity is configured for attestation "unit-tests" of predicate type https://slsa.dev/provenance/v0.2 (trusted_identities)` {
		t.Errorf("keyless for another name: %+v", v)
	}
	// The identity trusted for sbom signs SPDX documents only: its
	// provenance posted as an sbom is not verified.
	if v := tr.CheckBundle(prov, st, "sbom"); v.Verified || !strings.Contains(v.Problem, `no trusted identity is configured for attestation "sbom" of predicate type https://slsa.dev/provenance/v0.2`) {
		t.Errorf("provenance as an sbom: %+v", v)
	}
	// A key-signed bundle is checked against the keys.
	pub, pubSt := parse(t, read(t, "bundle-publish.json"))
	if v := tr.CheckBundle(pub, pubSt, "npm-publish"); !v.Verified || v.KeyID != "npm" || v.Signer != nil {
		t.Errorf("key-signed bundle: %+v", v)
	}
	// Nothing configured: not verified, and says why.
	var none *Trust
	if v := none.CheckBundle(prov, st, "slsa-provenance"); v.Verified || !strings.Contains(v.Problem, "no trusted identity") {
		t.Errorf("no trust: %+v", v)
	}
}

// A workflow of one repository cannot vouch for another's build: SLSA
// provenance must name the repository and commit its certificate names.
func TestKeylessProvenanceBoundToTheCertificate(t *testing.T) {
	ss := sigstoretest.New(t)
	tr, err := New(Config{
		Identities:  []sigstore.Identity{{Name: "octo", Issuer: sigstoretest.GitHubIssuer, SubjectRegexp: `https://github\.com/octo-org/[^/]+/\.github/workflows/release\.yml@refs/heads/main`, Attestations: []string{"slsa-provenance"}}},
		TrustedRoot: ss.TrustedRoot(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	statement, err := os.ReadFile("../intoto/testdata/github-attest-build-provenance.statement.json") // octo-org/payments-api at 4b825dc…
	if err != nil {
		t.Fatal(err)
	}
	const commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
	for _, tc := range []struct {
		name string
		job  sigstoretest.Job
		want string // "" = verified
	}{
		{"its own", sigstoretest.Job{Subject: "https://github.com/octo-org/payments-api/.github/workflows/release.yml@refs/heads/main", Repository: "https://github.com/octo-org/payments-api", Commit: commit}, ""},
		{"no source in the certificate", sigstoretest.Job{Subject: "https://github.com/octo-org/payments-api/.github/workflows/release.yml@refs/heads/main"}, ""},
		{"another repository", sigstoretest.Job{Subject: "https://github.com/octo-org/sandbox/.github/workflows/release.yml@refs/heads/main", Repository: "https://github.com/octo-org/sandbox", Commit: commit},
			`the provenance names repository "https://github.com/octo-org/payments-api", but the certificate was issued to a workflow of https://github.com/octo-org/sandbox`},
		{"another commit", sigstoretest.Job{Subject: "https://github.com/octo-org/payments-api/.github/workflows/release.yml@refs/heads/main", Repository: "https://github.com/Octo-Org/payments-api.git", Commit: "0123456789012345678901234567890123456789"},
			`the provenance names commit "` + commit + `", but the certificate was issued to a workflow run at commit 0123456789012345678901234567890123456789`},
	} {
		b, st := parse(t, ss.Attest(t, tc.job, statement))
		v := tr.CheckBundle(b, st, "slsa-provenance")
		if tc.name == "its own" {
			// Leaving the repository out does not escape the binding.
			bare := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}}],` +
				`"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"https://example.com/t","externalParameters":{}},"runDetails":{"builder":{"id":"https://example.com/b"}}}}`)
			b, st := parse(t, ss.Attest(t, tc.job, bare))
			if v := tr.CheckBundle(b, st, "slsa-provenance"); v.Verified || !strings.HasPrefix(v.Problem, `the provenance names repository "", but the certificate was issued to a workflow of`) {
				t.Errorf("provenance naming no repository: %+v", v)
			}
		}
		if tc.want == "" && !v.Verified || tc.want != "" && (v.Verified || v.Problem != tc.want) {
			t.Errorf("%s: %+v", tc.name, v)
		}
		if tc.want == "" {
			// The attestation keeps the time the log verified: freshness
			// counts from it.
			recs, err := Reports(st, "slsa-provenance", v)
			if err != nil || len(recs.Attestations) == 0 || v.Signer == nil || v.Signer.SignedAt.IsZero() ||
				recs.Attestations[0].SignedAt == nil || !recs.Attestations[0].SignedAt.Equal(v.Signer.SignedAt) {
				t.Errorf("%s: attestations %+v, %v: want the signer's time", tc.name, recs.Attestations, err)
			}
		}
	}
}
