package auth

import (
	"context"
	"time"
)

// Session is a signed-in console user, kept in the database so that every
// replica knows it. The browser holds only the session's random id; the
// store keeps the id's hash and the hash of the token signed in with, as
// the tokens table does — never a secret.
type Session struct {
	IDHash    string // hex SHA-256 of the id in the cookie (Hash)
	TokenHash string // the token's stored hash: checked again on every request
	Name      string // the token's name: who is signed in
	CSRF      string // the session's form token
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time
}

// SessionStore keeps sessions.
type SessionStore interface {
	CreateSession(ctx context.Context, s Session) error
	Session(ctx context.Context, idHash string) (Session, error) // ErrNotFound if unknown
	TouchSession(ctx context.Context, idHash string, at time.Time) error
	DeleteSession(ctx context.Context, idHash string) error
	// DeleteExpiredSessions removes the sessions last seen before
	// idleSince or expiring at or before now.
	DeleteExpiredSessions(ctx context.Context, idleSince, now time.Time) error
}

type tokenKey struct{}

// WithToken returns ctx carrying t as already authenticated, for a request
// made inside the process on a signed-in user's behalf (the console's
// downloads through the API). Nothing from the network can set it.
func WithToken(ctx context.Context, t Token) context.Context {
	return context.WithValue(ctx, tokenKey{}, t)
}

// TokenFrom returns the token WithToken put in ctx.
func TokenFrom(ctx context.Context) (Token, bool) {
	t, ok := ctx.Value(tokenKey{}).(Token)
	return t, ok
}
