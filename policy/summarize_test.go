package policy

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	past, soon, later := at.Add(-time.Minute), at.Add(time.Hour), at.Add(48*time.Hour)
	ap := func(id uint64, decision string, exp *time.Time) ApprovalInput {
		return ApprovalInput{ID: id, Decision: decision, ExpiresAt: exp}
	}
	tests := []struct {
		name      string
		approvals []ApprovalInput
		want      uint64 // id of the approval in force; 0 for none
	}{
		{"none", nil, 0},
		{"approved", []ApprovalInput{ap(1, "approved", nil)}, 1},
		{"expired", []ApprovalInput{ap(1, "approved", &past)}, 0},
		{"rejected after approval", []ApprovalInput{ap(1, "approved", nil), ap(2, "rejected", nil)}, 0},
		{"approved after rejection", []ApprovalInput{ap(1, "rejected", nil), ap(2, "approved", &soon)}, 2},
		{"no expiry wins", []ApprovalInput{ap(1, "approved", nil), ap(2, "approved", &later)}, 1},
		{"later expiry wins", []ApprovalInput{ap(1, "approved", &later), ap(2, "approved", &soon)}, 1},
		{"expired one ignored", []ApprovalInput{ap(1, "approved", &soon), ap(2, "approved", &past)}, 1},
	}
	for _, tt := range tests {
		in := &Input{Artifacts: []ArtifactInput{{Approvals: tt.approvals}}}
		in.Summarize(at)
		got := uint64(0)
		if a := in.Artifacts[0].Approval; a != nil {
			got = a.ID
		}
		if got != tt.want {
			t.Errorf("%s: approval in force = %d, want %d", tt.name, got, tt.want)
		}
	}

	in := &Input{Artifacts: []ArtifactInput{{Attestations: []AttestationInput{
		{ID: 1, Name: "unit-tests", Passed: false}, {ID: 2, Name: "scan", Passed: true}, {ID: 3, Name: "unit-tests", Passed: true},
	}}}}
	in.Summarize(at)
	if l := in.Artifacts[0].LatestAttestations; len(l) != 2 || l["unit-tests"].ID != 3 || l["scan"].ID != 2 {
		t.Errorf("latest attestations = %+v, want unit-tests 3 and scan 2", l)
	}
}
