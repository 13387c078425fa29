package api

import (
	"errors"
	"fmt"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/change"
)

// changeRequest asks Vouch to read a change request from the change
// system and record it for a digest.
type changeRequest struct {
	Digest string `json:"digest"`
	Number string `json:"number"`
	System string `json:"system"` // "" when one is configured
	Name   string `json:"name"`
}

// postChange records a change request Vouch reads from the change system
// itself (change_systems in its configuration), as it stands now: an
// attestation of type change-request, verified with key_id
// "change:<system>", passed when the change is approved. A pipeline
// cannot write one.
func (s *Server) postChange(c *gin.Context) {
	var r changeRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &r); err != nil {
		s.fail(c, err)
		return
	}
	switch {
	case !evidence.ValidDigest(r.Digest):
		s.fail(c, evidence.Invalid("digest", `must be "sha256:" followed by 64 lower-case hex characters`))
		return
	case !change.NumberRE.MatchString(r.Number):
		s.fail(c, evidence.Invalid("number", fmt.Sprintf("%q is not a change number such as CHG0030001", r.Number)))
		return
	}
	if r.Name == "" {
		r.Name = "change-request"
	}
	if err := s.checkScope(c, nil, []string{r.Digest}); err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	ch, err := s.cfg.Changes.Read(ctx, r.System, r.Number)
	switch {
	case errors.Is(err, change.ErrNoSystem):
		s.fail(c, evidence.Invalid("system", err.Error()))
		return
	case errors.Is(err, change.ErrNotFound):
		s.fail(c, evidence.Invalid("number", err.Error()))
		return
	case err != nil:
		s.fail(c, &bodyError{kind: problemChangeSystem, msg: fmt.Sprintf("reading change request %s: %v", r.Number, err)})
		return
	}
	report, err := ch.Report(r.Digest, r.Name)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.attest(c, report)
}
