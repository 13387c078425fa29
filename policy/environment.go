package policy

import (
	"fmt"
	"path"
	"regexp"
	"strings"
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
}

// Requirements is what the built-in policy checks for each image.
type Requirements struct {
	Digest       bool     `json:"digest"`                 // pinned by digest
	Provenance   bool     `json:"provenance"`             // build reported by CI
	Attestations []string `json:"attestations,omitempty"` // each present, latest passed
	// VerifiedAttestations are attestations whose latest must also be
	// signed by a trusted key (trusted_keys).
	VerifiedAttestations []string `json:"verified_attestations,omitempty"`
	Approval             bool     `json:"approval"` // valid release approval
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
func Checklist(r Requirements, violations []Violation) []RequirementStatus {
	var names []string
	if r.Digest {
		names = append(names, "digest")
	}
	if r.Provenance {
		names = append(names, "provenance")
	}
	for _, a := range r.Attestations {
		names = append(names, "attestation "+a)
	}
	for _, a := range r.VerifiedAttestations {
		names = append(names, "verified attestation "+a)
	}
	if r.Approval {
		names = append(names, "approval")
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
