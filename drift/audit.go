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

// AuditProjections checks every decision of the decisions log and every
// full and delta snapshot record against the journal entry of its index,
// field by field: what the console shows as "allowed, by …" or "ran" must
// be what was journaled. Run it after journal.VerifyStore, which proves the
// leaves read here. It returns the number of rows checked.
func AuditProjections(ctx context.Context, src ProjectionSource, leaves journal.LeafReader) (int, error) {
	n := 0
	bad := &journal.MismatchError{Summary: "rows of the decisions log or the snapshot records are not their journal entries (the console and compliance read them, so they were changed around the journal)"}
	report := func(what string, index uint64, why string) { bad.Add(fmt.Sprintf("%s %d: %s", what, index, why)) }
	for before := uint64(0); ; {
		page, err := src.Decisions(ctx, DecisionQuery{Before: before, Limit: MaxDecisionLimit})
		if err != nil {
			return n, err
		}
		for _, d := range page.Decisions {
			n++
			why := compare(ctx, leaves, d.Index, func(e journal.Entry) string { return sameDecision(d, e) })
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
				why := compare(ctx, leaves, r.ID, func(e journal.Entry) string { return sameRecord(r, e) })
				if why != "" {
					report("snapshot record", r.ID, why)
				}
			}
		}
	}
	return n, bad.Err()
}

// compare says why the row at index is not its journal entry (same
// says it of the entry), or "".
func compare(ctx context.Context, leaves journal.LeafReader, index uint64, same func(journal.Entry) string) string {
	e, err := journal.EntryAt(ctx, leaves, index)
	if err != nil {
		return err.Error()
	}
	return same(e)
}

func sameDecision(row Decision, e journal.Entry) string {
	if e.Kind != journal.KindAdmission {
		return fmt.Sprintf("the journal entry there is %s, not an admission decision", e.Kind)
	}
	if !SameDecision(row, e) {
		return "it differs from the journal entry (changed in the table)"
	}
	return ""
}

// SameDecision reports whether a decision as the decisions log keeps it
// (its digests aside, kept in a table of their own) is what the admission
// entry records.
func SameDecision(row Decision, e journal.Entry) bool {
	d, ok := ParseDecision(e)
	if !ok {
		return false
	}
	row.Digests, d.Digests = nil, nil // the log keeps them in a table of their own
	for i, m := range d.Messages {
		d.Messages[i] = strings.ReplaceAll(m, "\n", " ") // the log keeps one message a line
	}
	row.Time, d.Time = micro(row.Time), micro(d.Time)
	a, errA := journal.Canonical(row)
	b, errB := journal.Canonical(d)
	return errA == nil && errB == nil && bytes.Equal(a, b)
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
