package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/journal"
)

// decisionHistory journals ten admission decisions (and an artifact
// between them) and returns what the store must index for each, by
// journal index.
func decisionHistory(t *testing.T, s Store) map[uint64]drift.Decision {
	t.Helper()
	type adm struct {
		env, ns, name, user string
		allowed             bool
		digests             []int
		messages            []string
	}
	history := []adm{
		{"prod", "shop", "web", "alice", true, []int{1, 2}, nil},
		{"prod", "shop", "web", "alice", false, []int{3}, []string{`container "web": image has no provenance`}},
		{"staging", "shop-staging", "web", "bob", true, []int{1}, nil},
		{"prod", "payments", "ledger", "carol", true, []int{4}, nil},
		{"prod", "payments", "ledger", "carol", false, []int{4}, []string{"no approval for 100%_done", "second\nline"}},
		{"prod", "shop", "<script>alert(1)</script>", "mallory", false, nil, []string{"image not pinned by digest"}},
		{"staging", "shop-staging", "api", "bob", true, []int{2, 2}, nil},
		{"prod", "shop", "api", "alice", true, []int{2}, nil},
		{"prod", "payments", "ledger", "dave", true, []int{4}, nil},
		{"prod", "shop", "web", "alice", true, []int{1}, nil},
	}
	want := map[uint64]drift.Decision{}
	for i, h := range history {
		if i == 3 {
			appendBatch(t, s, entry(t, "other", "other:between", 99))
		}
		var images []map[string]string
		for _, d := range h.digests {
			images = append(images, map[string]string{"image": "registry.example.com/" + h.name + "@" + digest(d), "digest": digest(d), "container": "c"})
		}
		images = append(images, map[string]string{"image": "busybox:latest", "container": "sidecar"}) // no digest
		body, _ := json.Marshal(map[string]any{"uid": "uid-" + string(rune('a'+i)), "kind": "Deployment", "namespace": h.ns, "name": h.name,
			"user": h.user, "environment": h.env, "allowed": h.allowed, "images": images, "messages": h.messages})
		e := journal.Entry{Kind: journal.KindAdmission, Time: t0.Add(time.Duration(i) * time.Minute), Environment: h.env, Key: "admission:uid-" + string(rune('a'+i)), Body: body}
		if err := e.Seal(); err != nil {
			t.Fatal(err)
		}
		res := appendBatch(t, s, e)
		e.Index = res[0].Index
		d, ok := drift.ParseDecision(e)
		if !ok {
			t.Fatalf("ParseDecision(%s) not ok", body)
		}
		for i, m := range d.Messages {
			d.Messages[i] = strings.ReplaceAll(m, "\n", " ")
		}
		want[e.Index] = d
	}
	return want
}

