package api_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/evidence/sigstore"
	"github.com/vouch-dev/vouch/evidence/trust"
	"github.com/vouch-dev/vouch/test/sigstoretest"
)

// TestSigstoreBundles posts Sigstore bundles to /envelopes: sent as JSON or
// with the bundle's media type, a keyless one is verified and names its
// signer; a broken one is a 400 that says so, and nothing is recorded.
func TestSigstoreBundles(t *testing.T) {
	ss := sigstoretest.New(t)
	tr, err := trust.New(trust.Config{
		Identities:  []sigstore.Identity{{Name: "octo-release", Issuer: sigstoretest.GitHubIssuer, SubjectRegexp: `https://github\.com/octo-org/.+`, Attestations: []string{"slsa-provenance"}}},
		TrustedRoot: ss.TrustedRoot(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(_ *fixture, c *api.Config) { c.Trust = tr })
	statement, err := os.ReadFile("../evidence/intoto/testdata/github-attest-build-provenance.statement.json")
	if err != nil {
		t.Fatal(err)
	}
	job := sigstoretest.Job{Subject: "https://github.com/octo-org/payments-api/.github/workflows/release.yml@refs/heads/main", Repository: "https://github.com/octo-org/payments-api"}
	for _, ct := range []string{"application/json", "application/vnd.dev.sigstore.bundle.v0.3+json"} {
		code, out, _ := f.do("POST", "/api/v1/envelopes", f.tokens["ci"], ct, string(ss.Attest(t, job, statement)))
		signer, _ := out["signer"].(map[string]any)
		if code != 201 || out["verified"] != true || out["key_id"] != "octo-release" || signer["source_repository"] != job.Repository {
			t.Errorf("%s: %d %v", ct, code, out)
		}
	}

	for _, tc := range []struct{ name, body, want string }{
		{"not a bundle", `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{}}`, "not a valid Sigstore bundle"},
		{"blob signature", string(sigstoretest.BlobSignature(t, ss.Attest(t, job, statement))), "not an attestation"},
	} {
		code, out := f.postJSON("/api/v1/envelopes", "ci", tc.body)
		if code != 400 || !strings.Contains(fmt.Sprint(out["detail"]), tc.want) {
			t.Errorf("%s: %d %v", tc.name, code, out)
		}
	}
	if code, out := f.postJSON("/api/v1/envelopes", "ci", string(sigstoretest.New(t).Attest(t, job, statement))); code != 201 ||
		out["verified"] != false || !strings.Contains(fmt.Sprint(out["signature_problem"]), "does not verify") {
		t.Errorf("a bundle of another Sigstore: %d %v", code, out)
	}
}
