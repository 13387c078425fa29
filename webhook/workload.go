package webhook

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vouch-dev/vouch/policy"
)

// Container is one container of a workload's pod spec.
type Container struct {
	Name  string
	Image string
	Type  string // policy.ContainerRegular, ContainerInit or ContainerEphemeral
}

// Workload is what the webhook evaluates: an object and its containers.
type Workload struct {
	Kind        string
	Name        string
	Namespace   string
	Labels      map[string]string
	Annotations map[string]string
	Containers  []Container
	// BreakGlass is the reason given in the vouch.dev/break-glass
	// annotation, if any; ConfigurationItem is its
	// vouch.dev/configuration-item.
	BreakGlass, ConfigurationItem string
}

// workloadKinds are the kinds whose pod templates are evaluated, by API
// group. Versions are not checked: the pod template has the same shape in
// every served version.
var workloadKinds = map[string]map[string]bool{
	"":      {"Pod": true},
	"apps":  {"Deployment": true, "ReplicaSet": true, "StatefulSet": true, "DaemonSet": true},
	"batch": {"Job": true, "CronJob": true},
}

// IsWorkload reports whether group/kind is a kind Vouch evaluates.
func IsWorkload(group, kind string) bool { return workloadKinds[group][kind] }

// workloadGroup returns the API group of a workload kind.
func workloadGroup(kind string) (string, bool) {
	for group, kinds := range workloadKinds {
		if kinds[kind] {
			return group, true
		}
	}
	return "", false
}

// object decodes the fields Vouch reads from any workload kind, without
// decoding the rest of the object.
type object struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		podSpec
		Template    *podTemplate `json:"template"`
		JobTemplate *struct {
			Spec struct {
				Template podTemplate `json:"template"`
			} `json:"spec"`
		} `json:"jobTemplate"`
	} `json:"spec"`
}

type objectMeta struct {
	Name         string            `json:"name"`
	GenerateName string            `json:"generateName"`
	Namespace    string            `json:"namespace"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
}

type podTemplate struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec podSpec `json:"spec"`
}

// BreakGlassAnnotation asks for a change to be admitted whatever the
// policy says, for the reason it holds, in environments that allow it.
const BreakGlassAnnotation = "vouch.dev/break-glass"

type podSpec struct {
	InitContainers      []container `json:"initContainers"`
	Containers          []container `json:"containers"`
	EphemeralContainers []container `json:"ephemeralContainers"`
}

type container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// ExtractWorkload decodes a workload object of the given kind and lists the
// images of all its containers: init containers, containers and ephemeral
// containers, in that order.
func ExtractWorkload(kind string, raw []byte) (Workload, error) {
	var obj object
	if err := json.Unmarshal(raw, &obj); err != nil {
		return Workload{}, fmt.Errorf("decode %s: %w", kind, err)
	}
	return obj.workload(kind)
}

// workload is the Workload of a decoded object of the given kind.
func (obj *object) workload(kind string) (Workload, error) {
	w := Workload{
		Kind: kind, Name: obj.Metadata.Name, Namespace: obj.Metadata.Namespace,
		Labels: obj.Metadata.Labels, Annotations: obj.Metadata.Annotations,
	}
	if w.Name == "" && obj.Metadata.GenerateName != "" {
		w.Name = obj.Metadata.GenerateName + "*"
	}
	var tmpl *podTemplate
	switch kind {
	case "Pod":
		tmpl = &podTemplate{Spec: obj.Spec.podSpec}
	case "CronJob":
		if obj.Spec.JobTemplate == nil {
			return Workload{}, fmt.Errorf("decode CronJob: spec.jobTemplate is missing")
		}
		tmpl = &obj.Spec.JobTemplate.Spec.Template
	default:
		if obj.Spec.Template == nil {
			return Workload{}, fmt.Errorf("decode %s: spec.template is missing", kind)
		}
		tmpl = obj.Spec.Template
	}
	w.Containers = tmpl.Spec.containers()
	// On the object, or on its pod template so that the pods a controller
	// creates from it carry it too (and charts that set only pod
	// annotations can set them).
	w.BreakGlass = cmp.Or(obj.Metadata.Annotations[BreakGlassAnnotation], tmpl.Metadata.Annotations[BreakGlassAnnotation])
	w.ConfigurationItem = strings.TrimSpace(cmp.Or(obj.Metadata.Annotations[policy.ConfigurationItemAnnotation], tmpl.Metadata.Annotations[policy.ConfigurationItemAnnotation]))
	return w, nil
}

func (s *podSpec) containers() []Container {
	out := make([]Container, 0, len(s.InitContainers)+len(s.Containers)+len(s.EphemeralContainers))
	for _, c := range s.InitContainers {
		out = append(out, Container{Name: c.Name, Image: c.Image, Type: policy.ContainerInit})
	}
	for _, c := range s.Containers {
		out = append(out, Container{Name: c.Name, Image: c.Image, Type: policy.ContainerRegular})
	}
	for _, c := range s.EphemeralContainers {
		out = append(out, Container{Name: c.Name, Image: c.Image, Type: policy.ContainerEphemeral})
	}
	return out
}

// addedEphemeral returns the ephemeral containers of w that old does not
// have: what a pods/ephemeralcontainers update adds.
func addedEphemeral(w, old Workload) []Container {
	had := map[string]bool{}
	for _, c := range old.Containers {
		if c.Type == policy.ContainerEphemeral {
			had[c.Name] = true
		}
	}
	var out []Container
	for _, c := range w.Containers {
		if c.Type == policy.ContainerEphemeral && !had[c.Name] {
			out = append(out, c)
		}
	}
	return out
}
