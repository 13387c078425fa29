package drift

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/evidence"
)

// Compliance statuses of a running artifact, worst first.
const (
	StatusFailed       = "failed"       // the workload is failing: CrashLoopBackOff, ImagePullBackOff, a stuck rollout
	StatusUndocumented = "undocumented" // running, but no admitted decision for this digest here: the webhook was bypassed
	StatusUnknown      = "unknown"      // no provenance: nobody reported building it
	StatusNonCompliant = "non-compliant"
	StatusCompliant    = "compliant"
	StatusExempt       = "exempt" // in a namespace exempt from admission control: recorded, not evaluated
)

// Statuses lists every status, worst first.
var Statuses = []string{StatusFailed, StatusUndocumented, StatusUnknown, StatusNonCompliant, StatusCompliant, StatusExempt}

// ExemptEnvironment is where snapshots put the workloads of the namespaces
// exempt from admission control (kube-system, Vouch's own): what runs
// there is recorded, so it can be asked about, but never evaluated. No
// configured environment may have this name.
const ExemptEnvironment = "exempt"

// ArtifactStatus is the compliance of one running container image.
type ArtifactStatus struct {
	Namespace string   `json:"namespace"`
	Workload  string   `json:"workload"` // Kind/name
	Container string   `json:"container"`
	Image     string   `json:"image"`
	Digest    string   `json:"digest,omitempty"`
	Status    string   `json:"status"`   // the worst of Statuses
	Statuses  []string `json:"statuses"` // every status that applies
	Reasons   []string `json:"reasons,omitempty"`
}

// Report is the compliance of everything running in an environment.
type Report struct {
	Environment string           `json:"environment"`
	AsOf        time.Time        `json:"as_of"`
	Counts      map[string]int   `json:"counts"` // artifacts by status
	Artifacts   []ArtifactStatus `json:"artifacts"`
}

// Assessment is what the admission policy says of a workload now.
type Assessment struct {
	Allowed  bool
	Messages []string
}

// Assessor evaluates the admission policy for a workload object in an
// environment, as the webhook would, without recording anything.
type Assessor interface {
	Assess(ctx context.Context, environment, kind string, object []byte) (Assessment, error)
}

// AdmittedLookup tells which digests have an admitted decision in an
// environment.
type AdmittedLookup interface {
	Admitted(ctx context.Context, env string, digests []string) (map[string]uint64, error)
}

// Checker evaluates compliance.
type Checker struct {
	Evidence evidence.Lookuper
	Admitted AdmittedLookup
	Assessor Assessor
	// Reported tells the environments Vouch does not admit into, whose
	// snapshots come from `vouch snapshot`: there, a release approval for
	// the environment documents a deployment as an admission would.
	Reported func(env string) bool
}

// Check evaluates every container of the snapshot: whether its workload
// fails, whether its digest was admitted here, has provenance, and meets
// the environment's requirements now.
func (c Checker) Check(ctx context.Context, s Snapshot) (Report, error) {
	r := Report{Environment: s.Environment, AsOf: s.Time, Counts: map[string]int{}, Artifacts: []ArtifactStatus{}}
	for _, st := range Statuses {
		r.Counts[st] = 0
	}
	if s.Environment == ExemptEnvironment {
		for _, w := range s.Workloads {
			for _, ct := range w.Containers {
				r.Artifacts = append(r.Artifacts, ArtifactStatus{Namespace: w.Namespace, Workload: w.Kind + "/" + w.Name, Container: ct.Name,
					Image: ct.Image, Digest: ct.Digest, Status: StatusExempt, Statuses: []string{StatusExempt},
					Reasons: []string{"namespace " + w.Namespace + " is exempt from admission control (exempt_namespaces): not evaluated"}})
			}
		}
		r.Counts[StatusExempt] = len(r.Artifacts)
		return r, nil
	}
	digests := s.Digests()
	found, err := c.Evidence.Lookup(ctx, digests)
	if err != nil {
		return r, fmt.Errorf("compliance: evidence: %w", err)
	}
	admitted, err := c.Admitted.Admitted(ctx, s.Environment, digests)
	if err != nil {
		return r, fmt.Errorf("compliance: admitted: %w", err)
	}
	reported := c.Reported != nil && c.Reported(s.Environment)
	assessments, err := c.assessAll(ctx, s)
	if err != nil {
		return r, err
	}
	for i, w := range s.Workloads {
		assessment := assessments[i]
		for _, ct := range w.Containers {
			a := ArtifactStatus{Namespace: w.Namespace, Workload: w.Kind + "/" + w.Name, Container: ct.Name, Image: ct.Image, Digest: ct.Digest}
			if w.Failed != "" {
				a.Statuses = append(a.Statuses, StatusFailed)
				a.Reasons = append(a.Reasons, "the workload is failing: "+w.Failed)
			}
			_, documented := admitted[ct.Digest]
			if reported && !documented {
				documented = approved(found[ct.Digest], s.Environment)
			}
			switch {
			case ct.Digest == "":
				a.Statuses = append(a.Statuses, StatusUndocumented)
				a.Reasons = append(a.Reasons, "the runtime has not reported the digest it runs yet")
			case !documented && reported:
				a.Statuses = append(a.Statuses, StatusUndocumented)
				a.Reasons = append(a.Reasons, "no release approval for this digest in "+s.Environment+": nobody recorded deploying it")
			case !documented:
				a.Statuses = append(a.Statuses, StatusUndocumented)
				a.Reasons = append(a.Reasons, "no admitted decision for this digest in "+s.Environment+": it was deployed past the webhook")
			}
			if ev, ok := found[ct.Digest]; !ok || ev.Artifact == nil {
				a.Statuses = append(a.Statuses, StatusUnknown)
				a.Reasons = append(a.Reasons, "no provenance: no build of this digest was reported")
			}
			if msgs := messagesFor(assessment, ct.Name); len(msgs) > 0 {
				a.Statuses = append(a.Statuses, StatusNonCompliant)
				a.Reasons = append(a.Reasons, msgs...)
			}
			if len(a.Statuses) == 0 {
				a.Statuses = []string{StatusCompliant}
			}
			a.Status = a.Statuses[0]
			r.Counts[a.Status]++
			r.Artifacts = append(r.Artifacts, a)
		}
	}
	sort.SliceStable(r.Artifacts, func(i, j int) bool { return rank(r.Artifacts[i].Status) < rank(r.Artifacts[j].Status) })
	return r, nil
}