// testDecisions indexes admission decisions and finds them by every
// filter, newest first, a page at a time.
func testDecisions(t *testing.T, s Store) {
	ctx := context.Background()
	all := decisionHistory(t, s)
	yes, no := true, false
	indices := func(p drift.DecisionPage) []uint64 {
		var out []uint64
		for _, d := range p.Decisions {
			out = append(out, d.Index)
		}
		return out
	}
	tests := []struct {
		name      string
		q         drift.DecisionQuery
		want      []uint64
		next      uint64
		exhausted bool
	}{
		{"all", drift.DecisionQuery{}, []uint64{10, 9, 8, 7, 6, 5, 4, 2, 1, 0}, 0, false},
		{"environment", drift.DecisionQuery{Environment: "staging"}, []uint64{7, 2}, 0, false},
		{"namespace", drift.DecisionQuery{Namespace: "payments"}, []uint64{9, 5, 4}, 0, false},
		{"denied", drift.DecisionQuery{Allowed: &no}, []uint64{6, 5, 1}, 0, false},
		{"allowed in prod", drift.DecisionQuery{Environment: "prod", Allowed: &yes}, []uint64{10, 9, 8, 4, 0}, 0, false},
		{"denied in a namespace", drift.DecisionQuery{Namespace: "payments", Allowed: &no}, []uint64{5}, 0, false},
		{"digest", drift.DecisionQuery{Digest: digest(2)}, []uint64{8, 7, 0}, 0, false},
		{"digest denied", drift.DecisionQuery{Digest: digest(4), Allowed: &no}, []uint64{5}, 0, false},
		{"digest in an environment", drift.DecisionQuery{Digest: digest(1), Environment: "prod"}, []uint64{10, 0}, 0, false},
		{"index range", drift.DecisionQuery{From: 4, Before: 8}, []uint64{7, 6, 5, 4}, 0, false},
		{"first page", drift.DecisionQuery{Limit: 3}, []uint64{10, 9, 8}, 8, false},
		{"second page", drift.DecisionQuery{Limit: 3, Before: 8}, []uint64{7, 6, 5}, 5, false},
		{"last page", drift.DecisionQuery{Limit: 3, Before: 1}, []uint64{0}, 0, false},
		{"text in any case", drift.DecisionQuery{Text: "CAROL"}, []uint64{5, 4}, 0, false},
		{"text in a message", drift.DecisionQuery{Text: "no provenance"}, []uint64{1}, 0, false},
		{"text in an image", drift.DecisionQuery{Text: "busybox:latest"}, []uint64{10, 9, 8, 7, 6, 5, 4, 2, 1, 0}, 0, false},
		{"text with LIKE wildcards", drift.DecisionQuery{Text: "100%_"}, []uint64{5}, 0, false},
		{"wildcards are literal", drift.DecisionQuery{Text: "%"}, []uint64{5}, 0, false},
		{"text with markup", drift.DecisionQuery{Text: "<script>"}, []uint64{6}, 0, false},
		{"text and filters", drift.DecisionQuery{Text: "web", Environment: "prod", Allowed: &yes}, []uint64{10, 0}, 0, false},
		{"text scan window used up", drift.DecisionQuery{Text: "ledger", Scan: 3}, []uint64{9}, 8, true},
		{"text scan continued", drift.DecisionQuery{Text: "ledger", Scan: 3, Before: 8}, []uint64{5}, 5, true},
		{"text scan again", drift.DecisionQuery{Text: "ledger", Scan: 3, Before: 5}, []uint64{4}, 1, true},
		{"text scan to the start", drift.DecisionQuery{Text: "ledger", Scan: 3, Before: 1}, nil, 0, false},
		{"nothing", drift.DecisionQuery{Environment: "nowhere"}, nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := s.Decisions(ctx, tt.q)
			if err != nil {
				t.Fatalf("Decisions(%+v): %v", tt.q, err)
			}
			if diff := cmp.Diff(tt.want, indices(page)); diff != "" {
				t.Errorf("Decisions(%+v) indices (-want +got):\n%s", tt.q, diff)
			}
			if page.Next != tt.next || page.Exhausted != tt.exhausted {
				t.Errorf("Decisions(%+v) next %d exhausted %v, want %d %v", tt.q, page.Next, page.Exhausted, tt.next, tt.exhausted)
			}
		})
	}
	page, err := s.Decisions(ctx, drift.DecisionQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range page.Decisions {
		want := all[got.Index]
		want.Digests = nil // indexed apart
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("decision %d as indexed (-want +got):\n%s", got.Index, diff)
		}
	}
}

