package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestMigrate applies the schema with `vouch migrate` before any server
// starts, as the chart's pre-upgrade Job does, then starts vouch serve on
// the migrated database.
func TestMigrate(t *testing.T) {
	// The latest migration, which both stores number alike.
	files, err := os.ReadDir("../../postgres/migrations")
	if err != nil {
		t.Fatal(err)
	}
	latest := files[len(files)-1].Name()
	n, err := strconv.Atoi(latest[:4])
	if err != nil {
		t.Fatal(err)
	}
	at := fmt.Sprintf("schema at version %d", n)
	onEachStore(t, func(t *testing.T, backend, url string) {
		dataDir := t.TempDir()
		migrate := func(args ...string) (string, error) {
			cmd := exec.Command(binary, append([]string{"migrate", "--data-dir", dataDir}, args...)...)
			cmd.Env = []string{"VOUCH_DATABASE_URL=" + url}
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		if backend == "postgres" {
			if out, err := migrate("--status"); err != nil || !strings.Contains(out, fmt.Sprintf("schema at version 0; %d to apply: 0001_init.sql, ", len(files))) {
				t.Errorf("status of an empty database: %v\n%s", err, out)
			}
		} else if out, err := migrate("--status"); err == nil || !strings.Contains(out, "no Vouch database in") {
			t.Errorf("status without a database: %v\n%s", err, out)
		}
		if out, err := migrate(); err != nil || !strings.Contains(out, "applied 0001_init.sql, ") || !strings.HasSuffix(out, latest+"; "+at+"\n") {
			t.Fatalf("migrate: %v\n%s", err, out)
		}
		if out, err := migrate(); err != nil || !strings.Contains(out, fmt.Sprintf("schema already at version %d; nothing applied", n)) {
			t.Errorf("migrate again: %v\n%s", err, out)
		}
		if out, err := migrate("--status"); err != nil || !strings.Contains(out, at+"; nothing to apply") {
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
		if out, err := migrate("--status"); err != nil || !strings.Contains(out, at+"; nothing to apply") {
			t.Errorf("status after serving: %v\n%s", err, out)
		}
	})
}
