// Package replay decides journaled admissions again with a candidate
// policy and reports which decisions would flip — impact before rollout.
//
// Each admission decision in the journal is decided again as the webhook
// decided it then (webhook.Handler.Redecide): the same request, workload
// and images, the evidence as it was at that moment, and Rego's clock set
// to the decision's time (rego.EvalTime). Only the policy differs. A
// decision flips when the candidate admits what the policy denied, or
// denies what it admitted — the policy's verdicts are compared, also where
// an environment's warn or audit mode, or break-glass, admitted the change
// whatever the verdict; flips are grouped by the rule that made the
// difference and by workload.
package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/policy"
	"github.com/vouch-dev/vouch/webhook"
)

// Journal reads the journaled decisions.
type Journal interface {
	Entries(ctx context.Context, q journal.Query) ([]journal.Entry, error)
	FirstIndexAt(ctx context.Context, t time.Time) (uint64, error)
}

// EvidenceLookup finds the evidence recorded for digests (evidence.Store).
type EvidenceLookup interface {
	Lookup(ctx context.Context, digests []string) (map[string]evidence.Evidence, error)
}

// Redecider decides a journaled admission again (webhook.Handler).
type Redecider interface {
	Redecide(ctx context.Context, p webhook.Decider, rec webhook.Record, index uint64, at time.Time, found map[string]evidence.Evidence) (webhook.Record, error)
}

// Policy is a policy to decide with, and its bundle version
// (policy.Engine).
type Policy interface {
	webhook.Decider
	Version() string
}

// Replayer replays journaled admission decisions.
type Replayer struct {
	Journal  Journal
	Evidence EvidenceLookup
	Webhook  Redecider
	// Current is the policy in use. When set, each flip is also decided
	// with it, to name the rules a candidate drops (deny→admit) and to
	// count flips the current policy makes as well (Totals.NotCandidate).
	Current Policy
	// Workers evaluate decisions in parallel; runtime.GOMAXPROCS(0) when 0.
	Workers int
	// Builtin holds the built-in modules candidates are compiled with
	// (rego.FS).
	Builtin fs.FS
	// Environments are the configured environments' names; when set,
	// Options.Environment must be one of them.
	Environments []string
}

// Candidate compiles a candidate policy: the built-in modules and modules
// (file name to source), as a --policy-dir holding modules would give,
// except that the modules may not call policy.RestrictedBuiltins (whoever
// may replay may not make the server send requests or show its
// environment). A module that does not compile is a *policy.CompileError
// naming its file and line.
func (r *Replayer) Candidate(ctx context.Context, modules map[string]string) (Policy, error) {
	if r.Builtin == nil {
		return nil, errors.New("replay: no built-in modules")
	}
	return policy.New(ctx, policy.Config{Builtin: r.Builtin, Modules: modules, Restricted: true, Logger: slog.New(slog.DiscardHandler)})
}

// Limits and defaults of Options.
const (
	DefaultLimit     = 100000
	MaxLimit         = 1000000
	DefaultExamples  = 3
	DefaultWorkloads = 200
	// DefaultSince is how far back a replay goes when Since is zero.
	DefaultSince = 7 * 24 * time.Hour
	// pageSize is how many decisions are read, and their evidence looked
	// up, at a time; lookupChunk bounds the digests of one Lookup.
	pageSize    = journal.MaxLimit
	lookupChunk = 500
)

// Options select the decisions to replay.
type Options struct {
	// Since and Until bound the decisions' journal times: from the first
	// entry at or after Since to the last before Until (as the audit
	// export selects). Since defaults to DefaultSince ago, Until to now.
	Since, Until time.Time
	// Environment selects one environment; all when empty.
	Environment string
	// Limit is the most decisions to read; DefaultLimit when 0, at most
	// MaxLimit. When the range holds more, the report is Truncated.
	Limit int
	// Examples is the number of example decisions kept per group
	// (DefaultExamples when 0); Workloads the number of workload groups
	// reported, the most flipped first (DefaultWorkloads when 0).
	Examples, Workloads int
	// Progress, when set, is called from the replaying goroutine after
	// each page of decisions.
	Progress func(Progress)
	// Now is the clock for the defaults; time.Now when nil.
	Now func() time.Time
}

