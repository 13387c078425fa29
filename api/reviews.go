package api

import (
	"errors"
	"fmt"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/review"
)

// reviewRequest asks Vouch to ask the forge how a build was reviewed.
type reviewRequest struct {
	Digest string `json:"digest"`
	Name   string `json:"name"`
}

// postReview records a code review Vouch reads from the forge itself
// (forges in its configuration): about the repository and commit the
// digest's build was reported from, never what the caller says. The
// attestation (type pull-request) is verified, with key_id
// "forge:<name>": a pipeline cannot write it.
func (s *Server) postReview(c *gin.Context) {
	var r reviewRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &r); err != nil {
		s.fail(c, err)
		return
	}
	invalid := func(field, detail string) {
		s.fail(c, &evidence.ValidationError{Fields: []evidence.FieldError{{Field: field, Detail: detail}}})
	}
	if !evidence.ValidDigest(r.Digest) {
		invalid("digest", `must be "sha256:" followed by 64 lower-case hex characters`)
		return
	}
	if r.Name == "" {
		r.Name = "code-review"
	}
	if err := s.checkScope(c, nil, []string{r.Digest}); err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	ev, err := s.cfg.EvidenceStore.Evidence(ctx, r.Digest)
	if err != nil && !errors.Is(err, evidence.ErrNotFound) {
		s.fail(c, err)
		return
	}
	if ev.Artifact == nil || ev.Artifact.Repository == "" || ev.Artifact.GitCommit == "" {
		invalid("digest", fmt.Sprintf("no build of %s names its repository and commit: Vouch asks the forge about those (report the build first)", r.Digest))
		return
	}
	rv, forge, err := s.cfg.Forges.Review(ctx, ev.Artifact.Repository, ev.Artifact.GitCommit)
	switch {
	case errors.Is(err, review.ErrNoForge):
		invalid("digest", err.Error())
		return
	case err != nil:
		s.fail(c, &bodyError{kind: problemForge, msg: fmt.Sprintf("asking the forge %s about %s at %s: %v", forge, ev.Artifact.Repository, ev.Artifact.GitCommit, err)})
		return
	}
	report, err := rv.Report(r.Digest, r.Name)
	if err != nil {
		s.fail(c, &bodyError{kind: problemForge, msg: err.Error()})
		return
	}
	report.Verified, report.KeyID = true, "forge:"+forge
	a, created, err := s.cfg.Evidence.Attest(ctx, caller(c), report)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.observe(evidence.KindAttestation, created)
	c.JSON(createdStatus(created), a)
}
