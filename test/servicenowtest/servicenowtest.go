// Package servicenowtest serves the part of ServiceNow's Table API that
// Vouch reads (GET /api/now/table/change_request, and task_ci for a
// change's affected CIs) on loopback, as its
// documentation describes it: string values, states by their stored
// numbers, dates in UTC, errors as {"error": {"message", "detail"}}.
package servicenowtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Change is a change_request record; values as the Table API stores them:
// State "-1" is Implement, dates "2026-11-26 18:00:00" in UTC.
type Change struct {
	SysID            string `json:"sys_id"`
	Number           string `json:"number"`
	State            string `json:"state"`
	Approval         string `json:"approval"`
	Type             string `json:"type"`
	StartDate        string `json:"start_date"`
	EndDate          string `json:"end_date"`
	ShortDescription string `json:"short_description"`
	// CI is the name of the change's configuration item (the reference
	// cmdb_ci, dot-walked); AffectedCIs the names of its task_ci records.
	CI          string   `json:"cmdb_ci.name"`
	AffectedCIs []string `json:"-"`
}

// Instance is a ServiceNow instance that lets User in with Password
// (Basic) or Token (Bearer).
type Instance struct {
	URL                   string
	User, Password, Token string
	mu                    sync.Mutex
	changes               []Change
	Queries               []string // the sysparm_query values asked
	// Unreadable are tables the user may not read (ACLs): 403.
	Unreadable []string
}

// Start serves an instance until the test ends.
func Start(t testing.TB) *Instance {
	in := &Instance{User: "vouch-reader", Password: "sn-password", Token: "sn-oauth-token"}
	srv := httptest.NewServer(http.HandlerFunc(in.serve))
	t.Cleanup(srv.Close)
	in.URL = srv.URL
	return in
}

// Add adds or replaces (by number) a change request.
func (in *Instance) Add(c Change) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := range in.changes {
		if in.changes[i].Number == c.Number {
			in.changes[i] = c
			return
		}
	}
	in.changes = append(in.changes, c)
}

// File writes a secret to a file as a mounted Secret holds it and returns
// its path.
func File(t testing.TB, secret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (in *Instance) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	user, pw, basic := r.BasicAuth()
	if !(basic && user == in.User && pw == in.Password) && r.Header.Get("Authorization") != "Bearer "+in.Token {
		fail(w, http.StatusUnauthorized, "User Not Authenticated", "Required to provide Auth information")
		return
	}
	table, ok := strings.CutPrefix(r.URL.Path, "/api/now/table/")
	if r.Method != http.MethodGet || !ok || table != "change_request" && table != "task_ci" {
		fail(w, http.StatusBadRequest, "Invalid table", "")
		return
	}
	q := r.URL.Query().Get("sysparm_query")
	in.mu.Lock()
	defer in.mu.Unlock()
	if slices.Contains(in.Unreadable, table) {
		fail(w, http.StatusForbidden, "Insufficient rights to query records", "Fields present in the query do not have permission to be read")
		return
	}
	in.Queries = append(in.Queries, q)
	found := []map[string]string{}
	for _, c := range in.changes {
		switch table {
		case "change_request":
			if number, ok := strings.CutPrefix(q, "number="); ok && strings.EqualFold(c.Number, number) {
				b, _ := json.Marshal(c)
				var record map[string]string
				json.Unmarshal(b, &record)
				found = append(found, record)
			}
		case "task_ci":
			if cond, order, _ := strings.Cut(q, "^ORDERBY"); cond == "task="+c.SysID {
				for _, ci := range c.AffectedCIs {
					found = append(found, map[string]string{"task": c.SysID, "ci_item.name": ci})
				}
				if order != "" {
					slices.SortStableFunc(found, func(a, b map[string]string) int { return strings.Compare(a[order], b[order]) })
				}
			}
		}
	}
	if limit, err := strconv.Atoi(r.URL.Query().Get("sysparm_limit")); err == nil && len(found) > limit {
		found = found[:limit]
	}
	for i := range found {
		found[i] = fields(found[i], r.URL.Query().Get("sysparm_fields"))
	}
	json.NewEncoder(w).Encode(map[string]any{"result": found})
}

// fields is the record with the fields asked for (sysparm_fields), all
// when none are named.
func fields(all map[string]string, want string) map[string]string {
	if want == "" {
		return all
	}
	out := map[string]string{}
	for _, f := range strings.Split(want, ",") {
		if v, ok := all[f]; ok {
			out[f] = v
		}
	}
	return out
}

func fail(w http.ResponseWriter, status int, msg, detail string) {
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"message": msg, "detail": detail}, "status": "failure"})
}
