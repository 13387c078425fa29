package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/vouch-dev/vouch/policy"
)

// Review is the decision the webhook would make now about one object of a
// manifest, without recording anything.
type Review struct {
	APIVersion  string   `json:"api_version"`
	Kind        string   `json:"kind"`
	Namespace   string   `json:"namespace"`
	Name        string   `json:"name"`
	Environment string   `json:"environment,omitempty"`
	Allowed     bool     `json:"allowed"`
	Skipped     string   `json:"skipped,omitempty"` // why it is not evaluated: not a workload, exempt namespace
	Messages    []string `json:"messages,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
	Images      []string `json:"images,omitempty"`
}

// ErrNotAnObject is a manifest document that is not a Kubernetes object.
var ErrNotAnObject = errors.New("not a Kubernetes object")

// ReviewObject decides about a manifest object as the webhook would decide
// its creation. The object's namespace, else namespace, places it; its
// environment is environment when given, else the one that claims the
// namespace.
func (h *Handler) ReviewObject(ctx context.Context, environment, namespace string, object []byte) (Review, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(object, &meta); err != nil {
		return Review{}, fmt.Errorf("%w: %v", ErrNotAnObject, err)
	}
	if meta.Kind == "" || meta.APIVersion == "" {
		return Review{}, fmt.Errorf("%w: apiVersion and kind are required", ErrNotAnObject)
	}
	r := Review{APIVersion: meta.APIVersion, Kind: meta.Kind, Namespace: meta.Metadata.Namespace, Name: meta.Metadata.Name, Allowed: true}
	if r.Namespace == "" {
		r.Namespace = namespace
	}
	group, _, _ := strings.Cut(meta.APIVersion, "/")
	if !strings.Contains(meta.APIVersion, "/") {
		group = ""
	}
	switch {
	case !IsWorkload(group, meta.Kind):
		r.Skipped = "not a workload kind"
		return r, nil
	case slices.Contains(h.cfg.ExemptNamespaces, r.Namespace):
		r.Skipped = "exempt namespace"
		return r, nil
	}
	if environment == "" {
		environment = h.cfg.Environments.For(r.Namespace).Name
	}
	r.Environment = environment
	object, err := setNamespace(object, r.Namespace)
	if err != nil {
		return Review{}, err
	}
	rec, err := h.Assess(ctx, environment, meta.Kind, object)
	if err != nil {
		return Review{}, err
	}
	r.Allowed, r.Messages, r.Warnings = rec.Allowed, rec.Messages, rec.Warnings
	for _, img := range rec.Images {
		r.Images = append(r.Images, img.Image)
	}
	return r, nil
}

// setNamespace sets metadata.namespace, as the apiserver does for an
// object created in a namespace.
func setNamespace(object []byte, namespace string) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(object, &m); err != nil {
		return nil, err
	}
	md, _ := m["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
		m["metadata"] = md
	}
	md["namespace"] = namespace
	return json.Marshal(m)
}

// Assertion is whether an image would be admitted in an environment now,
// requirement by requirement.
type Assertion struct {
	Environment string `json:"environment"`
	Image       string `json:"image"`
	// Allowed is the policy's verdict; Mode says whether a denial is
	// enforced (enforce) or only reported (warn, audit).
	Allowed       bool                       `json:"allowed"`
	Mode          string                     `json:"mode"`
	Requirements  []policy.RequirementStatus `json:"requirements"`
	Messages      []string                   `json:"messages,omitempty"`
	Warnings      []string                   `json:"warnings,omitempty"`
	PolicyVersion string                     `json:"policy_version"`
}

// AssertOptions describe the Pod an assertion imagines: its namespace
// (default: the environment's first, when it names one) and its
// vouch.dev/configuration-item.
type AssertOptions struct {
	Namespace, ConfigurationItem string
}

// ErrNamespace is an assertion's namespace that is not one, that belongs
// to another environment, or where Vouch evaluates nothing.
var ErrNamespace = errors.New("no assertion in this namespace")

// Assert decides whether a Pod running image would be admitted in
// environment now, as the webhook would decide it.
func (h *Handler) Assert(ctx context.Context, environment, image string, opts AssertOptions) (Assertion, error) {
	env, ok := h.cfg.Environments.Named(environment)
	if !ok {
		return Assertion{}, fmt.Errorf("%w %q (configured: %s)", ErrUnknownEnvironment, environment, strings.Join(h.cfg.Environments.Names(), ", "))
	}
	namespace := opts.Namespace
	switch {
	case namespace == "":
		if len(env.Namespaces) > 0 && !strings.ContainsAny(env.Namespaces[0], "*?") {
			namespace = env.Namespaces[0]
		}
	case len(validation.IsDNS1123Label(namespace)) > 0: // as the apiserver checks namespaces' names
		return Assertion{}, fmt.Errorf("%w: %q is not a namespace's name", ErrNamespace, namespace)
	case slices.Contains(h.cfg.ExemptNamespaces, namespace):
		return Assertion{}, fmt.Errorf("%w: %s is exempt, Vouch evaluates no change there", ErrNamespace, namespace)
	case h.cfg.Environments.Admitted(environment) && h.cfg.Environments.For(namespace).Name != environment:
		return Assertion{}, fmt.Errorf("%w: %s is in %s, not %s", ErrNamespace, namespace, h.cfg.Environments.For(namespace).Name, environment)
	}
	meta := map[string]any{"name": "vouch-assert", "namespace": namespace}
	if opts.ConfigurationItem != "" {
		meta["annotations"] = map[string]string{policy.ConfigurationItemAnnotation: opts.ConfigurationItem}
	}
	pod, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Pod", "metadata": meta,
		"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": image}}},
	})
	rec, err := h.Assess(ctx, environment, "Pod", pod)
	if err != nil {
		return Assertion{}, err
	}
	return Assertion{
		Environment: environment, Image: image, Allowed: rec.Allowed, Mode: env.EffectiveMode(),
		Requirements: policy.Checklist(env, rec.Violations),
		Messages:     rec.Messages, Warnings: rec.Warnings, PolicyVersion: rec.PolicyVersion,
	}, nil
}

// Explain decides an admission request as Handle would, without recording
// it, and returns the decision (with the environment's mode and any
// break-glass applied) and the policy input it was made from. environment
// overrides the namespace's environment when set.
func (h *Handler) Explain(ctx context.Context, req *admissionv1.AdmissionRequest, environment string) (Record, *policy.Input, error) {
	env := h.cfg.Environments.For(req.Namespace)
	if environment != "" {
		var ok bool
		if env, ok = h.cfg.Environments.Named(environment); !ok {
			return Record{}, nil, fmt.Errorf("%w %q (configured: %s)", ErrUnknownEnvironment, environment, strings.Join(h.cfg.Environments.Names(), ", "))
		}
	}
	if skip := h.skipReason(req); skip != "" {
		return Record{Allowed: true, Environment: env.Name, Warnings: []string{"not evaluated: " + skip}}, nil, nil
	}
	rec, err := h.decide(ctx, req, env, h.cfg.Now(), h.cfg.Evidence, nil)
	if err != nil {
		return rec, rec.input, err
	}
	settle(&rec, env.EffectiveMode())
	return rec, rec.input, nil
}
