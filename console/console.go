// Package console is the auditor's console: server-rendered, read-only
// pages (html/template, assets embedded, no JavaScript needed) on the API
// listener that answer "what runs, how did it get there, and was the
// process followed?" from the journal, the evidence and the snapshots.
//
// Auditors sign in with an audit:read token; the console keeps the session
// on the server and gives the browser only a random session id in an
// HttpOnly, SameSite=Strict cookie. Every page is sent with a strict
// Content-Security-Policy and may not be framed.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/ratelimit"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// Authenticator checks tokens (auth.Service): at sign-in by their secret,
// on every later request by the hash a session keeps.
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (auth.Token, error)
	AuthenticateHash(ctx context.Context, hash string) (auth.Token, error)
}

// DriftService answers what ran where and when (drift.Service).
type DriftService interface {
	State(ctx context.Context, env string, at time.Time) (drift.Snapshot, error)
	Diff(ctx context.Context, env string, from, to time.Time) (drift.Diff, error)
	Events(ctx context.Context, env string, since, until time.Time, limit int) ([]drift.Event, error)
	Check(ctx context.Context, snap drift.Snapshot) (drift.Report, error)
	Summaries(ctx context.Context) ([]drift.Summary, error)
	Sightings(ctx context.Context, digests []string) (map[string][]drift.Sighting, error)
	Periods(ctx context.Context, env, digest string, since time.Time, limit int) ([]drift.Period, bool, error)
}

// BlobReader reads the documents attestations refer to.
type BlobReader interface {
	Blob(ctx context.Context, digest string) (evidence.Blob, error)
}

// Config wires the console.
type Config struct {
	Tokens Authenticator
	// Sessions keeps who signed in, in the database the replicas share.
	Sessions  auth.SessionStore
	Journal   journal.Store
	Evidence  evidence.Store
	Blobs     BlobReader
	Decisions drift.DecisionStore
	Drift     DriftService
	// Environments are the configured environments, for the filters.
	Environments []string
	// PublicKey is the journal's verifier key ("<origin>+<hash>+<key>"):
	// checkpoints are verified with it, and auditors are given it.
	PublicKey string
	// API serves /api/, /healthz, /readyz and /metrics; the console
	// serves the rest. Exports and blob downloads go through it, with the
	// session's token.
	API http.Handler
	// SignInLimit is how many sign-in attempts a client address may make
	// per minute (DefaultSignInLimit when 0).
	SignInLimit int
	// SessionIdle ends a session unused this long (DefaultSessionIdle when
	// 0); SessionMax ends any session this long after sign-in
	// (DefaultSessionMax when 0).
	SessionIdle, SessionMax time.Duration
	// TrustedProxies are the proxies in front (an ingress): a request from
	// one is from the address it puts in X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// SecureCookies marks cookies Secure even on plain HTTP requests (for
	// a TLS-terminating proxy in front); requests over TLS always get it.
	SecureCookies bool
	Logger        *slog.Logger
	Now           func() time.Time
}

// Defaults.
const (
	DefaultSignInLimit = 10
	DefaultSessionIdle = 8 * time.Hour
	DefaultSessionMax  = 24 * time.Hour
)

func (c *Config) validate() error {
	var missing []string
	for name, ok := range map[string]bool{"Tokens": c.Tokens != nil, "Sessions": c.Sessions != nil, "Journal": c.Journal != nil, "Evidence": c.Evidence != nil,
		"Decisions": c.Decisions != nil, "Drift": c.Drift != nil, "API": c.API != nil} {
		if !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("console: missing %s", strings.Join(missing, ", "))
	}
	if _, err := journal.NewVerifier(c.PublicKey); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}

// Console serves the pages, and the API beside them.
type Console struct {
	cfg      Config
	log      *slog.Logger
	mux      *http.ServeMux
	pages    map[string]*page
	sessions *sessions
	signIn   ratelimit.Limiter
	// heavy bounds the heavy downloads (decisions, audit packages) a
	// token runs at once; journal exports are bounded by the API.
	heavy  *ratelimit.Concurrency
	assets http.Handler
}

// MaxConcurrentDownloads is how many decisions downloads and audit packages
// a signed-in token may have running at once.
const MaxConcurrentDownloads = 2

