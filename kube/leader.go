package kube

import (
	"cmp"
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Leader elects one replica through a Lease and runs the singleton work —
// checkpoint signing, certificate rotation, snapshots — on it.
type Leader struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string // of the Lease
	Identity  string // this replica, e.g. the pod name
	Logger    *slog.Logger
	// The lease's timing; 15 s, 10 s and 2 s when 0, as Kubernetes'
	// controllers use.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Run campaigns until ctx ends. While this replica leads, lead runs with a
// context that ends when leadership is lost. If leadership is lost, Run
// waits for lead to return, then campaigns again: two terms' work never
// overlap in one replica.
func (l Leader) Run(ctx context.Context, lead func(ctx context.Context)) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metaFor(l.Namespace, l.Name),
		Client:     l.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: l.Identity},
	}
	lease, renew, retry := cmp.Or(l.LeaseDuration, 15*time.Second), cmp.Or(l.RenewDeadline, 10*time.Second), cmp.Or(l.RetryPeriod, 2*time.Second)
	for ctx.Err() == nil {
		var started atomic.Bool
		done := make(chan struct{})
		leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   lease,
			RenewDeadline:   renew,
			RetryPeriod:     retry,
			ReleaseOnCancel: true,
			Name:            l.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					started.Store(true)
					defer close(done)
					l.Logger.Info("leading: running checkpoints and other singleton work", "lease", l.Namespace+"/"+l.Name, "identity", l.Identity)
					lead(ctx)
				},
				OnStoppedLeading: func() {
					l.Logger.Info("stopped leading", "lease", l.Namespace+"/"+l.Name, "identity", l.Identity)
				},
				OnNewLeader: func(id string) {
					if id != l.Identity {
						l.Logger.Info("another replica leads", "leader", id)
					}
				},
			},
		})
		if started.Load() {
			<-done
		}
	}
}
