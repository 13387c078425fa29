package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
)

func (s *Server) postArtifact(c *gin.Context) {
	var r evidence.ArtifactReport
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &r); err != nil {
		s.fail(c, err)
		return
	}
	a, created, err := s.cfg.Evidence.ReportArtifact(c.Request.Context(), caller(c), r)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.observe(evidence.KindArtifact, created)
	c.JSON(createdStatus(created), a)
}

func (s *Server) postAttestation(c *gin.Context) {
	var r evidence.AttestationReport
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &r); err != nil {
		s.fail(c, err)
		return
	}
	a, created, err := s.cfg.Evidence.Attest(c.Request.Context(), caller(c), r)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.observe(evidence.KindAttestation, created)
	c.JSON(createdStatus(created), a)
}

func (s *Server) postApproval(c *gin.Context) {
	var r evidence.ApprovalRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &r); err != nil {
		s.fail(c, err)
		return
	}
	r.ApproverIdentities = c.MustGet(tokenKey).(auth.Token).Identities
	a, err := s.cfg.Evidence.Approve(c.Request.Context(), caller(c), r)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.observe(evidence.KindApproval, true)
	c.JSON(http.StatusCreated, a)
}

func (s *Server) getArtifact(c *gin.Context) {
	d := c.Param("digest")
	if !evidence.ValidDigest(d) {
		s.fail(c, &bodyError{kind: problemInvalidQuery, msg: fmt.Sprintf("digest %q must be \"sha256:\" followed by 64 lower-case hex characters", d)})
		return
	}
	ev, err := s.cfg.EvidenceStore.Evidence(c.Request.Context(), d)
	if err != nil {
		s.fail(c, err)
		return
	}
	if ev.Attestations == nil {
		ev.Attestations = []evidence.Attestation{}
	}
	if ev.Approvals == nil {
		ev.Approvals = []evidence.Approval{}
	}
	c.JSON(http.StatusOK, ev)
}

func (s *Server) listArtifacts(c *gin.Context) {
	limit, err := intParam(c, "limit", 100, 1, 1000)
	if err != nil {
		s.fail(c, err)
		return
	}
	list, err := s.cfg.EvidenceStore.Artifacts(c.Request.Context(), evidence.ArtifactFilter{
		Name: c.Query("name"), GitCommit: c.Query("commit"), Limit: limit,
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	if list == nil {
		list = []evidence.Artifact{}
	}
	c.JSON(http.StatusOK, gin.H{"artifacts": list})
}

func (s *Server) observe(kind journal.Kind, created bool) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.ObserveEvidence(kind, created)
	}
}

func createdStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// intParam reads an optional integer query parameter within [lo, hi].
func intParam(c *gin.Context, name string, def, lo, hi int) (int, error) {
	v, ok := c.GetQuery(name)
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, &bodyError{kind: problemInvalidQuery, msg: fmt.Sprintf("query parameter %q must be a whole number from %d to %d, got %q", name, lo, hi, v),
			fields: []evidence.FieldError{{Field: name, Detail: fmt.Sprintf("must be a whole number from %d to %d", lo, hi)}}}
	}
	return n, nil
}
