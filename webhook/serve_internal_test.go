package webhook

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestDecodeOnePass checks that the one-pass decoding of ServeHTTP gives
// the request and workloads that decodeReview and ExtractWorkload give,
// and that it declines what they would refuse, so that the errors stay
// theirs.
func TestDecodeOnePass(t *testing.T) {
	const head = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",`
	tests := []struct {
		name string
		body string
		want bool // decoded in one pass
	}{
		{"deployment", head + `"kind":{"group":"apps","version":"v1","kind":"Deployment"},"namespace":"prod","operation":"CREATE",
			"userInfo":{"username":"alice","groups":["dev"],"extra":{"k":["v"]}},"dryRun":true,"options":{"kind":"CreateOptions"},
			"object":{"metadata":{"name":"web","labels":{"app":"web"},"annotations":{"vouch.dev/break-glass":"INC-1"}},
			"spec":{"replicas":3,"template":{"metadata":{"annotations":{"a":"b"}},"spec":{"initContainers":[{"name":"i","image":"busybox"}],"containers":[{"name":"c","image":"app@sha256:00","ports":[{"containerPort":80}]}]}}},
			"status":{"replicas":3}},"oldObject":null}}`, true},
		{"cronjob", head + `"kind":{"group":"batch","version":"v1","kind":"CronJob"},"operation":"UPDATE",
			"object":{"metadata":{"generateName":"job-"},"spec":{"jobTemplate":{"spec":{"template":{"spec":{"containers":[{"name":"j","image":"x"}]}}}}}},
			"oldObject":{"metadata":{"name":"old"},"spec":{}}}}`, true},
		{"ephemeral containers", head + `"kind":{"group":"","version":"v1","kind":"Pod"},"subResource":"ephemeralcontainers","operation":"UPDATE",
			"object":{"spec":{"containers":[{"name":"app","image":"a"}],"ephemeralContainers":[{"name":"debug","image":"busybox"}]}},
			"oldObject":{"spec":{"containers":[{"name":"app","image":"a"}]}}}}`, true},
		{"ephemeral containers without old object", head + `"kind":{"group":"","version":"v1","kind":"Pod"},"subResource":"ephemeralcontainers",
			"object":{"spec":{}}}}`, false},
		{"no object", head + `"kind":{"group":"apps","version":"v1","kind":"Deployment"}}}`, false},
		{"null object", head + `"kind":{"group":"apps","version":"v1","kind":"Deployment"},"object":null}}`, false},
		{"object of the wrong shape", head + `"kind":{"group":"apps","version":"v1","kind":"Deployment"},"object":{"spec":{"template":{"spec":{"containers":"x"}}}}}}`, false},
		{"no uid", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"object":{}}}`, false},
		{"wrong version", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u","object":{}}}`, false},
		{"not JSON", `{"apiVersion":`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ok := checkOnePass(t, []byte(tt.body)); ok != tt.want {
				t.Errorf("decodeOnePass(%s) ok = %v, want %v", tt.name, ok, tt.want)
			}
		})
	}
}

// FuzzDecodeOnePass holds the one-pass decoding (goccy/go-json) to what
// encoding/json makes of the same body.
func FuzzDecodeOnePass(f *testing.F) {
	const head = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"apps","version":"v1","kind":"Deployment"},`
	for _, s := range []string{
		head + `"operation":"CREATE","userInfo":{"username":"a","groups":["g"]},"object":{"metadata":{"name":"w","labels":{"a":"b"}},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"x@sha256:00"}]}}}}}}`,
		head + `"object":{"metadata":{"name":"w\u00e9\ud800"},"spec":{"template":{"spec":{"containers":[{"Name":"c","IMAGE":"x"}]}}}}}}`,
		head + `"object":{"spec":{"template":{"spec":{"containers":[{"image":"a"}],"containers":[{"image":"b"}]}}}}}}`,
		head + `"object":{"spec":{"template":{"spec":{"containers":[{"image":"ÿ"}]}}}}}}`,
		head + `"object":{"spec":{"template":null}}}}`,
		head + `"object":{}}} trailing`,
		head + `"dryRun":true,"options":null,"object":{"spec":{"template":{"spec":{}}}}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkOnePass(t, body) })
}

