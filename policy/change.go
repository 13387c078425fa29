package policy

import (
	"maps"
	"slices"

	"github.com/vouch-dev/vouch/journal"
)

// KindPolicy is the journal entry kind of policy changes: a new bundle, or
// an environment's enforcement mode changed.
const KindPolicy journal.Kind = "policy"

// State is what decides admissions: the bundle's files and each
// environment's mode.
type State struct {
	Version string            `json:"version"`
	Files   map[string]string `json:"files"` // module name → sha256
	Modes   map[string]string `json:"modes"` // environment → enforce, warn or audit
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
}

// CurrentState is the state of an engine and environments.
func CurrentState(e *Engine, envs *Environments) State {
	st := State{Version: e.Version(), Files: e.FileDigests(), Modes: map[string]string{}}
	for _, env := range envs.All() {
		st.Modes[env.Name] = env.EffectiveMode()
	}
	return st
}

// Compare says what changed from prev (nil: nothing journaled yet) to cur,
// and whether anything did.
func Compare(prev *State, cur State) (Change, bool) {
	c := Change{State: cur}
	if prev == nil {
		c.Added = slices.Sorted(maps.Keys(cur.Files))
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
	slices.Sort(c.Added)
	slices.Sort(c.Removed)
	slices.Sort(c.Modified)
	changed := prev.Version != cur.Version || len(c.ModeChanges) > 0
	return c, changed
}
