package console

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/policy"
)

// parseWhen reads a time as a form sends it: a datetime-local value
// ("2026-11-19T10:00", seconds optional) or a date, both in UTC; or RFC
// 3339; or a duration back from now ("24h", "7d"). Empty is def.
func parseWhen(v string, def, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return def, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	if d, err := policy.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date and time (2026-11-19T10:00, in UTC) or a duration back from now (24h, 7d)", v)
}

// pickerValue formats a time for a datetime-local input (UTC).
func pickerValue(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05")
}

// overview lists every environment with its compliance counts.
func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	sums, err := c.cfg.Drift.Summaries(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "overview", "Environments", struct{ Environments []drift.Summary }{sums})
}

// timelineItem is one line of an environment's timeline: a change a
// snapshot showed, a compliance change, or an admission decision.
type timelineItem struct {
	Time     time.Time
	Index    uint64
	Type     string // started, stopped, changed, compliance-changed, admitted, denied
	Event    *drift.Event
	Decision *drift.Decision
}

type environmentData struct {
	Environment  string
	At, Since    time.Time
	AtValue      string
	SinceValue   string
	Now          bool
	State        *drift.Snapshot
	NoSnapshot   bool
	Compliance   map[string]drift.ArtifactStatus // by namespace/workload/container, now only
	Counts       map[string]int
	Timeline     []timelineItem
	TimelineFull bool // the timeline was cut at its limit
	Error        string
	DiffFrom     string
	DiffTo       string
}

// TimelineLimit bounds the items of an environment's timeline.
const TimelineLimit = 200

// environment shows what ran in an environment at a moment (now by
// default), and what happened in the week before it.
func (c *Console) environment(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	env := r.PathValue("env")
	now := c.cfg.Now().UTC()
	d := environmentData{Environment: env, Counts: map[string]int{}}
	at, err := parseWhen(r.URL.Query().Get("at"), now, now)
	if err != nil {
		d.Error, at = "As of: "+err.Error(), now
	}
	d.At, d.Now = at, r.URL.Query().Get("at") == ""
	since, err := parseWhen(r.URL.Query().Get("since"), at.Add(-7*24*time.Hour), now)
	if err != nil {
		d.Error, since = "Since: "+err.Error(), at.Add(-7*24*time.Hour)
	}
	d.Since, d.AtValue, d.SinceValue = since, pickerValue(at), pickerValue(since)
	d.DiffFrom, d.DiffTo = pickerValue(since), pickerValue(at)
	snap, err := c.cfg.Drift.State(ctx, env, at)
	switch {
	case errors.Is(err, drift.ErrUnknownEnvironment):
		c.renderError(w, r, http.StatusNotFound, fmt.Sprintf("There is no environment %q.", env))
		return
	case errors.Is(err, drift.ErrNoSnapshot):
		d.NoSnapshot = true
	case err != nil:
		c.fail(w, r, err)
		return
	default:
		d.State = &snap
	}
	if d.State != nil && d.Now {
		rep, err := c.cfg.Drift.Check(ctx, *d.State)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		d.Compliance, d.Counts = map[string]drift.ArtifactStatus{}, rep.Counts
		for _, a := range rep.Artifacts {
			d.Compliance[a.Namespace+"/"+a.Workload+"/"+a.Container+"/"+a.Digest] = a
		}
	}
	events, err := c.latestEvents(ctx, env, since, at)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for i := range events {
		d.Timeline = append(d.Timeline, timelineItem{Time: events[i].Time, Index: events[i].Journal, Type: events[i].Type, Event: &events[i]})
	}
	from, before, err := c.indexRange(r, since, at)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if before > from {
		page, err := c.cfg.Decisions.Decisions(ctx, drift.DecisionQuery{Environment: env, From: from, Before: before, Limit: TimelineLimit + 1})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		for i := range page.Decisions {
			dec := &page.Decisions[i]
			typ := "denied"
			if dec.Allowed {
				typ = "admitted"
			}
			d.Timeline = append(d.Timeline, timelineItem{Time: dec.Time, Index: dec.Index, Type: typ, Decision: dec})
		}
	}
	sort.SliceStable(d.Timeline, func(i, j int) bool { return d.Timeline[i].Index > d.Timeline[j].Index })
	if len(d.Timeline) > TimelineLimit {
		d.Timeline, d.TimelineFull = d.Timeline[:TimelineLimit], true
	}
	c.render(w, r, http.StatusOK, "environment", env, d)
}

