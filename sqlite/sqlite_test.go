package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/sqlite"
	"github.com/vouch-dev/vouch/test/storetest"
)

func open(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.New(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "vouch.db")})
	if err != nil {
		t.Fatalf("sqlite.New: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return open(t) })
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vouch.db")
	ctx := context.Background()
	db, err := sqlite.New(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	storetest.AppendSome(t, db, 3)
	want, _ := db.TreeState(ctx)
	db.Close()
	db, err = sqlite.New(ctx, sqlite.Config{Path: path}) // migrations run again: a no-op
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, _ := db.TreeState(ctx)
	if got.Size != 3 || got.Root != want.Root {
		t.Errorf("after reopen: size %d root %s, want 3 %s", got.Size, got.Root, want.Root)
	}
}

// TestFilesAreTheOwners: the database and its WAL files are readable by
// their owner only, also a database created before with a wider mode.
func TestFilesAreTheOwners(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vouch.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.New(context.Background(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.AppendSome(t, db, 1)
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(f), st.Mode().Perm())
		}
	}
}

func TestJournalIsAppendOnly(t *testing.T) {
	db := open(t)
	storetest.AppendSome(t, db, 2)
	for _, stmt := range []string{
		`UPDATE journal_entries SET kind = 'x' WHERE idx = 0`,
		`DELETE FROM journal_entries WHERE idx = 1`,
	} {
		err := db.ExecForTest(context.Background(), stmt)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only trigger to refuse it", stmt, err)
		}
	}
}

// TestRanBackfill runs the backfill of migration 0006 over recorded
// snapshots: it must index what the store indexes with each snapshot.
func TestRanBackfill(t *testing.T) {
	db := open(t)
	storetest.RanBackfill(t, db, db.ExecForTest, "migrations/0006_search.sql")
}

// TestDecisionsBackfill runs the backfill of migration 0008 over journaled
// admissions: it must index what the store indexes with each admission.
func TestDecisionsBackfill(t *testing.T) {
	db := open(t)
	storetest.DecisionsBackfill(t, db, db.ExecForTest, "migrations/0008_decisions.sql")
}

// TestSnapshotDigestsBackfill runs the backfill of migration 0009 over
// recorded snapshots.
func TestSnapshotDigestsBackfill(t *testing.T) {
	db := open(t)
	storetest.SnapshotDigestsBackfill(t, db, db.ExecForTest, "migrations/0009_snapshot_digests.sql")
}

// TestSchemaVersions: a database a newer Vouch migrated (a rollback) is
// reported as ahead of this binary, and opens.
func TestSchemaVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vouch.db")
	ctx := context.Background()
	db, err := sqlite.New(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	v := db.SchemaVersions()
	if v.Ahead() || v.Known < 12 || v.Found != v.Known {
		t.Fatalf("a fresh database: %+v", v)
	}
	if err := db.ExecForTest(ctx, `INSERT INTO schema_migrations (version) VALUES (999)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = sqlite.New(ctx, sqlite.Config{Path: path}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.SchemaVersions(); !got.Ahead() || got.Found != 999 || got.Known != v.Known {
		t.Errorf("a database migrated by a newer Vouch: %+v", got)
	}
}
