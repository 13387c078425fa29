package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/webhook"
)

// Reviewer decides as the webhook would, without recording anything.
type Reviewer interface {
	Assert(ctx context.Context, environment, image string, opts webhook.AssertOptions) (webhook.Assertion, error)
	ReviewObject(ctx context.Context, environment, namespace string, object []byte) (webhook.Review, error)
}

// AssertRequest asks whether an image, or the artifact with a digest,
// would be admitted in an environment now; Namespace (default: the
// environment's first) and ConfigurationItem (its
// vouch.dev/configuration-item) describe the workload.
type AssertRequest struct {
	Image             string `json:"image"`
	Digest            string `json:"digest"`
	Environment       string `json:"environment"`
	Namespace         string `json:"namespace,omitempty"`
	ConfigurationItem string `json:"configuration_item,omitempty"`
}

var digestOnlyRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

func (s *Server) assert(c *gin.Context) {
	var r AssertRequest
	if err := decodeJSON(c, s.cfg.MaxBodyBytes, &r); err != nil {
		s.fail(c, err)
		return
	}
	var fields []evidence.FieldError
	switch {
	case r.Image == "" && r.Digest == "":
		fields = append(fields, evidence.FieldError{Field: "image", Detail: "is required (or digest)"})
	case r.Image != "" && r.Digest != "":
		fields = append(fields, evidence.FieldError{Field: "digest", Detail: "give image or digest, not both"})
	case r.Digest != "" && !digestOnlyRE.MatchString(r.Digest):
		fields = append(fields, evidence.FieldError{Field: "digest", Detail: fmt.Sprintf("must be \"sha256:\" followed by 64 lower-case hex characters, got %q", r.Digest)})
	}
	if r.Environment == "" {
		fields = append(fields, evidence.FieldError{Field: "environment", Detail: "is required"})
	}
	if len(fields) > 0 {
		s.fail(c, &evidence.ValidationError{Fields: fields})
		return
	}
	image := r.Image
	if r.Digest != "" {
		// The policy judges images; name the artifact as its build did.
		image = "unknown@" + r.Digest
		if ev, err := s.cfg.EvidenceStore.Evidence(c.Request.Context(), r.Digest); err == nil && ev.Artifact != nil {
			image = ev.Artifact.Name + "@" + r.Digest
		} else if err != nil && !errors.Is(err, evidence.ErrNotFound) {
			s.fail(c, err)
			return
		}
	}
	a, err := s.cfg.Reviewer.Assert(c.Request.Context(), r.Environment, image, webhook.AssertOptions{Namespace: r.Namespace, ConfigurationItem: r.ConfigurationItem})
	if err != nil {
		s.reviewFail(c, "environment", err)
		return
	}
	c.JSON(http.StatusOK, a)
}

// ReviewRequest is a manifest's objects, as JSON.
type ReviewRequest struct {
	// Environment decides every object when set; otherwise each object's
	// namespace picks its environment, as at admission.
	Environment string `json:"environment"`
	// Namespace is the namespace of objects that name none (default
	// "default", as kubectl).
	Namespace string            `json:"namespace"`
	Objects   []json.RawMessage `json:"objects"`
}

// MaxReviewObjects bounds one review.
const MaxReviewObjects = 2000

func (s *Server) review(c *gin.Context) {
	var r ReviewRequest
	if err := decodeJSON(c, 16<<20, &r); err != nil {
		s.fail(c, err)
		return
	}
	switch {
	case r.Objects == nil:
		s.fail(c, evidence.Invalid("objects", "is required: the manifest's objects"))
		return
	case len(r.Objects) > MaxReviewObjects:
		s.fail(c, evidence.Invalid("objects", fmt.Sprintf("at most %d objects per review, got %d", MaxReviewObjects, len(r.Objects))))
		return
	}
	if r.Namespace == "" {
		r.Namespace = "default"
	}
	out := struct {
		Allowed bool             `json:"allowed"`
		Reviews []webhook.Review `json:"reviews"`
	}{Allowed: true, Reviews: make([]webhook.Review, 0, len(r.Objects))}
	for i, o := range r.Objects {
		rev, err := s.cfg.Reviewer.ReviewObject(c.Request.Context(), r.Environment, r.Namespace, o)
		if err != nil {
			s.reviewFail(c, fmt.Sprintf("objects[%d]", i), err)
			return
		}
		out.Allowed = out.Allowed && rev.Allowed
		out.Reviews = append(out.Reviews, rev)
	}
	c.JSON(http.StatusOK, out)
}

// reviewFail reports an unknown environment or a bad object as a field of
// the request; other errors (the policy could not be evaluated, the store
// is down) as they are.
func (s *Server) reviewFail(c *gin.Context, field string, err error) {
	var serr *json.SyntaxError
	switch {
	case errors.Is(err, webhook.ErrUnknownEnvironment):
		field = "environment"
	case errors.Is(err, webhook.ErrNamespace):
		field = "namespace"
	case errors.Is(err, webhook.ErrNotAnObject), errors.As(err, &serr):
	default:
		s.fail(c, err)
		return
	}
	s.fail(c, evidence.Invalid(field, err.Error()))
}
