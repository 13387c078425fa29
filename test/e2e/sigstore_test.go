package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/test/sigstoretest"
)

// TestKeylessAttestations records GitHub artifact attestations — Sigstore
// bundles signed keyless by a workflow, as actions/attest-build-provenance
// writes them and `gh attestation download` saves them (JSON Lines) — with
// `vouch attest intoto`: verified against the trusted roots of
// `gh attestation trusted-root` (two, as GitHub's has) and the trusted
// identities, they satisfy verified_attestations; a bundle from another
// workflow or another Sigstore is refused.
func TestKeylessAttestations(t *testing.T) {
	ss := sigstoretest.New(t)
	dir := t.TempDir()
	roots := filepath.Join(dir, "trusted_root.jsonl")
	other := sigstoretest.New(t)
	os.WriteFile(roots, append(append(other.TrustedRoot(t), '\n'), ss.TrustedRoot(t)...), 0o644)
	v := startConfig(t, fmt.Sprintf(`
environments:
  - name: prod
    namespaces: ["prod"]
    require:
      digest: true
      provenance: true
      verified_attestations: ["slsa-provenance"]
trusted_identities:
  - name: octo-release
    issuer: https://token.actions.githubusercontent.com
    subject_regexp: 'https://github\.com/octo-org/[^/]+/\.github/workflows/release\.yml@refs/heads/main'
    attestations: ["slsa-provenance"]
sigstore_trusted_root: %s
require_signatures: ["slsa-provenance"]
`, roots), "")
	ci := v.cli("token", "create", "--name", "ci", "--scopes", "evidence:write")
	auditor := v.cli("token", "create", "--name", "auditor", "--scopes", "audit:read")

	statement, digest, image := githubProvenance(t)
	const workflow = "https://github.com/octo-org/payments-api/.github/workflows/release.yml@refs/heads/main"
	bundleFile := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, append(b, '\n'), 0o644)
		return p
	}

	// Not recorded yet: the image is denied.
	if resp := v.admit("keyless-0", "prod", image); resp.Allowed {
		t.Fatal("admitted without evidence")
	}
	job := sigstoretest.Job{Subject: workflow, Repository: "https://github.com/octo-org/payments-api", Commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904"}
	saved := bundleFile("sha256:2c26b46b.jsonl", ss.Attest(t, job, statement))
	out := v.cli("attest", "intoto", saved, "--token", ci)
	if !strings.Contains(out, `recorded "slsa-provenance" (https://slsa.dev/provenance/v1) for 1 subjects; verified: signed keyless by `+workflow+` (trusted identity octo-release) at `) ||
		!strings.Contains(out, "witnessed by https://rekor.localhost, https://virtual.tsa.sigstore.dev") ||
		!strings.Contains(out, "provenance of ghcr.io/octo-org/payments-api@"+digest) {
		t.Errorf("vouch attest intoto (bundle):\n%s", out)
	}
	if out, code := v.run("assert", image, "--environment", "prod", "--token", ci); code != 0 {
		t.Errorf("assert with keyless provenance: exit %d\n%s", code, out)
	}
	if resp := v.admit("keyless-1", "prod", image); !resp.Allowed {
		t.Errorf("webhook with keyless provenance: %s", resp.Result.Message)
	}

	// The attestation names the signer, and the bundle is kept as sent.
	_, art := v.get(auditor, "/api/v1/artifacts/"+digest)
	var att map[string]any
	for _, a := range art["attestations"].([]any) {
		att = a.(map[string]any)
	}
	var payload struct {
		Signer struct {
			Subject      string
			SourceCommit string `json:"source_commit"`
		}
	}
	b, _ := json.Marshal(att["payload"])
	json.Unmarshal(b, &payload)
	if att["verified"] != true || att["key_id"] != "octo-release" || payload.Signer.Subject != workflow || payload.Signer.SourceCommit != job.Commit {
		t.Errorf("the recorded attestation: %v", att)
	}
	code, kept := v.get(auditor, "/api/v1/blobs/"+att["blob"].(string))
	if code != 200 || kept["mediaType"] != "application/vnd.dev.sigstore.bundle.v0.3+json" || kept["verificationMaterial"] == nil {
		t.Errorf("the stored bundle: %d %v", code, kept)
	}

	// -o json carries the signer.
	var res struct {
		Verified bool
		Signer   struct {
			Identity         string
			SourceRepository string `json:"source_repository"`
		}
	}
	if err := json.Unmarshal([]byte(v.cli("attest", "intoto", saved, "-o", "json", "--token", ci)), &res); err != nil ||
		!res.Verified || res.Signer.Identity != "octo-release" || res.Signer.SourceRepository != job.Repository {
		t.Errorf("-o json: %+v, %v", res, err)
	}

	// Refused: slsa-provenance requires a trusted signer.
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"ci-workflow", ss.Attest(t, sigstoretest.Job{Subject: "https://github.com/octo-org/payments-api/.github/workflows/ci.yml@refs/heads/main"}, statement),
			"signed by https://github.com/octo-org/payments-api/.github/workflows/ci.yml@refs/heads/main (issuer https://token.actions.githubusercontent.com), which no trusted identity"},
		{"fork", ss.Attest(t, sigstoretest.Job{Subject: "https://github.com/mallory/payments-api/.github/workflows/release.yml@refs/heads/main"}, statement), "which no trusted identity"},
		{"other-sigstore", sigstoretest.New(t).Attest(t, job, statement), "the Sigstore bundle does not verify: trusted root 1 (https://fulcio.test): "},
		// A trusted workflow of another repository of the organisation
		// vouching for this repository's build.
		{"sandbox", ss.Attest(t, sigstoretest.Job{Subject: "https://github.com/octo-org/sandbox/.github/workflows/release.yml@refs/heads/main", Repository: "https://github.com/octo-org/sandbox"}, statement),
			`the provenance names repository "https://github.com/octo-org/payments-api", but the certificate was issued to a workflow of https://github.com/octo-org/sandbox`},
	} {
		out, code := v.run("attest", "intoto", bundleFile(tc.name+".json", tc.data), "--token", ci)
		if code != 1 || !strings.Contains(out, `attestations "slsa-provenance" must be signed by a trusted key or identity`) || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d\n%s", tc.name, code, out)
		}
	}
	// A name no identity is trusted for is recorded, not verified.
	out = v.cli("attest", "intoto", "--name", "sbom", bundleFile("sbom.json", ss.Attest(t, job, statement)), "--token", ci)
	if !strings.Contains(out, `NOT verified: no trusted identity is configured for attestation "sbom" of predicate type https://slsa.dev/provenance/v1 (trusted_identities)`) {
		t.Errorf("a bundle for another name:\n%s", out)
	}
}
