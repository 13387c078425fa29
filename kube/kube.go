// Package kube is Vouch's side of the Kubernetes API it runs in: the
// client, leader election among replicas (a coordination.k8s.io Lease), the
// webhook's certificate kept in a Secret with its CA patched into the
// ValidatingWebhookConfiguration, and the namespaces' labels and vouch.dev/
// annotations for decisions. Vouch runs without any of it outside a
// cluster.
package kube

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ErrNoCluster means there is no kubeconfig and Vouch is not in a pod.
var ErrNoCluster = errors.New("no Kubernetes cluster: not running in a pod and no --kubeconfig")

// Client returns a client for the cluster: from kubeconfig when set, else
// the pod's service account.
func Client(kubeconfig string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	switch {
	case kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	case os.Getenv("KUBERNETES_SERVICE_HOST") != "":
		cfg, err = rest.InClusterConfig()
	default:
		return nil, ErrNoCluster
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	cfg.UserAgent = "vouch"
	cfg.QPS, cfg.Burst = 20, 40
	return kubernetes.NewForConfig(cfg)
}
