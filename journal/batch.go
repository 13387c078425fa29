package journal

import "fmt"

// Batch is what a Store writes for one AppendBatch call.
type Batch struct {
	// New are the entries to insert, with their indices assigned.
	New []Entry
	// Results has one result per entry passed to PlanBatch, in order.
	Results []Appended
	// State is the tree state after New is appended.
	State TreeState
	// Nodes are the tree nodes (level >= 1) that New completes; stores keep
	// them for proofs.
	Nodes []Node
}

// PlanBatch assigns indices to sealed entries appended to a tree in state.
// existing holds the entries already stored under the keys of entries (the
// store looks them up in the same transaction). An entry whose key is in
// existing, or used by an earlier entry of the batch, is not appended: its
// result is that entry, marked Existing.
func PlanBatch(state TreeState, entries []Entry, existing map[string]Entry) (Batch, error) {
	b := Batch{Results: make([]Appended, len(entries))}
	inBatch := map[string]Entry{}
	next := state.Size
	var leaves []Hash
	for i, e := range entries {
		if len(e.Leaf) == 0 {
			return Batch{}, fmt.Errorf("plan batch: entry %d is not sealed", i)
		}
		if e.Key != "" {
			if prev, ok := existing[e.Key]; ok {
				b.Results[i] = Appended{Entry: prev, Existing: true}
				continue
			}
			if prev, ok := inBatch[e.Key]; ok {
				b.Results[i] = Appended{Entry: prev, Existing: true}
				continue
			}
		}
		e.Index = next
		next++
		if e.Key != "" {
			inBatch[e.Key] = e
		}
		b.New = append(b.New, e)
		b.Results[i] = Appended{Entry: e}
		leaves = append(leaves, e.LeafHash)
	}
	var err error
	if b.State, b.Nodes, err = state.extend(leaves); err != nil {
		return Batch{}, err
	}
	return b, nil
}

// Keys returns the distinct non-empty keys of entries.
func Keys(entries []Entry) []string {
	var keys []string
	seen := map[string]bool{}
	for _, e := range entries {
		if e.Key != "" && !seen[e.Key] {
			seen[e.Key] = true
			keys = append(keys, e.Key)
		}
	}
	return keys
}
