package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

// journalSize counts the journal's entries.
func journalSize(t *testing.T, v *vouch, token string) int {
	t.Helper()
	n := 0
	eachJournalEntry(t, v, token, "", func(map[string]any) { n++ })
	return n
}

// TestBadInputCatalog sends hostile requests to the API: each gets a 4xx
// problem+json saying what was wrong, nothing reaches the store, and the
// server answers normally afterwards. Hostile AdmissionReviews get a valid
// AdmissionReview, or a 4xx when the body is not one.
func TestBadInputCatalog(t *testing.T) {
	onEachStore(t, func(t *testing.T, backend, url string) {
		testBadInput(t, start(t, url))
	})
}

func testBadInput(t *testing.T, v *vouch) {
	ci := v.cli("token", "create", "--name", "ci", "--scopes", "evidence:write")
	auditor := v.cli("token", "create", "--name", "auditor", "--scopes", "audit:read")
	digest := "sha256:" + strings.Repeat("c3", 32)
	artifact := func(name string) string {
		return `{"name":` + name + `,"digest":"` + digest + `"}`
	}
	deep := strings.Repeat("[", 200000) + strings.Repeat("]", 200000)
	huge := strings.Repeat("x", 10<<20)
	cases := []struct {
		name, method, path, token, contentType, body string
		want                                         int
	}{
		{"malformed JSON", "POST", "/api/v1/artifacts", ci, "application/json", `{"name":`, 400},
		{"trailing data", "POST", "/api/v1/artifacts", ci, "application/json", artifact(`"registry.example.com/a"`) + `{}`, 400},
		{"not an object", "POST", "/api/v1/artifacts", ci, "application/json", `["registry.example.com/a"]`, 400},
		{"wrong type", "POST", "/api/v1/artifacts", ci, "application/json", artifact(`42`), 400},
		{"null name", "POST", "/api/v1/artifacts", ci, "application/json", artifact(`null`), 422},
		{"unknown field", "POST", "/api/v1/artifacts", ci, "application/json", `{"name":"registry.example.com/a","digest":"` + digest + `","admin":true}`, 400},
		{"deep nesting", "POST", "/api/v1/attestations", ci, "application/json", `{"digest":"` + digest + `","name":"t","type":"junit","passed":true,"details":` + deep + `}`, 400},
		{"10 MB string", "POST", "/api/v1/artifacts", ci, "application/json", artifact(`"` + huge + `"`), 413},
		{"10 MB blob over the limit", "POST", "/api/v1/blobs", ci, "application/xml", huge + huge, 413},
		{"invalid UTF-8", "POST", "/api/v1/artifacts", ci, "application/json", artifact("\"registry.example.com/\xff\xfe\""), 400},
		{"NUL in a name", "POST", "/api/v1/artifacts", ci, "application/json", artifact(`"registry.example.com/a\u0000b"`), 400},
		{"control character in a name", "POST", "/api/v1/artifacts", ci, "application/json", artifact(`"registry.example.com/a\u001bb"`), 422},
		{"SQL metacharacters in a name", "POST", "/api/v1/artifacts", ci, "application/json", artifact(`"x'); DROP TABLE artifacts;--"`), 422},
		{"SQL metacharacters in a query", "GET", "/api/v1/search?q=%27%20OR%201%3D1--", auditor, "", "", 400},
		{"SQL metacharacters in a filter", "GET", "/api/v1/artifacts?name=%27%20OR%20%271%27%3D%271", auditor, "", "", 200},
		{"wrong digest", "POST", "/api/v1/artifacts", ci, "application/json", `{"name":"registry.example.com/a","digest":"sha256:xyz"}`, 422},
		{"malformed attestation type", "POST", "/api/v1/attestations", ci, "application/json", `{"digest":"` + digest + `","name":"t","type":"Tele pathy","passed":true}`, 422},
		{"unknown environment", "POST", "/api/v1/assert", ci, "application/json", `{"digest":"` + digest + `","environment":"narnia"}`, 422},
		{"namespace of another environment", "POST", "/api/v1/assert", ci, "application/json", `{"digest":"` + digest + `","environment":"prod","namespace":"dev"}`, 422},
		{"exempt namespace", "POST", "/api/v1/assert", ci, "application/json", `{"digest":"` + digest + `","environment":"default","namespace":"kube-system"}`, 422},
		{"not a namespace", "POST", "/api/v1/assert", ci, "application/json", `{"digest":"` + digest + `","environment":"prod","namespace":"a/b"}`, 422},
		{"text/plain body", "POST", "/api/v1/artifacts", ci, "text/plain", artifact(`"registry.example.com/a"`), 415},
		{"negative limit", "GET", "/api/v1/journal/entries?limit=-1", auditor, "", "", 400},
		{"huge limit", "GET", "/api/v1/journal/entries?limit=99999999999999999999", auditor, "", "", 400},
		{"negative from", "GET", "/api/v1/journal/entries?from=-5", auditor, "", "", 400},
		{"huge from", "GET", "/api/v1/journal/entries?from=18446744073709551616", auditor, "", "", 400},
		{"negative artifact limit", "GET", "/api/v1/artifacts?limit=-3", auditor, "", "", 400},
		{"bad time", "GET", "/api/v1/environments/prod/events?since=yesterday", auditor, "", "", 400},
		{"path traversal in a blob name", "GET", "/api/v1/blobs/..%2F..%2F..%2Fetc%2Fpasswd", auditor, "", "", 404},
		{"path traversal beside a digest", "GET", "/api/v1/blobs/sha256:..%2Fvouch.db", auditor, "", "", 404},
		{"path traversal as a digest", "GET", "/api/v1/blobs/..", auditor, "", "", 400},
		{"traversal out of the API", "GET", "/api/v1/../../etc/passwd", auditor, "", "", 404},
		{"forged token", "GET", "/api/v1/artifacts", "vouch_' OR 1=1--", "", "", 401},
		{"token of another format", "GET", "/api/v1/artifacts", "eyJhbGciOiJub25lIn0.eyJzY29wZXMiOlsiYWRtaW4iXX0.", "", "", 401},
		{"wrong method", "DELETE", "/api/v1/artifacts", ci, "", "", 405},
		{"unknown endpoint", "GET", "/api/v1/secrets", ci, "", "", 404},
	}
	before := journalSize(t, v, auditor)
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, "http://"+v.api+c.path, strings.NewReader(c.body))
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d: %.300s", c.name, resp.StatusCode, c.want, raw)
			continue
		}
		if c.want < 400 {
			continue
		}
		var p struct {
			Type   string
			Status int
			Detail string
		}
		if resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(raw, &p) != nil || p.Status != c.want || p.Detail == "" {
			t.Errorf("%s: not problem+json with a detail: %q %.300s", c.name, resp.Header.Get("Content-Type"), raw)
		} else {
			t.Logf("%-32s %d %s", c.name, p.Status, p.Detail)
		}
	}
	if after := journalSize(t, v, auditor); after != before {
		t.Errorf("the journal grew from %d to %d entries on bad input", before, after)
	}
	if code, out := v.get(auditor, "/api/v1/artifacts/"+digest); code != 404 {
		t.Errorf("an artifact was stored from bad input: %d %v", code, out)
	}

	// The webhook: a body that is not an AdmissionReview is a 400; a
	// review with a hostile object still gets a valid answer for its UID.
	for _, body := range []string{`{"request":`, deep, `"just a string"`} {
		resp, err := v.https.Post("https://"+v.webhook+"/validate", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("webhook body %.20q: %d, want 400", body, resp.StatusCode)
		}
	}
	for i, object := range []string{
		`{"kind":"Deployment","spec":{"template":{"spec":{"containers":"nginx"}}}}`,
		`{"kind":"Deployment","spec":{"template":{"spec":{"containers":[{"name":"c","image":"` + strings.Repeat("a", 1<<20) + `"}]}}}}`,
		`{"kind":"Deployment","spec":{"template":{"spec":{"containers":[{"name":"c","image":"registry.example.com/\u0000@sha256:zz"}]}}}}`,
		`{"kind":"Deployment","spec":{"template":{"spec":{"containers":[{"name":"c","image":"x'; DROP TABLE journal;--"}]}}}}`,
	} {
		uid := fmt.Sprintf("hostile-%d", i)
		body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"` + uid + `","kind":{"group":"apps","version":"v1","kind":"Deployment"},
			"resource":{"group":"apps","version":"v1","resource":"deployments"},"namespace":"prod","name":"web","operation":"CREATE","userInfo":{"username":"u"},"object":` + object + `}}`
		resp, err := v.https.Post("https://"+v.webhook+"/validate", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		var review admissionv1.AdmissionReview
		err = json.NewDecoder(resp.Body).Decode(&review)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || review.Response == nil || string(review.Response.UID) != uid || review.Response.Allowed {
			t.Errorf("hostile object %d: %d %v %+v, want a denial for %s", i, resp.StatusCode, err, review.Response, uid)
		}
	}

	// Each hostile review was decided and journaled, and the journal moves on.
	waitFor(t, func() bool { return journalSize(t, v, auditor) == before+4 })

	// Still healthy: ready, and a good request is served.
	if code, out := v.get("", "/readyz"); code != 200 {
		t.Errorf("readyz after bad input: %d %v", code, out)
	}
	if code, out := v.post(ci, "/api/v1/artifacts", artifact(`"registry.example.com/a"`)); code != 201 {
		t.Errorf("a good request after bad input: %d %v", code, out)
	}
}
