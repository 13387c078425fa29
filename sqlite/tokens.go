package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/auth"
)

var _ auth.Store = (*DB)(nil)

const tokenColumns = `id, name, scopes, hash, created_at, expires_at, revoked_at, identities, repositories`

// CreateToken implements auth.Store.
func (d *DB) CreateToken(ctx context.Context, t auth.Token) error {
	var exp any
	if t.ExpiresAt != nil {
		exp = micros(*t.ExpiresAt)
	}
	_, err := d.db.ExecContext(ctx, `INSERT INTO tokens (id, name, scopes, hash, created_at, expires_at, identities, repositories) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, joinScopes(t.Scopes), t.Hash, micros(t.CreatedAt), exp, strings.Join(t.Identities, ","), strings.Join(t.Repositories, ","))
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed: tokens.name") {
		return auth.ErrNameTaken
	}
	if err != nil {
		return fmt.Errorf("sqlite: create token: %w", err)
	}
	return nil
}

// TokenByHash implements auth.Store.
func (d *DB) TokenByHash(ctx context.Context, hash string) (auth.Token, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hash)
	if err != nil {
		return auth.Token{}, fmt.Errorf("sqlite: token: %w", err)
	}
	ts, err := scanTokens(rows)
	if err != nil {
		return auth.Token{}, err
	}
	if len(ts) == 0 {
		return auth.Token{}, auth.ErrNotFound
	}
	return ts[0], nil
}

// Tokens implements auth.Store.
func (d *DB) Tokens(ctx context.Context) ([]auth.Token, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: tokens: %w", err)
	}
	return scanTokens(rows)
}

// RevokeToken implements auth.Store.
func (d *DB) RevokeToken(ctx context.Context, id string, at time.Time) error {
	res, err := d.db.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, micros(at), id)
	if err != nil {
		return fmt.Errorf("sqlite: revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var exists int
		if err := d.db.QueryRowContext(ctx, `SELECT 1 FROM tokens WHERE id = ?`, id).Scan(&exists); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("token %s: %w", id, auth.ErrNotFound)
		}
	}
	return nil
}

func scanTokens(rows *sql.Rows) ([]auth.Token, error) {
	var out []auth.Token
	err := eachRow(rows, func() error {
		var t auth.Token
		var scopes, identities, repositories string
		var created int64
		var exp, rev sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Name, &scopes, &t.Hash, &created, &exp, &rev, &identities, &repositories); err != nil {
			return err
		}
		t.Identities, t.Repositories = splitList(identities), splitList(repositories)
		t.Scopes = auth.ParseScopes(scopes)
		t.CreatedAt = fromMicros(created)
		t.ExpiresAt = optTime(exp)
		t.RevokedAt = optTime(rev)
		out = append(out, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: tokens: %w", err)
	}
	return out, nil
}

func optTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

func joinScopes(s []auth.Scope) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = string(x)
	}
	return strings.Join(parts, ",")
}

// splitList reads a comma-separated list; empty is nil.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
