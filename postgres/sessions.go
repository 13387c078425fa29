package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vouch-dev/vouch/auth"
)

var _ auth.SessionStore = (*DB)(nil)

// CreateSession implements auth.SessionStore.
func (d *DB) CreateSession(ctx context.Context, s auth.Session) error {
	return d.execSession(ctx, "create", `INSERT INTO console_sessions (id_hash, token_hash, name, csrf, created_at, last_seen, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		s.IDHash, s.TokenHash, s.Name, s.CSRF, s.CreatedAt, s.LastSeen, s.ExpiresAt)
}

// Session implements auth.SessionStore.
func (d *DB) Session(ctx context.Context, idHash string) (auth.Session, error) {
	s := auth.Session{IDHash: idHash}
	err := d.pool.QueryRow(ctx, `SELECT token_hash, name, csrf, created_at, last_seen, expires_at FROM console_sessions WHERE id_hash = $1`, idHash).
		Scan(&s.TokenHash, &s.Name, &s.CSRF, &s.CreatedAt, &s.LastSeen, &s.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Session{}, auth.ErrNotFound
	}
	if err != nil {
		return auth.Session{}, fmt.Errorf("postgres: session: %w", err)
	}
	s.CreatedAt, s.LastSeen, s.ExpiresAt = s.CreatedAt.UTC(), s.LastSeen.UTC(), s.ExpiresAt.UTC()
	return s, nil
}

// TouchSession implements auth.SessionStore.
func (d *DB) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	return d.execSession(ctx, "touch", `UPDATE console_sessions SET last_seen = GREATEST(last_seen, $1) WHERE id_hash = $2`, at, idHash)
}

// DeleteSession implements auth.SessionStore.
func (d *DB) DeleteSession(ctx context.Context, idHash string) error {
	return d.execSession(ctx, "delete", `DELETE FROM console_sessions WHERE id_hash = $1`, idHash)
}

// DeleteExpiredSessions implements auth.SessionStore.
func (d *DB) DeleteExpiredSessions(ctx context.Context, idleSince, now time.Time) error {
	return d.execSession(ctx, "sweep", `DELETE FROM console_sessions WHERE last_seen < $1 OR expires_at <= $2`, idleSince, now)
}

func (d *DB) execSession(ctx context.Context, what, query string, args ...any) error {
	if _, err := d.pool.Exec(ctx, query, args...); err != nil {
		return fmt.Errorf("postgres: %s session: %w", what, err)
	}
	return nil
}
