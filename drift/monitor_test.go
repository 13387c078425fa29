package drift

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vouch-dev/vouch/journal"
)

type entries []journal.Entry

func (e *entries) Append(_ context.Context, en journal.Entry) (journal.Appended, error) {
	*e = append(*e, en)
	return journal.Appended{Entry: en}, nil
}

// TestFailedDeliveryKeepsTheURLSecret: a Slack webhook URL is a
// credential; a failed delivery's journal entry and logs name its host
// only.
func TestFailedDeliveryKeepsTheURLSecret(t *testing.T) {
	var j entries
	var logs bytes.Buffer
	m := &Monitor{Journal: &j, Logger: slog.New(slog.NewTextHandler(&logs, nil)), RetryFor: 1}
	const secret = "T000/B000/SECRETXYZ"
	m.deliver(context.Background(), NotifierConfig{Name: "slack", Type: "slack", URL: "http://127.0.0.1:1/services/" + secret}, Notification{Event: "test"})
	if len(j) != 1 || !strings.Contains(string(j[0].Body), `"delivered":false`) || !strings.Contains(string(j[0].Body), "127.0.0.1:1") {
		t.Fatalf("journaled %d entries, want one undelivered naming the host: %+v", len(j), j)
	}
	if strings.Contains(string(j[0].Body), secret) || strings.Contains(logs.String(), secret) {
		t.Errorf("the URL's secret path was journaled or logged:\n%s\n%s", j[0].Body, logs.String())
	}
}

// TestStripCached: the informers keep pods without their managed fields
// and last-applied copy, and with everything snapshots read.
func TestStripCached(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "prod",
			Annotations:     map[string]string{lastAppliedConfig: strings.Repeat("x", 4096), "team": "payments"},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web"}}},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example.com/web:1"}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "web", ImageID: "docker-pullable://registry.example.com/web@" + d1}}},
	}
	got, err := stripCached(pod)
	if err != nil {
		t.Fatal(err)
	}
	p := got.(*corev1.Pod)
	if p.ManagedFields != nil || p.Annotations[lastAppliedConfig] != "" || p.Annotations["team"] != "payments" {
		t.Errorf("stripped metadata = %+v", p.ObjectMeta)
	}
	if p.Spec.Containers[0].Image == "" || p.Status.ContainerStatuses[0].ImageID == "" || len(p.OwnerReferences) != 1 {
		t.Errorf("stripped what snapshots read: %+v", p)
	}
}

// TestExemptEnvironment: what runs in the exempt namespaces is reported
// as exempt, without asking the evidence or the policy, raises no
// notification, and no reporter may write it.
func TestExemptEnvironment(t *testing.T) {
	snap := Snapshot{Environment: ExemptEnvironment, Workloads: []Workload{
		{Namespace: "kube-system", Kind: "DaemonSet", Name: "kube-proxy", Containers: []Container{{Name: "kube-proxy", Image: "registry.k8s.io/kube-proxy:v1.34.0", Digest: d1}}},
		{Namespace: "kube-system", Kind: "Deployment", Name: "coredns", Failed: "CrashLoopBackOff", Containers: []Container{{Name: "coredns", Image: "registry.k8s.io/coredns:v1.12.0"}}},
	}}
	rep, err := Checker{}.Check(context.Background(), snap) // no evidence, no admitted decisions, no policy
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts[StatusExempt] != 2 || rep.Counts[StatusFailed] != 0 || rep.Counts[StatusUndocumented] != 0 || len(rep.Artifacts) != 2 {
		t.Fatalf("report = %+v", rep)
	}
	for _, a := range rep.Artifacts {
		if a.Status != StatusExempt || len(a.Reasons) != 1 || !strings.Contains(a.Reasons[0], "namespace kube-system is exempt") {
			t.Errorf("artifact = %+v", a)
		}
	}
	if _, err := (&Service{}).Report(context.Background(), ExemptEnvironment, "ci", snap.Workloads); !errors.Is(err, ErrReservedEnvironment) {
		t.Errorf("report into %q: %v", ExemptEnvironment, err)
	}
}
