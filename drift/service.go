package drift

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/journal"
)

// Service answers questions about what ran: state at a time, differences,
// events, compliance. It is what the API serves.
type Service struct {
	Store        Store
	Recorder     *Recorder
	Checker      Checker
	Environments []string // configured environments
	// Journal, when set, adds the journaled compliance notifications to
	// Events.
	Journal JournalReader
}

// JournalReader reads journal entries.
type JournalReader interface {
	Entries(ctx context.Context, q journal.Query) ([]journal.Entry, error)
	FirstIndexAt(ctx context.Context, t time.Time) (uint64, error)
}

// ErrUnknownEnvironment is returned for an environment that is neither
// configured nor has snapshots.
var ErrUnknownEnvironment = errors.New("unknown environment")

// ErrReservedEnvironment is returned for a report into ExemptEnvironment:
// only Vouch's own snapshots write it.
var ErrReservedEnvironment = errors.New("reserved environment")

func (s *Service) known(ctx context.Context, env string) error {
	for _, e := range s.Environments {
		if e == env {
			return nil
		}
	}
	envs, err := s.Store.Environments(ctx)
	if err != nil {
		return err
	}
	for _, e := range envs {
		if e == env {
			return nil
		}
	}
	return fmt.Errorf("%w %q", ErrUnknownEnvironment, env)
}

// State is what ran in env at time at.
func (s *Service) State(ctx context.Context, env string, at time.Time) (Snapshot, error) {
	if err := s.known(ctx, env); err != nil {
		return Snapshot{}, err
	}
	snap, _, err := State(ctx, s.Store, env, at)
	return snap, err
}

// Diff is what changed in env between two times.
func (s *Service) Diff(ctx context.Context, env string, from, to time.Time) (Diff, error) {
	a, err := s.State(ctx, env, from)
	if errors.Is(err, ErrNoSnapshot) {
		a, err = Snapshot{Environment: env}, nil // before the first snapshot, nothing ran
	}
	if err != nil {
		return Diff{}, err
	}
	b, err := s.State(ctx, env, to)
	if err != nil {
		return Diff{}, err
	}
	return Compare(a, b), nil
}

// Event is one change in an environment.
type Event struct {
	Time     time.Time `json:"time"`
	Type     string    `json:"type"` // started, stopped, changed, compliance-changed
	Workload *Workload `json:"workload,omitempty"`
	Before   *Workload `json:"before,omitempty"`
	// Compliance is set on compliance-changed events.
	Compliance *Notification `json:"compliance,omitempty"`
	Journal    uint64        `json:"journal_index"`
}

// Event types.
const (
	EventStarted           = "started"
	EventStopped           = "stopped"
	EventChanged           = "changed"
	EventComplianceChanged = "compliance-changed"
)

// Events lists the workloads started, stopped and changed in env between
// since and until, and the changes of its compliance, oldest first, at
// most limit. A delta record is its own list of changes; only a full
// record is compared with the state rebuilt before it.
func (s *Service) Events(ctx context.Context, env string, since, until time.Time, limit int) ([]Event, error) {
	if err := s.known(ctx, env); err != nil {
		return nil, err
	}
	recs, err := s.Store.RecordsBetween(ctx, env, since, until, limit)
	if err != nil {
		return nil, err
	}
	events := []Event{}
	// The state before a full record: the last full record read and the
	// deltas since, or, before the first, rebuilt from the store.
	var lastFull *Snapshot
	var deltas []Diff
	for _, r := range recs {
		var d Diff
		switch {
		case r.Kind == RecordDelta && r.Diff != nil:
			d = *r.Diff
			deltas = append(deltas, d)
		case r.Kind == RecordFull:
			var prev Snapshot
			if lastFull != nil {
				prev = ApplyAll(*lastFull, deltas...)
			} else if prev, _, err = State(ctx, s.Store, env, r.Time.Add(-time.Nanosecond)); errors.Is(err, ErrNoSnapshot) {
				prev, err = Snapshot{Environment: env}, nil
			}
			if err != nil {
				return nil, err
			}
			cur := Snapshot{Environment: env, Workloads: r.Workloads}
			cur.Normalize()
			d = Compare(prev, cur)
			lastFull, deltas = &cur, nil
		}
		for _, w := range d.Started {
			events = append(events, Event{Time: r.Time, Type: EventStarted, Workload: &w, Journal: r.ID})
		}
		for _, w := range d.Stopped {
			events = append(events, Event{Time: r.Time, Type: EventStopped, Workload: &w, Journal: r.ID})
		}
		for _, c := range d.Changed {
			events = append(events, Event{Time: r.Time, Type: EventChanged, Workload: &c.After, Before: &c.Before, Journal: r.ID})
		}
		if len(events) >= limit {
			break
		}
	}
	notes, err := s.notifications(ctx, env, since, until, limit)
	if err != nil {
		return nil, err
	}
	events = append(events, notes...)
	sort.SliceStable(events, func(i, j int) bool { return events[i].Time.Before(events[j].Time) })
	if len(events) > limit {
		events = events[:limit]
	}
	return events, nil
}

