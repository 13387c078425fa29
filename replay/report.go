package replay

import (
	"cmp"
	"slices"
	"time"

	"github.com/vouch-dev/vouch/policy"
	"github.com/vouch-dev/vouch/webhook"
)

// Changes a flip can be.
const (
	AdmitToDeny = "admit-to-deny"
	DenyToAdmit = "deny-to-admit"
)

// Rule names of groups without a rule of their own.
const (
	// RulePolicy groups violations of rules that return a plain string
	// (as policy.Checklist names them).
	RulePolicy = "policy"
	// RuleUnknown groups deny→admit flips that the current policy admits
	// too, or when no current policy was given: the rule that denied then
	// cannot be named.
	RuleUnknown = "unknown"
)

// Report is the outcome of a replay.
type Report struct {
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until"`
	Environment string    `json:"environment,omitempty"` // all when empty
	// PolicyVersion is the candidate's bundle version;
	// CurrentPolicyVersion the version of the policy in use.
	PolicyVersion        string `json:"policy_version"`
	CurrentPolicyVersion string `json:"current_policy_version,omitempty"`
	// From and To are the journal index range read: [from, to).
	From   uint64      `json:"from_index"`
	To     uint64      `json:"to_index"`
	Totals Totals      `json:"totals"`
	Skips  []SkipCount `json:"skipped"`
	// Truncated is set when the range held more decisions than the limit;
	// ResumeSince is then the time of the first one not replayed.
	Truncated   bool       `json:"truncated"`
	ResumeSince *time.Time `json:"resume_since,omitempty"`
	// Rules are the flips grouped by the rule that made the difference:
	// for admit→deny, each rule that denies now; for deny→admit, each rule
	// of the current policy that denies and the candidate does not.
	Rules []RuleGroup `json:"rules"`
	// Workloads are the flips grouped by workload, the most flipped first;
	// WorkloadsOmitted counts the groups beyond Options.Workloads.
	Workloads        []WorkloadGroup `json:"workloads"`
	WorkloadsOmitted int             `json:"workloads_omitted,omitempty"`
	DurationMS       float64         `json:"duration_ms"`
}

// Totals count the decisions of a replay.
type Totals struct {
	Decisions   int `json:"decisions"` // read from the journal
	Replayed    int `json:"replayed"`
	Unchanged   int `json:"unchanged"`
	AdmitToDeny int `json:"admit_to_deny"`
	DenyToAdmit int `json:"deny_to_admit"`
	Skipped     int `json:"skipped"`
	// ReasonsChanged counts decisions denied both times with different
	// messages (they are among Unchanged).
	ReasonsChanged int `json:"reasons_changed"`
	// AlreadyFlipped counts flips the current policy makes too: caused by
	// what changed since the decision (configuration, allow-list, policy
	// in use), not by the candidate. Zero without a current policy.
	AlreadyFlipped int `json:"already_flipped"`
}

// SkipCount is how many decisions were not replayed, and why.
type SkipCount struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// RuleGroup is the flips one rule makes.
type RuleGroup struct {
	Change      string    `json:"change"` // AdmitToDeny or DenyToAdmit
	Rule        string    `json:"rule"`
	Requirement string    `json:"requirement,omitempty"`
	Decisions   int       `json:"decisions"`
	Examples    []Example `json:"examples"`
}

// WorkloadGroup is the flips of one workload.
type WorkloadGroup struct {
	Environment string    `json:"environment"`
	Namespace   string    `json:"namespace"`
	Kind        string    `json:"kind"`
	Name        string    `json:"name"`
	AdmitToDeny int       `json:"admit_to_deny"`
	DenyToAdmit int       `json:"deny_to_admit"`
	Examples    []Example `json:"examples"`
}

// Example is one flipped decision.
type Example struct {
	Index       uint64    `json:"index"` // journal index of the decision
	UID         string    `json:"uid"`
	Time        time.Time `json:"time"`
	Environment string    `json:"environment"`
	Namespace   string    `json:"namespace"`
	Kind        string    `json:"kind"`
	Name        string    `json:"name"`
	User        string    `json:"user"`
	Change      string    `json:"change"`
	// Before are the journaled decision's messages (none: admitted), After
	// the candidate's.
	Before []string `json:"before"`
	After  []string `json:"after"`
	// AlreadyFlipped is set when the current policy decides so too.
	AlreadyFlipped bool `json:"already_flipped,omitempty"`
	// Mode is the environment's mode at the decision when not enforce
	// (warn, audit), and BreakGlass the reason of an honoured break-glass:
	// the change was admitted whatever the verdict.
	Mode       string `json:"mode,omitempty"`
	BreakGlass string `json:"break_glass,omitempty"`
}

type ruleKey struct{ change, rule, requirement string }

type workloadKey struct{ env, namespace, kind, name string }

// aggregate collects outcomes, in any order, into a report that does not
// depend on the order: examples are the lowest journal indices.
type aggregate struct {
	examples  int
	totals    Totals
	skips     map[string]int
	rules     map[ruleKey]*RuleGroup
	workloads map[workloadKey]*WorkloadGroup
}

