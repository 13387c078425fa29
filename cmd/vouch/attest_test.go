package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vouch-dev/vouch/evidence"
)

// TestJUnitFileListTooLong: the list of files that do not fit in the
// payload failed only after every file was uploaded; it fails before.
func TestJUnitFileListTooLong(t *testing.T) {
	noCI(t)
	dir := t.TempDir()
	var files []string
	for i := range 1000 { // about 300 bytes each in the list: more than 256 KiB
		p := filepath.Join(dir, fmt.Sprintf("TEST-%04d-%s.xml", i, strings.Repeat("x", 200)))
		if err := os.WriteFile(p, []byte(`<testsuite name="s" tests="1"><testcase name="t"/></testsuite>`), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	srv, n := counting(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not expected", http.StatusTeapot)
	})
	d := evidence.BlobDigest([]byte("app"))
	_, errOut, code := vouchAt(srv.URL, append([]string{"attest", "junit", "--name", "unit-tests", "--digest", d, "--token", "secret"}, files...)...)
	if code != 2 || n.Load() != 0 || !strings.Contains(errOut, "the list of the 1000 files does not fit") || !strings.Contains(errOut, "--upload=false") {
		t.Errorf("1000 report files: exit %d after %d requests, stderr %q; want 2 before any request", code, n.Load(), errOut)
	}
}

// TestAttestWithoutUpload: --upload=false names no blobs: none was stored.
func TestAttestWithoutUpload(t *testing.T) {
	s := newAPIServer(t)
	noCI(t)
	d := evidence.BlobDigest([]byte("app"))
	out, errOut, code := s.vouch("attest", "junit", "--name", "unit-tests", "--digest", d, "--upload=false", "../../evidence/junit/testdata/pytest.xml")
	if code != 0 || !strings.HasPrefix(out, "recorded: FAILED unit-tests") || strings.Contains(out, "blob") {
		t.Errorf("--upload=false: exit %d, stdout %q, stderr %q; want recorded, no blob named", code, out, errOut)
	}
	out, _, _ = s.vouch("attest", "junit", "--name", "unit-tests", "--digest", d, "../../evidence/junit/testdata/pytest.xml")
	if !strings.Contains(out, "pytest.xml: blob sha256:") {
		t.Errorf("uploaded: stdout %q, want the blob named", out)
	}
}

// TestAttestIntoto: a missing envelope is a usage error (exit 2), as for
// every other command; -o json is snake_case, with the attestations'
// name, type and verified, and lists that are [] when empty.
func TestAttestIntoto(t *testing.T) {
	s := newAPIServer(t)
	if _, errOut, code := s.vouch("attest", "intoto", "no-such.dsse.json"); code != 2 || !strings.Contains(errOut, "no-such.dsse.json: no such file") {
		t.Errorf("missing envelope: exit %d %q, want 2", code, errOut)
	}
	out, errOut, code := s.vouch("attest", "intoto", "../../evidence/intoto/testdata/openssl-ed25519.dsse.json", "-o", "json")
	if code != 0 {
		t.Fatalf("attest intoto: exit %d %s", code, errOut)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	atts, _ := got["attestations"].([]any)
	arts, _ := got["artifacts"].([]any)
	if len(atts) == 0 || len(arts) == 0 {
		t.Fatalf("attest intoto -o json: no attestations or artifacts:\n%s", out)
	}
	att, art := atts[0].(map[string]any), arts[0].(map[string]any)
	keys := map[string]any{
		"name": got["name"], "verified": got["verified"], "warnings": got["warnings"],
		"attestation name": att["name"], "attestation type": att["type"], "attestation verified": att["verified"],
		"artifact has a name": art["name"] != nil, "artifact has a digest": art["digest"] != nil,
	}
	want := map[string]any{
		"name": "slsa-provenance", "verified": false, "warnings": []any{},
		"attestation name": "slsa-provenance", "attestation type": "in-toto", "attestation verified": false,
		"artifact has a name": true, "artifact has a digest": true,
	}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("attest intoto -o json (-want +got):\n%s\n%s", diff, out)
	}
}

// TestJUnitWithoutTests: a report in which no test ran fails (a glob
// that matched nothing must not pass a gate), unless --allow-empty.
func TestJUnitWithoutTests(t *testing.T) {
	s := newAPIServer(t)
	noCI(t)
	empty := filepath.Join(t.TempDir(), "TEST-none.xml")
	if err := os.WriteFile(empty, []byte(`<testsuite name="s" tests="0"></testsuite>`), 0o644); err != nil {
		t.Fatal(err)
	}
	d := evidence.BlobDigest([]byte("app"))
	out, errOut, code := s.vouch("attest", "junit", "--name", "unit-tests", "--digest", d, "--exit-code", empty)
	if code != 1 || !strings.Contains(out, "FAILED unit-tests") || !strings.Contains(out, "no test ran") {
		t.Errorf("no tests: exit %d, stdout %q, stderr %q; want FAILED, exit 1", code, out, errOut)
	}
	out, errOut, code = s.vouch("attest", "junit", "--name", "unit-tests", "--digest", d, "--allow-empty", "--exit-code", empty)
	if code != 0 || !strings.Contains(out, "PASSED unit-tests") {
		t.Errorf("no tests, --allow-empty: exit %d, stdout %q, stderr %q; want PASSED", code, out, errOut)
	}
}
