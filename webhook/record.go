package webhook

import "github.com/vouch-dev/vouch/policy"

// Record is the journal entry body of an admission decision (entry kind
// "admission", key "admission:<uid>").
type Record struct {
	UID         string   `json:"uid"`
	Operation   string   `json:"operation"`
	APIVersion  string   `json:"api_version"` // group/version of the object
	Kind        string   `json:"kind"`
	SubResource string   `json:"sub_resource,omitempty"`
	Namespace   string   `json:"namespace"`
	Name        string   `json:"name"`
	User        string   `json:"user"`
	Groups      []string `json:"groups,omitempty"`
	// Labels and Annotations of the workload, as the policy saw them (but
	// kubectl's last-applied-configuration), so that a decision can be
	// replayed with another policy.
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// ConfigurationItem is the workload's vouch.dev/configuration-item, on
	// the object or its pod template.
	ConfigurationItem string `json:"configuration_item,omitempty"`
	// NamespaceLabels and NamespaceAnnotations are the namespace's labels
	// and vouch.dev/ annotations, as the cluster had them (none when Vouch
	// does not watch the cluster).
	NamespaceLabels      map[string]string `json:"namespace_labels,omitempty"`
	NamespaceAnnotations map[string]string `json:"namespace_annotations,omitempty"`
	Environment          string            `json:"environment"`
	Images               []RecordImage     `json:"images"`
	Allowed              bool              `json:"allowed"`
	// Mode is the environment's enforcement mode when it is not enforce.
	// PolicyDenied is set when the policy denied (or could not decide) but
	// the mode (warn, audit) admitted the change.
	Mode         string `json:"mode,omitempty"`
	PolicyDenied bool   `json:"policy_denied,omitempty"`
	// BreakGlass is the reason of an honoured vouch.dev/break-glass
	// annotation: the change was admitted whatever the policy said.
	BreakGlass string   `json:"break_glass,omitempty"`
	Messages   []string `json:"messages,omitempty"` // why it was denied
	Warnings   []string `json:"warnings,omitempty"`
	// Error is set when Vouch could not decide and refused the change.
	Error         string   `json:"error,omitempty"`
	PolicyVersion string   `json:"policy_version"`
	Evidence      []uint64 `json:"evidence"` // journal indices of the evidence used
	// Violations are the Messages with the rule and requirement each names
	// (for vouch assert; not journaled).
	Violations []policy.Violation `json:"-"`
	// input is the policy input the decision was made from (for Explain).
	input *policy.Input
}

// RecordImage is one container image of a decision.
type RecordImage struct {
	Container     string `json:"container"`
	ContainerType string `json:"container_type"`
	Image         string `json:"image"`
	Digest        string `json:"digest,omitempty"`
	// Allowed is true when the image was exempt through the allow-list or
	// an exemption; Exemption is then the exemption's id.
	Allowed   bool   `json:"allowed,omitempty"`
	Exemption uint64 `json:"exemption,omitempty"`
}