// download runs a heavy download, at most MaxConcurrentDownloads at once
// per token.
func (c *Console) download(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		release, ok := c.heavy.Acquire(current(r.Context()).token.ID)
		if !ok {
			w.Header().Set("Retry-After", "10")
			c.renderError(w, r, http.StatusTooManyRequests, fmt.Sprintf("You have %d downloads running; try again when one has finished.", MaxConcurrentDownloads))
			return
		}
		defer release()
		h(w, r)
	}
}

// New builds the console.
func New(cfg Config) (*Console, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.SignInLimit <= 0 {
		cfg.SignInLimit = DefaultSignInLimit
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = DefaultSessionIdle
	}
	if cfg.SessionMax <= 0 {
		cfg.SessionMax = DefaultSessionMax
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(assetFiles, "assets")
	c := &Console{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), pages: pages,
		sessions: &sessions{store: cfg.Sessions, idle: cfg.SessionIdle, max: cfg.SessionMax, now: cfg.Now}, signIn: ratelimit.NewMemory(cfg.SignInLimit),
		heavy:  ratelimit.NewConcurrency(MaxConcurrentDownloads),
		assets: http.StripPrefix("/assets/", http.FileServerFS(sub))}
	m := c.mux
	m.HandleFunc("GET /assets/", c.serveAsset)
	m.HandleFunc("GET /sign-in", c.signInPage)
	m.HandleFunc("POST /sign-in", c.signInPost)
	m.HandleFunc("POST /sign-out", c.signOut)
	m.Handle("GET /{$}", c.auth(c.overview))
	m.Handle("GET /environments/{env}", c.auth(c.environment))
	m.Handle("GET /environments/{env}/diff", c.auth(c.diff))
	m.Handle("GET /artifacts", c.auth(c.artifactSearch))
	m.Handle("GET /artifacts/{digest}", c.auth(c.artifact))
	m.Handle("GET /artifacts/{digest}/audit-package", c.auth(c.download(c.auditPackage)))
	m.Handle("GET /blobs/{digest}", c.auth(c.blob))
	m.Handle("GET /decisions", c.auth(c.decisions))
	m.Handle("GET /decisions/export", c.auth(c.download(c.decisionsExport)))
	m.Handle("GET /journal", c.auth(c.integrity))
	m.Handle("GET /journal/entries/{index}", c.auth(c.entry))
	m.Handle("GET /downloads", c.auth(c.downloads))
	m.Handle("GET /downloads/export", c.auth(c.export))
	m.Handle("GET /downloads/audit-package", c.auth(c.download(c.auditPackageByDigest)))
	m.Handle("GET /downloads/public-key", c.auth(c.publicKey))
	m.Handle("GET /downloads/checkpoint", c.auth(c.checkpoint))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, http.StatusNotFound, "There is no such page.")
	})
	return c, nil
}

// ServeHTTP serves the API's paths through the API, and everything else
// as console pages.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isAPIPath(r.URL.Path) {
		c.cfg.API.ServeHTTP(w, r)
		return
	}
	start := c.cfg.Now()
	sw := &statusWriter{ResponseWriter: w}
	securityHeaders(sw.Header())
	if c.secure(r) {
		// Served over HTTPS (here or by the proxy in front): browsers keep to it.
		sw.Header().Set("Strict-Transport-Security", "max-age=31536000")
	}
	c.mux.ServeHTTP(sw, r)
	if !strings.HasPrefix(r.URL.Path, "/assets/") {
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", sw.status,
			"duration_ms", float64(c.cfg.Now().Sub(start).Microseconds()) / 1000, "remote", c.client(r)}
		c.log.Info("console request", attrs...)
	}
}

func isAPIPath(p string) bool {
	return strings.HasPrefix(p, "/api/") || p == "/api" || p == "/healthz" || p == "/readyz" || p == "/metrics"
}

// ContentSecurityPolicy is sent with every console response: nothing but
// the console's own styles, scripts and images, no framing, forms only to
// the console.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // not "no-referrer": browsers then send "Origin: null" with the forms
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}

func (c *Console) serveAsset(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "private, max-age=3600")
	c.assets.ServeHTTP(w, r)
}

// statusWriter remembers the status of a response, for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// errNotFound is a page about something that does not exist.
var errNotFound = errors.New("not found")
