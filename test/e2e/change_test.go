package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/test/servicenowtest"
)

// TestChangeRequest: with change_request required, an image is admitted
// only under a change request Vouch read from ServiceNow itself
// (vouch attest change) that is approved, in an allowed state and inside
// its planned window at the time of the change.
func TestChangeRequest(t *testing.T) {
	sn := servicenowtest.Start(t)
	v := startConfig(t, fmt.Sprintf(`
environments:
  - name: prod
    namespaces: ["prod"]
    require:
      digest: true
      change_request: {}
  - name: payments
    namespaces: ["payments"]
    require:
      digest: true
      change_request: {match_configuration_item: true}
change_systems:
  - name: servicenow
    type: servicenow
    url: %s
    username: %s
    password_file: %s
`, sn.URL, sn.User, servicenowtest.File(t, sn.Password)), "")
	ci := v.cli("token", "create", "--name", "ci", "--scopes", "evidence:write")
	digest := "sha256:" + strings.Repeat("c4", 32)
	image := "registry.example.com/payments@" + digest
	job := []string{"VOUCH_TOKEN=" + ci}
	attest := func(args ...string) (string, int) {
		t.Helper()
		out, errOut, code := v.execEnv(job, append([]string{"attest", "change", "CHG0030001", "--digest", digest}, args...)...)
		return out + errOut, code
	}
	admit := func(uid, want string) {
		t.Helper()
		resp := v.admit(uid, "prod", image)
		if want == "" && !resp.Allowed {
			t.Errorf("%s: denied: %s", uid, resp.Result.Message)
		}
		if want != "" && (resp.Allowed || !strings.Contains(resp.Result.Message, want)) {
			t.Errorf("%s: allowed %v: %q, want denied saying %q", uid, resp.Allowed, resp.Result.Message, want)
		}
	}
	snTime := func(d time.Duration) string { return time.Now().Add(d).UTC().Format("2006-01-02 15:04:05") }

	admit("change-1", `has no "change-request" attestation: have Vouch read the change request with vouch attest change`)

	// The pipeline's own word is not a change request.
	if out, errOut, code := v.execEnv(job, "attest", "generic", "--digest", digest, "--name", "change-request", "--passed=true", "--type", "change-request"); code != 2 || !strings.Contains(errOut, "use vouch attest change") {
		t.Errorf("attest generic --type change-request: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := v.execEnv(job, "attest", "generic", "--digest", digest, "--name", "change-request", "--passed=true"); code != 0 {
		t.Fatalf("attest generic: exit %d\n%s%s", code, out, errOut)
	}
	admit("change-0", `that is not a change request Vouch read from the change system`)

	// Awaiting approval: recorded as failed; --exit-code stops the pipeline.
	sn.Add(servicenowtest.Change{SysID: "a1", Number: "CHG0030001", State: "-3", Approval: "requested", StartDate: snTime(-time.Hour), EndDate: snTime(time.Hour)})
	if out, code := attest("--exit-code"); code != 1 || !strings.Contains(out, "recorded: FAILED change-request (change-request, read by Vouch from servicenow) for "+digest+": CHG0030001, authorize, approval requested") {
		t.Errorf("attest change awaiting approval: exit %d\n%s", code, out)
	}
	admit("change-2", `has change request CHG0030001 with approval "requested", not approved`)

	// Approved, but its window has closed.
	sn.Add(servicenowtest.Change{SysID: "a1", Number: "CHG0030001", State: "-1", Approval: "approved", StartDate: snTime(-3 * time.Hour), EndDate: snTime(-time.Hour)})
	if out, code := attest(); code != 0 || !strings.Contains(out, "recorded: PASSED change-request") {
		t.Errorf("attest change approved: exit %d\n%s", code, out)
	}
	admit("change-3", "has change request CHG0030001, whose window closed at")
	// vouch assert says the same before the rollout.
	if out, errOut, code := v.exec("assert", image, "--environment", "prod", "--token", ci); code != 1 || !strings.Contains(out+errOut, "change request") || !strings.Contains(out+errOut, "whose window closed at") {
		t.Errorf("vouch assert outside the window: exit %d\n%s%s", code, out, errOut)
	}

	// Rescheduled to now: admitted.
	sn.Add(servicenowtest.Change{SysID: "a1", Number: "CHG0030001", State: "-1", Approval: "approved", StartDate: snTime(-time.Hour), EndDate: snTime(time.Hour)})
	if out, code := attest(); code != 0 || !strings.Contains(out, "recorded: PASSED change-request") || !strings.Contains(out, "implement, approval approved, window ") {
		t.Errorf("attest change rescheduled: exit %d\n%s", code, out)
	}
	if out, code := attest(); code != 0 || !strings.HasPrefix(out, "already recorded: PASSED") {
		t.Errorf("attest change again: exit %d\n%s", code, out)
	}
	admit("change-4", "")
	if out, errOut, code := v.exec("assert", image, "--environment", "prod", "--token", ci); code != 0 {
		t.Errorf("vouch assert inside the window: exit %d\n%s%s", code, out, errOut)
	}

	// Where changes must be for the workload's configuration item: the
	// workload names none, then another than the change's.
	ciOf := func(ci string) map[string]string { return map[string]string{"vouch.dev/configuration-item": ci} }
	deniedCI := func(uid string, annotations map[string]string, want string) {
		t.Helper()
		if resp := v.admitAnnotated(uid, "payments", annotations, image); resp.Allowed || !strings.Contains(resp.Result.Message, want) {
			t.Errorf("%s: allowed %v: %q, want denied saying %q", uid, resp.Allowed, resp.Result.Message, want)
		}
	}
	deniedCI("ci-1", nil, "is deployed without naming its configuration item: annotate the Deployment (or its namespace) with vouch.dev/configuration-item: <its name in the CMDB>, which change request CHG0030001 must be for")
	deniedCI("ci-2", ciOf("payments-db"), `has change request CHG0030001, which is not for configuration item "payments-db" (the workload's vouch.dev/configuration-item) but for no configuration item`)
	// The change names its CI and affected CIs: read again, it covers them.
	sn.Add(servicenowtest.Change{SysID: "a1", Number: "CHG0030001", State: "-1", Approval: "approved", StartDate: snTime(-time.Hour), EndDate: snTime(time.Hour),
		CI: "Payments API", AffectedCIs: []string{"payments-db"}})
	if out, code := attest(); code != 0 || !strings.HasPrefix(out, "recorded: PASSED") || !strings.Contains(out, "for Payments API, payments-db") {
		t.Errorf("attest change with CIs: exit %d\n%s", code, out)
	}
	deniedCI("ci-3", ciOf("Ledger"), `which is not for configuration item "Ledger" (the workload's vouch.dev/configuration-item) but for "Payments API", "payments-db"`)
	for _, ci := range []string{"payments-db", "payments api"} {
		if resp := v.admitAnnotated("ci-ok-"+ci, "payments", ciOf(ci), image); !resp.Allowed {
			t.Errorf("%s: denied: %s", ci, resp.Result.Message)
		}
	}
	if out, errOut, code := v.exec("assert", image, "--environment", "payments", "--token", ci); code != 1 || !strings.Contains(out, "without naming its configuration item") {
		t.Errorf("vouch assert without --configuration-item: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := v.exec("assert", image, "--environment", "payments", "--configuration-item", "Payments API", "--token", ci); code != 0 {
		t.Errorf("vouch assert --configuration-item: exit %d\n%s%s", code, out, errOut)
	}

	// A number ServiceNow does not know is refused, with nothing recorded.
	out, errOut, code := v.execEnv(job, "attest", "change", "CHG0039999", "--digest", digest)
	if code == 0 || !strings.Contains(errOut, "no such change request CHG0039999 in servicenow") {
		t.Errorf("unknown change: exit %d\n%s%s", code, out, errOut)
	}
	admit("change-5", "")
}
