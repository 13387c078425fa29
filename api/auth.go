package api

import (
	"fmt"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/auth"
)

const tokenKey = "vouch.token"

// require authenticates the bearer token and checks it carries scope.
// Missing or invalid tokens get 401, valid tokens without the scope 403.
func (s *Server) require(scope auth.Scope) gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.GetHeader("Authorization")
		secret, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || strings.TrimSpace(secret) == "" {
			s.fail(c, fmt.Errorf("%w: send \"Authorization: Bearer <token>\"", auth.ErrUnauthenticated))
			return
		}
		t, err := s.cfg.Tokens.Authenticate(c.Request.Context(), strings.TrimSpace(secret))
		if err != nil {
			s.fail(c, err)
			return
		}
		c.Set(tokenKey, t)
		if !t.Allows(scope) {
			s.fail(c, fmt.Errorf("%w: token %q has scopes %v; this endpoint needs %q", errForbidden, t.Name, t.Scopes, scope))
			return
		}
		c.Next()
	}
}

// caller returns the authenticated token's name: the identity recorded as
// reporter or approver.
func caller(c *gin.Context) string {
	return c.MustGet(tokenKey).(auth.Token).Name
}