// Progress is how far a replay has come.
type Progress struct {
	Decisions int    `json:"decisions"` // read so far
	Index     uint64 `json:"index"`     // journal index reached
	From      uint64 `json:"from"`      // first journal index of the range
	To        uint64 `json:"to"`        // end of the range (exclusive)
}

// ErrLimit is returned for an Options.Limit beyond MaxLimit.
var ErrLimit = fmt.Errorf("limit: at most %d decisions per replay", MaxLimit)

// job is one decision to replay.
type job struct {
	entry       journal.Entry
	rec         webhook.Record
	undecodable bool                         // the entry's body is not a decision record
	found       map[string]evidence.Evidence // the evidence of its page's digests
}

// Replay decides the selected decisions again with candidate and reports
// the flips. It stops at the first error reading the journal or the
// evidence, and when ctx ends.
func (r *Replayer) Replay(ctx context.Context, candidate Policy, opts Options) (Report, error) {
	if opts.Limit > MaxLimit {
		return Report{}, ErrLimit
	}
	if opts.Environment != "" && r.Environments != nil && !slices.Contains(r.Environments, opts.Environment) {
		return Report{}, fmt.Errorf("%w %q (configured: %s)", webhook.ErrUnknownEnvironment, opts.Environment, strings.Join(r.Environments, ", "))
	}
	if opts.Limit <= 0 {
		opts.Limit = DefaultLimit
	}
	if opts.Examples <= 0 {
		opts.Examples = DefaultExamples
	}
	if opts.Workloads <= 0 {
		opts.Workloads = DefaultWorkloads
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if opts.Until.IsZero() {
		opts.Until = now()
	}
	if opts.Since.IsZero() {
		opts.Since = opts.Until.Add(-DefaultSince)
	}
	start := time.Now()
	from, err := r.Journal.FirstIndexAt(ctx, opts.Since)
	if err != nil {
		return Report{}, err
	}
	to, err := r.Journal.FirstIndexAt(ctx, opts.Until)
	if err != nil {
		return Report{}, err
	}
	agg := newAggregate(opts.Examples)
	rep := Report{
		Since: opts.Since.UTC(), Until: opts.Until.UTC(), Environment: opts.Environment,
		PolicyVersion: candidate.Version(), From: from, To: to,
	}
	if r.Current != nil {
		rep.CurrentPolicyVersion = r.Current.Version()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := r.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	jobs := make(chan job, pageSize)
	results := make(chan outcome, pageSize)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				results <- r.replayOne(ctx, candidate, j)
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		readErr <- r.read(ctx, from, to, opts, &rep, jobs)
		close(jobs)
		wg.Wait()
		close(results)
	}()
	n := 0
	for o := range results {
		agg.add(o)
		n++
		if opts.Progress != nil && n%pageSize == 0 {
			opts.Progress(Progress{Decisions: n, Index: o.index, From: from, To: to})
		}
	}
	if err := <-readErr; err != nil {
		return Report{}, err
	}
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	agg.report(&rep, opts.Workloads)
	rep.Totals.Decisions = n
	rep.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	if opts.Progress != nil {
		opts.Progress(Progress{Decisions: n, Index: to, From: from, To: to})
	}
	return rep, nil
}

// read pages through the admission decisions in [from, to), looks up the
// evidence of each page's digests at once and queues the decisions. It
// sets rep.Truncated when more than opts.Limit decisions are in range.
func (r *Replayer) read(ctx context.Context, from, to uint64, opts Options, rep *Report, jobs chan<- job) error {
	left := opts.Limit
	for from < to {
		want := min(pageSize, left+1) // one more than left: are there more?
		entries, err := r.Journal.Entries(ctx, journal.Query{From: from, Limit: want, Kind: journal.KindAdmission, Environment: opts.Environment})
		if err != nil {
			return fmt.Errorf("read the journal: %w", err)
		}
		if len(entries) == 0 {
			return nil
		}
		page := make([]job, 0, len(entries))
		var digests []string
		seen := map[string]bool{}
		for _, e := range entries {
			if e.Index >= to {
				break
			}
			if left == 0 {
				rep.Truncated, rep.ResumeSince = true, &e.Time
				break
			}
			left--
			j := job{entry: e}
			j.undecodable = json.Unmarshal(e.Body, &j.rec) != nil
			for _, img := range j.rec.Images {
				if img.Digest != "" && !seen[img.Digest] {
					seen[img.Digest] = true
					digests = append(digests, img.Digest)
				}
			}
			page = append(page, j)
		}
		found, err := r.lookup(ctx, digests)
		if err != nil {
			return err
		}
		for _, j := range page {
			j.found = found
			select {
			case jobs <- j:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if len(page) < len(entries) || len(entries) < want {
			return nil
		}
		from = entries[len(entries)-1].Index + 1
	}
	return nil
}

// lookup finds the evidence of digests, lookupChunk at a time.
func (r *Replayer) lookup(ctx context.Context, digests []string) (map[string]evidence.Evidence, error) {
	found := make(map[string]evidence.Evidence, len(digests))
	for len(digests) > 0 {
		n := min(len(digests), lookupChunk)
		m, err := r.Evidence.Lookup(ctx, digests[:n])
		if err != nil {
			return nil, fmt.Errorf("look up evidence: %w", err)
		}
		for d, ev := range m {
			found[d] = ev
		}
		digests = digests[n:]
	}
	return found, nil
}

// Skip reasons.
const (
	SkipErrored      = "Vouch could not decide at the time (the decision records an error)"
	SkipEnvironment  = "its environment is no longer configured"
	SkipUndecodable  = "the journal entry is not a decision record"
	candidateErrRule = "error"
)

// outcome is one replayed decision.
type outcome struct {
	index  uint64
	time   time.Time
	rec    webhook.Record // as journaled
	now    webhook.Record // as the candidate decides
	cur    *webhook.Record
	skip   string
	change string
}

func (r *Replayer) replayOne(ctx context.Context, candidate Policy, j job) outcome {
	o := outcome{index: j.entry.Index, time: j.entry.Time, rec: j.rec}
	switch {
	case j.undecodable:
		o.skip = SkipUndecodable
		return o
	case j.rec.Error != "":
		o.skip = SkipErrored
		return o
	}
	o.now = r.redecide(ctx, candidate, j, &o.skip)
	if o.skip != "" {
		return o
	}
	switch was := j.rec.PolicyAllowed(); {
	case was && !o.now.Allowed:
		o.change = AdmitToDeny
	case !was && o.now.Allowed:
		o.change = DenyToAdmit
	default:
		return o
	}
	if r.Current != nil {
		cur := r.redecide(ctx, r.Current, j, &o.skip)
		o.cur = &cur
	}
	return o
}

// redecide decides j again with p. A policy that cannot decide denies, as
// the webhook fails closed; a decision of an environment no longer
// configured is skipped.
func (r *Replayer) redecide(ctx context.Context, p Policy, j job, skip *string) webhook.Record {
	rec, err := r.Webhook.Redecide(ctx, p, j.rec, j.entry.Index, j.entry.Time, j.found)
	switch {
	case err == nil:
	case errors.Is(err, webhook.ErrUnknownEnvironment):
		*skip = SkipEnvironment
	default:
		rec.Allowed, rec.Error = false, err.Error()
		rec.Messages = []string{"Vouch could not decide, so the change is refused: " + err.Error()}
		rec.Violations = nil
	}
	return rec
}
