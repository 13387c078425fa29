package policy

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"

	"github.com/vouch-dev/vouch/journal"
)

// KindPolicy is the journal entry kind of policy changes: a new bundle, or
// an environment's definition or enforcement mode changed.
const KindPolicy journal.Kind = "policy"

// State is what decides admissions: the bundle's files, each environment's
// mode, and each environment's definition as configured (requirements,
// namespaces, allow-list, freeze windows, break-glass).
type State struct {
	Version string            `json:"version"`
	Files   map[string]string `json:"files"` // module name → sha256
	Modes   map[string]string `json:"modes"` // environment → enforce, warn or audit
	// Environments is absent from entries journaled before Vouch recorded
	// the definitions.
	Environments map[string]Environment `json:"environments,omitempty"`
}

// Change is a policy journal entry: the state now, and what changed since
// the previous one.
type Change struct {
	State
	PreviousVersion string            `json:"previous_version,omitempty"`
	Added           []string          `json:"added,omitempty"`
	Removed         []string          `json:"removed,omitempty"`
	Modified        []string          `json:"modified,omitempty"`
	ModeChanges     map[string]string `json:"mode_changes,omitempty"` // environment → "warn -> enforce"
	// EnvironmentChanges names the environments added, removed or
	// redefined (a requirement, namespace, allow-list entry, freeze window
	// or break-glass changed; the mode is in ModeChanges) since the
	// previous entry.
	EnvironmentChanges []string `json:"environment_changes,omitempty"`
}

// CurrentState is the state of an engine and environments.
func CurrentState(e *Engine, envs *Environments) State {
	st := State{Version: e.Version(), Files: e.FileDigests(), Modes: map[string]string{}, Environments: map[string]Environment{}}
	for _, env := range envs.All() {
		st.Modes[env.Name] = env.EffectiveMode()
		st.Environments[env.Name] = env
	}
	return st
}

// Compare says what changed from prev (nil: nothing journaled yet) to cur,
// and whether anything did.
func Compare(prev *State, cur State) (Change, bool) {
	c := Change{State: cur}
	if prev == nil {
		c.Added = slices.Sorted(maps.Keys(cur.Files))
		c.EnvironmentChanges = slices.Sorted(maps.Keys(cur.Environments))
		return c, true
	}
	c.PreviousVersion = prev.Version
	for name, sum := range cur.Files {
		switch old, ok := prev.Files[name]; {
		case !ok:
			c.Added = append(c.Added, name)
		case old != sum:
			c.Modified = append(c.Modified, name)
		}
	}
	for name := range prev.Files {
		if _, ok := cur.Files[name]; !ok {
			c.Removed = append(c.Removed, name)
		}
	}
	for env, mode := range cur.Modes {
		if old := prev.Modes[env]; old != mode {
			if c.ModeChanges == nil {
				c.ModeChanges = map[string]string{}
			}
			if old == "" {
				old = "(new environment)"
			}
			c.ModeChanges[env] = old + " -> " + mode
		}
	}
	for name := range cur.Environments {
		if old, ok := prev.Environments[name]; !ok || !sameDefinition(old, cur.Environments[name]) {
			c.EnvironmentChanges = append(c.EnvironmentChanges, name)
		}
	}
	for name := range prev.Environments {
		if _, ok := cur.Environments[name]; !ok {
			c.EnvironmentChanges = append(c.EnvironmentChanges, name)
		}
	}
	slices.Sort(c.Added)
	slices.Sort(c.Removed)
	slices.Sort(c.Modified)
	slices.Sort(c.EnvironmentChanges)
	changed := prev.Version != cur.Version || len(c.ModeChanges) > 0 || len(c.EnvironmentChanges) > 0
	return c, changed
}

// sameDefinition compares two definitions but for the mode (ModeChanges
// says that) as journaled: one read back from the journal has its times in
// a fixed zone, and nil and empty lists alike.
func sameDefinition(a, b Environment) bool {
	a.Mode, b.Mode = "", ""
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}
