package drift

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Watcher keeps informers over pods and their owners in a cluster and
// turns them into snapshots per environment.
type Watcher struct {
	pods        corelisters.PodLister
	replicaSets appslisters.ReplicaSetLister
	deployments appslisters.DeploymentLister
	jobs        batchlisters.JobLister
	synced      []cache.InformerSynced
	factory     informers.SharedInformerFactory
	changed     chan struct{}
}

// NewWatcher prepares informers; Start runs them.
func NewWatcher(client kubernetes.Interface, resync time.Duration) *Watcher {
	f := informers.NewSharedInformerFactoryWithOptions(client, resync, informers.WithTransform(stripCached))
	w := &Watcher{
		pods:        f.Core().V1().Pods().Lister(),
		replicaSets: f.Apps().V1().ReplicaSets().Lister(),
		deployments: f.Apps().V1().Deployments().Lister(),
		jobs:        f.Batch().V1().Jobs().Lister(),
		factory:     f,
		changed:     make(chan struct{}, 1),
	}
	notify := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.poke() },
		UpdateFunc: func(any, any) { w.poke() },
		DeleteFunc: func(any) { w.poke() },
	}
	for _, inf := range []cache.SharedIndexInformer{
		f.Core().V1().Pods().Informer(), f.Apps().V1().ReplicaSets().Informer(),
		f.Apps().V1().Deployments().Informer(), f.Batch().V1().Jobs().Informer(),
	} {
		inf.AddEventHandler(notify)
		w.synced = append(w.synced, inf.HasSynced)
	}
	return w
}

// stripCached drops from a watched object what snapshots never read and
// what makes up much of its size: the managed fields and kubectl's copy of
// the last applied configuration. The leader caches every pod in the
// cluster, so this is most of its memory in a large one.
func stripCached(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
		if a := o.GetAnnotations(); a[lastAppliedConfig] != "" {
			delete(a, lastAppliedConfig)
			o.SetAnnotations(a)
		}
	}
	return obj, nil
}

const lastAppliedConfig = "kubectl.kubernetes.io/last-applied-configuration"

func (w *Watcher) poke() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// Start runs the informers until ctx ends and waits for their caches.
func (w *Watcher) Start(ctx context.Context) error {
	w.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), w.synced...) {
		return fmt.Errorf("drift: informer caches did not sync")
	}
	return nil
}

// Changed is signalled (coalesced) whenever a watched object changes.
func (w *Watcher) Changed() <-chan struct{} { return w.changed }

// Snapshots computes the current snapshot of each environment; envOf maps
// a namespace to its environment ("" to leave it out).
func (w *Watcher) Snapshots(now time.Time, envOf func(namespace string) string) (map[string]Snapshot, error) {
	pods, err := w.pods.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	byEnv := map[string][]Pod{}
	for _, p := range pods {
		env := envOf(p.Namespace)
		if env == "" {
			continue
		}
		byEnv[env] = append(byEnv[env], podOf(p))
	}
	failures := map[string]string{}
	deps, err := w.deployments.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	for _, d := range deps {
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
				failures[Workload{Namespace: d.Namespace, Kind: "Deployment", Name: d.Name}.Key()] = "ProgressDeadlineExceeded"
			}
		}
	}
	out := map[string]Snapshot{}
	for env, ps := range byEnv {
		out[env] = Compute(env, now, ps, w.parent, failures)
	}
	return out, nil
}

// parent resolves ReplicaSet → Deployment and Job → CronJob.
func (w *Watcher) parent(namespace, kind, name string) (string, string, bool) {
	var refs []metav1.OwnerReference
	switch kind {
	case "ReplicaSet":
		rs, err := w.replicaSets.ReplicaSets(namespace).Get(name)
		if err != nil {
			return "", "", false
		}
		refs = rs.OwnerReferences
	case "Job":
		j, err := w.jobs.Jobs(namespace).Get(name)
		if err != nil {
			return "", "", false
		}
		refs = j.OwnerReferences
	default:
		return "", "", false
	}
	if c := metav1.GetControllerOfNoCopy(&metav1.ObjectMeta{OwnerReferences: refs}); c != nil {
		return c.Kind, c.Name, true
	}
	return "", "", false
}

func podOf(p *corev1.Pod) Pod {
	out := Pod{Namespace: p.Namespace, Name: p.Name, Phase: string(p.Status.Phase)}
	if c := metav1.GetControllerOf(p); c != nil {
		out.OwnerKind, out.OwnerName = c.Kind, c.Name
	}
	if p.Status.StartTime != nil {
		out.StartTime = p.Status.StartTime.Time
	}
	status := map[string]corev1.ContainerStatus{}
	for _, s := range p.Status.ContainerStatuses {
		status[s.Name] = s
	}
	for _, c := range p.Spec.Containers {
		pc := PodContainer{Name: c.Name, Image: c.Image}
		if s, ok := status[c.Name]; ok {
			pc.ImageID = s.ImageID
			if s.State.Waiting != nil {
				pc.Waiting = s.State.Waiting.Reason
			}
		}
		out.Containers = append(out.Containers, pc)
	}
	return out
}

// Snapshotter records the snapshots of a Watcher: on every change
// (debounced) and at least every interval, for heartbeats.
type Snapshotter struct {
	Watcher  *Watcher
	Recorder *Recorder
	EnvOf    func(namespace string) string
	// Environments are snapshotted even when nothing runs in them.
	Environments []string
	Interval     time.Duration // DefaultHeartbeat when 0
	Debounce     time.Duration // 2s when 0
	Logger       *slog.Logger
	// Recorded, when set, is told about every snapshot recorded.
	Recorded func(s Snapshot, res Result)
}

// Run records until ctx ends. Run it on the leader.
func (s *Snapshotter) Run(ctx context.Context) {
	if err := s.Watcher.Start(ctx); err != nil {
		s.Logger.Error("snapshots: cannot watch the cluster", "error", err)
		return
	}
	interval, debounce := s.Interval, s.Debounce
	if interval <= 0 {
		interval = DefaultHeartbeat
	}
	if debounce <= 0 {
		debounce = 2 * time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		s.snapshot(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.Watcher.Changed():
			select { // let a burst of changes settle
			case <-ctx.Done():
				return
			case <-time.After(debounce):
			}
		}
	}
}

func (s *Snapshotter) snapshot(ctx context.Context) {
	now := time.Now()
	snaps, err := s.Watcher.Snapshots(now, s.EnvOf)
	if err != nil {
		s.Logger.Error("snapshots", "error", err)
		return
	}
	for _, env := range s.Environments {
		if _, ok := snaps[env]; !ok {
			snaps[env] = Snapshot{Environment: env, Time: now.UTC(), Workloads: []Workload{}}
		}
	}
	for _, snap := range snaps {
		res, err := s.Recorder.Record(ctx, snap, "")
		if err != nil {
			s.Logger.Error("snapshot not recorded", "environment", snap.Environment, "error", err)
			continue
		}
		if res.Recorded != "" && res.Recorded != RecordHeartbeat {
			s.Logger.Info("snapshot recorded", "environment", snap.Environment, "kind", res.Recorded, "workloads", len(snap.Workloads), "journal_index", res.ID)
		}
		if s.Recorded != nil && res.Recorded != "" {
			s.Recorded(snap, res)
		}
	}
}
