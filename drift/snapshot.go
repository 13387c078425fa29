// Package drift records what actually runs: snapshots of the workloads in
// each environment, their differences over time, the state at any moment
// of the past, and the compliance of everything running against the
// journal and the evidence (unknown, undocumented, non-compliant or failed).
package drift

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"time"
)

// Workload is one running workload of a snapshot: a top-level owner
// (Deployment, StatefulSet, DaemonSet, CronJob, Job, or a bare Pod) with
// the containers its pods run.
type Workload struct {
	Namespace  string      `json:"namespace"`
	Kind       string      `json:"kind"`
	Name       string      `json:"name"`
	Pods       int         `json:"pods"`
	Containers []Container `json:"containers"`
	// Started is when the oldest running pod started.
	Started time.Time `json:"started"`
	// Failed says why the workload is failing, if it is: CrashLoopBackOff,
	// ImagePullBackOff, ProgressDeadlineExceeded …
	Failed string `json:"failed,omitempty"`
}

// Container is one container image a workload runs.
type Container struct {
	Name   string `json:"name"`
	Image  string `json:"image"`
	Digest string `json:"digest,omitempty"` // "" while the runtime has not reported it
}

// Key identifies a workload within an environment.
func (w Workload) Key() string { return w.Namespace + "/" + w.Kind + "/" + w.Name }

// Snapshot is what ran in an environment at a moment.
type Snapshot struct {
	Environment string     `json:"environment"`
	Time        time.Time  `json:"time"`
	Workloads   []Workload `json:"workloads"` // sorted by Key
}

// Normalize sorts workloads and containers so that equal content compares
// equal.
func (s *Snapshot) Normalize() {
	keys := make([]string, len(s.Workloads))
	for i := range s.Workloads {
		sortContainers(s.Workloads[i].Containers)
		keys[i] = s.Workloads[i].Key()
	}
	if !sort.StringsAreSorted(keys) {
		sort.Sort(byKey{keys, s.Workloads})
	}
}

// byKey sorts workloads by their keys, computed once.
type byKey struct {
	keys []string
	w    []Workload
}

func (b byKey) Len() int           { return len(b.keys) }
func (b byKey) Less(i, j int) bool { return b.keys[i] < b.keys[j] }
func (b byKey) Swap(i, j int) {
	b.keys[i], b.keys[j] = b.keys[j], b.keys[i]
	b.w[i], b.w[j] = b.w[j], b.w[i]
}

// ContentHash is a digest of what a snapshot says runs — workloads,
// containers, images, digests and failures — without pod counts and start
// times, so that scaling or restarts alone do not make a new snapshot.
func (s Snapshot) ContentHash() string {
	h := sha256.New()
	for _, w := range s.Workloads {
		h.Write([]byte(w.Key() + "\x00" + w.Failed + "\x00"))
		for _, c := range w.Containers {
			h.Write([]byte(c.Name + "\x00" + c.Image + "\x00" + c.Digest + "\x00"))
		}
		h.Write([]byte{0xff})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Digests returns every distinct digest the snapshot runs.
func (s Snapshot) Digests() []string {
	seen := map[string]bool{}
	var out []string
	for _, w := range s.Workloads {
		for _, c := range w.Containers {
			if c.Digest != "" && !seen[c.Digest] {
				seen[c.Digest] = true
				out = append(out, c.Digest)
			}
		}
	}
	sort.Strings(out)
	return out
}

// DigestFromImageID extracts the content digest from a container status's
// imageID (docker-pullable://repo@sha256:…, sha256:…, containerd refs…):
// its last 64 hex characters, or "" when there are none.
func DigestFromImageID(imageID string) string {
	i := strings.LastIndex(imageID, "sha256:")
	if i < 0 {
		return ""
	}
	hexPart := imageID[i+len("sha256:"):]
	if len(hexPart) != 64 {
		return ""
	}
	for _, c := range hexPart {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return ""
		}
	}
	return "sha256:" + hexPart
}
