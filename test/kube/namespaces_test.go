package kube

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	vkube "github.com/vouch-dev/vouch/kube"
	"github.com/vouch-dev/vouch/test/testlog"
)

// TestNamespacesForDecisions: decisions get their namespace's labels and
// annotations (without kubectl's last-applied copy) from the informer, a
// change to them within moments, a namespace created an instant before
// from the apiserver; without the permission to list namespaces, none,
// rather than failing every decision.
func TestNamespacesForDecisions(t *testing.T) {
	needCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client, err := vkube.Client(kube.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	mustKubectlApply(t, `apiVersion: v1
kind: Namespace
metadata:
  name: ns-payments
  labels: {team: payments}
  annotations: {vouch.dev/configuration-item: Payments API, example.com/status: '{"big":"blob"}'}
`)
	t.Cleanup(func() { kubectl(t, "delete", "namespace", "ns-payments", "ns-fresh", "--wait=false") })

	ns := vkube.NewNamespaces(client, slog.New(slog.DiscardHandler))
	if err := ns.Start(ctx); err != nil {
		t.Fatal(err)
	}
	labels, annotations, err := ns.Namespace(ctx, "ns-payments")
	if err != nil || labels["team"] != "payments" || annotations["vouch.dev/configuration-item"] != "Payments API" {
		t.Fatalf("ns-payments: labels %v, annotations %v, %v", labels, annotations, err)
	}
	if len(annotations) != 1 {
		t.Errorf("annotations %v: want only vouch.dev/ ones (no last-applied copy, no other tools')", annotations)
	}

	// A label the platform team adds is seen by the next decisions.
	mustKubectl(t, "label", "namespace", "ns-payments", "data-class=pci")
	waitFor(t, 10*time.Second, "the new label", func() bool {
		labels, _, _ := ns.Namespace(ctx, "ns-payments")
		return labels["data-class"] == "pci"
	})

	// A namespace created an instant before the workload in it, or any
	// before the informer's cache is filled: read from the apiserver.
	mustKubectlApply(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-fresh, labels: {team: fresh}}\n")
	if labels, _, err := ns.Namespace(ctx, "ns-fresh"); err != nil || labels["team"] != "fresh" {
		t.Errorf("ns-fresh: %v, %v", labels, err)
	}
	unsynced := vkube.NewNamespaces(client, slog.New(slog.DiscardHandler)) // never started
	if labels, annotations, err := unsynced.Namespace(ctx, "ns-payments"); err != nil || labels["data-class"] != "pci" || len(annotations) != 1 {
		t.Errorf("before the cache: %v, %v, %v", labels, annotations, err)
	}
	if labels, annotations, err := ns.Namespace(ctx, "ns-absent"); err != nil || labels != nil || annotations != nil {
		t.Errorf("a namespace that does not exist: %v, %v, %v", labels, annotations, err)
	}

	// A service account that may not list namespaces (an older chart's).
	cfg, err := clientcmd.BuildConfigFromFlags("", kube.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:ns-payments:nobody"}
	nobody, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Found out at start (which then waits to ask again), or at a lookup
	// before (the first list failed for another reason): logged once, then
	// no labels.
	for _, start := range []bool{true, false} {
		logged := &testlog.Buffer{}
		limited := vkube.NewNamespaces(nobody, slog.New(slog.NewTextHandler(logged, nil)))
		if start {
			startCtx, stop := context.WithCancel(ctx)
			defer stop()
			go limited.Start(startCtx)
			waitFor(t, 10*time.Second, "the first list refused", func() bool { return strings.Contains(logged.String(), "vouch may not read namespaces") })
		}
		for range 2 {
			if labels, annotations, err := limited.Namespace(ctx, "ns-payments"); err != nil || labels != nil || annotations != nil {
				t.Errorf("without the permission (started %v): %v, %v, %v", start, labels, annotations, err)
			}
		}
		if n := strings.Count(logged.String(), "vouch may not read namespaces"); n != 1 {
			t.Errorf("without the permission (started %v), logged %d times: %q", start, n, logged.String())
		}
	}
}
