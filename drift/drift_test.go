package drift

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

const d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
const d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"

func TestDigestFromImageID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"docker-pullable://registry.example.com/app@" + d1, d1},
		{d1, d1},
		{"docker://" + d1, d1},
		{"registry.example.com/app@" + d1, d1},
		{"", ""},
		{"sha256:123", ""},
		{"sha256:" + "Z" + d1[8:], ""},
	}
	for _, tt := range tests {
		if got := DigestFromImageID(tt.in); got != tt.want {
			t.Errorf("DigestFromImageID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCompute(t *testing.T) {
	parents := func(ns, kind, name string) (string, string, bool) {
		switch {
		case kind == "ReplicaSet" && name == "web-1":
			return "Deployment", "web", true
		case kind == "ReplicaSet" && name == "web-2":
			return "Deployment", "web", true
		case kind == "Job" && name == "nightly-1":
			return "CronJob", "nightly", true
		}
		return "", "", false
	}
	running := func(name, ownerKind, owner, image, imageID, waiting string, started time.Time) Pod {
		return Pod{Namespace: "prod", Name: name, OwnerKind: ownerKind, OwnerName: owner, Phase: "Running", StartTime: started,
			Containers: []PodContainer{{Name: "app", Image: image, ImageID: imageID, Waiting: waiting}}}
	}
	pods := []Pod{
		running("web-1-a", "ReplicaSet", "web-1", "app:1", "docker-pullable://app@"+d1, "", t0.Add(time.Hour)),
		running("web-1-b", "ReplicaSet", "web-1", "app:1", "docker-pullable://app@"+d1, "", t0),
		running("web-2-a", "ReplicaSet", "web-2", "app:2", "", "", t0.Add(2*time.Hour)), // mid-rollout, digest not reported yet
		running("nightly-1-x", "Job", "nightly-1", "batch:1", d2, "", t0),
		running("debug", "", "", "busybox", "", "CrashLoopBackOff", t0),
		running("db-0", "StatefulSet", "db", "pg:16", d2, "", t0),
		{Namespace: "prod", Name: "old", OwnerKind: "Job", OwnerName: "old-job", Phase: "Succeeded"},
	}
	s := Compute("prod", t0, pods, parents, map[string]string{"prod/StatefulSet/db": "ProgressDeadlineExceeded"})
	want := []Workload{
		{Namespace: "prod", Kind: "CronJob", Name: "nightly", Pods: 1, Started: t0, Containers: []Container{{Name: "app", Image: "batch:1", Digest: d2}}},
		{Namespace: "prod", Kind: "Deployment", Name: "web", Pods: 3, Started: t0, Containers: []Container{
			{Name: "app", Image: "app:1", Digest: d1}, {Name: "app", Image: "app:2"}}},
		{Namespace: "prod", Kind: "Pod", Name: "debug", Pods: 1, Started: t0, Failed: "CrashLoopBackOff", Containers: []Container{{Name: "app", Image: "busybox"}}},
		{Namespace: "prod", Kind: "StatefulSet", Name: "db", Pods: 1, Started: t0, Failed: "ProgressDeadlineExceeded", Containers: []Container{{Name: "app", Image: "pg:16", Digest: d2}}},
	}
	if diff := cmp.Diff(want, s.Workloads); diff != "" {
		t.Errorf("Compute (-want +got):\n%s", diff)
	}
	if got := s.Digests(); !cmp.Equal(got, []string{d1, d2}) {
		t.Errorf("Digests = %v", got)
	}

	// Scaling alone keeps the content hash; a new digest changes it.
	scaled := Compute("prod", t0, append(pods, running("web-1-c", "ReplicaSet", "web-1", "app:1", d1, "", t0)), parents, map[string]string{"prod/StatefulSet/db": "ProgressDeadlineExceeded"})
	if scaled.ContentHash() != s.ContentHash() {
		t.Error("scaling changed the content hash")
	}
	pods[2].Containers[0].ImageID = d2
	if Compute("prod", t0, pods, parents, nil).ContentHash() == s.ContentHash() {
		t.Error("a new digest did not change the content hash")
	}
}

// TestCompareApply checks on random snapshots that applying the diff from
// a to b gives b.
func TestCompareApply(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	random := func() Snapshot {
		s := Snapshot{Environment: "e"}
		for i := 0; i < 30; i++ {
			if rnd.IntN(3) == 0 {
				continue
			}
			w := Workload{Namespace: "ns", Kind: "Deployment", Name: fmt.Sprint("w", i), Pods: 1 + rnd.IntN(3)}
			w.Containers = []Container{{Name: "app", Image: fmt.Sprint("img:", rnd.IntN(2))}}
			s.Workloads = append(s.Workloads, w)
		}
		s.Normalize()
		return s
	}
	for i := 0; i < 200; i++ {
		a, b := random(), random()
		got := Apply(a, Compare(a, b))
		if diff := cmp.Diff(b.Workloads, got.Workloads, cmpopts()); diff != "" {
			t.Fatalf("Apply(a, Compare(a, b)) != b:\n%s", diff)
		}
	}
}

func cmpopts() cmp.Option {
	return cmp.FilterValues(func(a, b []Workload) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())
}

// BenchmarkSnapshot10kPods computes and diffs the snapshot of 10,000 pods
// in 2,000 workloads.
func BenchmarkSnapshot10kPods(b *testing.B) {
	pods := make([]Pod, 0, 10000)
	for w := 0; w < 2000; w++ {
		for p := 0; p < 5; p++ {
			pods = append(pods, Pod{Namespace: fmt.Sprint("ns", w%50), Name: fmt.Sprintf("w%d-%d", w, p), OwnerKind: "ReplicaSet", OwnerName: fmt.Sprint("w", w),
				Phase: "Running", StartTime: t0, Containers: []PodContainer{
					{Name: "app", Image: fmt.Sprintf("registry.example.com/app%d:1", w), ImageID: fmt.Sprintf("sha256:%064x", w)},
					{Name: "proxy", Image: "registry.example.com/proxy:1", ImageID: d2},
				}})
		}
	}
	parents := func(ns, kind, name string) (string, string, bool) { return "Deployment", name, true }
	prev := Compute("prod", t0, pods, parents, nil)
	pods[0].Containers[0].ImageID = d1
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := Compute("prod", t0, pods, parents, nil)
		if d := Compare(prev, s); len(d.Changed) != 1 {
			b.Fatalf("diff %+v", d)
		}
		_ = s.ContentHash()
	}
}
