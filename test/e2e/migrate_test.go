package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestMigrate applies the schema with `vouch migrate` before any server
// starts, as the chart's pre-upgrade Job does, then starts vouch serve on
// the migrated database.
func TestMigrate(t *testing.T) {
	onEachStore(t, func(t *testing.T, backend, url string) {
		dataDir := t.TempDir()
		migrate := func(args ...string) (string, error) {
			cmd := exec.Command(binary, append([]string{"migrate", "--data-dir", dataDir}, args...)...)
			cmd.Env = []string{"VOUCH_DATABASE_URL=" + url}
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		if backend == "postgres" {
			if out, err := migrate("--status"); err != nil || !strings.Contains(out, "schema at version 0; 13 to apply: 0001_init.sql, ") {
				t.Errorf("status of an empty database: %v\n%s", err, out)
			}
		} else if out, err := migrate("--status"); err == nil || !strings.Contains(out, "no Vouch database in") {
			t.Errorf("status without a database: %v\n%s", err, out)
		}
		if out, err := migrate(); err != nil || !strings.Contains(out, "applied 0001_init.sql, ") || !strings.HasSuffix(out, "0013_token_repositories.sql; schema at version 13\n") {
			t.Fatalf("migrate: %v\n%s", err, out)
		}
		if out, err := migrate(); err != nil || !strings.Contains(out, "schema already at version 13; nothing applied") {
			t.Errorf("migrate again: %v\n%s", err, out)
		}
		if out, err := migrate("--status"); err != nil || !strings.Contains(out, "schema at version 13; nothing to apply") {
			t.Errorf("status after migrating: %v\n%s", err, out)
		}
		if out, err := migrate("extra"); err == nil || !strings.Contains(out, "migrate takes no arguments") {
			t.Errorf("an argument: %v\n%s", err, out)
		}
		// The server starts on it, and the schema is as the Job left it.
		srv := startIn(t, dataDir, config, url)
		srv.stop()
		if strings.Contains(srv.log.String(), "newer Vouch") {
			t.Errorf("vouch serve warned about the schema:\n%s", srv.log)
		}
		if out, err := migrate("--status"); err != nil || !strings.Contains(out, "schema at version 13; nothing to apply") {
			t.Errorf("status after serving: %v\n%s", err, out)
		}
	})
}
