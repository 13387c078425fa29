package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestJournalAudit is the auditor's path: export with the CLI, verify
// offline with nothing but the public key, see tampering caught, and check
// the store in place against a published checkpoint.
func TestJournalAudit(t *testing.T) {
	onEachStore(t, func(t *testing.T, backend, url string) {
		published := t.TempDir()
		v := start(t, url, "--checkpoint-interval", "200ms", "--checkpoint-publish", published, "--journal-origin", "vouch.test/"+backend)
		// The journal opens with the policy in force, then 20 decisions.
		for i := 0; i < 20; i++ {
			v.admit(fmt.Sprintf("audit-%d", i), "default", "nginx:1.27")
		}
		publicKey := v.cli("journal", "key")
		if !strings.HasPrefix(publicKey, "vouch.test/"+backend+"+") {
			t.Fatalf("journal key = %q", publicKey)
		}
		waitFor(t, func() bool {
			b, err := os.ReadFile(filepath.Join(published, "checkpoint"))
			return err == nil && strings.Contains(string(b), "\n21\n")
		})
		auditor := v.cli("token", "create", "--name", "auditor", "--scopes", "audit:read")

		export := filepath.Join(t.TempDir(), "export.jsonl")
		v.cli("journal", "export", "--token", auditor, "--output", export)
		out := v.cli("journal", "verify", "--public-key", publicKey, "--checkpoint", filepath.Join(published, "checkpoint"), export)
		if !strings.Contains(out, "OK: entries 0 to 20 ") || !strings.Contains(out, "consistent with your checkpoint of 21 entries") {
			t.Errorf("verify output:\n%s", out)
		}

		data, _ := os.ReadFile(export)
		bad := filepath.Join(t.TempDir(), "tampered.jsonl")
		os.WriteFile(bad, []byte(strings.Replace(string(data), `"uid":"audit-7"`, `"uid":"audit-X"`, 1)), 0o644)
		out, code := v.run("journal", "verify", "--public-key", publicKey, bad)
		if code != 1 || !strings.Contains(out, "FAILED: entry") {
			t.Errorf("tampered export: exit %d, output:\n%s", code, out)
		}
		if _, code := v.run("journal", "verify", "--public-key", "someone.else+01234567+AbtJl8dxp/RkdnS4WmhpixUwyY7slUy0hKAGG+M8SS5Q", export); code == 0 {
			t.Error("an export verified with another public key")
		}

		v.admit("audit-last", "default", "nginx:1.27")
		v.stop() // signs a final checkpoint
		if !strings.Contains(v.log.String(), "signed the final journal checkpoint") {
			t.Errorf("no final checkpoint at shutdown:\n%s", v.log)
		}
		store := []string{"--data-dir", v.dataDir}
		if url != "" {
			store = []string{"--database-url", url}
		}
		out = v.cli(append([]string{"journal", "verify", "--public-key", publicKey, "--checkpoint", filepath.Join(published, "checkpoint.21")}, store...)...)
		if !strings.Contains(out, "OK: the store's journal of 22 entries verifies") || !strings.Contains(out, "evidence records the webhook reads is the journal entry of its id") ||
			!strings.Contains(out, "decisions and snapshot records the console reads is its journal entry") {
			t.Errorf("store verify output:\n%s", out)
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRestoredStoreIsNotSigned is the restore from an older backup: the
// leader refuses to sign over the published checkpoint, says so, sets the
// metric, and the published checkpoint stays as it was.
func TestRestoredStoreIsNotSigned(t *testing.T) {
	published := t.TempDir()
	v := start(t, "", "--checkpoint-interval", "200ms", "--checkpoint-publish", published)
	latest := func() string {
		b, _ := os.ReadFile(filepath.Join(published, "checkpoint"))
		return string(b)
	}
	v.admit("before-backup", "default", "nginx:1.27")
	waitFor(t, func() bool { return strings.Contains(latest(), "\n2\n") })
	v.stop()
	backup := t.TempDir()
	for _, f := range []string{"vouch.db", "vouch.db-wal", "vouch.db-shm"} {
		if b, err := os.ReadFile(filepath.Join(v.dataDir, f)); err == nil {
			os.WriteFile(filepath.Join(backup, f), b, 0o600)
		}
	}

	v.launch()
	for i := 0; i < 5; i++ {
		v.admit(fmt.Sprintf("after-backup-%d", i), "default", "nginx:1.27")
	}
	waitFor(t, func() bool { return strings.Contains(latest(), "\n7\n") })
	v.stop()
	snapshotDir := func() map[string]string {
		out := map[string]string{}
		files, _ := os.ReadDir(published)
		for _, f := range files {
			b, _ := os.ReadFile(filepath.Join(published, f.Name()))
			out[f.Name()] = string(b)
		}
		return out
	}
	before := snapshotDir()

	// The database restored from the backup: two entries, and the
	// published checkpoint says seven.
	for _, f := range []string{"vouch.db", "vouch.db-wal", "vouch.db-shm"} {
		os.Remove(filepath.Join(v.dataDir, f))
		if b, err := os.ReadFile(filepath.Join(backup, f)); err == nil {
			os.WriteFile(filepath.Join(v.dataDir, f), b, 0o600)
		}
	}
	v.log.Reset()
	v.launch()
	v.admit("after-restore", "default", "nginx:1.27")
	waitFor(t, func() bool { return strings.Contains(v.log.String(), "refusing to sign a journal checkpoint") })
	if m := scrapeMetrics(t, v); !strings.Contains(m, "vouch_journal_checkpoint_refused 1") {
		t.Errorf("/metrics does not show the refusal")
	}
	time.Sleep(500 * time.Millisecond) // a few more intervals
	if after := snapshotDir(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the publish directory changed after the restore:\n%v\nwas:\n%v", after, before)
	}
}