// notifications reads env's journaled compliance notifications timed in
// (since, until].
func (s *Service) notifications(ctx context.Context, env string, since, until time.Time, limit int) ([]Event, error) {
	if s.Journal == nil {
		return nil, nil
	}
	from, err := s.Journal.FirstIndexAt(ctx, since)
	if err != nil {
		return nil, err
	}
	var out []Event
	for len(out) < limit {
		page, err := s.Journal.Entries(ctx, journal.Query{From: from, Limit: journal.MaxLimit, Kind: KindNotification, Environment: env})
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if !e.Time.After(since) {
				continue
			}
			if e.Time.After(until) {
				return out, nil
			}
			var n Notification
			if err := json.Unmarshal(e.Body, &n); err != nil {
				return nil, fmt.Errorf("drift: journal entry %d: %w", e.Index, err)
			}
			out = append(out, Event{Time: e.Time, Type: EventComplianceChanged, Compliance: &n, Journal: e.Index})
		}
		if len(page) < journal.MaxLimit {
			break
		}
		from = page[len(page)-1].Index + 1
	}
	return out, nil
}

// Compliance evaluates what runs in env now.
func (s *Service) Compliance(ctx context.Context, env string) (Report, error) {
	snap, err := s.State(ctx, env, time.Now())
	if err != nil {
		return Report{}, err
	}
	return s.Checker.Check(ctx, snap)
}

// Check evaluates the compliance of a snapshot the caller already has.
func (s *Service) Check(ctx context.Context, snap Snapshot) (Report, error) {
	return s.Checker.Check(ctx, snap)
}

// Summary is one environment's line in the overview.
type Summary struct {
	Environment  string         `json:"environment"`
	LastSnapshot *time.Time     `json:"last_snapshot,omitempty"`
	Workloads    int            `json:"workloads"`
	Counts       map[string]int `json:"counts,omitempty"`
	Error        string         `json:"error,omitempty"`
}

// Summaries gives every environment's compliance counts.
func (s *Service) Summaries(ctx context.Context) ([]Summary, error) {
	envs, err := s.Store.Environments(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, e := range envs {
		seen[e] = true
	}
	for _, e := range s.Environments {
		if !seen[e] {
			envs = append(envs, e)
		}
	}
	sort.Strings(envs)
	// Environments are evaluated side by side, a few at a time: each is
	// a state rebuilt and a policy evaluation per workload.
	out := make([]Summary, len(envs))
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i, env := range envs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = s.summary(ctx, env)
		}()
	}
	wg.Wait()
	return out, nil
}

func (s *Service) summary(ctx context.Context, env string) Summary {
	sum := Summary{Environment: env}
	snap, asOf, err := State(ctx, s.Store, env, time.Now())
	switch {
	case errors.Is(err, ErrNoSnapshot):
	case err != nil:
		sum.Error = err.Error()
	default:
		sum.LastSnapshot, sum.Workloads = &asOf, len(snap.Workloads)
		if rep, err := s.Checker.Check(ctx, snap); err != nil {
			sum.Error = err.Error()
		} else {
			sum.Counts = rep.Counts
		}
	}
	return sum
}

// Report records a snapshot sent by a reporter (vouch snapshot …) for an
// environment Vouch does not watch itself. Unchanged content is not
// recorded again (only as a heartbeat).
func (s *Service) Report(ctx context.Context, env, reporter string, workloads []Workload) (Result, error) {
	if env == ExemptEnvironment {
		return Result{}, fmt.Errorf("%w %q: it holds what Vouch itself sees in the exempt namespaces; report under another name", ErrReservedEnvironment, env)
	}
	if err := s.known(ctx, env); err != nil {
		return Result{}, err
	}
	return s.Recorder.Record(ctx, Snapshot{Environment: env, Time: time.Now(), Workloads: workloads}, reporter)
}