// checkOnePass decodes body in one pass and, if that succeeds, checks the
// result against decodeReview and ExtractWorkload. It reports whether the
// one pass decoded the body.
func checkOnePass(t *testing.T, body []byte) bool {
	t.Helper()
	req, objs, ok := decodeOnePass(body)
	if !ok {
		return false
	}
	review, err := decodeReview(body)
	if err != nil {
		t.Fatalf("decoded in one pass, but decodeReview: %v", err)
	}
	ignore := cmpopts.IgnoreFields(admissionv1.AdmissionRequest{}, "Object", "OldObject")
	if diff := cmp.Diff(review.Request, req, ignore, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("request (-decodeReview +decodeOnePass):\n%s", diff)
	}
	for _, o := range []struct {
		name string
		raw  runtime.RawExtension
		obj  *object
	}{{"object", review.Request.Object, objs.object}, {"old object", review.Request.OldObject, objs.old}} {
		want, wantErr := ExtractWorkload(req.Kind.Kind, o.raw.Raw)
		if o.obj == nil {
			if o.raw.Raw != nil && string(o.raw.Raw) != "null" {
				t.Fatalf("%s: not decoded in one pass", o.name)
			}
			continue
		}
		if wantErr != nil && o.raw.Raw != nil {
			if _, derr := decodeObject(o.raw.Raw); derr != nil {
				t.Fatalf("%s: decoded in one pass, but encoding/json: %v", o.name, derr)
			}
		}
		got, err := o.obj.workload(req.Kind.Kind)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%s: workload error %v, want %v", o.name, err, wantErr)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%s workload (-ExtractWorkload +one pass):\n%s", o.name, diff)
		}
	}
	return true
}

// decodeObject decodes an object with encoding/json, as ExtractWorkload does.
func decodeObject(raw []byte) (object, error) {
	var o object
	err := json.Unmarshal(raw, &o)
	return o, err
}

// BenchmarkDecodeReview compares decoding the benchmark's 3-container
// Deployment review in one pass with decoding it and then its object.
func BenchmarkDecodeReview(b *testing.B) {
	body := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002",
		"kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},
		"namespace":"prod","operation":"CREATE","userInfo":{"username":"system:serviceaccount:argocd:argocd-application-controller","groups":["system:serviceaccounts","system:authenticated"]},
		"object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"prod","labels":{"app":"web","team":"payments"},
		"annotations":{"argocd.argoproj.io/tracking-id":"web:apps/Deployment:prod/web"}},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},
		"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[
		{"name":"api","image":"registry.example.com/payments/api@sha256:0000000000000000000000000000000000000000000000000000010000000000","ports":[{"containerPort":8080}],"resources":{"requests":{"cpu":"100m","memory":"128Mi"}}},
		{"name":"worker","image":"registry.example.com/payments/worker@sha256:0000000000000000000000000000000000000000000000000000010000000001","resources":{"requests":{"cpu":"100m","memory":"128Mi"}}},
		{"name":"envoy","image":"registry.example.com/payments/envoy@sha256:0000000000000000000000000000000000000000000000000000010000000002","resources":{"requests":{"cpu":"100m","memory":"128Mi"}}}]}}}},
		"oldObject":null,"dryRun":false,"options":{"apiVersion":"meta.k8s.io/v1","kind":"CreateOptions","fieldManager":"argocd-controller"}}}`)
	b.Run("one pass", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req, objs, ok := decodeOnePass(body)
			if !ok {
				b.Fatal("not decoded")
			}
			if _, err := objs.object.workload(req.Kind.Kind); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("review then object", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			review, err := decodeReview(body)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ExtractWorkload(review.Request.Kind.Kind, review.Request.Object.Raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
