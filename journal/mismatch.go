package journal

import (
	"context"
	"fmt"
	"strings"
)

// EntryAt reads and parses the entry at index, or says why it cannot:
// audits of what a store keeps beside the journal compare with it.
func EntryAt(ctx context.Context, leaves LeafReader, index uint64) (Entry, error) {
	ls, err := leaves.Leaves(ctx, index, 1)
	if err != nil {
		return Entry{}, err
	}
	if len(ls) == 0 || ls[0].Index != index {
		return Entry{}, fmt.Errorf("the journal has no entry at that index")
	}
	return ParseLeaf(index, ls[0].Data)
}

// MismatchError lists records a store keeps beside the journal (evidence,
// the decisions log, snapshot records) that are not what the journal
// entry of their index holds: they were written or changed around it.
type MismatchError struct {
	// Summary follows the count in the message, e.g. "evidence records
	// are not the journal entries of their ids (…)".
	Summary string
	Count   int      // records that do not match
	First   []string // the first few, described
}

// Add records one mismatch, described.
func (e *MismatchError) Add(desc string) {
	e.Count++
	if len(e.First) < 5 {
		e.First = append(e.First, desc)
	}
}

// Err is e, or nil when nothing mismatched.
func (e *MismatchError) Err() error {
	if e.Count == 0 {
		return nil
	}
	return e
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Count, e.Summary, strings.Join(e.First, "; "))
}
