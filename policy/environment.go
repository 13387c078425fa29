package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Environment is a deployment target (prod, staging, …): the namespaces it
// claims, the evidence its workloads need and the images exempt from it.
type Environment struct {
	Name       string       `json:"name"`
	Namespaces []string     `json:"namespaces,omitempty"`
	Require    Requirements `json:"require"`
	// Allow lists image names (glob patterns, '*' matches any characters)
	// exempt from the requirements. Every use is journaled.
	Allow []string `json:"allow,omitempty"`
	// Mode is what a denial does: enforce (refuse the change, the
	// default), warn (admit it, kubectl prints the messages as warnings)
	// or audit (admit it silently). Every decision is journaled as made.
	Mode string `json:"mode,omitempty"`
	// Freeze lists change-freeze windows: changes are denied while one is
	// active, unless the release approval in force is an emergency one.
	Freeze []FreezeWindow `json:"freeze,omitempty"`
	// BreakGlass honours the vouch.dev/break-glass annotation: the change
	// is admitted, journaled with who and why, and an alert is sent.
	BreakGlass bool `json:"break_glass,omitempty"`
}

// Enforcement modes.
const (
	ModeEnforce = "enforce"
	ModeWarn    = "warn"
	ModeAudit   = "audit"
)

// EffectiveMode is the environment's mode, enforce when unset.
func (e Environment) EffectiveMode() string {
	if e.Mode == "" {
		return ModeEnforce
	}
	return e.Mode
}

// Requirements is what the built-in policy checks for each image.
type Requirements struct {
	Digest     bool `json:"digest"`     // pinned by digest
	Provenance bool `json:"provenance"` // build reported by CI
	// Source: the build report names its repository and commit (a name
	// and a digest alone do not say where an artifact came from).
	Source       bool     `json:"source,omitempty"`
	Attestations []string `json:"attestations,omitempty"` // each present, latest passed
	// VerifiedAttestations are attestations whose latest must also be
	// signed by a trusted key (trusted_keys).
	VerifiedAttestations []string `json:"verified_attestations,omitempty"`
	Approval             bool     `json:"approval"` // valid release approval
	// Registries are the repositories images may come from (patterns,
	// '*' matches any characters): "registry.example.com/*".
	Registries []string `json:"registries,omitempty"`
	// NoLatest refuses images tagged :latest, or neither tagged nor pinned.
	NoLatest bool `json:"no_latest,omitempty"`
	// MaxAge bounds the age of the latest attestation of a name at the
	// time of the decision: {"security-scan": "168h"}.
	MaxAge map[string]Duration `json:"max_age,omitempty"`
	// FourEyes refuses an artifact approved by the author of the commit
	// it was built from.
	FourEyes bool `json:"four_eyes,omitempty"`
	// CodeReview requires the commit an artifact was built from to have
	// been merged through a reviewed pull or merge request (vouch attest
	// pr).
	CodeReview *CodeReview `json:"code_review,omitempty"`
	// ChangeRequest requires an approved change request of the change
	// system, read by Vouch (vouch attest change), whose planned window
	// holds the time of the change.
	ChangeRequest *ChangeRequest `json:"change_request,omitempty"`
}

// ChangeRequest is the change_request requirement: the latest attestation
// named Attestation (default "change-request") is a change request Vouch
// read from the change system, approved, in one of States (default
// scheduled and implement), and the change happens within its planned
// window. With MatchConfigurationItem, the change is also for the
// configuration item named in the vouch.dev/configuration-item annotation
// of the workload's namespace or, when that names none, of the workload
// (the change's own CI or one of its affected CIs).
type ChangeRequest struct {
	Attestation            string   `json:"attestation"`
	States                 []string `json:"states"`
	MatchConfigurationItem bool     `json:"match_configuration_item"`
}

// ConfigurationItemAnnotation names, on a namespace or a workload, the
// configuration item in the CMDB that change requests must be for under
// match_configuration_item.
const ConfigurationItemAnnotation = "vouch.dev/configuration-item"

// CodeReview is the code_review requirement: the latest attestation named
// Attestation (default "code-review") is a review from the forge (type
// pull-request) with at least MinApprovals (default 1) approvers other
// than the request's author. The minimum is the environment's, whatever
// the pipeline asked for.
type CodeReview struct {
	Attestation  string `json:"attestation"`
	MinApprovals int    `json:"min_approvals"`
	// Branches, when given, are the branches the reviewed request must
	// have been merged into (a review of a merge into a feature branch
	// does not pass for a release).
	Branches []string `json:"branches,omitempty"`
	// Verified requires the review Vouch read from the forge itself
	// (forges, POST /reviews), not one a pipeline reported.
	Verified bool `json:"verified,omitempty"`
}

