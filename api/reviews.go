package api

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/auth"
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
	if !evidence.ValidDigest(r.Digest) {
		s.fail(c, evidence.Invalid("digest", `must be "sha256:" followed by 64 lower-case hex characters`))
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
		s.fail(c, evidence.Invalid("digest", fmt.Sprintf("no build of %s names its repository and commit: Vouch asks the forge about those (report the build first)", r.Digest)))
		return
	}
	rv, forge, err := s.cfg.Forges.Review(ctx, ev.Artifact.Repository, ev.Artifact.GitCommit)
	switch {
	case errors.Is(err, review.ErrNoForge):
		s.fail(c, evidence.Invalid("digest", err.Error()))
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
	s.attest(c, report)
}

// deploymentApprovers are the people a release decision by a deployment
// job stands for: those who approved the job's run on the forge, read by
// Vouch (review.Forges.DeploymentApprovers), for the commit the digest's
// build was reported from, which must be the run's.
func (s *Server) deploymentApprovers(c *gin.Context, d auth.Deployment, r evidence.ApprovalRequest) ([]string, error) {
	if err := s.cfg.Evidence.ValidateApproval(r); err != nil {
		return nil, err
	}
	refuse := func(format string, args ...any) ([]string, error) {
		return nil, &bodyError{kind: problemNotApproved, msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case d.Run == "" || d.Environment == "":
		return refuse("the job's ID token names no environment (or run): Vouch records a release decision by a job of %s with the people who approved its deployment, so run the job in a protected environment with required reviewers (environment: in the workflow)", d.Repository)
	case d.Attempt != "1":
		return refuse("the job is attempt %q of workflow run %s: GitHub's review history does not say which attempt a review approved, so only a first attempt's reviewers can be recorded; start a new run", d.Attempt, d.Run)
	case !slices.Contains(d.Decides, r.Environment):
		return refuse("a job of GitHub environment %q decides for %s only, not %s (oidc_issuers deployment_environments)", d.Environment, strings.Join(d.Decides, ", "), r.Environment)
	case r.Emergency:
		return refuse("an emergency approval passes a change freeze: it needs a person's own token (vouch approve --emergency), not a deployment job's")
	}
	ctx := c.Request.Context()
	ev, err := s.cfg.EvidenceStore.Evidence(ctx, r.Digest)
	if err != nil && !errors.Is(err, evidence.ErrNotFound) {
		return nil, err
	}
	if ev.Artifact == nil || ev.Artifact.GitCommit == "" {
		return nil, evidence.Invalid("digest", fmt.Sprintf("no build of %s names its commit: Vouch asks the forge who wrote it, to compare with who approved the deployment (report the build first)", r.Digest))
	}
	if d.Commit != ev.Artifact.GitCommit {
		return refuse("workflow run %s is of commit %s, but %s was built from commit %s: its reviewers approved a run of another commit", d.Run, d.Commit, r.Digest, ev.Artifact.GitCommit)
	}
	ids, err := s.cfg.Forges.DeploymentApprovers(ctx, d, ev.Artifact.GitCommit, ev.Artifact.Author)
	switch {
	case errors.Is(err, review.ErrDeploymentNotApproved):
		return refuse("%v", err)
	case errors.Is(err, review.ErrUnattributedCommit):
		return nil, evidence.Invalid("digest", err.Error()+": link the email to its GitHub account, or have a release manager approve with a token of their own")
	case err != nil:
		return nil, &bodyError{kind: problemForge, msg: fmt.Sprintf("asking the forge %s who approved run %s of %s: %v", d.Forge, d.Run, d.Repository, err)}
	}
	return ids, nil
}
