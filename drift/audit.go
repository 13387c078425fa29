package drift

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/journal"
)

// ProjectionSource is what AuditProjections reads: the decisions log and
// the snapshot records, which a store keeps beside the journal for the
// console and the compliance checks.
type ProjectionSource interface {
	Store
	Decisions(ctx context.Context, q DecisionQuery) (DecisionPage, error)
}

// ProjectionError lists rows of the decisions log or the snapshot records
// that are not what the journal entry of their index holds.
type ProjectionError struct {
	Count int
	First []string
}

func (e *ProjectionError) Error() string {
	return fmt.Sprintf("%d rows of the decisions log or the snapshot records are not their journal entries (the console and compliance read them, so they were changed around the journal): %s",
		e.Count, strings.Join(e.First, "; "))
}

// AuditProjections checks every decision of the decisions log and every
// full and delta snapshot record against the journal entry of its index,
// field by field: what the console shows as "allowed, by …" or "ran" must
// be what was journaled. Run it after journal.VerifyStore, which proves the
// leaves read here. It returns the number of rows checked.
func AuditProjections(ctx context.Context, src ProjectionSource, leaves journal.LeafReader) (int, error) {
	n := 0
	bad := &ProjectionError{}
	report := func(what string, index uint64, why string) {
		bad.Count++
		if len(bad.First) < 5 {
			bad.First = append(bad.First, fmt.Sprintf("%s %d: %s", what, index, why))
		}
	}
	for before := uint64(0); ; {
		page, err := src.Decisions(ctx, DecisionQuery{Before: before, Limit: MaxDecisionLimit})
		if err != nil {
			return n, err
		}
		for _, d := range page.Decisions {
			n++
			e, why := entryAt(ctx, leaves, d.Index)
			if why == "" {
				why = sameDecision(d, e)
			}
			if why != "" {
				report("decision", d.Index, why)
			}
		}
		if page.Next == 0 {
			break
		}
		before = page.Next
	}
	envs, err := src.Environments(ctx)
	if err != nil {
		return n, err
	}
	const span = 1 << 16 // journal indices read at a time: a year of records need not fit in memory
	for _, env := range envs {
		newest, err := src.LatestRecord(ctx, env, time.Now().Add(24*time.Hour))
		if errors.Is(err, ErrNoSnapshot) {
			continue
		} else if err != nil {
			return n, err
		}
		for from := uint64(0); from <= newest.ID; from += span {
			recs, err := src.Records(ctx, env, from, from+span-1)
			if err != nil {
				return n, err
			}
			for _, r := range recs {
				n++
				e, why := entryAt(ctx, leaves, r.ID)
				if why == "" {
					why = sameRecord(r, e)
				}
				if why != "" {
					report("snapshot record", r.ID, why)
				}
			}
		}
	}
	if bad.Count > 0 {
		return n, bad
	}
	return n, nil
}

// entryAt reads the journal entry at index, or says why it cannot.
func entryAt(ctx context.Context, leaves journal.LeafReader, index uint64) (journal.Entry, string) {
	ls, err := leaves.Leaves(ctx, index, 1)
	if err != nil {
		return journal.Entry{}, err.Error()
	}
	if len(ls) == 0 || ls[0].Index != index {
		return journal.Entry{}, "the journal has no entry at that index"
	}
	e, err := journal.ParseLeaf(index, ls[0].Data)
	if err != nil {
		return journal.Entry{}, err.Error()
	}
	return e, ""
}

func sameDecision(row Decision, e journal.Entry) string {
	d, ok := ParseDecision(e)
	if !ok {
		return fmt.Sprintf("the journal entry there is %s, not an admission decision", e.Kind)
	}
	row.Digests, d.Digests = nil, nil // the log keeps them in a table of their own
	for i, m := range d.Messages {
		d.Messages[i] = strings.ReplaceAll(m, "\n", " ") // the log keeps one message a line
	}
	row.Time, d.Time = micro(row.Time), micro(d.Time)
	a, errA := journal.Canonical(row)
	b, errB := journal.Canonical(d)
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		return "it differs from the journal entry (changed in the table)"
	}
	return ""
}

func sameRecord(row StoredRecord, e journal.Entry) string {
	if e.Kind != KindSnapshot {
		return fmt.Sprintf("the journal entry there is %s, not a snapshot", e.Kind)
	}
	r, err := DecodeRecord(e)
	if err != nil {
		return err.Error()
	}
	a, errA := journal.Canonical(row.Record)
	b, errB := journal.Canonical(r)
	if errA != nil || errB != nil || !bytes.Equal(a, b) || !micro(row.Time).Equal(micro(e.Time)) {
		return "it differs from the journal entry (changed in the table)"
	}
	return ""
}

// micro is t as the stores keep it: UTC, to the microsecond.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
