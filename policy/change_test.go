package policy

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

func TestCompareEnvironments(t *testing.T) {
	start := time.Date(2026, 12, 24, 0, 0, 0, 0, time.FixedZone("CET", 3600))
	prod := Environment{Name: "prod", Namespaces: []string{"prod-*"}, Allow: []string{"registry.k8s.io/pause"},
		Require: Requirements{Digest: true, Provenance: true, Attestations: []string{"unit-tests"}, Approval: true,
			MaxAge: map[string]Duration{"unit-tests": Duration(7 * 24 * time.Hour)}},
		Freeze: []FreezeWindow{{Start: &start, Duration: Duration(48 * time.Hour), Reason: "holidays"}}}
	state := func(envs ...Environment) State {
		st := State{Version: "v1", Files: map[string]string{"builtin.rego": "sha256:1"}, Modes: map[string]string{}, Environments: map[string]Environment{}}
		for _, e := range envs {
			st.Modes[e.Name], st.Environments[e.Name] = e.EffectiveMode(), e
		}
		return st
	}
	// journaled reads a state back as the policy journal does.
	journaled := func(st State) *State {
		b, err := json.Marshal(Change{State: st})
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		return &back
	}
	def := BuiltinDefault(DefaultEnvironmentName)
	cur := state(def, prod)

	if c, changed := Compare(nil, cur); !changed || !slices.Equal(c.EnvironmentChanges, []string{"default", "prod"}) {
		t.Errorf("first entry: changed=%v environments %v; want both environments", changed, c.EnvironmentChanges)
	}
	if c, changed := Compare(journaled(cur), cur); changed {
		t.Errorf("the same state read back from the journal changed: %+v", c)
	}

	relaxed := prod
	relaxed.Require.Approval = false
	if c, changed := Compare(journaled(cur), state(def, relaxed)); !changed || !slices.Equal(c.EnvironmentChanges, []string{"prod"}) || c.ModeChanges != nil {
		t.Errorf("approval dropped from prod: changed=%v environments %v modes %v; want prod redefined", changed, c.EnvironmentChanges, c.ModeChanges)
	}
	later := prod
	later.Freeze = []FreezeWindow{{Start: &start, Duration: Duration(24 * time.Hour), Reason: "holidays"}}
	if c, _ := Compare(journaled(cur), state(def, later)); !slices.Equal(c.EnvironmentChanges, []string{"prod"}) {
		t.Errorf("freeze window shortened: environments %v; want prod", c.EnvironmentChanges)
	}

	warn := prod
	warn.Mode = ModeWarn
	if c, changed := Compare(journaled(cur), state(def, warn)); !changed || c.EnvironmentChanges != nil || c.ModeChanges["prod"] != "enforce -> warn" {
		t.Errorf("mode only: changed=%v environments %v modes %v; want the mode change alone", changed, c.EnvironmentChanges, c.ModeChanges)
	}

	if c, changed := Compare(journaled(cur), state(def)); !changed || !slices.Equal(c.EnvironmentChanges, []string{"prod"}) {
		t.Errorf("prod removed: changed=%v environments %v", changed, c.EnvironmentChanges)
	}

	older := journaled(cur)
	older.Environments = nil // journaled before the definitions were
	if c, changed := Compare(older, cur); !changed || !slices.Equal(c.EnvironmentChanges, []string{"default", "prod"}) || c.Added != nil {
		t.Errorf("after an entry without definitions: changed=%v environments %v added %v; want both environments recorded", changed, c.EnvironmentChanges, c.Added)
	}
}
