package drift

import (
	"context"
	"errors"
	"sort"
	"time"
)

// Period is a stretch of time an artifact ran in an environment: from the
// snapshot record that first showed it running to the one that showed it
// gone (Until nil: it still runs, as of the latest record).
type Period struct {
	From  JournalRef  `json:"from"`
	Until *JournalRef `json:"until,omitempty"`
	// Workloads are the workloads (namespace/kind/name) that ran it.
	Workloads []string `json:"workloads"`
}

// DefaultPeriodRecords is how many snapshot records Periods reads at most.
const DefaultPeriodRecords = 2000

// Periods says when digest ran in env since the time since (the first
// snapshot that showed it, from Sightings): the state just before is
// rebuilt once, then only the changes of the records after it are
// followed. At most limit records are read (DefaultPeriodRecords when 0);
// complete is false when there were more.
func (s *Service) Periods(ctx context.Context, env, digest string, since time.Time, limit int) (periods []Period, complete bool, err error) {
	if limit <= 0 {
		limit = DefaultPeriodRecords
	}
	before, _, err := State(ctx, s.Store, env, since.Add(-time.Nanosecond))
	if err != nil && !errors.Is(err, ErrNoSnapshot) {
		return nil, false, err
	}
	running := map[string]bool{} // workload keys running the digest
	for _, w := range before.Workloads {
		if runs(w, digest) {
			running[w.Key()] = true
		}
	}
	recs, err := s.Store.RecordsWith(ctx, env, digest, since.Add(-time.Nanosecond), time.Now().Add(time.Hour), limit)
	if err != nil {
		return nil, false, err
	}
	var cur *Period
	names := map[string]bool{}
	open := func(at JournalRef) {
		cur, names = &Period{From: at}, map[string]bool{}
	}
	if len(running) > 0 {
		open(JournalRef{Time: before.Time})
	}
	for _, r := range recs {
		if cur != nil {
			for k := range running {
				names[k] = true
			}
		}
		switch {
		case r.Kind == RecordFull:
			running = map[string]bool{}
			for _, w := range r.Workloads {
				if runs(w, digest) {
					running[w.Key()] = true
				}
			}
		case r.Diff != nil:
			for _, w := range r.Diff.Stopped {
				delete(running, w.Key())
			}
			for _, w := range r.Diff.Started {
				if runs(w, digest) {
					running[w.Key()] = true
				}
			}
			for _, c := range r.Diff.Changed {
				delete(running, c.Before.Key())
				if runs(c.After, digest) {
					running[c.After.Key()] = true
				}
			}
		}
		ref := JournalRef{Index: r.ID, Time: r.Time}
		switch {
		case cur == nil && len(running) > 0:
			open(ref)
		case cur != nil && len(running) == 0:
			cur.Until = &ref
			periods = append(periods, closePeriod(cur, names))
			cur = nil
		}
		if cur != nil {
			for k := range running {
				names[k] = true
			}
		}
	}
	if cur != nil {
		periods = append(periods, closePeriod(cur, names))
	}
	return periods, len(recs) < limit, nil
}

func closePeriod(p *Period, names map[string]bool) Period {
	p.Workloads = make([]string, 0, len(names))
	for k := range names {
		p.Workloads = append(p.Workloads, k)
	}
	sort.Strings(p.Workloads)
	return *p
}

// runs reports whether a container of w runs digest.
func runs(w Workload, digest string) bool {
	for _, c := range w.Containers {
		if c.Digest == digest {
			return true
		}
	}
	return false
}
