package drift

import (
	"sort"
	"time"
)

// Pod is what a snapshot needs to know about one pod.
type Pod struct {
	Namespace string
	Name      string
	// OwnerKind and OwnerName are the pod's controller (ownerReferences
	// with controller: true); empty for a bare pod.
	OwnerKind, OwnerName string
	Phase                string // Pending, Running, Succeeded, Failed, Unknown
	StartTime            time.Time
	Containers           []PodContainer
}

// PodContainer is one container of a pod, from its spec and status.
type PodContainer struct {
	Name    string
	Image   string
	ImageID string // status.containerStatuses[].imageID; may be empty for a while
	// Waiting is the reason a container waits (CrashLoopBackOff,
	// ImagePullBackOff, ErrImagePull …), if it does.
	Waiting string
}

// Parents resolves an owner to its own controller: ReplicaSet → Deployment,
// Job → CronJob. ok is false when the owner has none (or is unknown).
type Parents func(namespace, kind, name string) (parentKind, parentName string, ok bool)

// failingReasons are container waiting reasons that mean the workload is
// failing, not starting.
var failingReasons = map[string]bool{
	"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImagePull": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "InvalidImageName": true, "RunContainerError": true,
}

// Compute builds the snapshot of the pods that run or try to run in an
// environment: grouped by their top-level owner, with every container
// image and the digest the runtime reported. Pods without owners are
// workloads of their own; missing imageIDs leave the digest empty.
// failures adds workload-level failures by key (a Deployment whose
// rollout exceeded its progress deadline, say).
func Compute(environment string, at time.Time, pods []Pod, parents Parents, failures map[string]string) Snapshot {
	byKey := map[string]*Workload{}
	seen := map[string]map[Container]bool{}
	var order []string
	for _, p := range pods {
		if p.Phase == "Succeeded" || p.Phase == "Failed" {
			continue
		}
		kind, name := p.OwnerKind, p.OwnerName
		if kind == "" {
			kind, name = "Pod", p.Name
		} else if parents != nil {
			if pk, pn, ok := parents(p.Namespace, kind, name); ok {
				kind, name = pk, pn
			}
		}
		w := Workload{Namespace: p.Namespace, Kind: kind, Name: name}
		key := w.Key()
		cur, ok := byKey[key]
		if !ok {
			cur = &w
			byKey[key] = cur
			seen[key] = map[Container]bool{}
			order = append(order, key)
		}
		cur.Pods++
		if !p.StartTime.IsZero() && (cur.Started.IsZero() || p.StartTime.Before(cur.Started)) {
			cur.Started = p.StartTime.UTC()
		}
		for _, c := range p.Containers {
			ct := Container{Name: c.Name, Image: c.Image, Digest: DigestFromImageID(c.ImageID)}
			if !seen[key][ct] {
				seen[key][ct] = true
				cur.Containers = append(cur.Containers, ct)
			}
			if failingReasons[c.Waiting] && cur.Failed == "" {
				cur.Failed = c.Waiting
			}
		}
	}
	s := Snapshot{Environment: environment, Time: at.UTC(), Workloads: make([]Workload, 0, len(order))}
	for _, k := range order {
		w := *byKey[k]
		if f, ok := failures[k]; ok && w.Failed == "" {
			w.Failed = f
		}
		s.Workloads = append(s.Workloads, w)
	}
	s.Normalize() // containers of one name may run two images mid-rollout: both are kept
	return s
}

func sortContainers(c []Container) {
	sort.Slice(c, func(i, j int) bool { return lessContainer(c[i], c[j]) })
}

func lessContainer(a, b Container) bool {
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	if a.Image != b.Image {
		return a.Image < b.Image
	}
	return a.Digest < b.Digest
}
