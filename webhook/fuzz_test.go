package webhook_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/vouch-dev/vouch/webhook"
)

// FuzzServeHTTP sends arbitrary bodies to the webhook: whatever comes in,
// the answer is a valid AdmissionReview for the request's UID (HTTP 200),
// or a 4xx for a body that is not one at all; never a panic, never an
// admission of something that is not a workload review.
func FuzzServeHTTP(f *testing.F) {
	fx := newFixture(f)
	for _, seed := range [][]byte{
		review("seed-1", "default", "CREATE", false, "nginx:1.27"),
		review("seed-2", "prod", "UPDATE", true, "registry.example.com/app@"+digest(1), "busybox"),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x"}}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"y","kind":{"group":"apps","version":"v1","kind":"Deployment"},"operation":"CREATE","object":{"spec":{}}}}`),
		[]byte(`{"request":null}`), []byte(`[]`), []byte(``), []byte(`{"request":{"object":"\u0000"}}`),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		fx.handler.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusOK:
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
				t.Fatalf("200 without a valid AdmissionReview: %v %s", err, rec.Body)
			}
			var in admissionv1.AdmissionReview
			if json.Unmarshal(body, &in) == nil && in.Request != nil && out.Response.UID != in.Request.UID {
				t.Fatalf("answer for UID %q, request %q", out.Response.UID, in.Request.UID)
			}
		case rec.Code >= 400 && rec.Code < 500:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

// FuzzExtractWorkload decodes arbitrary objects of every workload kind.
func FuzzExtractWorkload(f *testing.F) {
	f.Add("Pod", []byte(`{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"nginx"}],"initContainers":[{"name":"i","image":"busybox"}]}}`))
	f.Add("Deployment", []byte(`{"metadata":{"annotations":{"vouch.dev/break-glass":"INC-1"}},"spec":{"template":{"metadata":{},"spec":{"containers":[{"image":"x"}]}}}}`))
	f.Add("CronJob", []byte(`{"spec":{"jobTemplate":{"spec":{"template":{"spec":{"containers":[]}}}}}}`))
	f.Add("Job", []byte(`{"spec":{"template":null}}`))
	f.Fuzz(func(t *testing.T, kind string, raw []byte) {
		w, err := webhook.ExtractWorkload(kind, raw)
		if err != nil {
			return
		}
		for _, c := range w.Containers {
			if c.Type == "" {
				t.Fatalf("container %q without a type", c.Name)
			}
		}
	})
}

// FuzzParseImage parses arbitrary image references: a reference that
// parses has a normalised name, and its digest, if any, is algorithm:hex.
func FuzzParseImage(f *testing.F) {
	for _, s := range []string{"nginx", "nginx:1.27", "registry.example.com:5000/team/app@sha256:" + strings.Repeat("a", 64),
		"localhost/app:tag@sha256:" + strings.Repeat("b", 64), "[::1]:5000/x", "UPPER/case", "a/b/c/d:e", "@sha256:", ":tag", "x@y:z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		img, err := webhook.ParseImage(ref)
		if err != nil {
			return
		}
		if img.Name == "" || strings.ContainsAny(img.Name, "@ ") {
			t.Fatalf("%q parsed to name %q", ref, img.Name)
		}
		if img.Digest != "" && !strings.Contains(img.Digest, ":") {
			t.Fatalf("%q parsed to digest %q", ref, img.Digest)
		}
		again, err := webhook.ParseImage(img.Name)
		if err != nil || again.Name != img.Name {
			t.Fatalf("the normalised name %q of %q does not parse to itself: %+v %v", img.Name, ref, again, err)
		}
	})
}
