package journal

import (
	"context"
	"errors"
)

// ErrNotFound is returned when a requested entry does not exist.
var ErrNotFound = errors.New("journal: not found")

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
