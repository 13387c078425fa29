package evidence

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"

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

// AuditSource is the store side of an audit: its evidence records, listed
// and as the webhook reads them.
type AuditSource interface {
	RefLister
	Lookuper
}

// Audit checks that every evidence record a store holds is the journal
// entry of its id: of the same kind, for the same digest, and — for the
// records the webhook reads (Lookup) — with the same content, field by
// field. Evidence is only ever written through the journal, so a record
// that is not was put into or changed in the tables by someone with
// database access; the webhook would decide with it. Run it after
// journal.VerifyStore, which proves the leaves read here. It returns the
// number of records checked.
func Audit(ctx context.Context, src AuditSource, leaves journal.LeafReader, progress func(done int)) (int, error) {
	const page = 1000
	n := 0
	bad := &journal.MismatchError{Summary: "evidence records are not the journal entries of their ids (the webhook uses them, so they were written around the journal)"}
	for from := uint64(0); ; {
		rs, err := src.EvidenceRefs(ctx, from, page)
		if err != nil {
			return n, err
		}
		stored, err := readRecords(ctx, src, rs)
		if err != nil {
			return n, err
		}
		for _, r := range rs {
			if why := checkRef(ctx, leaves, r, stored[r.ID]); why != "" {
				bad.Add(fmt.Sprintf("%s %d for %s: %s", r.Kind, r.ID, r.Digest, why))
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
	return n, bad.Err()
}

// readRecords reads the records of refs as the webhook reads them, by id.
func readRecords(ctx context.Context, src Lookuper, refs []Ref) (map[uint64]any, error) {
	var digests []string
	seen := map[string]bool{}
	for _, r := range refs {
		if !seen[r.Digest] {
			seen[r.Digest] = true
			digests = append(digests, r.Digest)
		}
	}
	found, err := src.Lookup(ctx, digests)
	if err != nil {
		return nil, err
	}
	out := map[uint64]any{}
	for _, ev := range found {
		if ev.Artifact != nil {
			out[ev.Artifact.ID] = *ev.Artifact
		}
		for _, a := range ev.Attestations {
			out[a.ID] = a
		}
		for _, a := range ev.Approvals {
			out[a.ID] = a
		}
	}
	return out, nil
}

// SameRecord reports whether a record (Artifact, Attestation or Approval)
// has the content of the one the journal entry, of its kind, holds; an
// attestation's payload only withPayload (Lookup leaves payloads out: the
// webhook does not read them). Times are compared to the microsecond (what
// PostgreSQL keeps) and payloads, when read, as JSON values.
func SameRecord(stored any, e journal.Entry, withPayload bool) bool {
	switch st := stored.(type) {
	case Artifact:
		var j Artifact
		if e.Kind != KindArtifact || DecodeEntry(e, &j) != nil {
			return false
		}
		st.ReportedAt, j.ReportedAt = micro(st.ReportedAt), micro(j.ReportedAt)
		return st == j
	case Attestation:
		var j Attestation
		if e.Kind != KindAttestation || DecodeEntry(e, &j) != nil || withPayload && !sameJSON(st.Payload, j.Payload) {
			return false
		}
		st.Payload, j.Payload = nil, nil
		st.ReportedAt, j.ReportedAt = micro(st.ReportedAt), micro(j.ReportedAt)
		if !sameTime(st.SignedAt, j.SignedAt) {
			return false
		}
		st.SignedAt, j.SignedAt = nil, nil
		return reflect.DeepEqual(st, j)
	case Approval:
		var j Approval
		if e.Kind != KindApproval || DecodeEntry(e, &j) != nil {
			return false
		}
		st.ApprovedAt, j.ApprovedAt = micro(st.ApprovedAt), micro(j.ApprovedAt)
		if !sameTime(st.ExpiresAt, j.ExpiresAt) {
			return false
		}
		st.ExpiresAt, j.ExpiresAt = nil, nil
		return reflect.DeepEqual(st, j)
	}
	return true
}

func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// sameTime compares optional times as the stores keep them, to the
// microsecond.
func sameTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || micro(*a).Equal(micro(*b)))
}

func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b) || string(a) == "null" || string(b) == "null"
	}
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// checkRef says why r is not the journal entry at its id, or "". stored
// is the record as the webhook reads it, or nil if it does not read it.
func checkRef(ctx context.Context, leaves journal.LeafReader, r Ref, stored any) string {
	e, err := journal.EntryAt(ctx, leaves, r.ID)
	if err != nil {
		return err.Error()
	}
	if dg := EntryDigest(e); e.Kind != r.Kind || dg != r.Digest {
		return fmt.Sprintf("the journal entry there is %s for %q", e.Kind, dg)
	}
	// Payloads are compared where the webhook reads them.
	a, ok := stored.(Attestation)
	withPayload := ok && slices.Contains(DecisionPayloads, a.Type)
	if stored != nil && !SameRecord(stored, e, withPayload) {
		return "its content differs from the journal entry's (changed in the tables)"
	}
	return ""
}