// approved reports whether the latest release decision about the digest
// for env approved it (expired or not: it documents the deployment).
func approved(ev evidence.Evidence, env string) bool {
	var latest *evidence.Approval
	for i, a := range ev.Approvals {
		if a.Environment == env && (latest == nil || !a.ApprovedAt.Before(latest.ApprovedAt)) {
			latest = &ev.Approvals[i]
		}
	}
	return latest != nil && latest.Decision == evidence.Approved
}

// KindDirectory is the kind of the workloads `vouch snapshot paths`
// reports: files on a server, not container images.
const KindDirectory = "Directory"

// assess asks the policy about a workload's containers, as a Pod of the
// workload's namespace running them. Files are not images: the admission
// policy does not apply to them.
func (c Checker) assess(ctx context.Context, env string, w Workload) (Assessment, error) {
	if c.Assessor == nil || w.Kind == KindDirectory {
		return Assessment{Allowed: true}, nil
	}
	type container struct {
		Name  string `json:"name"`
		Image string `json:"image"`
	}
	var cs []container
	for i, ct := range w.Containers {
		image := ct.Image
		if ct.Digest != "" && !hasDigest(image) {
			image = imageName(image) + "@" + ct.Digest // what runs is the digest, not the tag
		}
		name := ct.Name
		if i > 0 && w.Containers[i-1].Name == ct.Name {
			name = fmt.Sprintf("%s-%d", ct.Name, i) // two images of one container mid-rollout
		}
		cs = append(cs, container{name, image})
	}
	obj, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": w.Name, "namespace": w.Namespace},
		"spec":     map[string]any{"containers": cs},
	})
	a, err := c.Assessor.Assess(ctx, env, "Pod", obj)
	if err != nil {
		return Assessment{}, fmt.Errorf("compliance: assess %s: %w", w.Key(), err)
	}
	return a, nil
}

// assessAll asks the policy about every workload of a snapshot, on as
// many goroutines as there are processors: each is an evaluation of its
// own.
func (c Checker) assessAll(ctx context.Context, s Snapshot) ([]Assessment, error) {
	out := make([]Assessment, len(s.Workloads))
	errs := make([]error, len(s.Workloads))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(s.Workloads)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i], errs[i] = c.assess(ctx, s.Environment, s.Workloads[i])
			}
		}()
	}
	for i := range s.Workloads {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, errors.Join(errs...)
}

// messagesFor picks the policy messages about one container.
func messagesFor(a Assessment, container string) []string {
	var out []string
	prefix := fmt.Sprintf("container %q", container)
	for _, m := range a.Messages {
		if strings.HasPrefix(m, prefix) {
			out = append(out, m)
		}
	}
	return out
}

func rank(status string) int {
	for i, s := range Statuses {
		if s == status {
			return i
		}
	}
	return len(Statuses)
}

func hasDigest(image string) bool { return strings.Contains(image, "@") }

// imageName strips a tag from an image reference.
func imageName(image string) string {
	if i := strings.LastIndexByte(image, ':'); i > strings.LastIndexByte(image, '/') {
		return image[:i]
	}
	return image
}
