package kube

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Namespaces keeps the cluster's namespaces' labels and vouch.dev/
// annotations for decisions (input.namespace), from an informer; a
// namespace the informer has not seen yet (created an instant before the
// workload in it) is read from the apiserver.
type Namespaces struct {
	client  kubernetes.Interface
	factory informers.SharedInformerFactory
	lister  corelisters.NamespaceLister
	synced  cache.InformerSynced
	log     *slog.Logger
	// offUntil (unix nanoseconds) is set when Vouch is found not to be
	// allowed to read namespaces (a chart older than the binary, RBAC not
	// yet applied): until then decisions see none of their labels, as
	// outside a cluster, rather than all failing; then it asks again.
	offUntil atomic.Int64
}

// recheck is how long Namespaces stays off before it asks again.
const recheck = time.Minute

// NewNamespaces prepares the informer; Start runs it.
func NewNamespaces(client kubernetes.Interface, log *slog.Logger) *Namespaces {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(namespaceMeta))
	inf := f.Core().V1().Namespaces()
	return &Namespaces{client: client, factory: f, lister: inf.Lister(), synced: inf.Informer().HasSynced, log: log}
}

// AnnotationPrefix is the prefix of the namespace annotations decisions
// see: Vouch's own. Others (status blobs of other tools, up to 256 KiB)
// would be journaled with every decision.
const AnnotationPrefix = "vouch.dev/"

// namespaceMeta keeps of a namespace what decisions read: its name, labels
// and vouch.dev/ annotations.
func namespaceMeta(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil // a deletion tombstone
	}
	var annotations map[string]string
	for k, v := range ns.Annotations {
		if strings.HasPrefix(k, AnnotationPrefix) {
			if annotations == nil {
				annotations = map[string]string{}
			}
			annotations[k] = v
		}
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns.Name, ResourceVersion: ns.ResourceVersion, Labels: ns.Labels, Annotations: annotations,
	}}, nil
}

// Start runs the informer until ctx ends and waits for its cache. While
// Vouch may not list namespaces, it stays off and asks again every
// recheck.
func (n *Namespaces) Start(ctx context.Context) error {
	for {
		_, err := n.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1})
		if !apierrors.IsForbidden(err) {
			break // other errors too: the informer retries
		}
		n.turnOff(err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(recheck):
		}
	}
	n.offUntil.Store(0)
	n.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), n.synced) {
		return fmt.Errorf("namespaces: the informer's cache did not sync")
	}
	return nil
}

// turnOff turns Namespaces off for recheck, logging when it was on.
func (n *Namespaces) turnOff(err error) {
	now := time.Now().UnixNano()
	if n.offUntil.Swap(now+int64(recheck)) < now {
		n.log.Error("vouch may not read namespaces: decisions see no namespace labels or annotations (grant get, list and watch on namespaces, as the chart does); asking again in a minute", "error", err)
	}
}

// Namespace returns the labels and vouch.dev/ annotations of namespace
// name; none for a namespace that does not exist. The maps are shared: do
// not change them.
func (n *Namespaces) Namespace(ctx context.Context, name string) (labels, annotations map[string]string, err error) {
	if time.Now().UnixNano() < n.offUntil.Load() {
		return nil, nil, nil
	}
	ns, err := n.lister.Get(name)
	if apierrors.IsNotFound(err) { // not seen yet, or the cache is not synced
		var live *corev1.Namespace
		live, err = n.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			meta, _ := namespaceMeta(live)
			ns = meta.(*corev1.Namespace)
		}
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil, nil
	case apierrors.IsForbidden(err):
		n.turnOff(err)
		return nil, nil, nil
	case err != nil:
		return nil, nil, err
	}
	return ns.Labels, ns.Annotations, nil
}
