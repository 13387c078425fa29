// Package client is a small client for Vouch's HTTP API, used by the vouch
// CLI. Errors from the server are returned as *Problem.
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults of New.
const (
	DefaultTimeout  = 30 * time.Second // bounds each attempt of a request
	DefaultAttempts = 4                // sends of one request, the first included
	DefaultBudget   = 2 * time.Minute  // time spent on one request's retries, waits included
	DefaultBackoff  = time.Second      // the first wait after a failed connection; it doubles
)

// MaxRetryAfter caps one wait a server asks for with Retry-After.
const MaxRetryAfter = 30 * time.Second

// Client talks to one Vouch server.
type Client struct {
	Server string // base URL, e.g. http://localhost:8080
	Token  string
	HTTP   *http.Client // its Timeout bounds each attempt

	// Retries: Do and Upload send a request at most Attempts times, and
	// start no retry once Budget would be spent. They retry an answer 429
	// or 503 (the request was not processed) after its Retry-After, at
	// most MaxRetryAfter; a failed connection after Backoff, doubled each
	// time. A request the server may have processed already — a timeout,
	// a dropped connection, a 502 or 504 — is retried only when sending
	// it again records nothing more (see Idempotent).
	Attempts int
	Budget   time.Duration
	Backoff  time.Duration
	// Notify, when set, is told of each retry before its wait, e.g. "rate
	// limited, retrying in 12s (2/4)".
	Notify func(msg string)

	// The clock, for tests.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a client with the default timeout and retries. It does not
// follow a redirect of a request other than GET or HEAD (see RedirectError).
func New(server, token string) *Client {
	return &Client{
		Server: strings.TrimRight(server, "/"), Token: token,
		HTTP:     &http.Client{Timeout: DefaultTimeout, CheckRedirect: checkRedirect},
		Attempts: DefaultAttempts, Budget: DefaultBudget, Backoff: DefaultBackoff,
	}
}

// Problem is an RFC 9457 error returned by the server.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
	// RetryAfter is the wait the server asked for (Retry-After), zero
	// when it asked for none.
	RetryAfter time.Duration `json:"-"`
}

func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (HTTP %d)", p.Title, p.Status)
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	for _, e := range p.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", e.Field, e.Detail)
	}
	return b.String()
}

// ErrUnreachable means the server could not be reached: nothing was
// sent, or no answer came.
var ErrUnreachable = errors.New("server unreachable")

// ErrUntrusted means the server's TLS certificate could not be verified:
// a CA the client does not trust signed it, or it is for another host
// name. Retrying will not help; the client's CAs or its URL must change.
var ErrUntrusted = errors.New("server certificate not trusted")

// RedirectError is a redirect the client did not follow: that of a request
// other than GET or HEAD, which would arrive as a GET or not at all (a
// POST to http:// redirected to https:// is answered by the GET it
// became, and records nothing).
type RedirectError struct {
	Method string
	From   string // the URL the request was sent to
	To     string // the URL the server redirected it to
	Status int    // 301, 302, 303, 307 or 308
	// Server is the base URL to use instead: To without the request's
	// path, or "" when the redirect changed the path too.
	Server string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("the server redirected %s %s to %s (HTTP %d)", e.Method, e.From, e.To, e.Status)
}

