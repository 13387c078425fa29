//go:build unix

package fingerprint_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/evidence/fingerprint"
	"github.com/vouch-dev/vouch/test/golden"
)

func TestDirRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	if _, err := fingerprint.Dir(dir); err == nil || !strings.Contains(err.Error(), "pipe is a named pipe, not a file, directory or symlink") {
		t.Errorf("Dir(with a named pipe) = %v, want a refusal", err)
	}
	if _, err := fingerprint.File(filepath.Join(dir, "pipe")); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("File(named pipe) = %v, want a refusal", err)
	}
}

// TestDirGolden pins the manifest format and digest of the sample tree:
// they must be the same on every machine (unix: symlinks and execute bits).
func TestDirGolden(t *testing.T) {
	dir := build(t, sample, time.Now())
	m, err := fingerprint.DirManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	const goldenFile = "testdata/sample-tree.manifest"
	golden.Equal(t, goldenFile, m)
	want, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(want)
	const wantDigest = "sha256:21f9724990ce898d6fa4db27ef6e8a047871557ced716958dd23662fc057efeb"
	if got := dirDigest(t, dir); got != "sha256:"+hex.EncodeToString(sum[:]) || (got != wantDigest && !golden.Updating()) {
		t.Errorf("Dir() = %s, want %s (the SHA-256 of %s)", got, wantDigest, goldenFile)
	}
}
