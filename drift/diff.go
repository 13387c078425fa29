package drift

// Diff is what changed between two snapshots of an environment.
type Diff struct {
	Started []Workload       `json:"started"` // running in To, not in From
	Stopped []Workload       `json:"stopped"` // running in From, not in To
	Changed []WorkloadChange `json:"changed"` // running in both, with other containers, images, digests or failure
	Scaled  []WorkloadChange `json:"scaled"`  // same content, other pod count
}

// WorkloadChange is a workload before and after.
type WorkloadChange struct {
	Before Workload `json:"before"`
	After  Workload `json:"after"`
}

// Empty reports whether nothing changed.
func (d Diff) Empty() bool {
	return len(d.Started) == 0 && len(d.Stopped) == 0 && len(d.Changed) == 0 && len(d.Scaled) == 0
}

// Compare returns the differences from a to b. Both must be normalized.
func Compare(a, b Snapshot) Diff {
	d := Diff{Started: []Workload{}, Stopped: []Workload{}, Changed: []WorkloadChange{}, Scaled: []WorkloadChange{}}
	i, j := 0, 0
	for i < len(a.Workloads) || j < len(b.Workloads) {
		switch {
		case j == len(b.Workloads) || (i < len(a.Workloads) && a.Workloads[i].Key() < b.Workloads[j].Key()):
			d.Stopped = append(d.Stopped, a.Workloads[i])
			i++
		case i == len(a.Workloads) || b.Workloads[j].Key() < a.Workloads[i].Key():
			d.Started = append(d.Started, b.Workloads[j])
			j++
		default:
			wa, wb := a.Workloads[i], b.Workloads[j]
			switch {
			case !sameContent(wa, wb):
				d.Changed = append(d.Changed, WorkloadChange{wa, wb})
			case wa.Pods != wb.Pods:
				d.Scaled = append(d.Scaled, WorkloadChange{wa, wb})
			}
			i++
			j++
		}
	}
	return d
}

func sameContent(a, b Workload) bool {
	if a.Failed != b.Failed || len(a.Containers) != len(b.Containers) {
		return false
	}
	for i := range a.Containers {
		if a.Containers[i] != b.Containers[i] {
			return false
		}
	}
	return true
}

// Apply returns a with the diff applied: the inverse of Compare.
func Apply(a Snapshot, d Diff) Snapshot {
	return ApplyAll(a, d)
}

// ApplyAll applies diffs in order, sorting once at the end.
func ApplyAll(a Snapshot, diffs ...Diff) Snapshot {
	byKey := make(map[string]Workload, len(a.Workloads))
	for _, w := range a.Workloads {
		byKey[w.Key()] = w
	}
	for _, d := range diffs {
		for _, w := range d.Stopped {
			delete(byKey, w.Key())
		}
		for _, w := range d.Started {
			byKey[w.Key()] = w
		}
		for _, c := range d.Changed {
			byKey[c.After.Key()] = c.After
		}
		for _, c := range d.Scaled {
			byKey[c.After.Key()] = c.After
		}
	}
	out := Snapshot{Environment: a.Environment, Time: a.Time, Workloads: make([]Workload, 0, len(byKey))}
	for _, w := range byKey {
		out.Workloads = append(out.Workloads, w)
	}
	out.Normalize()
	return out
}
