package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/auth"
)

// TokenRequest asks for a new token.
type TokenRequest struct {
	Name   string       `json:"name"`
	Scopes []auth.Scope `json:"scopes"`
	// ExpiresIn is a Go duration such as "720h"; no expiry when empty.
	ExpiresIn string `json:"expires_in"`
	// Identities name the person the token belongs to (emails, logins),
	// for four eyes.
	Identities []string `json:"identities"`
	// Repositories limit the evidence the token may write to the builds
	// of these repositories (patterns such as github.com/org/*).
	Repositories []string `json:"repositories"`
}

// CreatedToken is a new token with its secret, shown only this once.
type CreatedToken struct {
	auth.Token
	Secret string `json:"secret"`
}

func (s *Server) createToken(c *gin.Context) {
	var r TokenRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &r); err != nil {
		s.fail(c, err)
		return
	}
	var ttl time.Duration
	if r.ExpiresIn != "" {
		var err error
		if ttl, err = time.ParseDuration(r.ExpiresIn); err != nil || ttl <= 0 {
			s.fail(c, &auth.InvalidError{Problems: []string{fmt.Sprintf("expires_in: %q is not a positive duration such as \"720h\"", r.ExpiresIn)}})
			return
		}
	}
	t, secret, err := s.cfg.Tokens.Create(c.Request.Context(), auth.Request{Name: r.Name, Scopes: r.Scopes, TTL: ttl, Identities: r.Identities, Repositories: r.Repositories})
	if err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("token created", "token_id", t.ID, "name", t.Name, "scopes", t.Scopes, "identities", t.Identities, "repositories", t.Repositories, "by", caller(c))
	c.JSON(http.StatusCreated, CreatedToken{Token: t, Secret: secret})
}

func (s *Server) listTokens(c *gin.Context) {
	list, err := s.cfg.Tokens.List(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	if list == nil {
		list = []auth.Token{}
	}
	c.JSON(http.StatusOK, gin.H{"tokens": list})
}

func (s *Server) revokeToken(c *gin.Context) {
	if err := s.cfg.Tokens.Revoke(c.Request.Context(), c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("token revoked", "token_id", c.Param("id"), "by", caller(c))
	c.Status(http.StatusNoContent)
}
