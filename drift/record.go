package drift

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/vouch-dev/vouch/journal"
)

// KindSnapshot is the journal entry kind of snapshots.
const KindSnapshot journal.Kind = "snapshot"

// Record kinds: a full snapshot, the changes since the previous one, or a
// heartbeat saying nothing changed.
const (
	RecordFull      = "full"
	RecordDelta     = "delta"
	RecordHeartbeat = "heartbeat"
)

// Record is the journal body of a snapshot entry. Deltas keep history
// small (a full snapshot every FullEvery changes bounds what a state query
// replays); heartbeats prove the snapshotter was watching.
type Record struct {
	Environment string     `json:"environment"`
	Kind        string     `json:"kind"`
	Hash        string     `json:"hash"`           // ContentHash of the state after this record
	Base        *uint64    `json:"base,omitempty"` // delta: the record it applies to
	Workloads   []Workload `json:"workloads,omitempty"`
	Diff        *Diff      `json:"diff,omitempty"`
	Reporter    string     `json:"reporter,omitempty"` // who sent it (snapshot reporters)
}

// StoredRecord is a Record as stored: its journal index and time.
type StoredRecord struct {
	ID     uint64
	Time   time.Time
	FullID uint64 // the full record this one's state is rebuilt from
	Record
}

// Store reads recorded snapshots. Records are written through the journal.
type Store interface {
	// LatestRecord returns the newest record of env at or before at whose
	// kind is in kinds (all kinds when empty), or ErrNoSnapshot.
	LatestRecord(ctx context.Context, env string, at time.Time, kinds ...string) (StoredRecord, error)
	// Records returns env's full and delta records with ids in [from, to].
	Records(ctx context.Context, env string, from, to uint64) ([]StoredRecord, error)
	// RecordsBetween returns env's full and delta records timed in
	// (since, until], oldest first, at most limit.
	RecordsBetween(ctx context.Context, env string, since, until time.Time, limit int) ([]StoredRecord, error)
	// RecordsWith is RecordsBetween for what concerns one digest: the
	// records that name it (NamedDigests), and the other full records
	// with no workloads (the digest ran nowhere then). Stores find them
	// by an index, at a cost that does not grow with the history.
	RecordsWith(ctx context.Context, env, digest string, since, until time.Time, limit int) ([]StoredRecord, error)
	// Environments lists the environments with snapshots.
	Environments(ctx context.Context) ([]string, error)
	// Sightings returns, for each digest admitted or run anywhere, one
	// Sighting per environment (RunningNow unset).
	Sightings(ctx context.Context, digests []string) (map[string][]Sighting, error)
}

// ErrNoSnapshot means no snapshot of the environment was recorded by then.
var ErrNoSnapshot = errors.New("no snapshot recorded")

// State rebuilds what ran in env at time at: the newest full record
// before it and the deltas after it. AsOf is the time of the newest record
// (heartbeats included) at or before at.
func State(ctx context.Context, s Store, env string, at time.Time) (snap Snapshot, asOf time.Time, err error) {
	last, err := s.LatestRecord(ctx, env, at, RecordFull, RecordDelta)
	if err != nil {
		return Snapshot{}, time.Time{}, err
	}
	recs, err := s.Records(ctx, env, last.FullID, last.ID)
	if err != nil {
		return Snapshot{}, time.Time{}, err
	}
	snap, err = replay(env, recs)
	if err != nil {
		return Snapshot{}, time.Time{}, err
	}
	asOf = last.Time
	if beat, err := s.LatestRecord(ctx, env, at); err == nil && beat.Time.After(asOf) {
		asOf = beat.Time
	}
	snap.Time = asOf
	return snap, asOf, nil
}

// replay folds a full record and the deltas after it.
func replay(env string, recs []StoredRecord) (Snapshot, error) {
	if len(recs) == 0 || recs[0].Kind != RecordFull {
		return Snapshot{}, fmt.Errorf("snapshots of %s: history does not start with a full snapshot", env)
	}
	snap := Snapshot{Environment: env, Workloads: recs[0].Workloads}
	diffs := make([]Diff, 0, len(recs)-1)
	for _, r := range recs[1:] {
		if r.Diff == nil {
			return Snapshot{}, fmt.Errorf("snapshot record %d: delta without changes", r.ID)
		}
		diffs = append(diffs, *r.Diff)
	}
	snap = ApplyAll(snap, diffs...)
	if got := snap.ContentHash(); got != recs[len(recs)-1].Hash {
		return Snapshot{}, fmt.Errorf("snapshot record %d: rebuilt state has hash %s, recorded %s", recs[len(recs)-1].ID, got, recs[len(recs)-1].Hash)
	}
	return snap, nil
}

// Appender appends to the journal and waits until the entry is durable.
type Appender interface {
	Append(ctx context.Context, e journal.Entry) (journal.Appended, error)
}

// Default recorder settings.
const (
	DefaultHeartbeat = 60 * time.Second
	DefaultFullEvery = 50
)

// Recorder journals snapshots: a record when the content changed, else a
// heartbeat once per Heartbeat. It is safe for concurrent use.
type Recorder struct {
	Journal   Appender
	Store     Store
	Heartbeat time.Duration // DefaultHeartbeat when 0
	FullEvery int           // DefaultFullEvery when 0

	mu   sync.Mutex
	last map[string]*lastRecord
}

