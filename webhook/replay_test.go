package webhook_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/webhook"
)

// TestRedecide decides a journaled admission again: with the evidence it
// could see and its own time, it comes out as it was; later evidence, a
// later clock or evidence it did not use change the outcome.
func TestRedecide(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	img := "registry.example.com/app@" + digest(20)
	f.report(digest(20), true, false)
	expires := now.Add(time.Hour)
	approval, err := f.evidence.Approve(ctx, "rm", evidence.ApprovalRequest{Digest: digest(20), Environment: "prod", Decision: "approved", ExpiresAt: &expires})
	if err != nil {
		t.Fatal(err)
	}
	if resp := f.decide(review("r1", "prod", "CREATE", false, img, "registry.k8s.io/pause:3.10")); !resp.Allowed {
		t.Fatalf("with evidence: denied: %s", resp.Result.Message)
	}
	// Rejected after the decision.
	rejection, err := f.evidence.Approve(ctx, "rm", evidence.ApprovalRequest{Digest: digest(20), Environment: "prod", Decision: "rejected", Reason: "CVE"})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := f.db.Entries(ctx, journal.Query{Kind: journal.KindAdmission})
	if err != nil || len(entries) != 1 {
		t.Fatalf("journal: %v, %v", entries, err)
	}
	e := entries[0]
	var rec webhook.Record
	if err := json.Unmarshal(e.Body, &rec); err != nil {
		t.Fatal(err)
	}
	found, err := f.db.Lookup(ctx, []string{digest(20)})
	if err != nil {
		t.Fatal(err)
	}
	engine := mustEngine(t)
	// A decision could use only what was journaled before it: even when
	// its record were to list the rejection, an index above it is needed.
	withRejection := rec
	withRejection.Evidence = append(slices.Clone(rec.Evidence), rejection.ID)
	notUsed := rec
	notUsed.Evidence = slices.DeleteFunc(slices.Clone(rec.Evidence), func(id uint64) bool { return id == approval.ID })
	tests := []struct {
		name        string
		rec         webhook.Record
		index       uint64
		at          time.Time
		wantAllowed bool
	}{
		{"as it was", rec, e.Index, e.Time, true},
		{"the later rejection is not seen", withRejection, e.Index, e.Time, true},
		{"unless the decision came after it", withRejection, rejection.ID + 1, e.Time, false},
		{"two hours later: the approval expired", rec, e.Index, e.Time.Add(2 * time.Hour), false},
		{"without the approval it did not use", notUsed, e.Index, e.Time, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.handler.Redecide(ctx, engine, tt.rec, tt.index, tt.at, found)
			if err != nil {
				t.Fatalf("Redecide: %v", err)
			}
			if got.Allowed != tt.wantAllowed {
				t.Errorf("Redecide(%s) allowed = %v (%q), want %v", tt.name, got.Allowed, got.Messages, tt.wantAllowed)
			}
			if got.UID != rec.UID || got.Environment != "prod" || len(got.Images) != 2 || !got.Images[1].Allowed {
				t.Errorf("Redecide(%s) = %+v; want the decision's request and images, pause allow-listed", tt.name, got)
			}
		})
	}
	if got, _ := f.handler.Redecide(ctx, engine, rec, e.Index, e.Time, found); !slices.Equal(got.Evidence, rec.Evidence) {
		t.Errorf("Redecide used evidence %v, the decision %v", got.Evidence, rec.Evidence)
	}
	gone := rec
	gone.Environment = "staging"
	if _, err := f.handler.Redecide(ctx, engine, gone, e.Index, e.Time, found); err == nil {
		t.Error("Redecide of an environment no longer configured succeeded")
	}
}