// latestEvents returns the latest TimelineLimit+1 events of env in
// (since, until]. Events gives the oldest first, so the range is read
// forward a page at a time, each page from the moment the last one ended.
func (c *Console) latestEvents(ctx context.Context, env string, since, until time.Time) ([]drift.Event, error) {
	const page = 1000
	var out []drift.Event
	for {
		events, err := c.cfg.Drift.Events(ctx, env, since, until, page)
		if err != nil {
			return nil, err
		}
		done := len(events) < page || !events[0].Time.Before(events[len(events)-1].Time)
		if !done {
			// The page may end within a moment: read that moment again.
			last, i := events[len(events)-1].Time, len(events)
			for i > 0 && events[i-1].Time.Equal(last) {
				i--
			}
			events, since = events[:i], last.Add(-time.Nanosecond)
		}
		out = append(out, events...)
		if len(out) > TimelineLimit+1 {
			out = out[len(out)-TimelineLimit-1:]
		}
		if done {
			return out, nil
		}
	}
}

// indexRange turns a time range into journal indices: [from, before).
func (c *Console) indexRange(r *http.Request, since, until time.Time) (from, before uint64, err error) {
	if from, err = c.cfg.Journal.FirstIndexAt(r.Context(), since); err != nil {
		return 0, 0, err
	}
	if before, err = c.cfg.Journal.FirstIndexAt(r.Context(), until.Add(time.Microsecond)); err != nil {
		return 0, 0, err
	}
	return from, before, nil
}

// ComplianceOf finds the compliance of one container in the map the
// environment page builds.
func (d environmentData) ComplianceOf(w drift.Workload, ct drift.Container) *drift.ArtifactStatus {
	a, ok := d.Compliance[w.Namespace+"/"+w.Kind+"/"+w.Name+"/"+ct.Name+"/"+ct.Digest]
	if !ok {
		return nil
	}
	return &a
}

type diffData struct {
	Environment        string
	From, To           time.Time
	FromValue, ToValue string
	Diff               *drift.Diff
	Error              string
}

// diff shows what changed in an environment between two moments.
func (c *Console) diff(w http.ResponseWriter, r *http.Request) {
	env := r.PathValue("env")
	now := c.cfg.Now().UTC()
	d := diffData{Environment: env}
	var err error
	if d.From, err = parseWhen(r.URL.Query().Get("from"), now.Add(-24*time.Hour), now); err != nil {
		d.Error = "From: " + err.Error()
	}
	if d.To, err = parseWhen(r.URL.Query().Get("to"), now, now); err != nil {
		d.Error = "To: " + err.Error()
	}
	d.FromValue, d.ToValue = pickerValue(d.From), pickerValue(d.To)
	if d.Error == "" {
		diff, err := c.cfg.Drift.Diff(r.Context(), env, d.From, d.To)
		switch {
		case errors.Is(err, drift.ErrUnknownEnvironment):
			c.renderError(w, r, http.StatusNotFound, fmt.Sprintf("There is no environment %q.", env))
			return
		case errors.Is(err, drift.ErrNoSnapshot):
			d.Error = "No snapshot of " + env + " was recorded by " + formatTime(d.To) + "."
		case err != nil:
			c.fail(w, r, err)
			return
		default:
			d.Diff = &diff
		}
	}
	status := http.StatusOK
	if d.Error != "" && d.Diff == nil {
		status = http.StatusBadRequest
		if strings.HasPrefix(d.Error, "No snapshot") {
			status = http.StatusOK
		}
	}
	c.render(w, r, status, "diff", env+": changes", d)
}

type decisionsData struct {
	Environments []string
	Q            decisionFilter
	Page         drift.DecisionPage
	NextURL      string
	FirstURL     string
	CSVURL       string
	JSONLURL     string
	Error        string
}

// decisionFilter is the decisions log's form.
type decisionFilter struct {
	Environment, Outcome, Namespace, From, To, Text string
	Before                                          uint64
}

