package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/journal"
)

func workload(ns, name string, pods int, images ...string) drift.Workload {
	w := drift.Workload{Namespace: ns, Kind: "Deployment", Name: name, Pods: pods, Started: t0}
	for i, img := range images {
		w.Containers = append(w.Containers, drift.Container{Name: fmt.Sprintf("c%d", i), Image: img, Digest: digest(len(img))})
	}
	return w
}

// testSnapshots records a history through the Recorder and reads it back:
// content changes are recorded (full, then deltas, then full again),
// unchanged content only as heartbeats, and the state at any time is what
// ran then.
func testSnapshots(t *testing.T, s Store) {
	ctx := context.Background()
	a := journal.NewAppender(s, journal.AppenderOptions{})
	defer a.Close(ctx)
	rec := &drift.Recorder{Journal: a, Store: s, Heartbeat: time.Minute, FullEvery: 3}
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	states := []struct {
		minute    int
		workloads []drift.Workload
		want      string
	}{
		{0, []drift.Workload{workload("prod", "web", 2, "web:1"), workload("prod", "api", 1, "api:1")}, drift.RecordFull},
		{0, []drift.Workload{workload("prod", "web", 2, "web:1"), workload("prod", "api", 1, "api:1")}, ""},
		{1, []drift.Workload{workload("prod", "web", 5, "web:1"), workload("prod", "api", 1, "api:1")}, drift.RecordHeartbeat}, // scaling alone
		{2, []drift.Workload{workload("prod", "web", 5, "web:22"), workload("prod", "api", 1, "api:1")}, drift.RecordDelta},
		{3, []drift.Workload{workload("prod", "web", 5, "web:22")}, drift.RecordDelta},
		{4, []drift.Workload{workload("prod", "web", 5, "web:22"), workload("prod", "db", 1, "pg:16")}, drift.RecordFull},
		{5, []drift.Workload{workload("prod", "db", 1, "pg:16")}, drift.RecordDelta},
	}
	for i, st := range states {
		res, err := rec.Record(ctx, drift.Snapshot{Environment: "prod", Time: at(st.minute), Workloads: st.workloads}, "")
		if err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
		if res.Recorded != st.want {
			t.Fatalf("Record %d recorded %q, want %q", i, res.Recorded, st.want)
		}
	}
	for i, st := range states {
		want := drift.Snapshot{Environment: "prod", Workloads: st.workloads}
		want.Normalize()
		got, _, err := drift.State(ctx, s, "prod", at(st.minute).Add(30*time.Second))
		if err != nil {
			t.Fatalf("State at minute %d: %v", st.minute, err)
		}
		if got.ContentHash() != want.ContentHash() {
			t.Errorf("State at minute %d (%d) = %v, want %v", st.minute, i, got.Workloads, want.Workloads)
		}
	}
	if _, _, err := drift.State(ctx, s, "prod", t0.Add(-time.Minute)); err == nil {
		t.Error("State before the first snapshot succeeded")
	}
	_, asOf, _ := drift.State(ctx, s, "prod", at(1).Add(30*time.Second))
	if !asOf.Equal(at(1)) {
		t.Errorf("as of = %s, want the heartbeat at %s", asOf, at(1))
	}
	d := drift.Compare(mustState(t, s, at(0)), mustState(t, s, at(3)))
	if len(d.Stopped) != 1 || d.Stopped[0].Name != "api" || len(d.Changed) != 1 || d.Changed[0].After.Containers[0].Image != "web:22" {
		t.Errorf("diff minute 0 -> 3 = %+v", d)
	}
	// Events are the changes between consecutive recorded states, full
	// records included (minute 4: db started, and at minute 0, all).
	var wantEvents []string
	prev := drift.Snapshot{Environment: "prod"}
	for _, st := range states {
		if st.want != drift.RecordFull && st.want != drift.RecordDelta {
			continue
		}
		cur := drift.Snapshot{Environment: "prod", Workloads: st.workloads}
		cur.Normalize()
		d := drift.Compare(prev, cur)
		for _, w := range d.Started {
			wantEvents = append(wantEvents, fmt.Sprintf("%d started %s", st.minute, w.Key()))
		}
		for _, w := range d.Stopped {
			wantEvents = append(wantEvents, fmt.Sprintf("%d stopped %s", st.minute, w.Key()))
		}
		for _, c := range d.Changed {
			wantEvents = append(wantEvents, fmt.Sprintf("%d changed %s", st.minute, c.After.Key()))
		}
		prev = cur
	}
	for _, since := range []time.Time{t0.Add(-time.Minute), at(0)} { // the first full record read, or rebuilt
		events, err := (&drift.Service{Store: s, Environments: []string{"prod"}}).Events(ctx, "prod", since, at(5), 100)
		var got []string
		for _, e := range events {
			got = append(got, fmt.Sprintf("%d %s %s", int(e.Time.Sub(t0)/time.Minute), e.Type, e.Workload.Key()))
		}
		want := wantEvents
		if since.Equal(at(0)) {
			want = wantEvents[2:] // not the start of web and api at minute 0
		}
		if err != nil || !cmp.Equal(got, want) {
			t.Errorf("Events since %s = %v, %v; want %v", since.Format("15:04"), got, err, want)
		}
	}
	recs, err := s.RecordsBetween(ctx, "prod", at(1), at(5), 100)
	if err != nil || len(recs) != 4 {
		t.Errorf("RecordsBetween = %d records, %v; want 4", len(recs), err)
	}
	// web:22 is started (minute 2), in the full record (4), stopped (5);
	// the delta of minute 3 stops api only.
	kinds := func(recs []drift.StoredRecord) (out []string) {
		for _, r := range recs {
			out = append(out, fmt.Sprintf("%d:%s:%d", r.ID, r.Kind, len(r.Workloads)))
		}
		return out
	}
	all, _ := s.RecordsBetween(ctx, "prod", at(1), at(5), 100)
	with, err := s.RecordsWith(ctx, "prod", digest(len("web:22")), at(1), at(5), 100)
	want := []string{fmt.Sprintf("%d:delta:0", all[0].ID), fmt.Sprintf("%d:full:2", all[2].ID), fmt.Sprintf("%d:delta:0", all[3].ID)}
	if err != nil || !cmp.Equal(kinds(with), want) {
		t.Errorf("RecordsWith(web:22) = %v, %v; want %v", kinds(with), err, want)
	}
	with, err = s.RecordsWith(ctx, "prod", "sha256:"+strings.Repeat("0", 64), at(1), at(5), 100)
	if want := []string{fmt.Sprintf("%d:full:0", all[2].ID)}; err != nil || !cmp.Equal(kinds(with), want) {
		t.Errorf("RecordsWith(a digest that never ran) = %v, %v; want only the full record, without workloads: %v", kinds(with), err, want)
	}
	envs, err := s.Environments(ctx)
	if err != nil || !cmp.Equal(envs, []string{"prod"}) {
		t.Errorf("Environments = %v, %v", envs, err)
	}

	// A new recorder (a restart, another replica) continues the history.
	rec2 := &drift.Recorder{Journal: a, Store: s, Heartbeat: time.Minute, FullEvery: 3}
	res, err := rec2.Record(ctx, drift.Snapshot{Environment: "prod", Time: at(5).Add(10 * time.Second), Workloads: states[6].workloads}, "")
	if err != nil || res.Recorded != "" {
		t.Errorf("unchanged after a restart: recorded %q, %v", res.Recorded, err)
	}
	res, err = rec2.Record(ctx, drift.Snapshot{Environment: "prod", Time: at(6), Workloads: states[0].workloads}, "")
	if err != nil || res.Recorded != drift.RecordDelta {
		t.Errorf("change after a restart: recorded %q, %v", res.Recorded, err)
	}
}

