package api

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/oidc"
)

const tokenKey = "vouch.token"

// require authenticates the bearer token and checks it carries one of
// scopes.
// Missing or invalid tokens get 401, valid tokens without the scope 403.
func (s *Server) require(scopes ...auth.Scope) gin.HandlerFunc {
	return func(c *gin.Context) {
		t, err := s.authenticate(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		c.Set(tokenKey, t)
		if s.cfg.RateLimit != nil {
			if ok, retry := s.cfg.RateLimit.Allow(c.Request.Context(), t.ID); !ok {
				c.Header("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
				s.fail(c, fmt.Errorf("%w: token %q made more than %d requests this minute", errRateLimited, t.Name, s.cfg.RateLimitPerMinute))
				return
			}
		}
		if !slices.ContainsFunc(scopes, t.Allows) {
			s.fail(c, fmt.Errorf("%w: token %q has scopes %v; this endpoint needs %s", errForbidden, t.Name, t.Scopes, scopeList(scopes)))
			return
		}
		c.Next()
	}
}

// authenticate returns the token of the request's bearer secret, or the
// one a request made inside the process carries (auth.WithToken: the
// console's downloads for a signed-in auditor).
func (s *Server) authenticate(c *gin.Context) (auth.Token, error) {
	scheme, secret, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" { // schemes are case-insensitive (RFC 9110)
		if t, ok := auth.TokenFrom(c.Request.Context()); ok {
			return t, nil
		}
		return auth.Token{}, fmt.Errorf("%w: send \"Authorization: Bearer <token>\"", auth.ErrUnauthenticated)
	}
	secret = strings.TrimSpace(secret)
	if s.cfg.OIDC != nil && oidc.LooksLikeToken(secret) {
		return s.cfg.OIDC.Authenticate(c.Request.Context(), secret)
	}
	return s.cfg.Tokens.Authenticate(c.Request.Context(), secret)
}

// OIDCVerifier authenticates CI jobs' OpenID Connect ID tokens
// (oidc.Verifier).
type OIDCVerifier interface {
	Authenticate(ctx context.Context, idToken string) (auth.Token, error)
}

// caller returns the authenticated token's name: the identity recorded as
// reporter or approver.
func caller(c *gin.Context) string {
	return c.MustGet(tokenKey).(auth.Token).Name
}

// scopeList names the scopes an endpoint accepts: "audit:read" or one of
// several.
func scopeList(scopes []auth.Scope) string {
	q := make([]string, len(scopes))
	for i, sc := range scopes {
		q[i] = strconv.Quote(string(sc))
	}
	if len(q) == 1 {
		return q[0]
	}
	return "one of " + strings.Join(q, ", ")
}
