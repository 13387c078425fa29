package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/exempt"
)

// ExemptionService creates, lists and revokes exemptions.
type ExemptionService interface {
	Create(ctx context.Context, actor string, r exempt.Request) (exempt.Exemption, error)
	Revoke(ctx context.Context, actor string, id uint64) (exempt.Exemption, error)
	List(ctx context.Context, all bool) ([]exempt.Exemption, error)
}

func (s *Server) createExemption(c *gin.Context) {
	var r exempt.Request
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &r); err != nil {
		s.fail(c, err)
		return
	}
	if err := refuseLimited(c, "create"); err != nil {
		s.fail(c, err)
		return
	}
	e, err := s.cfg.Exemptions.Create(c.Request.Context(), caller(c), r)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.log.Warn("exemption created", "id", e.ID, "environment", e.Environment, "image", e.Image, "digest", e.Digest,
		"expires_at", e.ExpiresAt, "by", e.CreatedBy, "reason", e.Reason)
	c.JSON(http.StatusCreated, e)
}

func (s *Server) listExemptions(c *gin.Context) {
	all := c.Query("all") == "true"
	list, err := s.cfg.Exemptions.List(c.Request.Context(), all)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"exemptions": list})
}

func (s *Server) revokeExemption(c *gin.Context) {
	id, err := strconv.ParseUint(c.Param("id"), 10, 63)
	if err != nil {
		s.fail(c, &bodyError{kind: problemInvalidQuery, msg: fmt.Sprintf("exemption id %q is not a number", c.Param("id"))})
		return
	}
	if err := refuseLimited(c, "revoke"); err != nil {
		s.fail(c, err)
		return
	}
	e, err := s.cfg.Exemptions.Revoke(c.Request.Context(), caller(c), id)
	if errors.Is(err, evidence.ErrNotFound) {
		s.fail(c, fmt.Errorf("%w: no exemption %d", errNotFound, id))
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

// refuseLimited refuses a token limited to repositories: exemptions admit
// images whatever their source, so no team's token may create or revoke
// them.
func refuseLimited(c *gin.Context, verb string) error {
	if t := c.MustGet(tokenKey).(auth.Token); len(t.Repositories) > 0 {
		return fmt.Errorf("%w: token %q is limited to repositories; exemptions admit images whatever their source, so to %s one takes a token that is not", errForbidden, t.Name, verb)
	}
	return nil
}
