package api_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/evidence"
)

// raw sends a request with a raw body as the named token and returns the
// answer as it came.
func (f *fixture) raw(method, path, token, contentType string, body io.Reader, header ...string) (*http.Response, []byte) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+f.tokens[token])
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestBlobs(t *testing.T) {
	f := newFixture(t)
	report := `<?xml version="1.0"?><testsuite tests="1"><testcase name="ok"/></testsuite>`
	d := evidence.BlobDigest([]byte(report))
	code, out, h := f.do("POST", "/api/v1/blobs", "ci", "application/xml", report)
	if code != 201 || out["digest"] != d || out["size"] != float64(len(report)) || out["media_type"] != "application/xml" || h.Get("Location") != "/api/v1/blobs/"+d {
		t.Fatalf("POST /blobs = %d %v (Location %q), want 201 with digest %s", code, out, h.Get("Location"), d)
	}
	// The same bytes again, with another media type: stored once, as first.
	if code, out, _ := f.do("POST", "/api/v1/blobs", "ci", "text/plain", report); code != 200 || out["digest"] != d || out["media_type"] != "application/xml" {
		t.Errorf("same blob again = %d %v, want 200 and the first media type", code, out)
	}
	if code, out, _ := f.do("POST", "/api/v1/blobs", "ci", "", "raw bytes"); code != 201 || out["media_type"] != "application/octet-stream" {
		t.Errorf("blob without a content type = %d %v, want application/octet-stream", code, out)
	}

	// Downloads: the bytes, never rendered by a browser.
	for _, ref := range []string{d, strings.TrimPrefix(d, "sha256:"), strings.ToUpper(strings.TrimPrefix(d, "sha256:"))} {
		resp, body := f.raw("GET", "/api/v1/blobs/"+ref, "auditor", "", nil)
		if resp.StatusCode != 200 || string(body) != report {
			t.Fatalf("GET /blobs/%s = %d %q, want the uploaded bytes", ref, resp.StatusCode, body)
		}
		want := map[string]string{
			"Content-Type": "application/xml", "Content-Length": fmt.Sprint(len(report)), "ETag": `"` + d + `"`,
			"Cache-Control": "private, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff",
			"Content-Disposition": `attachment; filename="sha256-` + strings.TrimPrefix(d, "sha256:") + `"`,
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("GET /blobs/%s: %s = %q, want %q", ref, k, got, v)
			}
		}
	}
	if resp, body := f.raw("GET", "/api/v1/blobs/"+d, "auditor", "", nil, "If-None-Match", `"`+d+`"`); resp.StatusCode != 304 || len(body) != 0 {
		t.Errorf("GET with the ETag = %d %q, want 304", resp.StatusCode, body)
	}
	html := `<script>alert(1)</script>`
	f.do("POST", "/api/v1/blobs", "ci", "text/html", html)
	if resp, _ := f.raw("GET", "/api/v1/blobs/"+evidence.BlobDigest([]byte(html)), "auditor", "", nil); !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") ||
		resp.Header.Get("Content-Security-Policy") != "default-src 'none'; sandbox" {
		t.Errorf("uploaded HTML is served with %v, want an attachment in a sandbox", resp.Header)
	}

	tests := []struct {
		name, method, path, token, contentType, body string
		want                                         int
	}{
		{"unknown blob", "GET", "/api/v1/blobs/" + digest(9), "auditor", "", "", 404},
		{"malformed digest", "GET", "/api/v1/blobs/sha256:xyz", "auditor", "", "", 400},
		{"short digest", "GET", "/api/v1/blobs/abc123", "auditor", "", "", 400},
		{"too large", "POST", "/api/v1/blobs", "ci", "application/xml", strings.Repeat("x", 8193), 413},
		{"empty", "POST", "/api/v1/blobs", "ci", "application/xml", "", 400},
		{"bad media type", "POST", "/api/v1/blobs", "ci", "not a/media type;", "x", 400},
		{"upload needs evidence:write", "POST", "/api/v1/blobs", "auditor", "application/xml", "x", 403},
		{"download needs audit:read", "GET", "/api/v1/blobs/" + d, "ci", "", "", 403},
		{"no token", "GET", "/api/v1/blobs/" + d, "", "", "", 401},
	}
	for _, tt := range tests {
		code, out, _ := f.do(tt.method, tt.path, tt.token, tt.contentType, tt.body)
		if code != tt.want {
			t.Errorf("%s: %s %s = %d %v, want %d", tt.name, tt.method, tt.path, code, out, tt.want)
		}
	}
	if _, out, _ := f.do("POST", "/api/v1/blobs", "ci", "application/xml", strings.Repeat("x", 9000)); !strings.Contains(fmt.Sprint(out["detail"]), "limit of 8192 bytes (max_blob_size)") {
		t.Errorf("413 detail = %q, want the limit named", out["detail"])
	}
	// A body over the limit without a Content-Length (chunked) is cut off too.
	resp, body := f.raw("POST", "/api/v1/blobs", "ci", "application/xml", io.LimitReader(endless{}, 1<<20))
	if resp.StatusCode != 413 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("chunked oversized body = %d %s, want 413 problem+json", resp.StatusCode, body)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func TestAttestationBlob(t *testing.T) {
	f := newFixture(t)
	_, blob, _ := f.do("POST", "/api/v1/blobs", "ci", "application/sarif+json", `{"version":"2.1.0","runs":[]}`)
	att := func(blob string) string {
		return `{"digest":"` + digest(1) + `","name":"security-scan","type":"sarif","passed":true,"blob":"` + blob + `"}`
	}
	code, out := f.postJSON("/api/v1/attestations", "ci", att(digest(5)))
	errs, _ := out["errors"].([]any)
	if code != 422 || len(errs) != 1 || errs[0].(map[string]any)["field"] != "blob" || !strings.Contains(fmt.Sprint(errs[0]), "is not a stored blob") {
		t.Errorf("attestation naming an unknown blob = %d %v, want 422 on blob", code, out)
	}
	if code, out := f.postJSON("/api/v1/attestations", "ci", att("sha256:nothex")); code != 422 {
		t.Errorf("attestation with a malformed blob digest = %d %v, want 422", code, out)
	}
	code, first := f.postJSON("/api/v1/attestations", "ci", att(blob["digest"].(string)))
	if code != 201 || first["blob"] != blob["digest"] {
		t.Fatalf("attestation naming a stored blob = %d %v", code, first)
	}
	if code, again := f.postJSON("/api/v1/attestations", "ci", att(blob["digest"].(string))); code != 200 || again["id"] != first["id"] {
		t.Errorf("the same attestation again = %d %v, want 200 and the first", code, again)
	}
	_, other, _ := f.do("POST", "/api/v1/blobs", "ci", "application/sarif+json", `{"version":"2.1.0","runs":[{}]}`)
	if code, out := f.postJSON("/api/v1/attestations", "ci", att(other["digest"].(string))); code != 201 || out["id"] == first["id"] {
		t.Errorf("the attestation with another blob = %d %v, want a new record", code, out)
	}
	_, ev, _ := f.do("GET", "/api/v1/artifacts/"+digest(1), "auditor", "", "")
	if atts := ev["attestations"].([]any); len(atts) != 2 || atts[0].(map[string]any)["blob"] != blob["digest"] {
		t.Errorf("GET /artifacts/…: attestations %v, want both with their blobs", ev["attestations"])
	}
}
