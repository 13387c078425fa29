package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vouch-dev/vouch/auth"
)

var _ auth.Store = (*DB)(nil)

const tokenColumns = `id, name, scopes, hash, created_at, expires_at, revoked_at, identities, repositories`

// CreateToken implements auth.Store.
func (d *DB) CreateToken(ctx context.Context, t auth.Token) error {
	_, err := d.pool.Exec(ctx, `INSERT INTO tokens (id, name, scopes, hash, created_at, expires_at, identities, repositories) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		t.ID, t.Name, scopeStrings(t.Scopes), t.Hash, t.CreatedAt, t.ExpiresAt, nonNil(t.Identities), nonNil(t.Repositories))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "tokens_active_name" {
		return auth.ErrNameTaken
	}
	if err != nil {
		return fmt.Errorf("postgres: create token: %w", err)
	}
	return nil
}

// TokenByHash implements auth.Store.
func (d *DB) TokenByHash(ctx context.Context, hash string) (auth.Token, error) {
	rows, err := d.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash)
	if err != nil {
		return auth.Token{}, fmt.Errorf("postgres: token: %w", err)
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
	rows, err := d.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: tokens: %w", err)
	}
	return scanTokens(rows)
}

// RevokeToken implements auth.Store.
func (d *DB) RevokeToken(ctx context.Context, id string, at time.Time) error {
	var found bool
	err := d.pool.QueryRow(ctx, `WITH t AS (SELECT id FROM tokens WHERE id = $1),
		u AS (UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL)
		SELECT EXISTS (SELECT 1 FROM t)`, id, at).Scan(&found)
	if err != nil {
		return fmt.Errorf("postgres: revoke token: %w", err)
	}
	if !found {
		return fmt.Errorf("token %s: %w", id, auth.ErrNotFound)
	}
	return nil
}

func scanTokens(rows pgx.Rows) ([]auth.Token, error) {
	var out []auth.Token
	var t auth.Token
	var scopes, identities, repositories []string
	var exp, rev *time.Time
	_, err := pgx.ForEachRow(rows, []any{&t.ID, &t.Name, &scopes, &t.Hash, &t.CreatedAt, &exp, &rev, &identities, &repositories}, func() error {
		x := t
		x.Identities, x.Repositories = nilIfEmpty(identities), nilIfEmpty(repositories)
		x.CreatedAt = t.CreatedAt.UTC()
		for _, s := range scopes {
			x.Scopes = append(x.Scopes, auth.Scope(s))
		}
		x.ExpiresAt, x.RevokedAt = utc(exp), utc(rev)
		out = append(out, x)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: tokens: %w", err)
	}
	return out, nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func scopeStrings(s []auth.Scope) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return out
}

// nonNil is a list for a NOT NULL array column.
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// nilIfEmpty reads an array column: empty is nil, as the records have it.
func nilIfEmpty(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return slices.Clone(l)
}
