package kube

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vkube "github.com/vouch-dev/vouch/kube"
)

// TestCertRotationKeepsThePreviousCA: when the webhook's CA is replaced
// (the Secret deleted, or the CA near its end), the caBundle trusts the
// new CA and, while it is valid, the previous one: replicas serve the old
// CA's certificate until they read the Secret again (up to 30 s), and the
// apiserver must not refuse them meanwhile. An expired CA is dropped.
func TestCertRotationKeepsThePreviousCA(t *testing.T) {
	needCluster(t)
	ctx := context.Background()
	kubectl(t, "create", "namespace", "certs")
	const vwc = `{"apiVersion":"admissionregistration.k8s.io/v1","kind":"ValidatingWebhookConfiguration","metadata":{"name":"certs-test"},
"webhooks":[{"name":"validate.certs.test","admissionReviewVersions":["v1"],"sideEffects":"None","failurePolicy":"Ignore",
"clientConfig":{"url":"https://127.0.0.1:1/validate"},"rules":[{"operations":["CREATE"],"apiGroups":["certs.test"],"apiVersions":["v1"],"resources":["nothing"]}]}]}`
	mustKubectlApply(t, vwc)
	t.Cleanup(func() { kubectl(t, "delete", "validatingwebhookconfiguration", "certs-test", "--ignore-not-found") })
	client, err := vkube.Client(kube.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-5 * 365 * 24 * time.Hour) // the first CA is five years old
	r := &vkube.CertRotator{Client: client, Namespace: "certs", Secret: "certs-tls", Webhook: "certs-test", DNSNames: []string{"vouch.certs.svc"},
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}
	bundle := func() []*x509.Certificate {
		cfg, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "certs-test", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out []*x509.Certificate
		for rest := cfg.Webhooks[0].ClientConfig.CABundle; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				return out
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
	}
	if err := r.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	first := bundle()
	if len(first) != 1 {
		t.Fatalf("caBundle holds %d certificates, want the CA alone", len(first))
	}

	// The Secret is deleted: a new CA, and the old one still trusted.
	now = time.Now()
	kubectl(t, "-n", "certs", "delete", "secret", "certs-tls")
	if err := r.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	second := bundle()
	if len(second) != 2 || second[0].Equal(first[0]) || !second[1].Equal(first[0]) {
		t.Fatalf("after a new CA, caBundle = %d certificates; want the new CA, then the previous one", len(second))
	}
	if err := r.Ensure(ctx); err != nil { // steady: nothing changes
		t.Fatal(err)
	}
	if again := bundle(); len(again) != 2 || !again[0].Equal(second[0]) || !again[1].Equal(second[1]) {
		t.Fatal("a second check changed the caBundle")
	}

	// Past the old CA's end (and before the new one's renewal): dropped.
	now = first[0].NotAfter.Add(time.Hour)
	if err := r.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if third := bundle(); len(third) != 1 || !third[0].Equal(second[0]) {
		t.Errorf("after the previous CA expired, caBundle = %d certificates; want the current CA alone", len(third))
	}
}
