package policy

import (
	"strings"
	"testing"
	"time"
)

func TestFreezeAt(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	start, end := at("2026-12-20T00:00:00Z"), at("2027-01-03T00:00:00Z")
	windows := []FreezeWindow{
		{Start: &start, End: &end, Reason: "year-end freeze"},
		// Fridays 18:00 for 62 hours: until Monday 08:00.
		{Cron: "0 18 * * 5", Duration: Duration(62 * time.Hour), Reason: "weekend"},
		// The first of each month, 00:00-06:00.
		{Cron: "0 0 1 * *", Duration: Duration(6 * time.Hour), Reason: "month-end close"},
	}
	for _, tc := range []struct {
		t      string
		reason string // "" when none is active
		ends   string
	}{
		{"2026-11-25T12:00:00Z", "", ""},                                    // a Wednesday
		{"2026-11-27T17:59:59Z", "", ""},                                    // Friday, a second early
		{"2026-11-27T18:00:00Z", "weekend", "2026-11-30T08:00:00Z"},         // Friday 18:00
		{"2026-11-29T23:00:00Z", "weekend", "2026-11-30T08:00:00Z"},         // Sunday night
		{"2026-11-30T07:59:00Z", "weekend", "2026-11-30T08:00:00Z"},         // Monday morning
		{"2026-11-30T08:00:00Z", "", ""},                                    // over
		{"2026-12-01T05:00:00Z", "month-end close", "2026-12-01T06:00:00Z"}, // the first, early
		{"2026-12-24T12:00:00Z", "year-end freeze", "2027-01-03T00:00:00Z"}, // dated
		{"2026-12-25T20:00:00Z", "year-end freeze", "2027-01-03T00:00:00Z"}, // both: the longer wins
		{"2027-01-02T23:59:59Z", "weekend", "2027-01-04T08:00:00Z"},         // Saturday: the weekend outlasts the dated one
		{"2027-01-03T00:00:00Z", "weekend", "2027-01-04T08:00:00Z"},         // dated one ended
	} {
		st := FreezeAt(windows, at(tc.t))
		if st.Active != (tc.reason != "") || st.Reason != tc.reason || st.EndsAt != tc.ends {
			t.Errorf("%s: %+v, want %q until %q", tc.t, st, tc.reason, tc.ends)
		}
	}
}

func TestCronParse(t *testing.T) {
	for _, bad := range []string{"", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *", "a * * * *", "5-1 * * * *"} {
		if _, err := parseCron(bad); err == nil {
			t.Errorf("parseCron(%q) accepted", bad)
		}
	}
	c, err := parseCron("*/15 9-17 * * 1-5")
	if err != nil {
		t.Fatal(err)
	}
	mon := time.Date(2026, 11, 23, 9, 45, 0, 0, time.UTC)
	if !c.dayMatches(mon) || !c.fields[1][9] || !c.fields[0][45] || c.fields[0][50] {
		t.Error("*/15 9-17 * * 1-5 does not match Monday 09:45 as cron would")
	}
	if c.dayMatches(mon.AddDate(0, 0, 5)) {
		t.Error("matches a Saturday")
	}
}

func TestFreezeWindowCheck(t *testing.T) {
	s, e := time.Now(), time.Now().Add(time.Hour)
	for _, tc := range []struct {
		w    FreezeWindow
		want string
	}{
		{FreezeWindow{Start: &s, End: &e}, "reason: is required"},
		{FreezeWindow{Start: &e, End: &s, Reason: "x"}, "end: must be after start"},
		{FreezeWindow{Cron: "0 18 * * 5", Reason: "x"}, "duration"},
		{FreezeWindow{Cron: "0 18 * *", Duration: Duration(time.Hour), Reason: "x"}, "cron"},
		{FreezeWindow{Reason: "x"}, "start and end"},
	} {
		if err := tc.w.check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.w, err, tc.want)
		}
	}
}
