package client

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRedirectOfPOSTIsRefused: a POST redirected (an http:// server
// sending clients to https://) would arrive as a GET, whose 200 reads as
// "recorded"; the client stops with the address to use instead. A GET
// follows redirects.
func TestRedirectOfPOSTIsRefused(t *testing.T) {
	var mu sync.Mutex
	var reached []string
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached = append(reached, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"artifacts": []}`)
	}))
	defer target.Close()
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusPermanentRedirect} {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+r.URL.RequestURI(), status)
		}))
		c := New(redirector.URL, "secret")
		_, err := c.Do(context.Background(), http.MethodPost, "/api/v1/artifacts", map[string]string{"name": "app"}, nil)
		var re *RedirectError
		if !errors.As(err, &re) || re.Method != http.MethodPost || re.Status != status || re.Server != target.URL {
			t.Errorf("POST redirected with %d: %v, want a *RedirectError naming %s", status, err, target.URL)
		} else if errors.Is(err, ErrUnreachable) {
			t.Errorf("POST redirected with %d: %v is ErrUnreachable; retrying will not help", status, err)
		}
		if _, err := c.Do(context.Background(), http.MethodGet, "/api/v1/artifacts?name=app", nil, nil); err != nil {
			t.Errorf("GET redirected with %d: %v, want it followed", status, err)
		}
		redirector.Close()
	}
	want := []string{"GET /api/v1/artifacts", "GET /api/v1/artifacts", "GET /api/v1/artifacts"}
	if diff := cmp.Diff(want, reached); diff != "" {
		t.Errorf("requests that reached the target (-want +got):\n%s", diff)
	}
}

// TestUntrustedCertificate: a certificate no trusted CA signed, or one for
// another host, is ErrUntrusted, not ErrUnreachable: retrying never helps.
func TestUntrustedCertificate(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c := New(srv.URL, "secret")
	c.sleep = func(context.Context, time.Duration) error { t.Error("retried"); return nil }
	_, err := c.Do(context.Background(), http.MethodGet, "/api/v1/tokens", nil, nil)
	var unknown x509.UnknownAuthorityError
	if !errors.Is(err, ErrUntrusted) || errors.Is(err, ErrUnreachable) || !errors.As(err, &unknown) {
		t.Errorf("unknown CA: %v, want ErrUntrusted with the x509 error", err)
	}

	// The test certificate is for 127.0.0.1 and example.com, not localhost.
	c = New(strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), "secret")
	c.HTTP.Transport = srv.Client().Transport
	c.sleep = func(context.Context, time.Duration) error { t.Error("retried"); return nil }
	_, err = c.Do(context.Background(), http.MethodGet, "/api/v1/tokens", nil, nil)
	var host x509.HostnameError
	if !errors.Is(err, ErrUntrusted) || errors.Is(err, ErrUnreachable) || !errors.As(err, &host) {
		t.Errorf("another host's certificate: %v, want ErrUntrusted with the x509 error", err)
	}
}

// answer is one scripted answer of a test server: a status and a
// Retry-After, or a connection dropped without an answer.
type answer struct {
	status     int
	retryAfter string
	drop       bool
}

// scripted serves answers in turn (the last one again when they run out)
// and records the bodies it received.
type scripted struct {
	mu      sync.Mutex
	answers []answer
	bodies  []string
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, string(b))
	a := s.answers[min(len(s.bodies), len(s.answers))-1]
	s.mu.Unlock()
	if a.drop {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return
	}
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	if a.status >= 400 {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(a.status)
		io.WriteString(w, `{"type": "https://vouch.dev/problems/x", "title": "Scripted", "status": 0}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	io.WriteString(w, `{"digest": "sha256:x"}`)
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		path      string
		answers   []answer
		wantErr   string // "" for success
		wantWaits []time.Duration
		wantNotes []string
	}{
		{name: "rate limited, then recorded", method: "POST", path: "/api/v1/attestations",
			answers:   []answer{{status: 429, retryAfter: "12"}, {status: 201}},
			wantWaits: []time.Duration{12 * time.Second}, wantNotes: []string{"rate limited, retrying in 12s (2/4)"}},
		{name: "a long Retry-After is capped", method: "POST", path: "/api/v1/blobs",
			answers:   []answer{{status: 429, retryAfter: "600"}, {status: 201}},
			wantWaits: []time.Duration{MaxRetryAfter}, wantNotes: []string{"rate limited, retrying in 30s (2/4)"}},
		{name: "unavailable four times", method: "POST", path: "/api/v1/artifacts",
			answers: []answer{{status: 503}}, wantErr: "(HTTP 503) (gave up after 4 attempts)",
			wantWaits: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
			wantNotes: []string{"server unavailable (HTTP 503), retrying in 1s (2/4)", "server unavailable (HTTP 503), retrying in 2s (3/4)", "server unavailable (HTTP 503), retrying in 4s (4/4)"}},
		{name: "the budget ends the retries", method: "POST", path: "/api/v1/artifacts",
			answers: []answer{{status: 429, retryAfter: "30"}}, wantErr: "(HTTP 429) (gave up after 3 attempts)", // 100s spent, 30s more would pass 2m
			wantWaits: []time.Duration{30 * time.Second, 30 * time.Second},
			wantNotes: []string{"rate limited, retrying in 30s (2/4)", "rate limited, retrying in 30s (3/4)"}},
		{name: "an idempotent request is sent again after a dropped connection", method: "POST", path: "/api/v1/envelopes?name=x",
			answers:   []answer{{drop: true}, {status: 201}},
			wantWaits: []time.Duration{time.Second}, wantNotes: []string{"server unreachable, retrying in 1s (2/4)"}},
		{name: "an approval the server may have recorded is not sent again", method: "POST", path: "/api/v1/approvals",
			answers: []answer{{drop: true}, {status: 201}}, wantErr: "server unreachable"},
		{name: "an approval rate limited was not recorded: sent again", method: "POST", path: "/api/v1/approvals",
			answers:   []answer{{status: 429, retryAfter: "2"}, {status: 201}},
			wantWaits: []time.Duration{2 * time.Second}, wantNotes: []string{"rate limited, retrying in 2s (2/4)"}},
		{name: "a 502 of an approval is not retried", method: "POST", path: "/api/v1/approvals",
			answers: []answer{{status: 502}, {status: 201}}, wantErr: "(HTTP 502)"},
		{name: "a 502 of a read is", method: "GET", path: "/api/v1/artifacts/sha256:x",
			answers:   []answer{{status: 502}, {status: 200}},
			wantWaits: []time.Duration{time.Second}, wantNotes: []string{"server failed (HTTP 502), retrying in 1s (2/4)"}},
		{name: "a refusal is not retried", method: "POST", path: "/api/v1/attestations",
			answers: []answer{{status: 422}, {status: 201}}, wantErr: "(HTTP 422)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scripted{answers: tt.answers}
			srv := httptest.NewServer(s)
			defer srv.Close()
			c := New(srv.URL, "secret")
			var waits []time.Duration
			var notes []string
			now := time.Now()
			c.now = func() time.Time { return now }
			c.sleep = func(_ context.Context, d time.Duration) error {
				waits = append(waits, d)
				now = now.Add(d + 20*time.Second) // each attempt takes 20s, for the budget
				return nil
			}
			c.Notify = func(msg string) { notes = append(notes, msg) }
			var out struct{ Digest string }
			_, err := c.Do(context.Background(), tt.method, tt.path, map[string]string{"name": "unit-tests"}, &out)
			if tt.wantErr == "" && (err != nil || out.Digest != "sha256:x") || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Do() = %v (answer %+v), want error %q", err, out, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantWaits, waits); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantNotes, notes); diff != "" {
				t.Errorf("notes (-want +got):\n%s", diff)
			}
			for i, b := range s.bodies {
				if b != `{"name":"unit-tests"}` {
					t.Errorf("attempt %d sent %q, want the body again", i+1, b)
				}
			}
		})
	}
}

