package change

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// serviceNow reads change requests with ServiceNow's Table API
// (GET /api/now/table/change_request), which needs read access to the
// change_request table (the itil role, or a role made for Vouch).
type serviceNow struct {
	name string
	base *url.URL
	http *http.Client
	auth func(*http.Request) error // sets the credentials
}

// serviceNowStates are the states of ServiceNow's default change model by
// their stored values.
var serviceNowStates = map[string]string{
	"-5": "new", "-4": "assess", "-3": "authorize", "-2": "scheduled", "-1": "implement", "0": "review", "3": "closed", "4": "canceled",
}

// serviceNowTime is how the Table API writes a date and time without
// display values: UTC.
const serviceNowTime = "2006-01-02 15:04:05"

// sysIDRE is what a record's sys_id looks like: letters and digits
// (ServiceNow's are 32 hex digits), nothing a query could read as syntax.
var sysIDRE = regexp.MustCompile(`^[0-9A-Za-z]{1,32}$`)

// maxAnswer bounds an answer of the system.
const maxAnswer = 1 << 20

func (s *serviceNow) read(ctx context.Context, number string) (Change, error) {
	if !NumberRE.MatchString(number) {
		return Change{}, fmt.Errorf("%q is not a change number such as CHG0030001", number)
	}
	number = strings.ToUpper(number)
	var changes []struct {
		SysID            string `json:"sys_id"`
		Number           string `json:"number"`
		State            string `json:"state"`
		Approval         string `json:"approval"`
		Type             string `json:"type"`
		StartDate        string `json:"start_date"`
		EndDate          string `json:"end_date"`
		ShortDescription string `json:"short_description"`
		CI               string `json:"cmdb_ci.name"`
	}
	err := s.get(ctx, "change_request", url.Values{
		"sysparm_query":  {"number=" + number},
		"sysparm_fields": {"sys_id,number,state,approval,type,start_date,end_date,short_description,cmdb_ci.name"},
		"sysparm_limit":  {"2"},
	}, &changes)
	if err != nil {
		return Change{}, err
	}
	switch len(changes) {
	case 0:
		return Change{}, fmt.Errorf("%w %s in %s", ErrNotFound, number, s.name)
	case 1:
	default:
		return Change{}, fmt.Errorf("%s has several change requests numbered %s", s.name, number)
	}
	r := changes[0]
	c := Change{System: s.name, ID: r.SysID, Type: r.Type, ShortDescription: r.ShortDescription}
	c.Number, c.Approval, c.State = r.Number, r.Approval, r.State
	if name, ok := serviceNowStates[r.State]; ok {
		c.State = name
	}
	for _, t := range []struct {
		field, v string
		into     *time.Time
	}{{"start_date", r.StartDate, &c.PlannedStart}, {"end_date", r.EndDate, &c.PlannedEnd}} {
		if t.v == "" {
			continue
		}
		if *t.into, err = time.ParseInLocation(serviceNowTime, t.v, time.UTC); err != nil {
			return Change{}, fmt.Errorf("%s %s: %s %q is not a date and time such as 2026-11-26 18:00:00", s.name, number, t.field, t.v)
		}
	}
	if !strings.EqualFold(c.Number, number) || c.ID == "" || c.State == "" || c.Approval == "" {
		return Change{}, fmt.Errorf("%s answered for %s without its number, sys_id, state or approval: the integration user may lack read access to those fields", s.name, number)
	}
	if !sysIDRE.MatchString(c.ID) { // it goes into the next query
		return Change{}, fmt.Errorf("%s answered for %s with sys_id %q, which is not one", s.name, number, c.ID)
	}
	if c.ConfigurationItems, c.ConfigurationItemsProblem, err = s.configurationItems(ctx, c.ID, r.CI); err != nil {
		return Change{}, fmt.Errorf("%s %s: %w", s.name, number, err)
	}
	link := *s.base
	link.Path += "/change_request.do"
	link.RawQuery = url.Values{"sys_id": {c.ID}}.Encode()
	c.URL = link.String()
	return c, nil
}

// maxAffected bounds the affected CIs of a change Vouch records (their
// names fill the payload, which decisions read).
const maxAffected = 100

// configurationItems are the names of the change's configuration item
// (primary, "" when none), then of its affected CIs (the task_ci table:
// the change form's "Affected CIs") sorted by name, without repeats; and what
// kept Vouch from reading all the affected CIs, "" when nothing did: the
// integration user may not read task_ci (403), or there are more than
// maxAffected. Other failures fail the read.
func (s *serviceNow) configurationItems(ctx context.Context, sysID, primary string) ([]string, string, error) {
	var affected []struct {
		CI string `json:"ci_item.name"`
	}
	problem := ""
	err := s.get(ctx, "task_ci", url.Values{
		"sysparm_query":  {"task=" + sysID + "^ORDERBYci_item.name"}, // the first maxAffected by name
		"sysparm_fields": {"ci_item.name"},
		"sysparm_limit":  {strconv.Itoa(maxAffected + 1)},
	}, &affected)
	var r *refusal
	switch {
	case errors.As(err, &r) && r.status == http.StatusForbidden:
		problem = "the integration user may not read task_ci: " + err.Error()
	case err != nil:
		return nil, "", fmt.Errorf("affected CIs: %w", err)
	case len(affected) > maxAffected:
		problem = fmt.Sprintf("the change has more than %d affected CIs; Vouch recorded %d of them", maxAffected, maxAffected)
		affected = affected[:maxAffected]
	}
	names := make([]string, 0, len(affected))
	for _, a := range affected {
		names = append(names, ciName(a.CI))
	}
	slices.Sort(names) // in Go's order, so that readings compare
	var out []string
	for _, name := range append([]string{ciName(primary)}, names...) {
		if name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, problem, nil
}

// ciName is a CMDB name as Vouch records it: control characters (from
// imported data) as spaces, without surrounding spaces.
func ciName(name string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, name))
}

// refusal is an answer of the instance other than 200 OK.
type refusal struct {
	status int
	msg    string
}

func (r *refusal) Error() string { return r.msg }

// get reads the records of table that query selects into result, a
// pointer to a slice: values as stored (no display values), references
// without links.
func (s *serviceNow) get(ctx context.Context, table string, query url.Values, result any) error {
	query.Set("sysparm_display_value", "false")
	query.Set("sysparm_exclude_reference_link", "true")
	u := *s.base
	u.Path += "/api/now/table/" + table
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if err := s.auth(req); err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u.Path, err)
	}
	if len(body) > maxAnswer {
		return fmt.Errorf("GET %s: the answer is larger than %d bytes", u.Path, maxAnswer)
	}
	var answer struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Message string `json:"message"`
			Detail  string `json:"detail"`
		} `json:"error"`
	}
	decodeErr := json.Unmarshal(body, &answer)
	if resp.StatusCode != http.StatusOK {
		msg := resp.Status
		if answer.Error != nil {
			msg += ": " + answer.Error.Message
			if answer.Error.Detail != "" {
				msg += " (" + answer.Error.Detail + ")"
			}
		}
		return &refusal{status: resp.StatusCode, msg: fmt.Sprintf("GET %s: %s", u.Path, msg)}
	}
	if decodeErr == nil {
		decodeErr = json.Unmarshal(answer.Result, result)
	}
	if decodeErr != nil {
		return fmt.Errorf("GET %s: the answer is not the Table API's JSON: %w", u.Path, decodeErr)
	}
	return nil
}
