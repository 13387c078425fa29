package load

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestRun drives a fake webhook at a path other than /validate with a body
// of its own and checks that every request is the body with a fresh UID.
func TestRun(t *testing.T) {
	body := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","namespace":"prod","object":{"note":"<&>"}}}`)
	var mu sync.Mutex
	uids := map[string]bool{}
	var bad []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review struct {
			Request struct {
				UID       string          `json:"uid"`
				Namespace string          `json:"namespace"`
				Object    json.RawMessage `json:"object"`
			} `json:"request"`
		}
		err := json.NewDecoder(r.Body).Decode(&review)
		mu.Lock()
		switch {
		case err != nil || r.URL.Path != "/" || r.Method != http.MethodPost:
			bad = append(bad, fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, err))
		case uids[review.Request.UID] || review.Request.Namespace != "prod" || string(review.Request.Object) != `{"note":"<&>"}`:
			bad = append(bad, fmt.Sprintf("request %+v", review.Request))
		}
		uids[review.Request.UID] = true
		mu.Unlock()
		fmt.Fprintf(w, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":%q,"allowed":true}}`, review.Request.UID)
	}))
	defer srv.Close()
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	allowed := true
	res, err := Run(context.Background(), Options{URL: srv.URL + "/", TLS: &tls.Config{RootCAs: pool}, Concurrency: 4,
		Requests: 50, Duration: time.Minute, Body: body, WantAllowed: &allowed})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 50 || res.Errors != 0 || res.Allowed != 50 || len(uids) != 50 || len(bad) > 0 {
		t.Errorf("Run = %s; %d distinct UIDs; bad requests: %v", res, len(uids), bad)
	}
}

// TestRunOpenLoop sends at a fixed rate and checks the count and that the
// pacer's own lateness, part of every latency, is reported below it.
func TestRunOpenLoop(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u","allowed":true}}`)
	}))
	defer srv.Close()
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	const rate, seconds = 200, 1
	res, err := Run(context.Background(), Options{URL: srv.URL + "/", TLS: &tls.Config{RootCAs: pool}, Concurrency: 4,
		Rate: rate, Duration: seconds * time.Second, Images: []string{"registry.example.com/a@sha256:" + fmt.Sprintf("%064x", 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != "open" || res.Errors != 0 || res.Requests < rate*seconds*9/10 || res.Requests > rate*seconds+1 {
		t.Errorf("Run = %s, want an open loop of about %d requests without errors", res, rate*seconds)
	}
	if res.PacerLateP99 <= 0 || res.PacerLateP99 > res.P99 {
		t.Errorf("pacer lateness p99 %.2f ms, latency p99 %.2f ms: want 0 < lateness <= latency", res.PacerLateP99, res.P99)
	}
}

func TestRunCountsWrongAnswersAsErrors(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u","allowed":false}}`)
	}))
	defer srv.Close()
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	allowed := true
	res, err := Run(context.Background(), Options{URL: srv.URL + "/validate", TLS: &tls.Config{RootCAs: pool}, Concurrency: 2,
		Requests: 10, Duration: time.Minute, Images: []string{"registry.example.com/a@sha256:" + fmt.Sprintf("%064x", 1)}, WantAllowed: &allowed})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 10 || res.Denied != 10 || res.Errors != 10 || res.FirstError == "" {
		t.Errorf("Run = %s, want 10 denials counted as errors", res)
	}
}

func TestSplitAtUIDRejectsNonReviews(t *testing.T) {
	for _, body := range []string{``, `[]`, `{"request":1}`, `{"kind":"AdmissionReview"}`} {
		if _, err := splitAtUID([]byte(body)); err == nil {
			t.Errorf("splitAtUID(%q) = nil error, want one", body)
		}
	}
}
