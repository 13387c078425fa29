package kube

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vkube "github.com/vouch-dev/vouch/kube"
)

// TestLeaderTermsDoNotOverlap: a replica that loses its lease (another
// holder took it) campaigns again only once the work of its term has
// stopped, however long that takes: two terms' singletons — two
// checkpointers, two snapshotters — never run at once in one replica.
func TestLeaderTermsDoNotOverlap(t *testing.T) {
	needCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kubectl(t, "create", "namespace", "leader-test")
	client, err := vkube.Client(kube.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	running, most, terms := 0, 0, 0
	lead := func(ctx context.Context) {
		mu.Lock()
		running++
		terms++
		most = max(most, running)
		mu.Unlock()
		<-ctx.Done()
		time.Sleep(6 * time.Second) // slow to stop: longer than the lease takes to free up
		mu.Lock()
		running--
		mu.Unlock()
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		vkube.Leader{Client: client, Namespace: "leader-test", Name: "vouch", Identity: "replica-a", Logger: slog.New(slog.DiscardHandler),
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond}.Run(ctx, lead)
	}()
	count := func() (int, int) { mu.Lock(); defer mu.Unlock(); return terms, most }
	waitFor(t, 30*time.Second, "the first term", func() bool { n, _ := count(); return n == 1 })

	// Another holder takes the lease, as a replica that thinks the lease
	// expired would: replica-a fails to renew and loses its term.
	leases := client.CoordinationV1().Leases("leader-test")
	l, err := leases.Get(ctx, "vouch", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, now := "replica-b", metav1.NewMicroTime(time.Now())
	l.Spec.HolderIdentity, l.Spec.RenewTime, l.Spec.AcquireTime = &other, &now, &now
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "a second term", func() bool { n, _ := count(); return n == 2 })
	if _, most := count(); most != 1 {
		t.Errorf("%d terms ran at once", most)
	}
	cancel()
	<-stopped
}
