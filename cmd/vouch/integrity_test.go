package main

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/sqlite"
)

// TestIntegrityCheck runs the scheduled check on a real SQLite store: it
// passes on what Vouch wrote, and alerts when a row was put into the
// evidence tables around the journal, or the journal was rolled back.
func TestIntegrityCheck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "vouch.db")
	st, err := sqlite.New(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	app := journal.NewAppender(st, journal.AppenderOptions{})
	defer app.Close(ctx)
	svc := evidence.NewService(app, nil, nil)
	report := func(hex string) {
		t.Helper()
		if _, _, err := svc.ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: "registry.example.com/app", Digest: "sha256:" + strings.Repeat(hex, 64)}); err != nil {
			t.Fatal(err)
		}
	}
	report("1")
	skey, _, err := journal.LoadOrCreateKey(filepath.Join(dir, "journal.key"), "vouch.test/integrity")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	vkey, _ := journal.VerifierKey(skey)
	verifier, err := journal.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	checkpointer := journal.NewCheckpointer(st, signer, journal.CheckpointerOptions{})
	if _, _, err := checkpointer.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}

	var results []string
	var alerts []drift.Notification
	c := &integrityCheck{store: st, verifier: verifier, log: slog.New(slog.DiscardHandler),
		observe: func(result string, _ time.Time) { results = append(results, result) },
		alert:   func(_ context.Context, n drift.Notification) { alerts = append(alerts, n) }}
	c.checkOnce(ctx)
	report("2") // the journal grows between checks
	c.checkOnce(ctx)
	if strings.Join(results, ",") != "passed,passed" || len(alerts) != 0 || c.known == nil {
		t.Fatalf("checks of an untouched store: %v, alerts %v, known checkpoint %v", results, alerts, c.known)
	}

	tamper(t, path, `INSERT INTO artifacts (id, digest, name, git_commit, repository, build_url, pipeline, reported_by, reported_at, author)
		VALUES (1000, 'sha256:`+strings.Repeat("7", 64)+`', 'registry.example.com/forged', '', '', '', '', 'dba', 0, '')`)
	c.checkOnce(ctx)
	if len(results) != 3 || results[2] != "failed" || len(alerts) != 1 || alerts[0].Event != "integrity-check-failed" || !strings.Contains(alerts[0].Summary, "evidence records are not the journal entries") {
		t.Fatalf("check after a forged evidence row: %v, alerts %+v", results, alerts)
	}

	// A journal rolled back behind the checkpoint an earlier check saw.
	tamper(t, path, `DELETE FROM artifacts WHERE id = 1000`)
	c.checkOnce(ctx)
	if results[3] != "passed" {
		t.Fatalf("check after the forged row was removed: %v, alerts %+v", results, alerts)
	}
	known := *c.known
	known.Size += 10
	c.known = &known
	c.checkOnce(ctx)
	if results[4] != "failed" || len(alerts) != 2 || !strings.Contains(alerts[1].Summary, "truncated or rolled back") {
		t.Fatalf("check of a journal shorter than a checkpoint seen before: %v, alerts %+v", results, alerts)
	}
}

// tamper changes the SQLite file behind the store's back, as someone with
// access to the database could.
func tamper(t *testing.T, path, stmt string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmt); err != nil {
		t.Fatal(err)
	}
}
