package e2e

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/evidence/intoto"
)

// signer signs DSSE envelopes as cosign or in-toto tooling would.
type signer func(pae []byte) []byte

func ecdsaSigner(t *testing.T) (signer, string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return func(pae []byte) []byte {
		h := sha256.Sum256(pae)
		sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func ed25519Signer(t *testing.T) (signer, string) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return func(pae []byte) []byte { return ed25519.Sign(priv, pae) },
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// envelope signs statement (nil sign: unsigned) and writes the envelope.
func envelope(t *testing.T, dir, name string, statement []byte, sign signer) string {
	t.Helper()
	sigs := []map[string]string{}
	if sign != nil {
		sigs = append(sigs, map[string]string{"keyid": "", "sig": base64.StdEncoding.EncodeToString(sign(intoto.PAE(intoto.PayloadType, statement)))})
	}
	b, _ := json.Marshal(map[string]any{"payloadType": intoto.PayloadType, "payload": base64.StdEncoding.EncodeToString(statement), "signatures": sigs})
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSignedAttestations records in-toto statements in DSSE envelopes:
// signed by a trusted key they are verified and satisfy
// verified_attestations; unsigned, badly signed or tampered ones are
// refused where a signature is required and never verified.
func TestSignedAttestations(t *testing.T) {
	provSigner, provPEM := ecdsaSigner(t)
	testSigner, testPEM := ed25519Signer(t)
	otherSigner, _ := ecdsaSigner(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "tests.pub")
	os.WriteFile(keyFile, []byte(testPEM), 0o644)
	cfg := fmt.Sprintf(`
environments:
  - name: prod
    namespaces: ["prod"]
    require:
      digest: true
      provenance: true
      verified_attestations: ["slsa-provenance", "unit-tests"]
trusted_keys:
  - name: release-signer
    attestations: ["slsa-provenance"]
    public_key: |
%s
  - name: test-signer
    attestations: ["unit-tests"]
    public_key_file: %s
require_signatures: ["slsa-provenance"]
`, indent(provPEM, "      "), keyFile)
	v := startConfig(t, cfg, "")
	ci := v.cli("token", "create", "--name", "ci", "--scopes", "evidence:write")
	auditor := v.cli("token", "create", "--name", "auditor", "--scopes", "audit:read")

	statement, digest, image := githubProvenance(t)

	// Signed SLSA provenance: verified, and the provenance recorded.
	provFile := envelope(t, dir, "prov.json", statement, provSigner)
	out := v.cli("attest", "intoto", provFile, "--token", ci)
	if !strings.Contains(out, `recorded "slsa-provenance" (https://slsa.dev/provenance/v1) for 1 subjects; verified: signed by trusted key release-signer`) ||
		!strings.Contains(out, "provenance of ghcr.io/octo-org/payments-api@"+digest) {
		t.Errorf("vouch attest intoto (signed provenance):\n%s", out)
	}
	code, art := v.get(auditor, "/api/v1/artifacts/"+digest)
	if code != 200 {
		t.Fatalf("artifact: %d %v", code, art)
	}
	if a := art["artifact"].(map[string]any); a["git_commit"] != "4b825dc642cb6eb9a060e54bf8d69288fbee4904" || a["repository"] != "https://github.com/octo-org/payments-api" {
		t.Errorf("provenance from the statement = %v", a)
	}

	// The envelope is kept: anyone can verify it again.
	var blob string
	for _, a := range art["attestations"].([]any) {
		blob, _ = a.(map[string]any)["blob"].(string)
	}
	code, kept := v.get(auditor, "/api/v1/blobs/"+blob)
	sent, _ := os.ReadFile(provFile)
	var sentEnv map[string]any
	json.Unmarshal(sent, &sentEnv)
	if code != 200 || kept["payload"] != sentEnv["payload"] {
		t.Errorf("the stored envelope %q: %d, payload differs: %v", blob, code, kept["payload"] != sentEnv["payload"])
	}

	// unit-tests is required verified too: not there yet.
	out, _ = v.run("assert", image, "--environment", "prod", "--token", ci)
	if !strings.Contains(out, "MISSING  verified attestation unit-tests") || !strings.Contains(out, "met      verified attestation slsa-provenance") {
		t.Errorf("assert before the signed test result:\n%s", out)
	}

	testResult := func(result string) []byte {
		b, _ := json.Marshal(map[string]any{
			"_type": intoto.StatementV1, "predicateType": "https://in-toto.io/attestation/test-result/v0.1",
			"subject":   []any{map[string]any{"name": "ghcr.io/octo-org/payments-api", "digest": map[string]string{"sha256": strings.TrimPrefix(digest, "sha256:")}}},
			"predicate": map[string]any{"result": result, "configuration": []any{}, "passedTests": []string{"TestPay"}},
		})
		return b
	}
	// Unsigned: recorded (unit-tests does not require a signature) but not verified.
	out = v.cli("attest", "intoto", "--name", "unit-tests", envelope(t, dir, "unsigned.json", testResult("PASSED"), nil), "--token", ci)
	if !strings.Contains(out, "NOT verified") {
		t.Errorf("unsigned test result:\n%s", out)
	}
	// Signed by a key trusted for another name: not verified either.
	out = v.cli("attest", "intoto", "--name", "unit-tests", envelope(t, dir, "wrongkey.json", testResult("PASSED"), provSigner), "--token", ci)
	if !strings.Contains(out, "NOT verified") {
		t.Errorf("test result signed by the provenance key:\n%s", out)
	}
	if out, code := v.run("assert", image, "--environment", "prod", "--token", ci); code != 1 ||
		!strings.Contains(out, `has no attestation "unit-tests" signed by a trusted key: the latest`) {
		t.Errorf("assert with only unverified test results: exit %d\n%s", code, out)
	}
	// Signed by the test key, FAILED: verified, failed, still denied.
	out = v.cli("attest", "intoto", "--name", "unit-tests", envelope(t, dir, "failed.json", testResult("FAILED"), testSigner), "--token", ci)
	if !strings.Contains(out, "verified: signed by trusted key test-signer") || !strings.Contains(out, "FAILED") {
		t.Errorf("signed failed test result:\n%s", out)
	}
	if _, code := v.run("assert", image, "--environment", "prod", "--token", ci); code != 1 {
		t.Errorf("assert after a signed failure: exit %d, want 1", code)
	}
	// Signed, PASSED: admitted, by the webhook too.
	v.cli("attest", "intoto", "--name", "unit-tests", envelope(t, dir, "passed.json", testResult("PASSED"), testSigner), "--token", ci)
	if out, code := v.run("assert", image, "--environment", "prod", "--token", ci); code != 0 {
		t.Errorf("assert with signed evidence: exit %d\n%s", code, out)
	}
	if resp := v.admit("signed-1", "prod", image); !resp.Allowed {
		t.Errorf("webhook with signed evidence: %s", resp.Result.Message)
	}
	_, art = v.get(auditor, "/api/v1/artifacts/"+digest)
	verified := map[string]int{}
	for _, a := range art["attestations"].([]any) {
		a := a.(map[string]any)
		if a["verified"] == true {
			verified[a["name"].(string)+"/"+a["key_id"].(string)]++
		}
	}
	if verified["slsa-provenance/release-signer"] != 1 || verified["unit-tests/test-signer"] != 2 {
		t.Errorf("verified attestations = %v", verified)
	}

	// Refused: slsa-provenance requires a signature by a trusted key.
	tampered := strings.Replace(string(statement), "4b825dc642cb6eb9a060e54bf8d69288fbee4904", "0000000000000000000000000000000000000000", 1)
	good := envelope(t, dir, "good.json", statement, provSigner)
	var env map[string]any
	b, _ := os.ReadFile(good)
	json.Unmarshal(b, &env)
	env["payload"] = base64.StdEncoding.EncodeToString([]byte(tampered)) // the signature stays, over the original
	b, _ = json.Marshal(env)
	os.WriteFile(filepath.Join(dir, "tampered.json"), b, 0o644)
	for _, tc := range []struct{ file, want string }{
		{envelope(t, dir, "unsigned-prov.json", statement, nil), "not signed"},
		{envelope(t, dir, "other-prov.json", statement, otherSigner), "signature"},
		{filepath.Join(dir, "tampered.json"), "signature"},
	} {
		out, code := v.run("attest", "intoto", tc.file, "--token", ci)
		if code != 1 || !strings.Contains(out, `attestations "slsa-provenance" must be signed by a trusted key`) || !strings.Contains(out, tc.want) {
			t.Errorf("attest intoto %s: exit %d\n%s", filepath.Base(tc.file), code, out)
		}
	}
	if code, out := v.post(ci, "/api/v1/attestations", `{"digest":"`+digest+`","name":"slsa-provenance","passed":true}`); code != 422 ||
		!strings.Contains(fmt.Sprint(out), "must be signed by a trusted key") {
		t.Errorf("plain attestation of a name requiring signatures: %d %v", code, out)
	}
	_, art = v.get(auditor, "/api/v1/artifacts/"+digest)
	if a := art["artifact"].(map[string]any); a["git_commit"] != "4b825dc642cb6eb9a060e54bf8d69288fbee4904" {
		t.Errorf("a refused envelope changed the provenance: %v", a)
	}
	if out, code := v.run("attest", "intoto", filepath.Join(dir, "tests.pub"), "--token", ci); code != 2 || !strings.Contains(out, "is not JSON") {
		t.Errorf("attest intoto of a PEM file: exit %d %s", code, out)
	}
}

// githubProvenance is the SLSA provenance actions/attest-build-provenance
// writes (octo-org/payments-api at 4b825dc…), the digest of its subject
// and the image.
func githubProvenance(t *testing.T) (statement []byte, digest, image string) {
	t.Helper()
	statement, err := os.ReadFile("../../evidence/intoto/testdata/github-attest-build-provenance.statement.json")
	if err != nil {
		t.Fatal(err)
	}
	digest = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	return statement, digest, "ghcr.io/octo-org/payments-api@" + digest
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}

// TestIntotoJSONLines records a JSON Lines file of envelopes, as the SLSA
// GitHub generator writes (.intoto.jsonl): each line in turn.
func TestIntotoJSONLines(t *testing.T) {
	v := start(t, "")
	ci := v.cli("token", "create", "--name", "ci", "--scopes", "evidence:write")
	auditor := v.cli("token", "create", "--name", "auditor", "--scopes", "audit:read")
	dir := t.TempDir()
	var lines []string
	for _, f := range []string{"gitlab-runner-v1", "tekton-chains-v1"} {
		statement, err := os.ReadFile("../../evidence/intoto/testdata/" + f + ".statement.json")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(envelope(t, dir, f+".json", statement, nil))
		lines = append(lines, string(b))
	}
	jsonl := filepath.Join(dir, "provenance.intoto.jsonl")
	os.WriteFile(jsonl, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	out := v.cli("attest", "intoto", jsonl, "--token", ci)
	if !strings.Contains(out, `line 1: recorded "slsa-provenance"`) || !strings.Contains(out, `line 2: recorded "slsa-provenance"`) {
		t.Errorf("vouch attest intoto of two lines:\n%s", out)
	}
	for _, d := range []string{"sha256:b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c", "sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"} {
		if code, ev := v.get(auditor, "/api/v1/artifacts/"+d); code != 200 || ev["artifact"] == nil {
			t.Errorf("%s after the JSON Lines: %d %v", d, code, ev)
		}
	}
	var results []map[string]any
	if err := json.Unmarshal([]byte(v.cli("attest", "intoto", jsonl, "-o", "json", "--token", ci)), &results); err != nil || len(results) != 2 {
		t.Errorf("-o json of two lines = %v, %v; want an array of two answers", results, err)
	}
	// A line that is not JSON stops it before anything is sent; one the
	// server refuses stops the lines after it, and says which.
	os.WriteFile(jsonl, []byte(lines[0]+"\nnot json\n"), 0o644)
	if out, code := v.run("attest", "intoto", jsonl, "--token", ci); code != 2 || !strings.Contains(out, "line 2 is not JSON") {
		t.Errorf("a line that is not JSON: exit %d\n%s", code, out)
	}
	os.WriteFile(jsonl, []byte(lines[0]+"\n{\"payloadType\":\"x\",\"payload\":\"\",\"signatures\":[]}\n"+lines[1]+"\n"), 0o644)
	if out, code := v.run("attest", "intoto", jsonl, "--token", ci); code != 1 || !strings.Contains(out, "line 2 of "+jsonl+" (lines before it are recorded)") {
		t.Errorf("a line the server refuses: exit %d\n%s", code, out)
	}
}
