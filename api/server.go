// Package api is Vouch's HTTP API (gin): evidence ingestion, evidence and
// journal queries, token administration, health and metrics. Every error is
// an RFC 9457 problem+json document.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/change"
	"github.com/vouch-dev/vouch/evidence/review"
	"github.com/vouch-dev/vouch/evidence/trust"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/ratelimit"
)

// EvidenceService accepts evidence reports.
type EvidenceService interface {
	ReportArtifact(ctx context.Context, actor string, r evidence.ArtifactReport) (evidence.Artifact, bool, error)
	Attest(ctx context.Context, actor string, r evidence.AttestationReport) (evidence.Attestation, bool, error)
	Approve(ctx context.Context, approver string, r evidence.ApprovalRequest) (evidence.Approval, error)
	ValidateApproval(r evidence.ApprovalRequest) error
}

// Observer is told about accepted evidence (for metrics).
type Observer interface {
	ObserveEvidence(kind journal.Kind, created bool)
}

// Config wires a Server.
type Config struct {
	Evidence      EvidenceService
	EvidenceStore evidence.Store
	// Blobs serves /blobs; nil leaves those endpoints out.
	Blobs evidence.BlobStore
	// MaxBlobBytes limits blob uploads; evidence.DefaultMaxBlobSize when 0.
	MaxBlobBytes int64
	Journal      journal.Store
	Tokens       *auth.Service
	// OIDC authenticates CI jobs by their OpenID Connect ID tokens; nil
	// accepts Vouch tokens only.
	OIDC OIDCVerifier
	// Drift serves /environments; nil leaves those endpoints out.
	Drift DriftService
	// Reviewer serves /assert and /review; nil leaves them out.
	Reviewer Reviewer
	// Replayer serves POST /policy/replay; nil leaves it out.
	Replayer Replayer
	// Trust verifies signed attestations (POST /envelopes); nil trusts
	// no key.
	Trust *trust.Trust
	// Forges are the forges Vouch asks about code reviews itself
	// (POST /reviews); nil: none.
	Forges *review.Forges
	// Changes are the change systems Vouch reads change requests from
	// itself (POST /changes); nil: none.
	Changes *change.Systems
	// RateLimit, when set, limits the requests of each token (to
	// RateLimitPerMinute, for messages).
	RateLimit          ratelimit.Limiter
	RateLimitPerMinute int
	// Exemptions serves /exemptions; nil leaves them out.
	Exemptions ExemptionService
	// TrustedProxies are the addresses or CIDRs of the proxies in front,
	// whose X-Forwarded-For names the client (for the request log).
	TrustedProxies []string
	// Ready reports whether Vouch can serve: /readyz fails while it errs.
	Ready func(ctx context.Context) error
	// Degraded, when set, reports what works only in part while Vouch
	// still serves (the store unreachable: admissions are spooled). It
	// shows in /readyz, which stays 200 so the webhook keeps its endpoints.
	Degraded func(ctx context.Context) error
	// Metrics serves /metrics when set.
	Metrics http.Handler
	// MaxBodyBytes limits request bodies; DefaultMaxBodyBytes when 0.
	MaxBodyBytes int64
	Observer     Observer
	Logger       *slog.Logger
}

// DefaultMaxBodyBytes is the default request body limit.
const DefaultMaxBodyBytes = 1 << 20

// Server is the HTTP API.
type Server struct {
	cfg       Config
	log       *slog.Logger
	engine    *gin.Engine
	replaying chan struct{} // holds a token while a replay runs
	exports   *ratelimit.Concurrency
}

// MaxConcurrentExports is how many journal exports a token may have
// streaming at once; the per-minute rate limit counts each as one request,
// however large.
const MaxConcurrentExports = 2

