package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vouch-dev/vouch/migration"
)

const migrateHelp = `Usage:
  vouch migrate [--database-url URL | --data-dir DIR] [--status]

Applies the schema migrations this binary carries to the database and exits
(vouch serve applies them at start too). Run it once before upgrading a
large installation, so that no replica migrates under its startup probe;
the chart can run it as a pre-upgrade Job (migrations.job.enabled).
Migrations take an advisory lock: replicas starting meanwhile wait.

  --database-url  PostgreSQL (env VOUCH_DATABASE_URL)
  --data-dir      the SQLite store's data directory (env VOUCH_DATA_DIR,
                  default vouch-data), when no database URL is given
  --status        print the schema version and what would be applied;
                  change nothing
`

// schemaStore is a store that reports its schema.
type schemaStore interface {
	SchemaStatus(ctx context.Context) (migration.Versions, []migration.File, error)
	Applied() []string
}

func migrateCommand(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("vouch migrate")
	databaseURL := fs.String("database-url", os.Getenv("VOUCH_DATABASE_URL"), "PostgreSQL URL (env VOUCH_DATABASE_URL)")
	dataDir := fs.String("data-dir", envOr("VOUCH_DATA_DIR", "vouch-data"), "SQLite data directory, without a database URL")
	status := fs.Bool("status", false, "print the schema version and the pending migrations; change nothing")
	if err := parseFlagsHelp(fs, args, migrateHelp); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"migrate takes no arguments\n\n" + migrateHelp}
	}
	where := "PostgreSQL"
	if *databaseURL == "" {
		where = filepath.Join(*dataDir, "vouch.db")
	}
	var opened interface{ Close() error }
	var err error
	if *status {
		opened, err = openReadOnlyStore(ctx, *dataDir, *databaseURL)
	} else {
		opened, err = openStore(ctx, Config{DataDir: *dataDir, DatabaseURL: *databaseURL})
	}
	if err != nil {
		return err
	}
	defer opened.Close()
	st := opened.(schemaStore) // both stores report their schema
	v, pending, err := st.SchemaStatus(ctx)
	if err != nil {
		return err
	}
	switch {
	case *status && len(pending) == 0:
		fmt.Fprintf(stdout, "%s: schema at version %d; nothing to apply\n", where, v.Found)
	case *status:
		names := make([]string, len(pending))
		for i, f := range pending {
			names[i] = f.Name
		}
		fmt.Fprintf(stdout, "%s: schema at version %d; %d to apply: %s\n", where, v.Found, len(pending), strings.Join(names, ", "))
	case len(st.Applied()) == 0:
		fmt.Fprintf(stdout, "%s: schema already at version %d; nothing applied\n", where, v.Found)
	default:
		fmt.Fprintf(stdout, "%s: applied %s; schema at version %d\n", where, strings.Join(st.Applied(), ", "), v.Found)
	}
	if v.Ahead() {
		fmt.Fprintf(stdout, "warning: a newer Vouch migrated this database (version %d; this binary knows %d): run the newer version\n", v.Found, v.Known)
	}
	return nil
}