type lastRecord struct {
	snap      Snapshot
	id        uint64
	hash      string
	sinceFull int
	beat      time.Time
}

// Result says what Record did.
type Result struct {
	Recorded string // RecordFull, RecordDelta, RecordHeartbeat, or "" for nothing
	ID       uint64
	Diff     *Diff
}

// Record journals s if its content differs from the environment's last
// snapshot, or a heartbeat if one is due.
func (r *Recorder) Record(ctx context.Context, s Snapshot, reporter string) (Result, error) {
	s.Normalize()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]*lastRecord{}
	}
	last, err := r.lastOf(ctx, s.Environment)
	if err != nil {
		return Result{}, err
	}
	hash := s.ContentHash()
	rec := Record{Environment: s.Environment, Hash: hash, Reporter: reporter}
	var diff *Diff
	switch {
	case last != nil && last.hash == hash:
		if s.Time.Sub(last.beat) < r.heartbeat() {
			return Result{}, nil
		}
		rec.Kind = RecordHeartbeat
	case last == nil || last.sinceFull+1 >= r.fullEvery():
		rec.Kind, rec.Workloads = RecordFull, s.Workloads
		if last != nil {
			d := Compare(last.snap, s)
			diff = &d
		}
	default:
		d := Compare(last.snap, s)
		rec.Kind, rec.Base, rec.Diff, diff = RecordDelta, &last.id, &d, &d
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return Result{}, err
	}
	res, err := r.Journal.Append(ctx, journal.Entry{Kind: KindSnapshot, Time: s.Time, Environment: s.Environment, Key: "snapshot:" + randomID(), Body: body})
	if err != nil {
		return Result{}, fmt.Errorf("record snapshot of %s: %w", s.Environment, err)
	}
	switch rec.Kind {
	case RecordHeartbeat:
		last.beat = s.Time
	case RecordFull:
		r.last[s.Environment] = &lastRecord{snap: s, id: res.Index, hash: hash, beat: s.Time}
	case RecordDelta:
		r.last[s.Environment] = &lastRecord{snap: s, id: res.Index, hash: hash, sinceFull: last.sinceFull + 1, beat: s.Time}
	}
	return Result{Recorded: rec.Kind, ID: res.Index, Diff: diff}, nil
}

// lastOf returns the last recorded state of env, from memory or the store.
func (r *Recorder) lastOf(ctx context.Context, env string) (*lastRecord, error) {
	if l, ok := r.last[env]; ok {
		return l, nil
	}
	rec, err := r.Store.LatestRecord(ctx, env, time.Now().Add(time.Hour), RecordFull, RecordDelta)
	if errors.Is(err, ErrNoSnapshot) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	snap, _, err := State(ctx, r.Store, env, rec.Time)
	if err != nil {
		return nil, err
	}
	deltas, err := r.Store.Records(ctx, env, rec.FullID, rec.ID)
	if err != nil {
		return nil, err
	}
	beat := rec.Time
	if b, err := r.Store.LatestRecord(ctx, env, time.Now().Add(time.Hour)); err == nil && b.Time.After(beat) {
		beat = b.Time
	}
	l := &lastRecord{snap: snap, id: rec.ID, hash: rec.Hash, sinceFull: len(deltas) - 1, beat: beat}
	r.last[env] = l
	return l, nil
}

func (r *Recorder) heartbeat() time.Duration {
	if r.Heartbeat > 0 {
		return r.Heartbeat
	}
	return DefaultHeartbeat
}

func (r *Recorder) fullEvery() int {
	if r.FullEvery > 0 {
		return r.FullEvery
	}
	return DefaultFullEvery
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// DecodeRecord decodes the body of a snapshot entry.
func DecodeRecord(e journal.Entry) (Record, error) {
	var r Record
	if err := json.Unmarshal(e.Body, &r); err != nil {
		return Record{}, fmt.Errorf("snapshot entry %d: %w", e.Index, err)
	}
	return r, nil
}

// AdmittedDigests returns the environment and image digests of an
// admission entry that admitted a change; ok is false for other entries.
// Stores keep them to tell documented workloads from undocumented ones.
func AdmittedDigests(e journal.Entry) (env string, digests []string, ok bool) {
	if e.Kind != journal.KindAdmission {
		return "", nil, false
	}
	var b struct {
		Allowed     bool   `json:"allowed"`
		Environment string `json:"environment"`
		Images      []struct {
			Digest string `json:"digest"`
		} `json:"images"`
	}
	// goccy/go-json: this runs for every admission in every journal batch,
	// on bodies the webhook encoded: ~3 µs instead of ~20 µs for a 1.6 KB
	// decision record.
	if gojson.Unmarshal(e.Body, &b) != nil || !b.Allowed {
		return "", nil, false
	}
	seen := map[string]bool{}
	for _, i := range b.Images {
		if i.Digest != "" && !seen[i.Digest] {
			seen[i.Digest] = true
			digests = append(digests, i.Digest)
		}
	}
	return b.Environment, digests, len(digests) > 0
}
