package drift

import (
	"context"
	"errors"
	"sort"
	"time"
)

// Sighting is where an artifact was seen in one environment: admitted by
// the webhook, shown running by a snapshot, running now.
type Sighting struct {
	Environment string `json:"environment"`
	// FirstAdmitted and LastAdmitted are the first and the latest
	// admission decision that admitted the digest here.
	FirstAdmitted *JournalRef `json:"first_admitted,omitempty"`
	LastAdmitted  *JournalRef `json:"last_admitted,omitempty"`
	// FirstRan is the first snapshot that showed the digest running here.
	FirstRan *JournalRef `json:"first_ran,omitempty"`
	// RunningNow says the environment's latest snapshot runs the digest.
	RunningNow bool `json:"running_now"`
}

// JournalRef points at a journal entry.
type JournalRef struct {
	Index uint64    `json:"journal_index"`
	Time  time.Time `json:"time"`
}

// RanDigests returns the digests a snapshot record shows running that the
// state before it may not have run: every digest of a full record, those
// of the started and changed workloads of a delta, none of a heartbeat.
// Stores index them to answer where an artifact ran.
func RanDigests(r Record) []string {
	var ws []Workload
	switch {
	case r.Kind == RecordFull:
		ws = r.Workloads
	case r.Kind == RecordDelta && r.Diff != nil:
		ws = append(ws, r.Diff.Started...)
		for _, c := range r.Diff.Changed {
			ws = append(ws, c.After)
		}
	}
	return Snapshot{Workloads: ws}.Digests()
}

// NamedDigests returns every digest a snapshot record names: all those of
// a full record, those of the started, stopped and changed (before and
// after) workloads of a delta, none of a heartbeat. A record that does not
// name a digest cannot start or stop it; stores index them so that the
// periods an artifact ran are found without reading the whole history.
func NamedDigests(r Record) []string {
	var ws []Workload
	switch {
	case r.Kind == RecordFull:
		ws = r.Workloads
	case r.Kind == RecordDelta && r.Diff != nil:
		ws = append(append(ws, r.Diff.Started...), r.Diff.Stopped...)
		for _, c := range r.Diff.Changed {
			ws = append(ws, c.Before, c.After)
		}
	}
	return Snapshot{Workloads: ws}.Digests()
}

// Sightings says where each digest was admitted and ran, and whether it
// runs now: the latest state of each environment it was seen in is
// rebuilt once.
func (s *Service) Sightings(ctx context.Context, digests []string) (map[string][]Sighting, error) {
	found, err := s.Store.Sightings(ctx, digests)
	if err != nil {
		return nil, err
	}
	running := map[string]map[string]bool{} // env -> digest -> running
	for _, sights := range found {
		for _, si := range sights {
			if _, done := running[si.Environment]; done || si.FirstRan == nil {
				continue
			}
			snap, _, err := State(ctx, s.Store, si.Environment, time.Now())
			if err != nil && !errors.Is(err, ErrNoSnapshot) {
				return nil, err
			}
			now := map[string]bool{}
			for _, d := range snap.Digests() {
				now[d] = true
			}
			running[si.Environment] = now
		}
	}
	for d, sights := range found {
		for i := range sights {
			sights[i].RunningNow = running[sights[i].Environment][d]
		}
	}
	return found, nil
}

// SightingSet collects sightings by digest and environment. Stores use it
// to build Sightings results.
type SightingSet map[string]map[string]*Sighting

func (s SightingSet) get(digest, env string) *Sighting {
	if s[digest] == nil {
		s[digest] = map[string]*Sighting{}
	}
	si := s[digest][env]
	if si == nil {
		si = &Sighting{Environment: env}
		s[digest][env] = si
	}
	return si
}

// Admitted adds that digest was admitted into env, first and last.
func (s SightingSet) Admitted(digest, env string, first, last JournalRef) {
	si := s.get(digest, env)
	si.FirstAdmitted, si.LastAdmitted = &first, &last
}

// Ran adds that a snapshot first showed digest running in env.
func (s SightingSet) Ran(digest, env string, first JournalRef) {
	s.get(digest, env).FirstRan = &first
}

// Map returns the sightings of each digest in order of environment name.
func (s SightingSet) Map() map[string][]Sighting {
	out := make(map[string][]Sighting, len(s))
	for d, envs := range s {
		list := make([]Sighting, 0, len(envs))
		for _, si := range envs {
			list = append(list, *si)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Environment < list[j].Environment })
		out[d] = list
	}
	return out
}