func (f decisionFilter) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"environment": f.Environment, "outcome": f.Outcome, "namespace": f.Namespace, "from": f.From, "to": f.To, "q": f.Text} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// decisionQuery reads the decisions log's filters from a request. msg,
// when not empty, says what is wrong with them.
func (c *Console) decisionQuery(r *http.Request) (f decisionFilter, q drift.DecisionQuery, msg string, err error) {
	qv := r.URL.Query()
	f = decisionFilter{Environment: qv.Get("environment"), Outcome: qv.Get("outcome"), Namespace: strings.TrimSpace(qv.Get("namespace")),
		From: qv.Get("from"), To: qv.Get("to"), Text: strings.TrimSpace(qv.Get("q"))}
	q = drift.DecisionQuery{Environment: f.Environment, Namespace: f.Namespace, Text: f.Text}
	switch f.Outcome {
	case "allowed", "denied":
		allowed := f.Outcome == "allowed"
		q.Allowed = &allowed
	case "":
	default:
		return f, q, "Outcome must be allowed or denied.", nil
	}
	if b := qv.Get("before"); b != "" {
		n, err := strconv.ParseUint(b, 10, 63)
		if err != nil {
			return f, q, "The page position is not a journal index.", nil
		}
		q.Before, f.Before = n, n
	}
	if f.From == "" && f.To == "" {
		return f, q, "", nil
	}
	now := c.cfg.Now().UTC()
	from, err1 := parseWhen(f.From, time.Time{}, now)
	to, err2 := parseWhen(f.To, now, now)
	if err := errors.Join(err1, err2); err != nil {
		return f, q, err.Error(), nil
	}
	lo, hi, err := c.indexRange(r, from, to)
	if err != nil {
		return f, q, "", err
	}
	q.From = lo
	if q.Before == 0 || hi < q.Before {
		q.Before = hi
	}
	if hi <= lo { // nothing in the range
		q.From, q.Before = 1, 1
	}
	return f, q, "", nil
}

