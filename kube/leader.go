package kube

import (
	"context"
	"log/slog"
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
}

// Run campaigns until ctx ends. While this replica leads, lead runs with a
// context that ends when leadership is lost. If leadership is lost, Run
// campaigns again.
func (l Leader) Run(ctx context.Context, lead func(ctx context.Context)) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metaFor(l.Namespace, l.Name),
		Client:     l.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: l.Identity},
	}
	for ctx.Err() == nil {
		leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   15 * time.Second,
			RenewDeadline:   10 * time.Second,
			RetryPeriod:     2 * time.Second,
			ReleaseOnCancel: true,
			Name:            l.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
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
	}
}
