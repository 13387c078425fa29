package webhook

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/policy"
)

// recordInput is the policy input of a decision as far as its record tells:
// the request, the environment and the workload; the artifacts come from
// evaluate.
func recordInput(rec Record, env policy.Environment) *policy.Input {
	return &policy.Input{
		Request: policy.Request{
			UID: rec.UID, Operation: rec.Operation, Kind: rec.Kind, Namespace: rec.Namespace, Name: rec.Name,
			User: policy.User{Username: rec.User, Groups: nonNil(rec.Groups)},
		},
		Environment: policy.NewInputEnvironment(env),
		Namespace:   policy.Namespace{Name: rec.Namespace, Labels: nonNilMap(rec.NamespaceLabels), Annotations: nonNilMap(rec.NamespaceAnnotations)},
		Workload: policy.Workload{
			Kind: rec.Kind, Name: rec.Name, Namespace: rec.Namespace,
			Labels: nonNilMap(rec.Labels), Annotations: nonNilMap(rec.Annotations), ConfigurationItem: rec.ConfigurationItem,
		},
	}
}

// Redecide decides a journaled admission again, with policy p, as the
// webhook decided it then: the same request, workload and container images
// (from rec), the configuration of its environment as it is now
// (requirements, allow-list, change freezes), the exemptions the decision
// used, and the evidence as it was at the decision, taken from found — the
// evidence recorded now for the decision's digests. Evidence as it was
// means the records journaled before the decision (id below index) and, of
// the digests the decision looked up, only the records it used
// (rec.Evidence): a record committed while the decision was being made does
// not count. Rego sees at, the decision's time, as the current time.
//
// The record returned has rec's request and workload and the policy's
// verdict: Allowed is whether p denies, whatever the environment's mode or
// a break-glass annotation would make of it; its Error is left empty: a
// policy that cannot decide returns the error, as decide does. An
// environment that is no longer configured is ErrUnknownEnvironment.
func (h *Handler) Redecide(ctx context.Context, p Decider, rec Record, index uint64, at time.Time, found map[string]evidence.Evidence) (Record, error) {
	env, ok := h.cfg.Environments.Named(rec.Environment)
	if !ok {
		return rec, fmt.Errorf("%w %q (configured: %s)", ErrUnknownEnvironment, rec.Environment, strings.Join(h.cfg.Environments.Names(), ", "))
	}
	containers := make([]Container, len(rec.Images))
	for i, img := range rec.Images {
		containers[i] = Container{Name: img.Container, Image: img.Image, Type: img.ContainerType}
	}
	asOf := evidenceAsOf{found: found, before: index, images: rec.Images, used: rec.Evidence}
	exemption := func(i int, _ Image) uint64 { return rec.Images[i].Exemption } // as it was: revoked since or not
	out := rec
	out.Images, out.Evidence = make([]RecordImage, 0, len(containers)), []uint64{}
	out.Allowed, out.Messages, out.Warnings, out.Violations, out.Error, out.PolicyVersion = false, nil, nil, nil, "", ""
	out.Mode, out.PolicyDenied = "", false
	err := h.evaluate(ctx, p, &out, recordInput(out, env), containers, env, at, asOf, exemption)
	return out, err
}

// PolicyAllowed reports whether the policy admitted the journaled
// decision rec: Allowed, unless only the environment's mode or a
// break-glass annotation let the change in.
func (rec Record) PolicyAllowed() bool { return rec.Allowed && !rec.PolicyDenied }

// evidenceAsOf serves a replayed decision the evidence it could see (see
// Redecide).
type evidenceAsOf struct {
	found  map[string]evidence.Evidence
	before uint64        // the decision's journal index
	images []RecordImage // the decision's images: which digests it looked up
	used   []uint64      // the evidence it used
}

// Lookup implements EvidenceLookup.
func (e evidenceAsOf) Lookup(_ context.Context, digests []string) (map[string]evidence.Evidence, error) {
	out := make(map[string]evidence.Evidence, len(digests))
	for _, d := range digests {
		ev, ok := e.found[d]
		if !ok {
			continue
		}
		looked := slices.ContainsFunc(e.images, func(img RecordImage) bool { return img.Digest == d && !img.Allowed })
		seen := func(id uint64) bool { return id < e.before && (!looked || slices.Contains(e.used, id)) }
		if ev = asOf(ev, seen); !ev.Empty() {
			out[d] = ev
		}
	}
	return out, nil
}

// asOf returns the records of ev that seen keeps, sharing ev's slices when
// it keeps them all.
func asOf(ev evidence.Evidence, seen func(id uint64) bool) evidence.Evidence {
	if ev.Artifact != nil && !seen(ev.Artifact.ID) {
		ev.Artifact = nil
	}
	ev.Attestations = keep(ev.Attestations, func(a evidence.Attestation) bool { return seen(a.ID) })
	ev.Approvals = keep(ev.Approvals, func(a evidence.Approval) bool { return seen(a.ID) })
	return ev
}

// keep returns the elements of s that ok keeps: s itself when that is
// all of them, else a new slice.
func keep[T any](s []T, ok func(T) bool) []T {
	for i := range s {
		if ok(s[i]) {
			continue
		}
		out := slices.Clone(s[:i])
		for _, x := range s[i+1:] {
			if ok(x) {
				out = append(out, x)
			}
		}
		return out
	}
	return s
}

// Artifacts returns the policy's view of each image of the journaled
// decision rec as the decision had it: the evidence it used (the records
// rec.Evidence names, taken from found) summarised as of at, its time — the
// latest attestation of each name, the approval in force — for the console
// to explain the decision. Allow-listed and exempt images carry no
// evidence, as in the decision.
func (rec Record) Artifacts(found map[string]evidence.Evidence, at time.Time) []policy.ArtifactInput {
	in := &policy.Input{Artifacts: make([]policy.ArtifactInput, len(rec.Images))}
	used := func(id uint64) bool { return slices.Contains(rec.Evidence, id) }
	for i, ri := range rec.Images {
		img, _ := ParseImage(ri.Image)
		a := policy.ArtifactInput{Container: ri.Container, ContainerType: ri.ContainerType, Image: ri.Image, Name: img.Name, Tag: img.Tag,
			Digest: ri.Digest, Allowed: ri.Allowed, Attestations: []policy.AttestationInput{}, Approvals: []policy.ApprovalInput{}}
		if ev, ok := found[ri.Digest]; ok && !ri.Allowed && ri.Digest != "" {
			addEvidence(&a, asOf(ev, used), rec.Environment)
		}
		in.Artifacts[i] = a
	}
	in.Summarize(at)
	return in.Artifacts
}
