package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/vouch-dev/vouch/auth"
)

var _ auth.SessionStore = (*DB)(nil)

// CreateSession implements auth.SessionStore.
func (d *DB) CreateSession(ctx context.Context, s auth.Session) error {
	return d.execSession(ctx, "create", `INSERT INTO console_sessions (id_hash, token_hash, name, csrf, created_at, last_seen, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		s.IDHash, s.TokenHash, s.Name, s.CSRF, micros(s.CreatedAt), micros(s.LastSeen), micros(s.ExpiresAt))
}

// Session implements auth.SessionStore.
func (d *DB) Session(ctx context.Context, idHash string) (auth.Session, error) {
	s := auth.Session{IDHash: idHash}
	var created, seen, expires int64
	err := d.db.QueryRowContext(ctx, `SELECT token_hash, name, csrf, created_at, last_seen, expires_at FROM console_sessions WHERE id_hash = ?`, idHash).
		Scan(&s.TokenHash, &s.Name, &s.CSRF, &created, &seen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Session{}, auth.ErrNotFound
	}
	if err != nil {
		return auth.Session{}, fmt.Errorf("sqlite: session: %w", err)
	}
	s.CreatedAt, s.LastSeen, s.ExpiresAt = fromMicros(created), fromMicros(seen), fromMicros(expires)
	return s, nil
}

// TouchSession implements auth.SessionStore.
func (d *DB) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	return d.execSession(ctx, "touch", `UPDATE console_sessions SET last_seen = max(last_seen, ?) WHERE id_hash = ?`, micros(at), idHash)
}

// DeleteSession implements auth.SessionStore.
func (d *DB) DeleteSession(ctx context.Context, idHash string) error {
	return d.execSession(ctx, "delete", `DELETE FROM console_sessions WHERE id_hash = ?`, idHash)
}

// DeleteExpiredSessions implements auth.SessionStore.
func (d *DB) DeleteExpiredSessions(ctx context.Context, idleSince, now time.Time) error {
	return d.execSession(ctx, "sweep", `DELETE FROM console_sessions WHERE last_seen < ? OR expires_at <= ?`, micros(idleSince), micros(now))
}

func (d *DB) execSession(ctx context.Context, what, query string, args ...any) error {
	if _, err := d.db.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("sqlite: %s session: %w", what, err)
	}
	return nil
}