func newAggregate(examples int) *aggregate {
	return &aggregate{examples: examples, skips: map[string]int{}, rules: map[ruleKey]*RuleGroup{}, workloads: map[workloadKey]*WorkloadGroup{}}
}

func (a *aggregate) add(o outcome) {
	if o.skip != "" {
		a.totals.Skipped++
		a.skips[o.skip]++
		return
	}
	a.totals.Replayed++
	if o.change == "" {
		a.totals.Unchanged++
		if !o.rec.PolicyAllowed() && !slices.Equal(o.rec.Messages, o.now.Messages) {
			a.totals.ReasonsChanged++
		}
		return
	}
	already := o.cur != nil && o.cur.Allowed == o.now.Allowed
	if already {
		a.totals.AlreadyFlipped++
	}
	ex := Example{
		Index: o.index, UID: o.rec.UID, Time: o.time, Environment: o.rec.Environment, Namespace: o.rec.Namespace,
		Kind: o.rec.Kind, Name: o.rec.Name, User: o.rec.User, Change: o.change,
		Before: nonNil(o.rec.Messages), After: nonNil(o.now.Messages), AlreadyFlipped: already,
		Mode: o.rec.Mode, BreakGlass: o.rec.BreakGlass,
	}
	var violations []policy.Violation
	if o.change == AdmitToDeny {
		a.totals.AdmitToDeny++
		violations = o.now.Violations
		if o.now.Error != "" {
			violations = []policy.Violation{{Rule: candidateErrRule}}
		}
	} else {
		a.totals.DenyToAdmit++
		if o.cur != nil && !o.cur.Allowed {
			violations = o.cur.Violations
		}
		if len(violations) == 0 {
			violations = []policy.Violation{{Rule: RuleUnknown}}
		}
	}
	seen := map[ruleKey]bool{}
	for _, v := range violations {
		k := ruleKey{o.change, cmp.Or(v.Rule, RulePolicy), v.Requirement}
		if seen[k] {
			continue // one decision counts once per rule
		}
		seen[k] = true
		g := a.rules[k]
		if g == nil {
			g = &RuleGroup{Change: k.change, Rule: k.rule, Requirement: k.requirement}
			a.rules[k] = g
		}
		g.Decisions++
		g.Examples = a.example(g.Examples, ex)
	}
	wk := workloadKey{o.rec.Environment, o.rec.Namespace, o.rec.Kind, o.rec.Name}
	w := a.workloads[wk]
	if w == nil {
		w = &WorkloadGroup{Environment: wk.env, Namespace: wk.namespace, Kind: wk.kind, Name: wk.name}
		a.workloads[wk] = w
	}
	if o.change == AdmitToDeny {
		w.AdmitToDeny++
	} else {
		w.DenyToAdmit++
	}
	w.Examples = a.example(w.Examples, ex)
}

// example adds ex to the examples if it is among the a.examples lowest
// journal indices.
func (a *aggregate) example(list []Example, ex Example) []Example {
	i, _ := slices.BinarySearchFunc(list, ex.Index, func(e Example, idx uint64) int { return cmp.Compare(e.Index, idx) })
	if i >= a.examples {
		return list
	}
	list = slices.Insert(list, i, ex)
	if len(list) > a.examples {
		list = list[:a.examples]
	}
	return list
}

// report fills rep's totals and groups, keeping the first maxWorkloads
// workload groups.
func (a *aggregate) report(rep *Report, maxWorkloads int) {
	rep.Totals = a.totals
	rep.Skips = []SkipCount{}
	for reason, n := range a.skips {
		rep.Skips = append(rep.Skips, SkipCount{reason, n})
	}
	slices.SortFunc(rep.Skips, func(x, y SkipCount) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Reason, y.Reason))
	})
	rep.Rules = []RuleGroup{}
	for _, g := range a.rules {
		rep.Rules = append(rep.Rules, *g)
	}
	slices.SortFunc(rep.Rules, func(x, y RuleGroup) int {
		return cmp.Or(cmp.Compare(x.Change, y.Change), cmp.Compare(y.Decisions, x.Decisions), cmp.Compare(x.Rule, y.Rule), cmp.Compare(x.Requirement, y.Requirement))
	})
	rep.Workloads = []WorkloadGroup{}
	for _, w := range a.workloads {
		rep.Workloads = append(rep.Workloads, *w)
	}
	slices.SortFunc(rep.Workloads, func(x, y WorkloadGroup) int {
		return cmp.Or(cmp.Compare(y.AdmitToDeny+y.DenyToAdmit, x.AdmitToDeny+x.DenyToAdmit),
			cmp.Compare(x.Environment, y.Environment), cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.Name, y.Name))
	})
	if len(rep.Workloads) > maxWorkloads {
		rep.WorkloadsOmitted = len(rep.Workloads) - maxWorkloads
		rep.Workloads = rep.Workloads[:maxWorkloads]
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

var _ Redecider = (*webhook.Handler)(nil)