// Duration is a time.Duration written as "168h" in configuration and in
// the policy input.
type Duration time.Duration

// UnmarshalJSON accepts a Go duration string; "7d" style days too.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`want a duration such as "168h" or "7d"`)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// ParseDuration parses a Go duration or a number of days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days >= 0 {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("want a duration such as \"168h\" or \"7d\", got %q", s)
	}
	return v, nil
}

// DefaultEnvironmentName is the environment for namespaces no other
// environment claims, unless the configuration names another.
const DefaultEnvironmentName = "default"

// BuiltinDefault is the default environment when the configuration does not
// define one: images must be pinned by digest and have provenance.
func BuiltinDefault(name string) Environment {
	return Environment{Name: name, Require: Requirements{Digest: true, Provenance: true}}
}

// Environments maps namespaces to environments.
type Environments struct {
	list []Environment
	def  Environment
}

var (
	envNameRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$`)
	nsPatternRE = regexp.MustCompile(`^[a-z0-9*?]([-a-z0-9*?]{0,61}[a-z0-9*?])?$`)
)

// NewEnvironments checks the configured environments and returns the
// resolver. defaultName names the environment for unclaimed namespaces; if
// no environment of that name is listed, BuiltinDefault is used. Errors name
// the offending field, e.g. "environments[1].namespaces[0]".
func NewEnvironments(defaultName string, list []Environment) (*Environments, error) {
	if defaultName == "" {
		defaultName = DefaultEnvironmentName
	}
	if !envNameRE.MatchString(defaultName) {
		return nil, fmt.Errorf("default_environment: %q is not a valid environment name (lower-case letters, digits, '.', '_', '-')", defaultName)
	}
	e := &Environments{def: BuiltinDefault(defaultName)}
	names := map[string]int{}
	claimed := map[string]string{}
	for i, env := range list {
		field := fmt.Sprintf("environments[%d]", i)
		if !envNameRE.MatchString(env.Name) {
			return nil, fmt.Errorf("%s.name: %q is not a valid environment name (lower-case letters, digits, '.', '_', '-')", field, env.Name)
		}
		if j, dup := names[env.Name]; dup {
			return nil, fmt.Errorf("%s.name: %q is already defined by environments[%d]", field, env.Name, j)
		}
		names[env.Name] = i
		for k, ns := range env.Namespaces {
			if !nsPatternRE.MatchString(ns) {
				return nil, fmt.Errorf("%s.namespaces[%d]: %q is not a namespace name or pattern ('*' and '?' may stand for characters)", field, k, ns)
			}
			if other, dup := claimed[ns]; dup {
				return nil, fmt.Errorf("%s.namespaces[%d]: %q is already claimed by environment %q", field, k, ns, other)
			}
			claimed[ns] = env.Name
		}
		for k, a := range env.Require.Attestations {
			if !envNameRE.MatchString(a) {
				return nil, fmt.Errorf("%s.require.attestations[%d]: %q is not a valid attestation name", field, k, a)
			}
		}
		for k, a := range env.Require.VerifiedAttestations {
			if !envNameRE.MatchString(a) {
				return nil, fmt.Errorf("%s.require.verified_attestations[%d]: %q is not a valid attestation name", field, k, a)
			}
		}
		for k, r := range env.Require.Registries {
			if r == "" || strings.ContainsAny(r, " \t@") {
				return nil, fmt.Errorf("%s.require.registries[%d]: %q is not a repository pattern (e.g. registry.example.com/*)", field, k, r)
			}
		}
		if cr := env.Require.CodeReview; cr != nil {
			if cr.Attestation == "" {
				cr.Attestation = "code-review"
			}
			if cr.MinApprovals == 0 {
				cr.MinApprovals = 1
			}
			if !envNameRE.MatchString(cr.Attestation) || cr.MinApprovals < 1 || slices.Contains(cr.Branches, "") {
				return nil, fmt.Errorf("%s.require.code_review: want {attestation: <name>, min_approvals: <at least 1>, branches: [<branch>…]}", field)
			}
		}
		if c := env.Require.ChangeRequest; c != nil {
			if c.Attestation == "" {
				c.Attestation = "change-request"
			}
			if len(c.States) == 0 {
				c.States = []string{"scheduled", "implement"}
			}
			if !envNameRE.MatchString(c.Attestation) || slices.Contains(c.States, "") {
				return nil, fmt.Errorf("%s.require.change_request: want {attestation: <name>, states: [<state>…], match_configuration_item: <bool>} (states such as scheduled, implement)", field)
			}
		}
		for name, d := range env.Require.MaxAge {
			if !envNameRE.MatchString(name) || d <= 0 {
				return nil, fmt.Errorf("%s.require.max_age: %q: want an attestation name and a positive duration", field, name)
			}
		}
		switch env.Mode {
		case "", ModeEnforce, ModeWarn, ModeAudit:
		default:
			return nil, fmt.Errorf("%s.mode: %q is not enforce, warn or audit", field, env.Mode)
		}
		for k, w := range env.Freeze {
			if err := w.check(); err != nil {
				return nil, fmt.Errorf("%s.freeze[%d]: %w", field, k, err)
			}
		}
		for k, a := range env.Allow {
			if a == "" || strings.ContainsAny(a, " \t@") {
				return nil, fmt.Errorf("%s.allow[%d]: %q is not an image name pattern (no tag or digest; '*' matches any characters)", field, k, a)
			}
		}
		if env.Name == defaultName {
			if len(env.Namespaces) > 0 {
				return nil, fmt.Errorf("%s.namespaces: the default environment %q takes every unclaimed namespace and lists none", field, env.Name)
			}
			e.def = env
			continue
		}
		// An environment without namespaces is one Vouch does not admit
		// into: snapshots of it come from reporters (vouch snapshot …).
		e.list = append(e.list, env)
	}
	return e, nil
}

// For returns the environment that claims namespace: the first configured
// environment with a matching pattern, or the default one.
func (e *Environments) For(namespace string) Environment {
	for _, env := range e.list {
		for _, p := range env.Namespaces {
			if ok, _ := path.Match(p, namespace); ok {
				return env
			}
		}
	}
	return e.def
}

// Admitted reports whether Vouch admits changes into environment name
// itself: the default environment and those that claim namespaces. The
// others are reported from clusters Vouch does not run in.
func (e *Environments) Admitted(name string) bool {
	if name == e.def.Name {
		return true
	}
	env, ok := e.Named(name)
	return ok && len(env.Namespaces) > 0
}

// Names returns the names of all environments, the default one first.
func (e *Environments) Names() []string {
	var names []string
	for _, env := range e.All() {
		names = append(names, env.Name)
	}
	return names
}

// All returns every environment, the default one first.
func (e *Environments) All() []Environment {
	return append([]Environment{e.def}, e.list...)
}

// Named returns the environment called name.
func (e *Environments) Named(name string) (Environment, bool) {
	for _, env := range e.All() {
		if env.Name == name {
			return env, true
		}
	}
	return Environment{}, false
}

// RequirementStatus says whether one requirement is met, and if not, why.
type RequirementStatus struct {
	Requirement string   `json:"requirement"`
	Met         bool     `json:"met"`
	Messages    []string `json:"messages,omitempty"`
}

// Checklist lists an environment's requirements, in the order of the
// configuration, each met unless a violation names it; violations of
// other rules (custom Rego) follow, under their requirement or "policy".
func Checklist(env Environment, violations []Violation) []RequirementStatus {
	r := env.Require
	var names []string
	if r.Digest {
		names = append(names, "digest")
	}
	if len(r.Registries) > 0 {
		names = append(names, "registries")
	}
	if r.NoLatest {
		names = append(names, "no latest")
	}
	if r.Provenance {
		names = append(names, "provenance")
	}
	if r.Source {
		names = append(names, "source")
	}
	for _, a := range r.Attestations {
		names = append(names, "attestation "+a)
	}
	for _, a := range r.VerifiedAttestations {
		names = append(names, "verified attestation "+a)
	}
	for _, a := range slices.Sorted(maps.Keys(r.MaxAge)) {
		names = append(names, "fresh "+a)
	}
	if r.Approval {
		names = append(names, "approval")
	}
	if r.FourEyes {
		names = append(names, "four eyes")
	}
	if r.CodeReview != nil {
		names = append(names, "code review")
	}
	if r.ChangeRequest != nil {
		names = append(names, "change request")
	}
	if len(env.Freeze) > 0 {
		names = append(names, "no change freeze")
	}
	out := make([]RequirementStatus, len(names))
	index := map[string]int{}
	for i, n := range names {
		out[i] = RequirementStatus{Requirement: n, Met: true}
		index[n] = i
	}
	for _, v := range violations {
		n := v.Requirement
		if n == "" {
			n = "policy"
		}
		i, ok := index[n]
		if !ok {
			i = len(out)
			index[n] = i
			out = append(out, RequirementStatus{Requirement: n, Met: true})
		}
		out[i].Met = false
		out[i].Messages = append(out[i].Messages, v.Msg)
	}
	return out
}