// TestRetryAfterBudget: no retry starts that would end after the budget.
func TestRetryAfterBudget(t *testing.T) {
	s := &scripted{answers: []answer{{status: 503, retryAfter: "30"}}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := New(srv.URL, "secret")
	c.Budget = 45 * time.Second
	now := time.Now()
	c.now = func() time.Time { return now }
	c.sleep = func(_ context.Context, d time.Duration) error { now = now.Add(d); return nil }
	_, err := c.Do(context.Background(), http.MethodGet, "/api/v1/search?q=abcdef0", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "gave up after 2 attempts") || len(s.bodies) != 2 {
		t.Errorf("Do() = %v after %d attempts, want to give up after 2 (30s waited, 30s more would pass 45s)", err, len(s.bodies))
	}
}

// TestConnectionRefusedIsRetried: a refused connection sent nothing, so
// even a request that is not idempotent is sent again.
func TestConnectionRefusedIsRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := New("http://"+addr, "secret")
	var waits []time.Duration
	c.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	_, err = c.Do(context.Background(), http.MethodPost, "/api/v1/approvals", map[string]string{}, nil)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Errorf("Do() = %v, want ErrUnreachable after 4 attempts", err)
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !cmp.Equal(waits, want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
}

// TestCanceledIsNotRetried: an interrupted command stops at once.
func TestCanceledIsNotRetried(t *testing.T) {
	s := &scripted{answers: []answer{{status: 503}}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := New(srv.URL, "secret")
	ctx, cancel := context.WithCancel(context.Background())
	c.sleep = func(ctx context.Context, d time.Duration) error { cancel(); return ctx.Err() }
	if _, err := c.Do(ctx, http.MethodGet, "/api/v1/tokens", nil, nil); err == nil || len(s.bodies) != 1 {
		t.Errorf("Do() = %v after %d attempts, want the 503 after 1", err, len(s.bodies))
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "12": 12 * time.Second, "0": 0, "-3": 0, "soon": 0,
		"Thu, 26 Nov 2026 10:00:42 GMT": 42 * time.Second, "Thu, 26 Nov 2026 09:00:00 GMT": 0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestRetryAfterDate: a Retry-After date is counted from the client's
// clock, not from time.Now, in a retry's wait and in a Problem.
func TestRetryAfterDate(t *testing.T) {
	now := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC) // long past: by time.Now, the date would be too
	date := now.Add(12 * time.Second).Format(http.TimeFormat)
	s := &scripted{answers: []answer{{status: 429, retryAfter: date}, {status: 201}}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := New(srv.URL, "secret")
	c.now = func() time.Time { return now }
	var waits []time.Duration
	c.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	if _, err := c.Do(context.Background(), http.MethodPost, "/api/v1/attestations", map[string]string{}, nil); err != nil {
		t.Fatalf("Do() = %v, want the second answer", err)
	}
	if want := []time.Duration{12 * time.Second}; !cmp.Equal(waits, want) {
		t.Errorf("Do() with Retry-After %q at %v waited %v, want %v", date, now, waits, want)
	}

	s = &scripted{answers: []answer{{status: 503, retryAfter: date}}}
	srv2 := httptest.NewServer(s)
	defer srv2.Close()
	c.Server = srv2.URL
	var p *Problem
	if err := c.Stream(context.Background(), "/api/v1/journal/export", io.Discard); !errors.As(err, &p) || p.RetryAfter != 12*time.Second {
		t.Errorf("Stream() = %v, want a Problem with RetryAfter 12s (Retry-After %q at %v)", err, date, now)
	}
}

func TestIdempotent(t *testing.T) {
	for _, tt := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/api/v1/approvals?digest=x", true},
		{"POST", "/api/v1/artifacts", true},
		{"POST", "/api/v1/attestations", true},
		{"POST", "/api/v1/blobs", true},
		{"POST", "/api/v1/envelopes?name=unit-tests", true},
		{"POST", "/api/v1/approvals", false},
		{"POST", "/api/v1/exemptions", false},
		{"POST", "/api/v1/tokens", false},
		{"PUT", "/api/v1/environments/prod/snapshot", false},
		{"DELETE", "/api/v1/tokens/3", false},
	} {
		if got := Idempotent(tt.method, tt.path); got != tt.want {
			t.Errorf("Idempotent(%s, %s) = %v, want %v", tt.method, tt.path, got, tt.want)
		}
	}
}