func mustState(t *testing.T, s Store, at time.Time) drift.Snapshot {
	t.Helper()
	st, _, err := drift.State(context.Background(), s, "prod", at.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// testAdmitted checks the index of admitted digests kept from admission
// entries.
func testAdmitted(t *testing.T, s Store) {
	adm := func(uid string, allowed bool, env string, digests ...string) journal.Entry {
		var imgs []map[string]string
		for _, d := range digests {
			imgs = append(imgs, map[string]string{"digest": d})
		}
		body, _ := json.Marshal(map[string]any{"uid": uid, "allowed": allowed, "environment": env, "images": imgs})
		e := journal.Entry{Kind: journal.KindAdmission, Time: t0, Environment: env, Key: "admission:" + uid, Body: body}
		if err := e.Seal(); err != nil {
			t.Fatal(err)
		}
		return e
	}
	res := appendBatch(t, s, adm("1", true, "prod", digest(1), digest(2), digest(1)), adm("2", false, "prod", digest(3)), adm("3", true, "staging", digest(3)), adm("4", true, "prod", digest(1)))
	got, err := s.Admitted(context.Background(), "prod", []string{digest(1), digest(2), digest(3), digest(4)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{digest(1): res[3].Index, digest(2): res[0].Index}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Admitted (-want +got):\n%s", diff)
	}
	// The first and the last admission of a digest in one batch.
	sightings, err := s.Sightings(context.Background(), []string{digest(1)})
	if err != nil {
		t.Fatal(err)
	}
	wantSeen := []drift.Sighting{{Environment: "prod", FirstAdmitted: &drift.JournalRef{Index: res[0].Index, Time: t0}, LastAdmitted: &drift.JournalRef{Index: res[3].Index, Time: t0}}}
	if diff := cmp.Diff(wantSeen, sightings[digest(1)]); diff != "" {
		t.Errorf("Sightings after one batch (-want +got):\n%s", diff)
	}
}
