package journal

import (
	"context"
	"errors"
	"time"

	"github.com/transparency-dev/merkle/compact"
)

// ErrNotFound is returned when a requested entry does not exist.
var ErrNotFound = errors.New("journal: not found")

// ErrRefused marks a store's refusal of an entry's content (PostgreSQL's
// data exceptions, say): retrying cannot help, so appenders commit the
// other entries of the batch without it, and the spool refuses it (see
// Screener) or, found in the spool, sets it aside.
var ErrRefused = errors.New("the journal store refused the entry")

// Store persists the journal. Implementations live in the storage adapter
// packages (sqlite, postgres) and are checked by one conformance suite.
type Store interface {
	// AppendBatch appends sealed entries in order, in one transaction that
	// also advances the tree state: indices are contiguous from the current
	// tree size. An entry whose Key is already in the journal (or earlier
	// in the batch) is not appended; its result is the existing entry with
	// Existing set. AppendBatch MUST NOT return before the transaction is
	// durably committed, and on error nothing of the batch is stored.
	AppendBatch(ctx context.Context, entries []Entry) ([]Appended, error)
	// Entries returns entries matching q in index order.
	Entries(ctx context.Context, q Query) ([]Entry, error)
	// TreeState returns the current tree head.
	TreeState(ctx context.Context) (TreeState, error)
	// FirstIndexAt returns the index of the earliest-timed entry timed at or
	// after t (the first such index among equal times), or the tree size if
	// there is none. Entries are timed as they are sequenced, so times rise
	// with indices — except entries kept in the spool during a store outage,
	// which keep their earlier time. Two lookups on the time index: it costs
	// the same whatever the journal's size.
	FirstIndexAt(ctx context.Context, t time.Time) (uint64, error)
	LeafReader
	NodeReader
	CheckpointStore
}

// LeafReader reads stored leaves without decoding them: for exports and
// verification, which must see the exact bytes.
type LeafReader interface {
	// Leaves returns up to limit leaves from index from, in index order.
	Leaves(ctx context.Context, from uint64, limit int) ([]Leaf, error)
}

// Leaf is a stored leaf with the store's own columns about it. Kind and
// Environment come from the store's columns, for filtering; only Data is
// covered by the tree.
type Leaf struct {
	Index       uint64
	Kind        Kind
	Environment string
	Data        []byte
	// StoredHash is the leaf hash the store kept beside the leaf.
	StoredHash Hash
}

// NodeID identifies a tree node: its level (0 for leaves) and index.
type NodeID = compact.NodeID

// NodeReader reads tree nodes.
type NodeReader interface {
	// NodeHashes returns the hashes of the given nodes, in order: leaf
	// hashes for level 0, and for higher levels the perfect-subtree nodes
	// AppendBatch stored (Batch.Nodes). It fails with ErrNotFound if a node
	// does not exist.
	NodeHashes(ctx context.Context, ids []compact.NodeID) ([]Hash, error)
}

// CheckpointStore keeps signed checkpoints. Like entries, they are never
// changed or removed.
type CheckpointStore interface {
	// AddCheckpoint stores a checkpoint. If one of the same size is stored
	// already, that one is kept and AddCheckpoint succeeds.
	AddCheckpoint(ctx context.Context, c Checkpoint) error
	// LatestCheckpoint returns the largest checkpoint, or ErrNotFound.
	LatestCheckpoint(ctx context.Context) (Checkpoint, error)
	// Checkpoints returns up to limit checkpoints of size >= from, in
	// increasing size.
	Checkpoints(ctx context.Context, from uint64, limit int) ([]Checkpoint, error)
}

// Query selects journal entries.
type Query struct {
	From        uint64 // first index, inclusive
	Limit       int    // at most this many; 0 means DefaultLimit
	Kind        Kind   // only this kind, when set
	Environment string // only this environment, when set
}

// Default and maximum page sizes for Query.Limit.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// EffectiveLimit returns the page size q asks for, within [1, MaxLimit].
func (q Query) EffectiveLimit() int {
	switch {
	case q.Limit <= 0:
		return DefaultLimit
	case q.Limit > MaxLimit:
		return MaxLimit
	}
	return q.Limit
}
