package api

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

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
	if err := s.checkScope(c, []evidence.ArtifactReport{r}, nil); err != nil {
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
	if err := s.checkScope(c, nil, []string{r.Digest}); err != nil {
		s.fail(c, err)
		return
	}
	s.attest(c, r)
}

// attest records an attestation and answers with it: 201 when new, 200
// when the latest of its name is the same.
func (s *Server) attest(c *gin.Context, r evidence.AttestationReport) {
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
	if err := s.checkScope(c, nil, []string{r.Digest}); err != nil {
		s.fail(c, err)
		return
	}
	tok := c.MustGet(tokenKey).(auth.Token)
	r.ApproverIdentities = tok.Identities
	if tok.Deployment != nil {
		var err error
		if r.ApproverIdentities, err = s.deploymentApprovers(c, *tok.Deployment, r); err != nil {
			s.fail(c, err)
			return
		}
	}
	a, err := s.cfg.Evidence.Approve(c.Request.Context(), caller(c), r)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.observe(evidence.KindApproval, true)
	c.JSON(http.StatusCreated, a)
}

// checkScope refuses what a token limited to repositories may not write:
// a build report of another repository, or of none, and evidence about a
// digest whose build is of another repository or was not reported. builds
// are the build reports of the same request: they count as reported only
// for a digest the store holds no build of (a digest already reported
// keeps its first report). Evidence with an invalid digest is left to the
// service to refuse.
func (s *Server) checkScope(c *gin.Context, builds []evidence.ArtifactReport, digests []string) error {
	t := c.MustGet(tokenKey).(auth.Token)
	if len(t.Repositories) == 0 {
		return nil
	}
	limit := fmt.Sprintf("token %q may write evidence only about builds of %s", t.Name, strings.Join(t.Repositories, ", "))
	reported := map[string]bool{}
	for _, b := range builds {
		if !t.MatchRepository(b.Repository) {
			if b.Repository == "" {
				return fmt.Errorf("%w: %s, and the report of %s names no repository: report it with its repository (vouch artifact report --repository, or from CI, which sets it)", errForbidden, limit, b.Digest)
			}
			return fmt.Errorf("%w: %s; the report of %s names repository %q", errForbidden, limit, b.Digest, b.Repository)
		}
		reported[b.Digest] = true
		digests = append(digests, b.Digest)
	}
	for _, d := range slices.Compact(slices.Sorted(slices.Values(digests))) {
		if !evidence.ValidDigest(d) {
			continue
		}
		ev, err := s.cfg.EvidenceStore.Evidence(c.Request.Context(), d)
		switch {
		case err != nil && !errors.Is(err, evidence.ErrNotFound):
			return err
		case ev.Artifact != nil && !t.MatchRepository(ev.Artifact.Repository):
			return fmt.Errorf("%w: %s; %s was built from %s", errForbidden, limit, d, cmp.Or(ev.Artifact.Repository, "no reported repository"))
		case ev.Artifact == nil && !reported[d]:
			return fmt.Errorf("%w: %s; no build of %s was reported: report the build first (vouch artifact report), with a token for its repository", errForbidden, limit, d)
		}
	}
	return nil
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