// checkRedirect follows the redirects of GETs and HEADs only.
func checkRedirect(req *http.Request, via []*http.Request) error {
	first := via[0]
	if first.Method != http.MethodGet && first.Method != http.MethodHead {
		e := &RedirectError{Method: first.Method, From: first.URL.String(), To: req.URL.String()}
		if req.Response != nil {
			e.Status = req.Response.StatusCode
		}
		return e
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// Idempotent reports whether sending a request again records nothing more
// than sending it once (docs/api.md): reads, and the evidence POSTs, which
// answer a repeat with the record already kept. Other writes (approvals,
// exemptions, tokens, snapshots, revocations) are not taken to be.
func Idempotent(method, path string) bool {
	switch method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodPost:
		path, _, _ = strings.Cut(path, "?")
		switch path {
		case "/api/v1/artifacts", "/api/v1/attestations", "/api/v1/blobs", "/api/v1/envelopes", "/api/v1/assert", "/api/v1/review":
			return true
		}
	}
	return false
}

// Do sends a request with an optional JSON body and decodes a JSON answer
// into out (when not nil). It returns the HTTP status.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) (int, error) {
	if body == nil {
		return c.send(ctx, method, path, "", nil, out)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	return c.send(ctx, method, path, "application/json", b, out)
}

// Upload POSTs content as it is, with its media type, and decodes the JSON
// answer into out (when not nil). It returns the HTTP status.
func (c *Client) Upload(ctx context.Context, path, mediaType string, content []byte, out any) (int, error) {
	return c.send(ctx, http.MethodPost, path, mediaType, content, out)
}

// send sends a request, and again while retrying may help (see Client).
func (c *Client) send(ctx context.Context, method, path, contentType string, body []byte, out any) (int, error) {
	attempts := max(c.Attempts, 1)
	now, sleep := c.timeNow, c.sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	start, backoff := now(), c.Backoff
	for n := 1; ; n++ {
		code, err := c.sendOnce(ctx, method, path, contentType, body, out)
		if err == nil {
			return code, nil
		}
		why, wait, ok := retryable(method, path, err)
		if wait == 0 {
			wait, backoff = backoff, backoff*2
		}
		if !ok || n >= attempts || ctx.Err() != nil || now().Sub(start)+wait > c.Budget {
			if n > 1 {
				err = fmt.Errorf("%w (gave up after %d attempts)", err, n)
			}
			return code, err
		}
		if c.Notify != nil {
			c.Notify(fmt.Sprintf("%s, retrying in %s (%d/%d)", why, wait, n+1, attempts))
		}
		if sleep(ctx, wait) != nil {
			return code, err
		}
	}
}

// retryable says whether a request that failed with err may be sent again,
// why, and after how long the server asked (zero: it did not ask).
func retryable(method, path string, err error) (why string, wait time.Duration, ok bool) {
	var p *Problem
	if errors.As(err, &p) {
		switch {
		case p.Status == http.StatusTooManyRequests:
			why = "rate limited"
		case p.Status == http.StatusServiceUnavailable:
			why = "server unavailable (HTTP 503)"
		case (p.Status == http.StatusBadGateway || p.Status == http.StatusGatewayTimeout) && Idempotent(method, path):
			why = fmt.Sprintf("server failed (HTTP %d)", p.Status)
		default:
			return "", 0, false
		}
		return why, min(p.RetryAfter, MaxRetryAfter), true
	}
	if !errors.Is(err, ErrUnreachable) {
		return "", 0, false
	}
	var op *net.OpError
	if Idempotent(method, path) || errors.As(err, &op) && op.Op == "dial" { // a failed dial sent nothing
		return "server unreachable", 0, true
	}
	return "", 0, false
}

// timeNow is the time by the client's clock.
func (c *Client) timeNow() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// sendOnce sends a request once.
func (c *Client) sendOnce(ctx context.Context, method, path, contentType string, body []byte, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Server+path, rd)
	if err != nil {
		return 0, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, transportError(path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 400 {
		p := &Problem{}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
			_ = json.Unmarshal(data, p)
		} else if len(data) > 0 {
			p.Detail = strings.TrimSpace(string(data))
		}
		return resp.StatusCode, p.of(resp, c.timeNow())
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return max(time.Duration(s)*time.Second, 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now).Round(time.Second), 0)
	}
	return 0
}

// transportError classifies an error of http.Client.Do for a request to
// path: a redirect not followed, a certificate not trusted, or else the
// server unreachable.
func transportError(path string, err error) error {
	var re *RedirectError
	if errors.As(err, &re) {
		if to, ok := strings.CutSuffix(re.To, path); ok {
			re.Server = to
		}
		return re
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) {
		return fmt.Errorf("%w: %w", ErrUntrusted, err)
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err) // err names the method and URL
}

// Stream sends a GET and copies the answer body to w as it arrives.
func (c *Client) Stream(ctx context.Context, path string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Server+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.doLong(req, path) // an export of a large journal takes as long as it takes
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// Lines posts a JSON body asking for an NDJSON answer and calls fn with
// each line as it arrives. There is no timeout but ctx: the answer takes
// as long as the work.
func (c *Client) Lines(ctx context.Context, path string, body any, fn func(line []byte) error) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Server+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := c.doLong(req, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if ferr := fn(line); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("POST %s: %w", c.Server+path, err)
		}
	}
}

// doLong sends req, a request to path, with the token and no timeout but
// its context's, for answers that take as long as the work; it is never
// retried. An error status is a *Problem.
func (c *Client) doLong(req *http.Request, path string) (*http.Response, error) {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := *c.HTTP
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return nil, transportError(path, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, problem(resp, c.timeNow())
	}
	return resp, nil
}

// problem reads an error answer, received at now, as a *Problem.
func problem(resp *http.Response, now time.Time) *Problem {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	p := &Problem{}
	if json.Unmarshal(data, p) != nil {
		p.Detail = strings.TrimSpace(string(data))
	}
	return p.of(resp, now)
}

// of completes a problem read from resp's body with what its status line
// and headers say; the status is the answer's, whatever the body claims.
// now, when resp was received, is what a Retry-After date is counted from.
func (p *Problem) of(resp *http.Response, now time.Time) *Problem {
	p.Status = resp.StatusCode
	if p.Title == "" {
		p.Title = http.StatusText(resp.StatusCode)
	}
	p.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
	return p
}
