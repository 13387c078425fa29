package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/change"
	"github.com/vouch-dev/vouch/test/servicenowtest"
)

// TestChangesReadByVouch: POST /changes has Vouch read the change request
// from ServiceNow itself; the attestation is verified (key_id
// change:<system>), and a pipeline cannot write one through POST
// /attestations.
func TestChangesReadByVouch(t *testing.T) {
	sn := servicenowtest.Start(t)
	sn.Add(servicenowtest.Change{SysID: "a1", Number: "CHG0030001", State: "-1", Approval: "approved", StartDate: "2026-11-26 18:00:00", EndDate: "2026-11-26 22:00:00"})
	sn.Add(servicenowtest.Change{SysID: "b2", Number: "CHG0030002", State: "-3", Approval: "requested"})
	systems, err := change.NewSystems([]change.SystemConfig{{Name: "servicenow", Type: "servicenow", URL: sn.URL, TokenFile: servicenowtest.File(t, sn.Token)}})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(_ *fixture, c *api.Config) {
		c.Changes = systems
		c.Evidence.(*evidence.Service).RequireSignature = func(name string) bool { return name == "slsa-provenance" }
	})
	digest := fmt.Sprintf("sha256:%064d", 1)

	code, out := f.postJSON("/api/v1/changes", "ci", fmt.Sprintf(`{"digest":%q,"number":"CHG0030001"}`, digest))
	payload, _ := out["payload"].(map[string]any)
	if code != 201 || out["verified"] != true || out["key_id"] != "change:servicenow" || out["name"] != "change-request" || out["type"] != "change-request" || out["passed"] != true ||
		out["url"] != sn.URL+"/change_request.do?sys_id=a1" || payload["state"] != "implement" || payload["planned_start"] != "2026-11-26T18:00:00Z" {
		t.Errorf("change read by Vouch: %d %v", code, out)
	}
	if code, out := f.postJSON("/api/v1/changes", "ci", fmt.Sprintf(`{"digest":%q,"number":"CHG0030001"}`, digest)); code != 200 {
		t.Errorf("the same change again: %d %v, want 200 (already recorded)", code, out)
	}
	// Not approved yet: recorded, failed.
	if code, out := f.postJSON("/api/v1/changes", "ci", fmt.Sprintf(`{"digest":%q,"number":"CHG0030002","name":"change"}`, digest)); code != 201 || out["passed"] != false {
		t.Errorf("change awaiting approval: %d %v", code, out)
	}

	for _, tc := range []struct {
		path, token, body string
		want              int
		says              string
	}{
		{"/api/v1/changes", "ci", fmt.Sprintf(`{"digest":%q,"number":"CHG0039999"}`, digest), 422, "no such change request CHG0039999 in servicenow"},
		{"/api/v1/changes", "ci", fmt.Sprintf(`{"digest":%q,"number":"CHG0030001","system":"jira"}`, digest), 422, `no change system "jira": configured are servicenow`},
		{"/api/v1/changes", "ci", fmt.Sprintf(`{"digest":%q,"number":"number=x^ORnumber!=y"}`, digest), 422, "is not a change number"},
		{"/api/v1/changes", "ci", `{"digest":"sha256:nope","number":"CHG0030001"}`, 422, `must be "sha256:"`},
		// A reading by Vouch is signed by nobody: not under a name that must be signed.
		{"/api/v1/changes", "ci", fmt.Sprintf(`{"digest":%q,"number":"CHG0030001","name":"slsa-provenance"}`, digest), 422, `attestations "slsa-provenance" must be signed by a trusted key`},
		{"/api/v1/changes", "auditor", fmt.Sprintf(`{"digest":%q,"number":"CHG0030001"}`, digest), 403, "evidence:write"},
		// A pipeline's own word is no change request.
		{"/api/v1/attestations", "ci", fmt.Sprintf(`{"digest":%q,"name":"change-request","type":"change-request","passed":true,"payload":{"number":"CHG1","state":"implement","approval":"approved"}}`, digest), 422, "change requests are recorded by Vouch alone"},
	} {
		code, out := f.postJSON(tc.path, tc.token, tc.body)
		if code != tc.want || !strings.Contains(fmt.Sprint(out), tc.says) {
			t.Errorf("%s %s: %d %v, want %d saying %q", tc.path, tc.body, code, out, tc.want, tc.says)
		}
	}

	// ServiceNow refusing Vouch's credentials is a 502 that says so; no
	// change system at all is a 422.
	wrong, err := change.NewSystems([]change.SystemConfig{{Name: "servicenow", Type: "servicenow", URL: sn.URL, Username: "vouch-reader", PasswordFile: servicenowtest.File(t, "old-password")}})
	if err != nil {
		t.Fatal(err)
	}
	g := newFixture(t, func(_ *fixture, c *api.Config) { c.Changes = wrong })
	if code, out := g.postJSON("/api/v1/changes", "ci", fmt.Sprintf(`{"digest":%q,"number":"CHG0030001"}`, digest)); code != 502 || out["type"] != "https://vouch.dev/problems/change-system-failed" ||
		!strings.Contains(fmt.Sprint(out["detail"]), "reading change request CHG0030001: GET /api/now/table/change_request: 401 Unauthorized: User Not Authenticated") || strings.Contains(fmt.Sprint(out), "old-password") {
		t.Errorf("credentials refused: %d %v", code, out)
	}
	h := newFixture(t)
	if code, out := h.postJSON("/api/v1/changes", "ci", fmt.Sprintf(`{"digest":%q,"number":"CHG0030001"}`, digest)); code != 422 || !strings.Contains(fmt.Sprint(out), "none is configured") {
		t.Errorf("no change system: %d %v", code, out)
	}
}
