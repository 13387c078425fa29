package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/intoto"
	"github.com/vouch-dev/vouch/evidence/sigstore"
	"github.com/vouch-dev/vouch/evidence/trust"
)

// MaxEnvelopeBytes bounds a DSSE envelope or a Sigstore bundle.
const MaxEnvelopeBytes = 4 << 20

// envelopeResult is what one envelope recorded.
type envelopeResult struct {
	PredicateType    string                 `json:"predicate_type"`
	Name             string                 `json:"name"`
	Verified         bool                   `json:"verified"`
	KeyID            string                 `json:"key_id,omitempty"`
	SignatureProblem string                 `json:"signature_problem,omitempty"`
	Signer           *sigstore.Signer       `json:"signer,omitempty"`
	Attestations     []evidence.Attestation `json:"attestations"`
	Artifacts        []evidence.Artifact    `json:"artifacts,omitempty"`
	Warnings         []string               `json:"warnings,omitempty"`
}

// postEnvelope records a DSSE envelope holding an in-toto statement, or a
// Sigstore bundle holding one: an attestation for each subject, verified
// when a key or keyless identity trusted for its name signed it, and for
// SLSA provenance the subjects' provenance. Each record is idempotent, so a
// retry after a failure completes the set.
func (s *Server) postEnvelope(c *gin.Context) {
	switch ct := c.ContentType(); ct {
	case "application/json", "application/vnd.dsse.envelope.v1+json", "application/vnd.dsse+json",
		"application/vnd.dev.sigstore.bundle+json", "application/vnd.dev.sigstore.bundle.v0.3+json":
	default:
		s.fail(c, &bodyError{kind: problemMediaType, msg: fmt.Sprintf("content type %q is not supported: send the DSSE envelope or Sigstore bundle as application/json", ct)})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxEnvelopeBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.fail(c, &bodyError{kind: problemTooLarge, msg: fmt.Sprintf("an envelope or bundle may be at most %d bytes", MaxEnvelopeBytes)})
			return
		}
		s.fail(c, &bodyError{kind: problemInvalidBody, msg: "reading the body: " + err.Error()})
		return
	}
	var env intoto.Envelope
	var bundle *sigstore.Bundle
	mediaType := "application/vnd.dsse.envelope.v1+json"
	if sigstore.IsBundle(body) {
		if bundle, err = sigstore.ParseBundle(body); err == nil {
			env, mediaType = bundle.Envelope, bundle.MediaType
		}
	} else {
		env, err = intoto.ParseEnvelope(body)
	}
	if err != nil {
		s.fail(c, &bodyError{kind: problemInvalidBody, msg: err.Error()})
		return
	}
	st, err := env.Statement()
	if err != nil {
		s.fail(c, evidence.Invalid("payload", err.Error()))
		return
	}
	name := c.Query("name")
	if name == "" {
		if name, err = trust.DefaultName(st.PredicateType); err != nil {
			s.fail(c, evidence.Invalid("name", err.Error()+": add ?name=… (vouch attest intoto --name …)"))
			return
		}
	}
	var v trust.Verdict
	if bundle != nil {
		v = s.cfg.Trust.CheckBundle(bundle, st, name)
	} else {
		v = s.cfg.Trust.Check(env, st, name)
	}
	if !v.Verified && s.cfg.Trust.SignatureRequired(name) {
		s.fail(c, evidence.Invalid("signatures", fmt.Sprintf("attestations %q must be signed by a trusted key or identity: %s", name, v.Problem)))
		return
	}
	recs, err := trust.Reports(st, name, v)
	if err != nil {
		s.fail(c, evidence.Invalid("payload", err.Error()))
		return
	}
	var digests []string
	for _, r := range recs.Attestations {
		digests = append(digests, r.Digest)
	}
	if err := s.checkScope(c, recs.Artifacts, digests); err != nil {
		s.fail(c, err)
		return
	}
	// The envelope itself is kept, so that anyone can verify it again.
	if s.cfg.Blobs != nil {
		b := evidence.NewBlob(body, mediaType, caller(c), time.Now())
		if _, err := s.cfg.Blobs.PutBlob(c.Request.Context(), b); err != nil {
			s.fail(c, fmt.Errorf("store the envelope: %w: %w", evidence.ErrUnavailable, err))
			return
		}
		for i := range recs.Attestations {
			recs.Attestations[i].Blob = b.Digest
		}
	}
	res := envelopeResult{PredicateType: st.PredicateType, Name: name, Verified: v.Verified, KeyID: v.KeyID, SignatureProblem: v.Problem, Signer: v.Signer}
	ctx := c.Request.Context()
	for _, r := range recs.Artifacts {
		a, created, err := s.cfg.Evidence.ReportArtifact(ctx, caller(c), r)
		if errors.Is(err, evidence.ErrConflict) {
			if len(c.MustGet(tokenKey).(auth.Token).Repositories) > 0 {
				// Reported from another source since checkScope looked: the
				// token's attestations would be about another team's build.
				s.fail(c, fmt.Errorf("%w: %s was reported from another source meanwhile: nothing more of this envelope was recorded", errForbidden, r.Digest))
				return
			}
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s: provenance differs from what was reported before; the first report stands", r.Digest))
			continue
		}
		if err != nil {
			s.fail(c, err)
			return
		}
		s.observe(evidence.KindArtifact, created)
		res.Artifacts = append(res.Artifacts, a)
	}
	for _, r := range recs.Attestations {
		a, created, err := s.cfg.Evidence.Attest(ctx, caller(c), r)
		if err != nil {
			s.fail(c, err)
			return
		}
		s.observe(evidence.KindAttestation, created)
		res.Attestations = append(res.Attestations, a)
	}
	c.JSON(http.StatusCreated, res)
}
