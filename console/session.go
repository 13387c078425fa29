package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/auth"
)

// Cookie names. The session cookie holds only a random id; the token
// stays on the server.
const (
	SessionCookie = "vouch_session"
	CSRFCookie    = "vouch_csrf" // for the sign-in form, before there is a session
)

// session is a signed-in auditor. The token's secret is kept here, in the
// server's memory only, so that every request is checked against the
// token as it is now (revoked, expired) and downloads go through the API
// with it.
type session struct {
	id        string
	secret    string
	name      string // the token's name: who is signed in
	csrf      string
	created   time.Time
	lastSeen  time.Time
	expiresAt time.Time
}

// sessions keeps sessions in memory: a restart or another replica means
// signing in again.
type sessions struct {
	idle, max time.Duration
	now       func() time.Time
	mu        sync.Mutex
	byID      map[string]*session
}

func newSessions(idle, max time.Duration, now func() time.Time) *sessions {
	return &sessions{idle: idle, max: max, now: now, byID: map[string]*session{}}
}

// randomID returns 256 random bits, URL-safe.
func randomID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) create(secret, name string) *session {
	now := s.now()
	ss := &session{id: randomID(), secret: secret, name: name, csrf: randomID(), created: now, lastSeen: now, expiresAt: now.Add(s.max)}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, old := range s.byID { // sweep what has expired
		if s.expired(old, now) {
			delete(s.byID, id)
		}
	}
	s.byID[ss.id] = ss
	return ss
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.lastSeen) > s.idle || !now.Before(ss.expiresAt)
}

// get returns the live session with id and marks it used.
func (s *sessions) get(id string) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	now := s.now()
	if s.expired(ss, now) {
		delete(s.byID, id)
		return nil, false
	}
	ss.lastSeen = now
	copied := *ss
	return &copied, true
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

func (c *Console) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: r.TLS != nil || c.cfg.SecureCookies, SameSite: http.SameSiteStrictMode}
}

type ctxKey struct{}

// current returns the session of a request that passed auth.
func current(ctx context.Context) *session {
	ss, _ := ctx.Value(ctxKey{}).(*session)
	return ss
}

// auth lets signed-in auditors through, with their token still active and
// holding audit:read; others are sent to sign in, and back afterwards.
func (c *Console) auth(h func(http.ResponseWriter, *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		ss, err := c.session(r)
		if err != nil {
			if ck, e := r.Cookie(SessionCookie); e == nil && ck.Value != "" {
				http.SetCookie(w, c.cookie(r, SessionCookie, "", -1))
			}
			http.Redirect(w, r, "/sign-in?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, ss)))
	})
}

var errNoSession = errors.New("no session")

func (c *Console) session(r *http.Request) (*session, error) {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return nil, errNoSession
	}
	ss, ok := c.sessions.get(ck.Value)
	if !ok {
		return nil, errNoSession
	}
	t, err := c.cfg.Tokens.Authenticate(r.Context(), ss.secret)
	if err != nil || !t.Allows(auth.ScopeAuditRead) {
		c.sessions.delete(ss.id)
		c.log.Info("console session ended: the token is no longer valid", "token", ss.name)
		return nil, errNoSession
	}
	return ss, nil
}

// sameOrigin rejects cross-site form posts: a browser sends Origin with
// every POST, and it must be this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return o == "" // old browsers send none; SameSite=Strict and the CSRF token still hold
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func equalSecret(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

type signInData struct {
	CSRF, Next, Error string
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if _, err := c.session(r); err == nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	c.renderSignIn(w, r, http.StatusOK, "")
}

func (c *Console) renderSignIn(w http.ResponseWriter, r *http.Request, status int, msg string) {
	token := randomID()
	http.SetCookie(w, c.cookie(r, CSRFCookie, token, 3600))
	next := r.URL.Query().Get("next")
	if r.Method == http.MethodPost {
		next = r.PostFormValue("next")
	}
	c.render(w, r, status, "sign-in", "Sign in", signInData{CSRF: token, Next: safeNext(next), Error: msg})
}

// signInPost exchanges an audit:read token for a session. Attempts are
// limited per client address; the token is never logged.
func (c *Console) signInPost(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if ok, retry := c.signIn.Allow(r.Context(), "sign-in:"+clientHost(r)); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
		c.log.Warn("console sign-in rate limited", "remote", clientAddr(r))
		c.renderSignIn(w, r, http.StatusTooManyRequests, "Too many sign-in attempts from your address. Wait a minute and try again.")
		return
	}
	var reason string
	ck, err := r.Cookie(CSRFCookie)
	switch {
	case err != nil:
		reason = "no CSRF cookie"
	case !sameOrigin(r):
		reason = "posted from another origin: " + r.Header.Get("Origin")
	case !equalSecret(ck.Value, r.PostFormValue("csrf")):
		reason = "the form's CSRF token is not the cookie's"
	}
	if reason != "" {
		c.log.Warn("console sign-in refused: failed the CSRF check", "remote", clientAddr(r), "reason", reason)
		c.renderSignIn(w, r, http.StatusForbidden, "The sign-in form expired. Please try again.")
		return
	}
	secret := strings.TrimSpace(r.PostFormValue("token"))
	t, err := c.cfg.Tokens.Authenticate(r.Context(), secret)
	if err == nil && !t.Allows(auth.ScopeAuditRead) {
		err = errors.New("the token lacks audit:read")
	}
	if err != nil {
		c.log.Info("console sign-in failed", "remote", clientAddr(r), "reason", signInReason(err))
		c.renderSignIn(w, r, http.StatusUnauthorized, "That token is not valid, or it does not hold the audit:read scope.")
		return
	}
	if old, err := r.Cookie(SessionCookie); err == nil {
		c.sessions.delete(old.Value)
	}
	ss := c.sessions.create(secret, t.Name)
	http.SetCookie(w, c.cookie(r, SessionCookie, ss.id, 0))
	http.SetCookie(w, c.cookie(r, CSRFCookie, "", -1))
	c.log.Info("console sign-in", "token", t.Name, "remote", clientAddr(r))
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// signInReason says why a sign-in failed without repeating the token.
func signInReason(err error) string {
	if errors.Is(err, auth.ErrUnauthenticated) {
		msg := err.Error()
		if i := strings.Index(msg, ": "); i >= 0 {
			return msg[i+2:]
		}
	}
	return err.Error()
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	ck, err := r.Cookie(SessionCookie)
	if err != nil {
		http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
		return
	}
	ss, ok := c.sessions.get(ck.Value)
	if !ok {
		http.SetCookie(w, c.cookie(r, SessionCookie, "", -1))
		http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
		return
	}
	if !sameOrigin(r) || !equalSecret(ss.csrf, r.PostFormValue("csrf")) {
		c.renderError(w, r, http.StatusForbidden, "The sign-out form was not sent from this console. Use the Sign out button.")
		return
	}
	c.sessions.delete(ss.id)
	http.SetCookie(w, c.cookie(r, SessionCookie, "", -1))
	c.log.Info("console sign-out", "token", ss.name, "remote", clientAddr(r))
	http.Redirect(w, r, "/sign-in?signed-out=1", http.StatusSeeOther)
}

// safeNext keeps a post-sign-in redirect on this console: a local path,
// never another site ("//evil.example", "/\evil.example").
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.HasPrefix(next, "/sign-") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

func clientAddr(r *http.Request) string { return r.RemoteAddr }

func clientHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}