// DecisionsBackfill checks that the backfill of a migration (the SQL after
// its "-- Backfill" comment), run over admission entries journaled
// without the index, indexes them as the store does with each entry.
func DecisionsBackfill(t *testing.T, s Store, exec func(ctx context.Context, sql string) error, migration string) {
	ctx := context.Background()
	backfill := backfillOf(t, migration)
	decisionHistory(t, s)
	queries := []drift.DecisionQuery{{}, {Digest: digest(1)}, {Digest: digest(2)}, {Digest: digest(4)}}
	read := func() []drift.DecisionPage {
		var out []drift.DecisionPage
		for _, q := range queries {
			p, err := s.Decisions(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
		return out
	}
	want := read()
	if err := exec(ctx, `DELETE FROM decisions; DELETE FROM decision_digests`); err != nil {
		t.Fatal(err)
	}
	if got := read(); cmp.Equal(want, got) {
		t.Fatal("emptying the decision index changed nothing")
	}
	if err := exec(ctx, "-- Backfill"+backfill); err != nil {
		t.Fatalf("backfill: %v", err)
	}
	if diff := cmp.Diff(want, read()); diff != "" {
		t.Errorf("decisions after the backfill (-as kept +backfilled):\n%s", diff)
	}
}

// testPeriods follows an artifact through snapshots: it runs, stops when
// its workload changes image, and runs again in another workload.
func testPeriods(t *testing.T, s Store) {
	ctx := context.Background()
	a := journal.NewAppender(s, journal.AppenderOptions{})
	defer a.Close(ctx)
	rec := &drift.Recorder{Journal: a, Store: s, Heartbeat: time.Hour, FullEvery: 3}
	w := func(name string, d int) drift.Workload {
		return drift.Workload{Namespace: "ns", Kind: "Deployment", Name: name, Pods: 1, Started: t0,
			Containers: []drift.Container{{Name: "c", Image: "registry.example.com/" + name, Digest: digest(d)}}}
	}
	var ids []uint64
	for i, ws := range [][]drift.Workload{
		{w("db", 9)},                           // 0: full, not yet
		{w("db", 9), w("web", 1)},              // 1: delta, web runs digest 1
		{w("db", 9), w("web", 1), w("x", 1)},   // 2: delta, x too
		{w("db", 9), w("web", 2), w("x", 1)},   // 3: full (every 3rd), web moved on
		{w("db", 9), w("web", 2)},              // 4: delta, x stopped: digest 1 gone
		{w("db", 9), w("web", 2), w("api", 1)}, // 5: delta, api runs it again
	} {
		res, err := rec.Record(ctx, drift.Snapshot{Environment: "prod", Time: t0.Add(time.Duration(i) * time.Minute), Workloads: ws}, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	ref := func(i int) drift.JournalRef {
		return drift.JournalRef{Index: ids[i], Time: t0.Add(time.Duration(i) * time.Minute)}
	}
	until := ref(4)
	want := []drift.Period{
		{From: ref(1), Until: &until, Workloads: []string{"ns/Deployment/web", "ns/Deployment/x"}},
		{From: ref(5), Workloads: []string{"ns/Deployment/api"}},
	}
	svc := &drift.Service{Store: s}
	got, complete, err := svc.Periods(ctx, "prod", digest(1), t0.Add(time.Minute), 0)
	if err != nil || !complete {
		t.Fatalf("Periods = %v, complete %v, %v", got, complete, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Periods (-want +got):\n%s", diff)
	}
	if got, complete, _ := svc.Periods(ctx, "prod", digest(1), t0.Add(time.Minute), 2); complete || len(got) != 1 || got[0].Until != nil {
		t.Errorf("Periods of 2 records = %v, complete %v; want the first period open, incomplete", got, complete)
	}
}

// testAuditProjections: the decisions log and the snapshot records, which
// the console reads, are checked against their journal entries; a row
// changed in its table is found.
func testAuditProjections(t *testing.T, s Store) {
	ctx := context.Background()
	decisions := decisionHistory(t, s)
	a := journal.NewAppender(s, journal.AppenderOptions{})
	defer a.Close(ctx)
	rec := &drift.Recorder{Journal: a, Store: s, Heartbeat: time.Hour, FullEvery: 3}
	w := func(name string) drift.Workload {
		return drift.Workload{Namespace: "ns", Kind: "Deployment", Name: name, Pods: 1, Started: t0,
			Containers: []drift.Container{{Name: "c", Image: "registry.example.com/" + name, Digest: digest(1)}}}
	}
	var last uint64
	for i, ws := range [][]drift.Workload{{w("db")}, {w("db"), w("web")}, {w("db"), w("web"), w("api")}} {
		res, err := rec.Record(ctx, drift.Snapshot{Environment: "prod", Time: t0.Add(time.Duration(i) * time.Minute), Workloads: ws}, "")
		if err != nil {
			t.Fatal(err)
		}
		last = res.ID
	}
	n, err := drift.AuditProjections(ctx, s, s)
	if err != nil || n != len(decisions)+3 {
		t.Fatalf("AuditProjections = %d, %v; want %d rows, no error", n, err, len(decisions)+3)
	}
	tp, ok := s.(Tamperer)
	if !ok {
		t.Fatalf("%T does not implement storetest.Tamperer", s)
	}
	// A denial shown as allowed; a workload dropped from what ran.
	tp.RewriteEvidence(t, `UPDATE decisions SET allowed = NOT allowed WHERE idx = 6`)
	recs, err := s.Records(ctx, "prod", last, last)
	if err != nil || len(recs) != 1 {
		t.Fatalf("Records = %v, %v", recs, err)
	}
	r := recs[0].Record
	if r.Diff == nil || len(r.Diff.Started) != 1 {
		t.Fatalf("the last record is %+v, want a delta that starts api", r)
	}
	r.Diff.Started = []drift.Workload{}
	body, _ := json.Marshal(r)
	tp.ReplaceSnapshotBody(t, last, body)
	_, err = drift.AuditProjections(ctx, s, s)
	var pe *journal.MismatchError
	if !errors.As(err, &pe) || pe.Count != 2 || !strings.Contains(err.Error(), "decision 6") || !strings.Contains(err.Error(), fmt.Sprintf("snapshot record %d", last)) {
		t.Fatalf("AuditProjections after two rows changed = %v; want the decision and the record named", err)
	}
}
