// Package sqlite stores Vouch's journal, evidence and tokens in an
// embedded SQLite database (modernc.org/sqlite, no cgo): the zero-setup
// default. The database runs in WAL mode with synchronous=FULL, so a
// committed journal batch survives a crash or power loss.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/vouch-dev/vouch/migration"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

var migrations, _ = fs.Sub(migrationFiles, "migrations")

// Config says where the database lives.
type Config struct {
	// Path of the database file; its directory is created if needed.
	Path string
	// ReadOnly opens an existing database without changing it (no
	// migrations): for verification.
	ReadOnly bool
}

// DB is the SQLite store.
type DB struct {
	db       *sql.DB
	versions migration.Versions // set by migrate
	applied  []string           // the migrations New applied
}

// New opens (creating if needed) the database and applies migrations.
func New(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: no database path")
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if !cfg.ReadOnly {
		// The journal, tokens' hashes and evidence are the owner's alone;
		// SQLite gives its -wal and -shm files the database file's mode.
		f, err := os.OpenFile(cfg.Path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		f.Close()
		if err := os.Chmod(cfg.Path, 0o600); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate") // writers take the lock up front: no upgrade deadlocks
	if cfg.ReadOnly {
		q.Set("mode", "ro")
	}
	db, err := sql.Open("sqlite", "file:"+cfg.Path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	db.SetMaxOpenConns(8)
	d := &DB{db: db}
	if cfg.ReadOnly {
		return d, d.Ping(ctx)
	}
	if err := d.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.db.PingContext(ctx) }

func (d *DB) migrate(ctx context.Context) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	current, _, err := schemaVersion(ctx, tx)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	versions, files, err := migration.Plan(migrations, current)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	d.versions = versions
	for _, f := range files {
		if _, err := tx.ExecContext(ctx, f.SQL); err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", f.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES (?)`, f.Version); err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", f.Name, err)
		}
		d.applied = append(d.applied, f.Name)
	}
	if err := tx.Commit(); err != nil {
		d.applied = nil
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

// schemaVersion reads the highest migration applied; exists is false
// before any (no schema_migrations table yet).
func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) (version int, exists bool, err error) {
	err = q.QueryRowContext(ctx, `SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&exists)
	if err != nil || !exists {
		return 0, false, err
	}
	err = q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version)
	return version, true, err
}

// Applied returns the migrations New applied, in order.
func (d *DB) Applied() []string { return d.applied }

// SchemaStatus returns the database's schema version, the one this binary
// knows, and the migrations New would apply, changing nothing.
func (d *DB) SchemaStatus(ctx context.Context) (migration.Versions, []migration.File, error) {
	current, _, err := schemaVersion(ctx, d.db)
	if err != nil {
		return migration.Versions{}, nil, fmt.Errorf("sqlite: schema version: %w", err)
	}
	v, files, err := migration.Plan(migrations, current)
	v.Found = current
	return v, files, err
}

// placeholders returns "?,?,…" with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// SchemaVersions returns the database's schema version after migrating,
// and the one this binary knows.
func (d *DB) SchemaVersions() migration.Versions { return d.versions }
