package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/evidence"
)

// vouchAt runs a command against the server at url and returns its output
// and exit status.
func vouchAt(url string, args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), append(args, "--server", url), &out, &errOut)
	return out.String(), errOut.String(), code
}

// counting serves h and counts the requests.
func counting(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestReportRedirected: an http:// server redirecting to https:// turned
// the report's POST into a GET, whose 200 printed "already recorded, the
// same" and exited 0 with nothing recorded. The redirect is now refused,
// naming the address to use: a setup error, exit 2.
func TestReportRedirected(t *testing.T) {
	noCI(t)
	target, reached := counting(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"artifacts": []}`)
	})
	redirector, _ := counting(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.RequestURI(), http.StatusMovedPermanently)
	})
	d := evidence.BlobDigest([]byte("app"))
	out, errOut, code := vouchAt(redirector.URL, "artifact", "report", "registry.example.com/shop/web", "--digest", d, "--token", "secret")
	want := fmt.Sprintf("vouch: the server redirected POST %s/api/v1/artifacts to %s/api/v1/artifacts (HTTP 301): set VOUCH_SERVER (--server) to %s\n", redirector.URL, target.URL, target.URL)
	if code != 2 || errOut != want || out != "" {
		t.Errorf("artifact report to a redirecting server: exit %d, stdout %q, stderr %q; want 2 and %q", code, out, errOut, want)
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("%d requests reached the redirect's target, want none", n)
	}
}

// TestReportAnswerOfAnotherRecord: an answer that is not the record of the
// digest reported (here an empty object, as a GET of a list decodes) is a
// failure, not "already recorded".
func TestReportAnswerOfAnotherRecord(t *testing.T) {
	noCI(t)
	srv, _ := counting(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	})
	d := evidence.BlobDigest([]byte("app"))
	out, errOut, code := vouchAt(srv.URL, "artifact", "report", "registry.example.com/shop/web", "--digest", d, "--token", "secret")
	if code != 1 || out != "" || !strings.Contains(errOut, "not with the artifact of "+d) || !strings.Contains(errOut, "--server (VOUCH_SERVER)") {
		t.Errorf("an answer of another record: exit %d, stdout %q, stderr %q; want 1 saying it is not the artifact's record", code, out, errOut)
	}
	out, errOut, code = vouchAt(srv.URL, "attest", "generic", "--name", "review", "--digest", d, "--passed=true", "--token", "secret")
	if code != 1 || out != "" || !strings.Contains(errOut, "not with the attestation of "+d) {
		t.Errorf("attest, an answer of another record: exit %d, stdout %q, stderr %q; want 1", code, out, errOut)
	}
}

// TestTokenWithLineBreak: a secret saved with a trailing line break (CRLF
// from Windows, a CI variable with "\n") failed as "server unreachable";
// surrounding space is dropped, as for admin.token. A line break inside
// the secret is a usage error that does not show the secret.
func TestTokenWithLineBreak(t *testing.T) {
	s := newAPIServer(t)
	for _, tok := range []string{s.token + "\r\n", s.token + "\n", " " + s.token + "\t"} {
		var out, errOut bytes.Buffer
		t.Setenv("VOUCH_TOKEN", tok)
		if code := run(context.Background(), []string{"token", "list", "--server", s.url}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "admin") {
			t.Errorf("VOUCH_TOKEN %q: exit %d %q %q, want the token list", tok, code, out.String(), errOut.String())
		}
		out.Reset()
		errOut.Reset()
		t.Setenv("VOUCH_TOKEN", "")
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
		if code := run(context.Background(), []string{"token", "list", "--server", s.url, "--data-dir", dir}, &out, &errOut); code != 0 {
			t.Errorf("admin.token %q: exit %d %q", tok, code, errOut.String())
		}
	}
	half := len(s.token) / 2
	_, errOut, code := vouchAt(s.url, "token", "list", "--token", s.token[:half]+"\r\n"+s.token[half:])
	if code != 2 || !strings.Contains(errOut, "the token in --token (VOUCH_TOKEN) has a space or a control character inside it") || strings.Contains(errOut, s.token[:half]) {
		t.Errorf("a line break inside the token: exit %d %q, want 2 without the secret", code, errOut)
	}
}

// TestCertificateForAnotherHost: a certificate that is not for the
// server's host name is a setup error too (exit 2), and says so.
func TestCertificateForAnotherHost(t *testing.T) {
	s := startAPIServer(t, httptest.NewTLSServer)
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	// The test certificate is for 127.0.0.1 and example.com, not localhost.
	_, errOut, code := vouchAt(strings.Replace(s.url, "127.0.0.1", "localhost", 1), "token", "list", "--token", s.token, "--ca", ca)
	if code != 2 || !strings.Contains(errOut, "not for the host --server (VOUCH_SERVER) names") {
		t.Errorf("a certificate for another host: exit %d %q, want 2 saying so", code, errOut)
	}
}

// TestRateLimitedIsRetried: a 429 exited 1 ("fix the input"). It is
// retried, with a note on stderr each time, and exits 3 (retry later) when
// it lasts.
func TestRateLimitedIsRetried(t *testing.T) {
	fastRetries(t)
	noCI(t)
	d := evidence.BlobDigest([]byte("app"))
	rateLimited := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Retry-After", "0") // 0: the client's own backoff, a millisecond here
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"type": "https://vouch.dev/problems/rate-limited", "title": "Too many requests with this token; retry after the time given", "status": 429,
			"detail": "rate limited: token \"ci\" made more than 60 requests this minute"}`)
	}
	srv, n := counting(t, func(w http.ResponseWriter, r *http.Request) { rateLimited(w) })
	_, errOut, code := vouchAt(srv.URL, "artifact", "report", "registry.example.com/shop/web", "--digest", d, "--token", "secret")
	wantNotes := "vouch: rate limited, retrying in 1ms (2/4)\nvouch: rate limited, retrying in 2ms (3/4)\nvouch: rate limited, retrying in 4ms (4/4)\n"
	if code != 3 || !strings.HasPrefix(errOut, wantNotes) || !strings.Contains(errOut, "(HTTP 429)") || !strings.Contains(errOut, "gave up after 4 attempts") || n.Load() != 4 {
		t.Errorf("rate limited throughout: exit %d after %d requests, stderr %q; want 3 after 4, with the notes", code, n.Load(), errOut)
	}

	// Rate limited once, then recorded: exit 0.
	var calls atomic.Int64
	srv, _ = counting(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			rateLimited(w)
			return
		}
		var a evidence.Artifact
		json.NewDecoder(r.Body).Decode(&a)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(a)
	})
	out, errOut, code := vouchAt(srv.URL, "artifact", "report", "registry.example.com/shop/web", "--digest", d, "--token", "secret")
	if code != 0 || !strings.HasPrefix(out, "recorded: artifact registry.example.com/shop/web "+d) || errOut != "vouch: rate limited, retrying in 1ms (2/4)\n" {
		t.Errorf("rate limited once: exit %d, stdout %q, stderr %q; want 0, recorded, one note", code, out, errOut)
	}
}

