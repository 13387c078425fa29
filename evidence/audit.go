package evidence

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vouch-dev/vouch/journal"
)

// Ref names one evidence record as a store's tables hold it.
type Ref struct {
	ID     uint64 // the journal index it claims to have been recorded at
	Kind   journal.Kind
	Digest string
}

// RefLister lists the evidence records a store holds.
type RefLister interface {
	// EvidenceRefs returns up to limit records with ids from from, in id
	// order (artifacts, attestations and approvals together).
	EvidenceRefs(ctx context.Context, from uint64, limit int) ([]Ref, error)
}

// AuditError lists evidence records that are not the journal entry of
// their id.
type AuditError struct {
	Count int      // records that do not match
	First []string // the first few, described
}

func (e *AuditError) Error() string {
	return fmt.Sprintf("%d evidence records are not the journal entries of their ids (the webhook uses them, so they were written around the journal): %s", e.Count, strings.Join(e.First, "; "))
}

// Audit checks that every evidence record a store holds is the journal
// entry of its id: of the same kind, for the same digest. Evidence is only
// ever written through the journal, so a record that is not was put into
// the tables by someone with database access; the webhook would decide
// with it. Run it after journal.VerifyStore, which proves the leaves read
// here. It returns the number of records checked.
func Audit(ctx context.Context, refs RefLister, leaves journal.LeafReader, progress func(done int)) (int, error) {
	const page = 1000
	n := 0
	bad := &AuditError{}
	for from := uint64(0); ; {
		rs, err := refs.EvidenceRefs(ctx, from, page)
		if err != nil {
			return n, err
		}
		for _, r := range rs {
			if why := checkRef(ctx, leaves, r); why != "" {
				bad.Count++
				if len(bad.First) < 5 {
					bad.First = append(bad.First, fmt.Sprintf("%s %d for %s: %s", r.Kind, r.ID, r.Digest, why))
				}
			}
		}
		n += len(rs)
		if progress != nil {
			progress(n)
		}
		if len(rs) < page {
			break
		}
		from = rs[len(rs)-1].ID + 1
	}
	if bad.Count > 0 {
		return n, bad
	}
	return n, nil
}

// checkRef says why r is not the journal entry at its id, or "".
func checkRef(ctx context.Context, leaves journal.LeafReader, r Ref) string {
	ls, err := leaves.Leaves(ctx, r.ID, 1)
	if err != nil {
		return err.Error()
	}
	if len(ls) == 0 || ls[0].Index != r.ID {
		return "the journal has no entry at that index"
	}
	e, err := journal.ParseLeaf(r.ID, ls[0].Data)
	if err != nil {
		return err.Error()
	}
	var body struct{ Digest string }
	if err := json.Unmarshal(e.Body, &body); err != nil || e.Kind != r.Kind || body.Digest != r.Digest {
		return fmt.Sprintf("the journal entry there is %s for %q", e.Kind, body.Digest)
	}
	return ""
}
