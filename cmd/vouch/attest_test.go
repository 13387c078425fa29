package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
