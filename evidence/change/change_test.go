package change_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/change"
	"github.com/vouch-dev/vouch/test/servicenowtest"
)

func TestServiceNow(t *testing.T) {
	sn := servicenowtest.Start(t)
	sn.Add(servicenowtest.Change{SysID: "a1b2", Number: "CHG0030001", State: "-1", Approval: "approved", Type: "normal",
		StartDate: "2026-11-26 18:00:00", EndDate: "2026-11-26 22:00:00", ShortDescription: "payments-api 2.4.1",
		CI: "Payments API", AffectedCIs: []string{"payments-db", "Payments API", "ledger\tfeed"}})
	sn.Add(servicenowtest.Change{SysID: "c3d4", Number: "CHG0030002", State: "7", Approval: "requested"})
	sn.Add(servicenowtest.Change{SysID: "e5f6", Number: "CHG0030003", State: "-2", Approval: "approved", StartDate: "tomorrow"})
	basic, err := change.NewSystems([]change.SystemConfig{{Name: "servicenow", Type: "servicenow", URL: sn.URL, Username: sn.User, PasswordFile: servicenowtest.File(t, sn.Password)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	c, err := basic.Read(ctx, "", "chg0030001")
	if err != nil {
		t.Fatal(err)
	}
	want := evidence.ChangeFacts{Number: "CHG0030001", State: "implement", Approval: "approved",
		PlannedStart: time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC), PlannedEnd: time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC),
		ConfigurationItems: []string{"Payments API", "ledger feed", "payments-db"}}
	if !reflect.DeepEqual(c.ChangeFacts, want) || c.System != "servicenow" || c.ID != "a1b2" || c.Type != "normal" || c.ShortDescription != "payments-api 2.4.1" || c.URL != sn.URL+"/change_request.do?sys_id=a1b2" {
		t.Fatalf("read %+v", c)
	}
	report, err := c.Report("sha256:"+strings.Repeat("a", 64), "change-request")
	if err != nil {
		t.Fatal(err)
	}
	facts, err := evidence.ParseChange(report.Payload)
	if err != nil || !reflect.DeepEqual(facts, want) || !*report.Passed || !report.Verified || report.KeyID != "change:servicenow" || report.Type != evidence.TypeChangeRequest {
		t.Fatalf("report %+v: facts %+v, %v", report, facts, err)
	}

	// A state outside the default model is kept as stored; not approved
	// is recorded as failed.
	c, err = basic.Read(ctx, "servicenow", "CHG0030002")
	if err != nil || c.State != "7" || c.Approval != "requested" || !c.PlannedStart.IsZero() || c.ConfigurationItems != nil {
		t.Fatalf("read %+v, %v", c, err)
	}
	if report, _ := c.Report("sha256:"+strings.Repeat("a", 64), "change-request"); *report.Passed {
		t.Fatal("a change awaiting approval passed")
	}

	for _, tc := range []struct{ system, number, want string }{
		{"", "CHG0039999", "no such change request CHG0039999 in servicenow"},
		{"", "CHG0030003", `start_date "tomorrow" is not a date and time`},
		{"", "CHG0030001^ORnumber!=x", "is not a change number"},
		{"jira", "CHG0030001", `no change system "jira": configured are servicenow`},
	} {
		if _, err := basic.Read(ctx, tc.system, tc.number); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Read(%q, %q) = %v, want %q", tc.system, tc.number, err, tc.want)
		}
	}
	if _, err := basic.Read(ctx, "", "CHG0039999"); !errors.Is(err, change.ErrNotFound) {
		t.Errorf("unknown number: %v, want ErrNotFound", err)
	}
	for _, q := range sn.Queries {
		if cond, _, _ := strings.Cut(q, "^ORDERBY"); strings.Contains(cond, "^") {
			t.Errorf("asked %q: a number reached the query unchecked", q)
		}
	}

	// OAuth tokens; credentials refused.
	bearer, err := change.NewSystems([]change.SystemConfig{{Name: "sn", Type: "servicenow", URL: sn.URL, TokenFile: servicenowtest.File(t, sn.Token)}})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := bearer.Read(ctx, "", "CHG0030001"); err != nil || c.System != "sn" {
		t.Fatalf("bearer: %+v, %v", c, err)
	}
	wrong, err := change.NewSystems([]change.SystemConfig{{Name: "sn", Type: "servicenow", URL: sn.URL, TokenFile: servicenowtest.File(t, "expired")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Read(ctx, "", "CHG0030001"); err == nil || !strings.Contains(err.Error(), "401 Unauthorized: User Not Authenticated (Required to provide Auth information)") || strings.Contains(err.Error(), "expired") {
		t.Errorf("refused token: %v", err)
	}
	// A rotated Secret is used at once.
	rotating := servicenowtest.File(t, "expired")
	rotated, err := change.NewSystems([]change.SystemConfig{{Name: "sn", Type: "servicenow", URL: sn.URL, TokenFile: rotating}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.Read(ctx, "", "CHG0030001"); err == nil {
		t.Fatal("an expired token was accepted")
	}
	if err := os.WriteFile(rotating, []byte(sn.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.Read(ctx, "", "CHG0030001"); err != nil {
		t.Errorf("after the Secret's rotation: %v", err)
	}
	// The same change in another order of its affected CIs is the same
	// reading: nothing new would be recorded.
	sn.Add(servicenowtest.Change{SysID: "a1b2", Number: "CHG0030001", State: "-1", Approval: "approved", Type: "normal",
		StartDate: "2026-11-26 18:00:00", EndDate: "2026-11-26 22:00:00", ShortDescription: "payments-api 2.4.1",
		CI: "Payments API", AffectedCIs: []string{"ledger\tfeed", "payments-db"}})
	if again, err := basic.Read(ctx, "", "CHG0030001"); err != nil || !reflect.DeepEqual(again.ChangeFacts, want) {
		t.Errorf("read again: %+v, %v", again, err)
	}
	// Affected CIs the integration user may not read, or too many of
	// them: the change is recorded with what kept Vouch from reading them.
	sn.Unreadable = []string{"task_ci"}
	if c, err := basic.Read(ctx, "", "CHG0030001"); err != nil || !slices.Equal(c.ConfigurationItems, []string{"Payments API"}) ||
		!strings.Contains(c.ConfigurationItemsProblem, "the integration user may not read task_ci: GET /api/now/table/task_ci: 403 Forbidden: Insufficient rights") {
		t.Errorf("task_ci unreadable: %+v, %v", c, err)
	}
	sn.Unreadable = nil
	many := servicenowtest.Change{SysID: "f7", Number: "CHG0030004", State: "-1", Approval: "approved"}
	for i := range 101 {
		many.AffectedCIs = append(many.AffectedCIs, fmt.Sprintf("node-%03d", 100-i))
	}
	sn.Add(many)
	// The first 100 by name, whatever order the table keeps them in.
	if c, err := basic.Read(ctx, "", "CHG0030004"); err != nil || len(c.ConfigurationItems) != 100 || c.ConfigurationItems[0] != "node-000" || c.ConfigurationItems[99] != "node-099" ||
		c.ConfigurationItemsProblem != "the change has more than 100 affected CIs; Vouch recorded 100 of them" {
		t.Errorf("101 affected CIs: %d recorded, %q, %v", len(c.ConfigurationItems), c.ConfigurationItemsProblem, err)
	}
	// A sys_id that is not one never reaches the next query.
	sn.Add(servicenowtest.Change{SysID: "f8^ORtask!=x", Number: "CHG0030005", State: "-1", Approval: "approved"})
	if _, err := basic.Read(ctx, "", "CHG0030005"); err == nil || !strings.Contains(err.Error(), `with sys_id "f8^ORtask!=x", which is not one`) {
		t.Errorf("bad sys_id: %v", err)
	}
	var none *change.Systems
	if _, err := none.Read(ctx, "", "CHG0030001"); !errors.Is(err, change.ErrNoSystem) {
		t.Errorf("no systems: %v", err)
	}
}

func TestNewSystemsErrors(t *testing.T) {
	pw := servicenowtest.File(t, "pw")
	for _, tc := range []struct {
		cfg  change.SystemConfig
		want string
	}{
		{change.SystemConfig{Name: "sn", Type: "jira", URL: "https://x.service-now.com", TokenFile: pw}, `change_systems[0].type: "jira": want servicenow`},
		{change.SystemConfig{Name: "", Type: "servicenow", URL: "https://x.service-now.com", TokenFile: pw}, "change_systems[0].name"},
		{change.SystemConfig{Name: "sn", Type: "servicenow", URL: "http://x.service-now.com", TokenFile: pw}, "use https"},
		{change.SystemConfig{Name: "sn", Type: "servicenow", URL: "https://x.service-now.com"}, "give username and password_file"},
		{change.SystemConfig{Name: "sn", Type: "servicenow", URL: "https://vouch:s3cret@x.service-now.com", TokenFile: pw}, `"https://vouch:xxxxx@x.service-now.com" is not the instance's URL`},
		{change.SystemConfig{Name: "sn", Type: "servicenow", URL: "https://x.service-now.com", Username: "u", TokenFile: pw}, "give username and password_file"},
		{change.SystemConfig{Name: "sn", Type: "servicenow", URL: "https://x.service-now.com", Username: "u"}, "password_file: is required"},
		{change.SystemConfig{Name: "sn", Type: "servicenow", URL: "https://x.service-now.com", TokenFile: "/nonexistent/token"}, "change_systems[0].token_file: open /nonexistent/token"},
	} {
		if _, err := change.NewSystems([]change.SystemConfig{tc.cfg}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	ok := change.SystemConfig{Name: "sn", Type: "servicenow", URL: "https://x.service-now.com", TokenFile: pw}
	if _, err := change.NewSystems([]change.SystemConfig{ok, ok}); err == nil || !strings.Contains(err.Error(), `change_systems[1].name: "sn" is named twice`) {
		t.Errorf("twice: %v", err)
	}
}

// TestParseChange: the payload decisions read is checked when recorded.
func TestParseChange(t *testing.T) {
	for _, tc := range []struct{ payload, want string }{
		{`{"number":"CHG1","state":"implement","approval":"approved"}`, ""},
		{`{"number":"CHG1","state":"implement","approval":"approved","planned_start":"2026-11-26T18:00:00Z","planned_end":"2026-11-26T22:00:00Z"}`, ""},
		{`{"number":"CHG1","state":"implement"}`, "names its number, state and approval"},
		{`{"number":"CHG1","state":"implement","approval":"approved","planned_start":"2026-11-26T18:00:00Z"}`, "a start and a later end"},
		{`{"number":"CHG1","state":"implement","approval":"approved","planned_start":"2026-11-26T18:00:00Z","planned_end":"2026-11-26T17:00:00Z"}`, "a start and a later end"},
		{`{"number":"CHG1","state":"implement","approval":"approved","configuration_items":["payments-api",""]}`, "a configuration item has a name"},
		{`[]`, "is a JSON object"},
	} {
		_, err := evidence.ParseChange(json.RawMessage(tc.payload))
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.payload, err, tc.want)
		}
	}
}