// decisions is the log of admission decisions, newest first, filtered
// and a page at a time.
func (c *Console) decisions(w http.ResponseWriter, r *http.Request) {
	f, q, msg, err := c.decisionQuery(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := decisionsData{Environments: c.cfg.Environments, Q: f, Error: msg}
	status := http.StatusOK
	if d.Error != "" {
		status = http.StatusBadRequest
	} else {
		page, err := c.cfg.Decisions.Decisions(r.Context(), q)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		d.Page = page
		v := f.values()
		if page.Next > 0 {
			v.Set("before", strconv.FormatUint(page.Next, 10))
			d.NextURL = "/decisions?" + v.Encode()
			v.Del("before")
		}
		if f.Before > 0 {
			d.FirstURL = "/decisions?" + v.Encode()
		}
		d.CSVURL, d.JSONLURL = exportURL(v, "csv"), exportURL(v, "jsonl")
	}
	c.render(w, r, status, "decisions", "Decisions", d)
}

func exportURL(v url.Values, format string) string {
	out := url.Values{}
	for k, vs := range v {
		out[k] = vs
	}
	out.Set("format", format)
	return "/decisions/export?" + out.Encode()
}

// MaxDecisionExport bounds the rows of one decisions download.
const MaxDecisionExport = 1_000_000

// decisionsExport streams the decisions the log's filters select, newest
// first, as JSONL (drift.Decision per line) or CSV.
func (c *Console) decisionsExport(w http.ResponseWriter, r *http.Request) {
	_, q, msg, err := c.decisionQuery(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "csv"
	}
	if format != "csv" && format != "jsonl" {
		msg = "Format must be csv or jsonl."
	}
	if msg != "" {
		c.renderError(w, r, http.StatusBadRequest, msg)
		return
	}
	q.Limit = drift.MaxDecisionLimit
	first, err := c.cfg.Decisions.Decisions(r.Context(), q)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="vouch-decisions.`+format+`"`)
	var write func(drift.Decision) error
	var flush func()
	if format == "jsonl" {
		w.Header().Set("Content-Type", "application/jsonl")
		enc := json.NewEncoder(w)
		write, flush = func(d drift.Decision) error { return enc.Encode(d) }, func() {}
	} else {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		cw.Write([]string{"journal_index", "time", "environment", "outcome", "kind", "namespace", "name", "user", "uid", "images", "messages"})
		write = func(d drift.Decision) error {
			outcome := "denied"
			if d.Allowed {
				outcome = "allowed"
			}
			return cw.Write([]string{strconv.FormatUint(d.Index, 10), d.Time.UTC().Format(time.RFC3339Nano), d.Environment, outcome,
				d.Kind, d.Namespace, d.Name, d.User, d.UID, strings.Join(d.Images, " "), strings.Join(d.Messages, "; ")})
		}
		flush = cw.Flush
	}
	rows := 0
	for page := first; ; {
		for _, d := range page.Decisions {
			if rows == MaxDecisionExport {
				break
			}
			if err := write(d); err != nil {
				return // the client went away
			}
			rows++
		}
		flush()
		if page.Next == 0 || rows == MaxDecisionExport || r.Context().Err() != nil {
			break
		}
		q.Before = page.Next
		if page, err = c.cfg.Decisions.Decisions(r.Context(), q); err != nil {
			c.log.Error("console decisions export failed while streaming", "error", err)
			return
		}
	}
	c.log.Info("console decisions export", "format", format, "rows", rows, "token", current(r.Context()).Name)
}

type searchData struct {
	Query     string
	Artifacts []evidence.Artifact
	Error     string
}

// artifactSearch finds artifacts by digest or commit prefix, or by
// repository name; a full digest goes straight to its page.
func (c *Console) artifactSearch(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	d := searchData{Query: q}
	if q == "" {
		list, err := c.cfg.Evidence.Artifacts(r.Context(), evidence.ArtifactFilter{Limit: 50})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		d.Artifacts = list
		c.render(w, r, http.StatusOK, "artifacts", "Artifacts", d)
		return
	}
	if dg, ok := evidence.ParseDigest(q); ok {
		http.Redirect(w, r, "/artifacts/"+url.PathEscape(dg), http.StatusSeeOther)
		return
	}
	lower := strings.ToLower(q)
	var filters []evidence.ArtifactFilter
	if h, ok := strings.CutPrefix(lower, "sha256:"); ok && isHex(h) {
		filters = append(filters, evidence.ArtifactFilter{DigestPrefix: lower, Limit: 50})
	} else if isHex(lower) && len(lower) >= 7 {
		filters = append(filters, evidence.ArtifactFilter{DigestPrefix: "sha256:" + lower, Limit: 50}, evidence.ArtifactFilter{CommitPrefix: lower, Limit: 50})
	} else {
		filters = append(filters, evidence.ArtifactFilter{Name: q, Limit: 50})
	}
	seen := map[uint64]bool{}
	for _, f := range filters {
		list, err := c.cfg.Evidence.Artifacts(r.Context(), f)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		for _, a := range list {
			if !seen[a.ID] {
				seen[a.ID] = true
				d.Artifacts = append(d.Artifacts, a)
			}
		}
	}
	sort.Slice(d.Artifacts, func(i, j int) bool { return d.Artifacts[i].ID > d.Artifacts[j].ID })
	c.render(w, r, http.StatusOK, "artifacts", "Artifacts", d)
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

type downloadsData struct {
	Environments []string
	Kinds        []string
	PublicKey    string
}

func (c *Console) downloads(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "downloads", "Downloads", downloadsData{Environments: c.cfg.Environments, PublicKey: c.cfg.PublicKey,
		Kinds: []string{"admission", "artifact", "attestation", "approval", "snapshot", "exemption", "notification", "notification-delivery"}})
}

// export streams the journal export through the API's
// /api/v1/audit/export with the session's token: one implementation of
// the verifiable export, with the API's checks and limits.
func (c *Console) export(w http.ResponseWriter, r *http.Request) {
	in := r.URL.Query()
	out := url.Values{}
	for _, k := range []string{"format", "environment", "kind"} {
		if v := in.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	now := c.cfg.Now().UTC()
	for _, k := range []string{"from", "to"} {
		v := strings.TrimSpace(in.Get(k))
		if v == "" {
			continue
		}
		if _, err := strconv.ParseUint(v, 10, 63); err == nil {
			out.Set(k, v)
			continue
		}
		t, err := parseWhen(v, now, now)
		if err != nil {
			c.renderError(w, r, http.StatusBadRequest, "Export "+k+": "+err.Error())
			return
		}
		out.Set(k, t.Format(time.RFC3339Nano))
	}
	c.viaAPI(w, r, "/api/v1/audit/export", out)
}

// blob downloads an attestation's document through the API (as an
// attachment, never rendered).
func (c *Console) blob(w http.ResponseWriter, r *http.Request) {
	dg, ok := evidence.ParseDigest(r.PathValue("digest"))
	if !ok {
		c.renderError(w, r, http.StatusBadRequest, "That is not a sha256 digest.")
		return
	}
	c.viaAPI(w, r, "/api/v1/blobs/"+url.PathEscape(dg), nil)
}

// viaAPI serves a GET of the API as the session's token, without the
// browser's cookies.
func (c *Console) viaAPI(w http.ResponseWriter, r *http.Request, path string, query url.Values) {
	req := r.Clone(auth.WithToken(r.Context(), current(r.Context()).token))
	req.URL = &url.URL{Path: path, RawQuery: query.Encode()}
	req.RequestURI = req.URL.RequestURI()
	req.Header = http.Header{}
	if v := r.Header.Get("If-None-Match"); v != "" {
		req.Header.Set("If-None-Match", v)
	}
	c.cfg.API.ServeHTTP(w, req)
}

func (c *Console) publicKey(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="vouch-journal.pub"`)
	fmt.Fprintln(w, c.cfg.PublicKey)
}

func (c *Console) checkpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := c.cfg.Journal.LatestCheckpoint(r.Context())
	if errors.Is(err, journal.ErrNotFound) {
		c.renderError(w, r, http.StatusNotFound, "The journal has no signed checkpoint yet.")
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="checkpoint.%d"`, cp.Size))
	w.Write(cp.Note)
}