// TestApprovalNotSentTwice: an approval whose connection dropped may have
// been recorded; it is not sent again (each approval is a new decision).
func TestApprovalNotSentTwice(t *testing.T) {
	fastRetries(t)
	srv, n := counting(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	})
	d := evidence.BlobDigest([]byte("app"))
	_, errOut, code := vouchAt(srv.URL, "approve", d, "--environment", "prod", "--reason", "CAB-1", "--token", "secret")
	if code != 3 || n.Load() != 1 || strings.Contains(errOut, "retrying") {
		t.Errorf("approval with a dropped connection: exit %d after %d requests, stderr %q; want 3 after 1", code, n.Load(), errOut)
	}
}

// TestTimeoutFlag: --timeout (VOUCH_TIMEOUT) bounds each request.
func TestTimeoutFlag(t *testing.T) {
	fastRetries(t)
	srv, n := counting(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	start := time.Now()
	_, errOut, code := vouchAt(srv.URL, "search", "0123456", "--token", "secret", "--timeout", "50ms")
	if code != 3 || n.Load() != 4 || time.Since(start) > 5*time.Second || !strings.Contains(errOut, "Client.Timeout") {
		t.Errorf("--timeout 50ms: exit %d after %d requests in %s, stderr %q; want 3 after 4 timeouts", code, n.Load(), time.Since(start), errOut)
	}
	t.Setenv("VOUCH_TIMEOUT", "30")
	if _, errOut, code := vouchAt(srv.URL, "search", "0123456", "--token", "secret"); code != 2 || !strings.Contains(errOut, `--timeout "30" (VOUCH_TIMEOUT)`) {
		t.Errorf("VOUCH_TIMEOUT=30: exit %d %q, want 2 asking for a duration", code, errOut)
	}
	if _, errOut, code := vouchAt(srv.URL, "search", "0123456", "--token", "secret", "--timeout", "-1s"); code != 2 || !strings.Contains(errOut, "positive duration") {
		t.Errorf("--timeout -1s: exit %d %q, want 2", code, errOut)
	}
}
