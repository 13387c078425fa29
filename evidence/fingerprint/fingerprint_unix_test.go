//go:build unix

package fingerprint_test

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vouch-dev/vouch/evidence/fingerprint"
)

func TestDirRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if _, err := fingerprint.Dir(dir); err == nil || !strings.Contains(err.Error(), "pipe is a named pipe, not a file, directory or symlink") {
		t.Errorf("Dir(with a named pipe) = %v, want a refusal", err)
	}
	if _, err := fingerprint.File(filepath.Join(dir, "pipe")); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("File(named pipe) = %v, want a refusal", err)
	}
}
