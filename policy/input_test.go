package policy

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestInputValueMatchesJSON checks that the direct conversion to an OPA
// value gives exactly the documented JSON input.
func TestInputValueMatchesJSON(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 123, time.UTC)
	exp := at.Add(time.Hour)
	in := &Input{
		Request: Request{UID: "u", Operation: "CREATE", Kind: "Pod", Namespace: "ns", Name: "p", User: User{Username: "bob", Groups: []string{"dev"}}, DryRun: true},
		Environment: NewInputEnvironment(Environment{Name: "prod", Mode: ModeWarn,
			Require: Requirements{Digest: true, Attestations: []string{"a"}, VerifiedAttestations: []string{"slsa"}, Registries: []string{"r.example/*"},
				NoLatest: true, MaxAge: map[string]Duration{"scan": Duration(7 * 24 * time.Hour)}, FourEyes: true,
				ChangeRequest: &ChangeRequest{Attestation: "change-request", States: []string{"implement"}, MatchConfigurationItem: true}},
			Freeze: []FreezeWindow{{Cron: "0 * * * *", Duration: Duration(2 * time.Hour), Reason: "always"}}}),
		Namespace: Namespace{Name: "ns", Labels: map[string]string{"team": "payments"}, Annotations: map[string]string{}},
		Workload:  Workload{Kind: "Pod", Name: "p", Namespace: "ns", Labels: map[string]string{"app": "x"}, Annotations: map[string]string{}},
		Artifacts: []ArtifactInput{
			{Container: "c", ContainerType: ContainerInit, Image: "nginx", Name: "docker.io/library/nginx", Tag: "latest", Attestations: []AttestationInput{}, Approvals: []ApprovalInput{}},
			{
				Container: "d", ContainerType: ContainerRegular, Image: "x@sha256:00", Digest: "sha256:00", Allowed: true,
				Provenance: &Provenance{ID: 7, Name: "x", Digest: "sha256:00", ReportedAt: at},
				Attestations: []AttestationInput{{ID: 8, Name: "a", Passed: true, ReportedAt: at},
					{ID: 9, Name: "sbom", Type: "in-toto", Passed: true, Verified: true, KeyID: "ci", ReportedAt: at, SignedAt: at.Add(-time.Hour)},
					{ID: 11, Name: "change-request", Type: "change-request", Passed: true, Verified: true, KeyID: "change:sn", ReportedAt: at,
						Change: ChangeInput{Number: "CHG1", State: "implement", Approval: "approved", PlannedStart: at, PlannedEnd: exp,
							ConfigurationItems: NewNames([]string{"Payments API", "payments-db"}), ConfigurationItemsProblem: "403"}},
					{ID: 12, Name: "change-old", Type: "change-request", Change: ChangeInput{Number: "CHG2", State: "scheduled", Approval: "requested", Problem: "p"}}},
				Approvals: []ApprovalInput{{ID: 9, Decision: "approved", ExpiresAt: &exp, ApprovedAt: at}, {ID: 10, Decision: "rejected", ApprovedAt: at}},
			},
		},
	}
	in.Summarize(at)
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ast.ValueFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got := in.value(newTermCache()); got.Compare(want) != 0 {
		t.Errorf("value() = %v\nwant (from JSON) %v", got, want)
	}
}