// New builds the API handler.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBlobBytes <= 0 {
		cfg.MaxBlobBytes = evidence.DefaultMaxBlobSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{cfg: cfg, log: cfg.Logger, engine: gin.New(), replaying: make(chan struct{}, 1), exports: ratelimit.NewConcurrency(MaxConcurrentExports)}
	e := s.engine
	e.HandleMethodNotAllowed = true
	// The client address is the peer's, or what a trusted proxy says it
	// is: X-Forwarded-For from anyone else is forged at will.
	if err := e.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		cfg.Logger.Error("trusted proxies ignored", "error", err)
		e.SetTrustedProxies(nil)
	}
	e.Use(s.recover, s.logRequests)
	e.NoRoute(func(c *gin.Context) {
		writeProblem(c, Problem{Type: ProblemBase + problemNotFound.slug, Title: problemNotFound.title, Status: http.StatusNotFound,
			Detail: "no such endpoint: " + c.Request.Method + " " + c.Request.URL.Path, Instance: c.Request.URL.Path})
	})
	e.NoMethod(func(c *gin.Context) {
		writeProblem(c, Problem{Type: ProblemBase + problemMethod.slug, Title: problemMethod.title, Status: http.StatusMethodNotAllowed,
			Detail: c.Request.Method + " is not allowed on " + c.Request.URL.Path, Instance: c.Request.URL.Path})
	})

	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", s.ready)
	if cfg.Metrics != nil {
		e.GET("/metrics", gin.WrapH(cfg.Metrics))
	}

	v1 := e.Group("/api/v1")
	v1.POST("/artifacts", s.require(auth.ScopeEvidenceWrite), s.postArtifact)
	v1.POST("/attestations", s.require(auth.ScopeEvidenceWrite), s.postAttestation)
	v1.POST("/envelopes", s.require(auth.ScopeEvidenceWrite), s.postEnvelope)
	v1.POST("/reviews", s.require(auth.ScopeEvidenceWrite), s.postReview)
	v1.POST("/changes", s.require(auth.ScopeEvidenceWrite), s.postChange)
	v1.POST("/approvals", s.require(auth.ScopeApprovalsWrite), s.postApproval)
	v1.GET("/artifacts", s.require(auth.ScopeAuditRead), s.listArtifacts)
	v1.GET("/artifacts/:digest", s.require(auth.ScopeAuditRead), s.getArtifact)
	v1.GET("/approvals", s.require(auth.ScopeAuditRead), s.listApprovals)
	v1.GET("/search", s.require(auth.ScopeAuditRead), s.search)
	if cfg.Blobs != nil {
		v1.POST("/blobs", s.require(auth.ScopeEvidenceWrite), s.postBlob)
		v1.GET("/blobs/:digest", s.require(auth.ScopeAuditRead), s.getBlob)
	}
	v1.GET("/journal/entries", s.require(auth.ScopeAuditRead), s.journalEntries)
	v1.GET("/journal/checkpoint", s.require(auth.ScopeAuditRead), s.getCheckpoint)
	v1.GET("/journal/proof/inclusion", s.require(auth.ScopeAuditRead), s.inclusionProof)
	v1.GET("/journal/proof/consistency", s.require(auth.ScopeAuditRead), s.consistencyProof)
	v1.GET("/audit/export", s.require(auth.ScopeAuditRead), s.auditExport)
	if cfg.Drift != nil {
		v1.GET("/environments", s.require(auth.ScopeAuditRead), s.listEnvironments)
		v1.GET("/environments/:env/state", s.require(auth.ScopeAuditRead), s.environmentState)
		v1.GET("/environments/:env/diff", s.require(auth.ScopeAuditRead), s.environmentDiff)
		v1.GET("/environments/:env/events", s.require(auth.ScopeAuditRead), s.environmentEvents)
		v1.GET("/environments/:env/compliance", s.require(auth.ScopeAuditRead), s.environmentCompliance)
		v1.PUT("/environments/:env/snapshot", s.require(auth.ScopeSnapshotsWrite), s.putSnapshot)
	}
	if cfg.Exemptions != nil {
		v1.POST("/exemptions", s.require(auth.ScopeApprovalsWrite), s.createExemption)
		v1.GET("/exemptions", s.require(auth.ScopeAuditRead, auth.ScopeApprovalsWrite), s.listExemptions)
		v1.DELETE("/exemptions/:id", s.require(auth.ScopeApprovalsWrite), s.revokeExemption)
	}
	if cfg.Reviewer != nil {
		// Pipelines assert with their evidence token; auditors may ask too.
		v1.POST("/assert", s.require(auth.ScopeEvidenceWrite, auth.ScopeAuditRead), s.assert)
		v1.POST("/review", s.require(auth.ScopeEvidenceWrite, auth.ScopeAuditRead), s.review)
	}
	if cfg.Replayer != nil {
		v1.POST("/policy/replay", s.require(auth.ScopeAuditRead), s.replay)
	}
	v1.POST("/tokens", s.require(auth.ScopeAdmin), s.createToken)
	v1.GET("/tokens", s.require(auth.ScopeAdmin), s.listTokens)
	v1.DELETE("/tokens/:id", s.require(auth.ScopeAdmin), s.revokeToken)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

func (s *Server) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Ready(ctx); err != nil {
		writeProblem(c, Problem{Type: ProblemBase + problemUnavailable.slug, Title: "Not ready", Status: http.StatusServiceUnavailable,
			Detail: err.Error(), Instance: c.Request.URL.Path})
		return
	}
	if s.cfg.Degraded != nil {
		if err := s.cfg.Degraded(ctx); err != nil {
			c.JSON(http.StatusOK, gin.H{"status": "degraded", "reason": err.Error()})
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// recover turns a panic into a 500 problem instead of a dropped connection.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.Error("panic in API handler", "method", c.Request.Method, "path", c.FullPath(), "panic", r)
			writeProblem(c, Problem{Type: ProblemBase + problemInternal.slug, Title: problemInternal.title, Status: http.StatusInternalServerError,
				Instance: c.Request.URL.Path})
		}
	}()
	c.Next()
}

// logRequests logs each request with its outcome. Tokens are never logged,
// only the name of the token used.
func (s *Server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	if c.Request.URL.Path == "/healthz" || c.Request.URL.Path == "/readyz" || c.Request.URL.Path == "/metrics" {
		return
	}
	attrs := []any{"method", c.Request.Method, "path", c.Request.URL.Path, "status", c.Writer.Status(),
		"duration_ms", float64(time.Since(start).Microseconds()) / 1000, "remote", c.ClientIP()}
	if t, ok := c.Get(tokenKey); ok {
		attrs = append(attrs, "token", t.(auth.Token).Name)
	}
	s.log.Info("api request", attrs...)
}
