package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/auth"
)

// Cookie names (over HTTPS with the __Host- prefix). The session cookie
// holds only a random id.
const (
	SessionCookie = "vouch_session"
	CSRFCookie    = "vouch_csrf" // for the sign-in form, before there is a session
)

// session is a signed-in auditor: the stored session (auth.Session), the
// id from the browser's cookie, and the token as it is now.
type session struct {
	auth.Session
	id    string     // the cookie's; the store knows only its hash
	token auth.Token // checked again on every request
}

// touchEvery is how old a session's last-seen time may get before a
// request stores a new one: a write per minute of use, not per page.
const touchEvery = time.Minute

// sessions keeps sessions in the database, so that whichever replica
// serves a request knows who signed in, and a restart signs nobody out.
type sessions struct {
	store     auth.SessionStore
	idle, max time.Duration
	now       func() time.Time
}

// randomID returns 256 random bits, URL-safe.
func randomID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for the token with tokenHash, and sweeps away
// the sessions that have ended.
func (s *sessions) create(ctx context.Context, tokenHash, name string) (*session, error) {
	now := s.now()
	if err := s.store.DeleteExpiredSessions(ctx, now.Add(-s.idle), now); err != nil {
		return nil, err
	}
	id := randomID()
	ss := auth.Session{IDHash: auth.Hash(id), TokenHash: tokenHash, Name: name, CSRF: randomID(),
		CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(s.max)}
	if err := s.store.CreateSession(ctx, ss); err != nil {
		return nil, err
	}
	return &session{Session: ss, id: id}, nil
}

// get returns the live session with id and marks it used, or
// errNoSession.
func (s *sessions) get(ctx context.Context, id string) (*session, error) {
	ss, err := s.store.Session(ctx, auth.Hash(id))
	if errors.Is(err, auth.ErrNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if now.Sub(ss.LastSeen) > s.idle || !now.Before(ss.ExpiresAt) {
		return nil, errors.Join(errNoSession, s.store.DeleteSession(ctx, ss.IDHash))
	}
	if now.Sub(ss.LastSeen) >= touchEvery {
		if err := s.store.TouchSession(ctx, ss.IDHash, now); err != nil {
			return nil, err
		}
		ss.LastSeen = now
	}
	return &session{Session: ss, id: id}, nil
}

func (c *Console) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: c.cookieName(r, name), Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: c.secure(r), SameSite: http.SameSiteStrictMode}
}

// cookieName is name with the __Host- prefix over HTTPS: browsers then
// accept the cookie only from this host, Secure, for every path, so a
// sibling subdomain cannot plant one (sign an auditor in as someone else).
func (c *Console) cookieName(r *http.Request, name string) string {
	if c.secure(r) {
		return "__Host-" + name
	}
	return name
}

// secure reports whether the browser reached the console over HTTPS (here,
// or at the proxy in front).
func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.cfg.SecureCookies }

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
		if err != nil && !errors.Is(err, errNoSession) {
			c.fail(w, r, err)
			return
		}
		if err != nil {
			if ck, e := r.Cookie(c.cookieName(r, SessionCookie)); e == nil && ck.Value != "" {
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
	ck, err := r.Cookie(c.cookieName(r, SessionCookie))
	if err != nil || ck.Value == "" {
		return nil, errNoSession
	}
	ss, err := c.sessions.get(r.Context(), ck.Value)
	if err != nil {
		return nil, err
	}
	t, err := c.cfg.Tokens.AuthenticateHash(r.Context(), ss.TokenHash)
	if errors.Is(err, auth.ErrUnavailable) {
		return nil, err
	}
	if err != nil || !t.Allows(auth.ScopeAuditRead) {
		c.log.Info("console session ended: the token is no longer valid", "token", ss.Name)
		return nil, errors.Join(errNoSession, c.sessions.store.DeleteSession(r.Context(), ss.IDHash))
	}
	ss.token = t
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
	if ok, retry := c.signIn.Allow(r.Context(), "sign-in:"+c.client(r)); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
		c.log.Warn("console sign-in rate limited", "remote", c.client(r))
		c.renderSignIn(w, r, http.StatusTooManyRequests, "Too many sign-in attempts from your address. Wait a minute and try again.")
		return
	}
	var reason string
	ck, err := r.Cookie(c.cookieName(r, CSRFCookie))
	switch {
	case err != nil:
		reason = "no CSRF cookie"
	case !sameOrigin(r):
		reason = "posted from another origin: " + r.Header.Get("Origin")
	case !equalSecret(ck.Value, r.PostFormValue("csrf")):
		reason = "the form's CSRF token is not the cookie's"
	}
	if reason != "" {
		c.log.Warn("console sign-in refused: failed the CSRF check", "remote", c.client(r), "reason", reason)
		c.renderSignIn(w, r, http.StatusForbidden, "The sign-in form expired. Please try again.")
		return
	}
	secret := strings.TrimSpace(r.PostFormValue("token"))
	t, err := c.cfg.Tokens.Authenticate(r.Context(), secret)
	if err == nil && !t.Allows(auth.ScopeAuditRead) {
		err = errors.New("the token lacks audit:read")
	}
	if err != nil {
		c.log.Info("console sign-in failed", "remote", c.client(r), "reason", signInReason(err))
		c.renderSignIn(w, r, http.StatusUnauthorized, "That token is not valid, or it does not hold the audit:read scope.")
		return
	}
	if old, err := r.Cookie(c.cookieName(r, SessionCookie)); err == nil {
		if err := c.sessions.store.DeleteSession(r.Context(), auth.Hash(old.Value)); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	ss, err := c.sessions.create(r.Context(), t.Hash, t.Name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.SetCookie(w, c.cookie(r, SessionCookie, ss.id, 0))
	http.SetCookie(w, c.cookie(r, CSRFCookie, "", -1))
	c.log.Info("console sign-in", "token", t.Name, "remote", c.client(r))
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
	ck, err := r.Cookie(c.cookieName(r, SessionCookie))
	if err != nil {
		http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
		return
	}
	ss, err := c.sessions.get(r.Context(), ck.Value)
	if errors.Is(err, errNoSession) {
		http.SetCookie(w, c.cookie(r, SessionCookie, "", -1))
		http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if !sameOrigin(r) || !equalSecret(ss.CSRF, r.PostFormValue("csrf")) {
		c.renderError(w, r, http.StatusForbidden, "The sign-out form was not sent from this console. Use the Sign out button.")
		return
	}
	if err := c.sessions.store.DeleteSession(r.Context(), ss.IDHash); err != nil {
		c.fail(w, r, err)
		return
	}
	http.SetCookie(w, c.cookie(r, SessionCookie, "", -1))
	c.log.Info("console sign-out", "token", ss.Name, "remote", c.client(r))
	http.Redirect(w, r, "/sign-in?signed-out=1", http.StatusSeeOther)
}

// safeNext keeps a post-sign-in redirect on this console: a local path,
// never another site ("//evil.example", "/\evil.example").
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.HasPrefix(next, "/sign-") || strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "/" // browsers drop tabs and newlines and read \ as /: "/\t/evil.example" is //evil.example
	}
	return next
}

// client is the address of the request's client: its peer's, or, when the
// peer is a trusted proxy (Config.TrustedProxies), the nearest address in
// X-Forwarded-For that is not one. Sign-in attempts are limited per client.
func (c *Console) client(r *http.Request) string {
	addr, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	ip := addr.Addr().Unmap()
	if !c.trusted(ip) {
		return ip.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a forged or garbled entry: the last trusted hop is the client
		}
		if ip = hop.Unmap(); !c.trusted(ip) {
			break
		}
	}
	return ip.String()
}

func (c *Console) trusted(ip netip.Addr) bool {
	for _, p := range c.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
