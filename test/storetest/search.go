package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
)

// hexDigest is a digest that starts with the hex prefix p.
func hexDigest(p string) string { return "sha256:" + p + strings.Repeat("0", 64-len(p)) }

// commit is a 40-character git commit that starts with the hex prefix p.
func commit(p string) string { return p + strings.Repeat("0", 40-len(p)) }

// testBlobs stores blobs content-addressed and lets attestations name
// them.
func testBlobs(t *testing.T, s Store) {
	ctx := context.Background()
	content := []byte("<testsuite tests=\"1\"/>")
	b := evidence.NewBlob(content, "application/xml", "ci", t0)
	created, err := s.PutBlob(ctx, b)
	if err != nil || !created {
		t.Fatalf("PutBlob = %v, %v; want created", created, err)
	}
	again := evidence.NewBlob(content, "text/plain", "other-ci", t0.Add(time.Hour))
	if created, err := s.PutBlob(ctx, again); err != nil || created {
		t.Errorf("PutBlob of the same content again = %v, %v; want not created", created, err)
	}
	got, err := s.Blob(ctx, b.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(b, got); diff != "" {
		t.Errorf("Blob: the first upload, unchanged (-want +got):\n%s", diff)
	}
	info, err := s.BlobInfo(ctx, b.Digest)
	want := b
	want.Content = nil
	if err != nil || !cmp.Equal(want, info) {
		t.Errorf("BlobInfo = %+v, %v; want %+v", info, err, want)
	}

	// Every byte value survives.
	var bin []byte
	for i := 0; i < 512; i++ {
		bin = append(bin, byte(i))
	}
	bb := evidence.NewBlob(bin, "", "ci", t0)
	if _, err := s.PutBlob(ctx, bb); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Blob(ctx, bb.Digest); err != nil || string(got.Content) != string(bin) || got.MediaType != evidence.DefaultBlobMediaType {
		t.Errorf("binary blob: %v, media type %q; content equal %v", err, got.MediaType, string(got.Content) == string(bin))
	}

	// A digest that does not match the content is never stored.
	forged := evidence.NewBlob([]byte("evil"), "text/html", "ci", t0)
	forged.Digest = digest(7)
	if _, err := s.PutBlob(ctx, forged); err == nil {
		t.Error("PutBlob stored a blob whose digest does not match its content")
	}
	for _, d := range []string{digest(7), digest(8)} {
		if _, err := s.Blob(ctx, d); !errors.Is(err, evidence.ErrNotFound) {
			t.Errorf("Blob(%s) error = %v, want ErrNotFound", d, err)
		}
		if _, err := s.BlobInfo(ctx, d); !errors.Is(err, evidence.ErrNotFound) {
			t.Errorf("BlobInfo(%s) error = %v, want ErrNotFound", d, err)
		}
	}

	// Attestations may name stored blobs only; the blob is part of what
	// makes two attestations the same.
	a := journal.NewAppender(s, journal.AppenderOptions{})
	defer a.Close(ctx)
	svc := evidence.NewService(a, nil, nil, evidence.WithBlobs(s))
	yes := true
	r := evidence.AttestationReport{Digest: digest(1), Name: "unit-tests", Type: "junit", Passed: &yes, Blob: digest(8)}
	var verr *evidence.ValidationError
	if _, _, err := svc.Attest(ctx, "ci", r); !errors.As(err, &verr) || verr.Fields[0].Field != "blob" {
		t.Errorf("attestation naming an unknown blob: err = %v, want a validation error of field blob", err)
	}
	r.Blob = b.Digest
	first, created, err := svc.Attest(ctx, "ci", r)
	if err != nil || !created || first.Blob != b.Digest {
		t.Fatalf("attestation naming a stored blob = %+v, %v, %v", first, created, err)
	}
	if again, created, err := svc.Attest(ctx, "ci", r); err != nil || created || again.ID != first.ID {
		t.Errorf("identical attestation again = %d, %v, %v; want the first, not created", again.ID, created, err)
	}
	r.Blob = bb.Digest
	if other, created, err := svc.Attest(ctx, "ci", r); err != nil || !created || other.ID == first.ID {
		t.Errorf("attestation naming another blob = %d, %v, %v; want a new record", other.ID, created, err)
	}
	ev, err := s.Evidence(ctx, digest(1))
	if err != nil || len(ev.Attestations) != 2 || ev.Attestations[0].Blob != b.Digest || ev.Attestations[1].Blob != bb.Digest {
		t.Errorf("Evidence attestations = %+v, %v; want both blobs", ev.Attestations, err)
	}
	if _, _, err := evidence.NewService(a, nil, nil).Attest(ctx, "ci", r); !errors.As(err, &verr) {
		t.Errorf("a service without blob storage accepted a blob: %v", err)
	}
}

// testApprovalQueries lists release decisions newest first by digest and
// environment.
func testApprovalQueries(t *testing.T, s Store) {
	ctx := context.Background()
	a := journal.NewAppender(s, journal.AppenderOptions{})
	defer a.Close(ctx)
	clock := t0
	svc := evidence.NewService(a, nil, func() time.Time { clock = clock.Add(time.Second); return clock })
	var all []evidence.Approval
	for _, r := range []evidence.ApprovalRequest{
		{Digest: digest(1), Environment: "prod", Decision: evidence.Approved, Reason: "CAB-1"},
		{Digest: digest(1), Environment: "staging", Decision: evidence.Approved},
		{Digest: digest(2), Environment: "prod", Decision: evidence.Rejected, Reason: "CVE"},
		{Digest: digest(1), Environment: "prod", Decision: evidence.Rejected, Reason: "rolled back"},
	} {
		ap, err := svc.Approve(ctx, "rm", r)
		if err != nil {
			t.Fatal(err)
		}
		all = append([]evidence.Approval{ap}, all...) // newest first
	}
	tests := []struct {
		name string
		f    evidence.ApprovalFilter
		want []evidence.Approval
	}{
		{"all", evidence.ApprovalFilter{}, all},
		{"digest", evidence.ApprovalFilter{Digest: digest(1)}, []evidence.Approval{all[0], all[2], all[3]}},
		{"environment", evidence.ApprovalFilter{Environment: "prod"}, []evidence.Approval{all[0], all[1], all[3]}},
		{"both", evidence.ApprovalFilter{Digest: digest(1), Environment: "prod"}, []evidence.Approval{all[0], all[3]}},
		{"limit", evidence.ApprovalFilter{Limit: 1}, all[:1]},
		{"none", evidence.ApprovalFilter{Environment: "qa"}, nil},
	}
	for _, tt := range tests {
		got, err := s.Approvals(ctx, tt.f)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Approvals(%s %+v) (-want +got):\n%s", tt.name, tt.f, diff)
		}
	}
}

// testArtifactPrefixes finds artifacts by the start of their digest or
// commit.
func testArtifactPrefixes(t *testing.T, s Store) {
	ctx := context.Background()
	a := journal.NewAppender(s, journal.AppenderOptions{})
	defer a.Close(ctx)
	svc := evidence.NewService(a, nil, nil)
	report := func(name, d, c string) evidence.Artifact {
		art, _, err := svc.ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: name, Digest: d, GitCommit: c})
		if err != nil {
			t.Fatal(err)
		}
		return art
	}
	a1 := report("app", hexDigest("abcdef1"), commit("1234567a"))
	a2 := report("app", hexDigest("abcdef2"), commit("1234567b"))
	a3 := report("web", hexDigest("abcdeff"), commit("7654321"))
	a4 := report("web", hexDigest("abcdf"), "")
	tests := []struct {
		f    evidence.ArtifactFilter
		want []evidence.Artifact
	}{
		{evidence.ArtifactFilter{DigestPrefix: "sha256:abcde"}, []evidence.Artifact{a3, a2, a1}},
		{evidence.ArtifactFilter{DigestPrefix: "sha256:abcdef1"}, []evidence.Artifact{a1}},
		{evidence.ArtifactFilter{DigestPrefix: "sha256:abcdf"}, []evidence.Artifact{a4}},
		{evidence.ArtifactFilter{DigestPrefix: a2.Digest}, []evidence.Artifact{a2}},
		{evidence.ArtifactFilter{DigestPrefix: "sha256:abcdef0"}, nil},
		{evidence.ArtifactFilter{CommitPrefix: "1234567"}, []evidence.Artifact{a2, a1}},
		{evidence.ArtifactFilter{CommitPrefix: "1234567b"}, []evidence.Artifact{a2}},
		{evidence.ArtifactFilter{CommitPrefix: a3.GitCommit}, []evidence.Artifact{a3}},
		{evidence.ArtifactFilter{CommitPrefix: "12345670"}, nil},
		{evidence.ArtifactFilter{CommitPrefix: "1234567", Name: "app", Limit: 1}, []evidence.Artifact{a2}},
	}
	for _, tt := range tests {
		got, err := s.Artifacts(ctx, tt.f)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Artifacts(%+v) (-want +got):\n%s", tt.f, diff)
		}
	}
}

// sightingHistory journals admissions and snapshots of two environments.
// It returns the entries' times by journal index.
func sightingHistory(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	adm := func(uid string, env string, at time.Time, digests ...string) journal.Entry {
		var imgs []map[string]string
		for _, d := range digests {
			imgs = append(imgs, map[string]string{"digest": d})
		}
		body, _ := json.Marshal(map[string]any{"uid": uid, "allowed": true, "environment": env, "images": imgs})
		e := journal.Entry{Kind: journal.KindAdmission, Time: at, Environment: env, Key: "admission:" + uid, Body: body}
		if err := e.Seal(); err != nil {
			t.Fatal(err)
		}
		return e
	}
	appendBatch(t, s, adm("1", "prod", t0, digest(1)))                  // 0
	appendBatch(t, s, adm("2", "prod", t0.Add(time.Minute), digest(1))) // 1
	a := journal.NewAppender(s, journal.AppenderOptions{})
	defer a.Close(ctx)
	rec := &drift.Recorder{Journal: a, Store: s, Heartbeat: time.Hour, FullEvery: 10}
	w := func(name string, d string) drift.Workload {
		return drift.Workload{Namespace: "ns", Kind: "Deployment", Name: name, Pods: 1, Started: t0,
			Containers: []drift.Container{{Name: "c", Image: "registry.example.com/" + name + "@" + d, Digest: d}}}
	}
	for _, st := range []struct {
		env       string
		minute    int
		workloads []drift.Workload
	}{
		{"prod", 2, []drift.Workload{w("web", digest(1))}},                      // 2: full
		{"prod", 3, []drift.Workload{w("web", digest(1)), w("api", digest(2))}}, // 3: delta, api started
		{"staging", 4, []drift.Workload{w("web", digest(1))}},                   // 4: full
		{"prod", 5, []drift.Workload{w("web", digest(1)), w("api", digest(3))}}, // 5: delta, api changed
		{"prod", 6, []drift.Workload{w("web", digest(1)), w("api", digest(3)), {Namespace: "ns", Kind: "Pod", Name: "pending", Pods: 1, Started: t0,
			Containers: []drift.Container{{Name: "c", Image: "busybox"}}}}}, // 6: delta, no digest yet
	} {
		if _, err := rec.Record(ctx, drift.Snapshot{Environment: st.env, Time: t0.Add(time.Duration(st.minute) * time.Minute), Workloads: st.workloads}, ""); err != nil {
			t.Fatal(err)
		}
	}
}

// testSightings says where digests were admitted, first ran and run now.
func testSightings(t *testing.T, s Store) {
	ctx := context.Background()
	sightingHistory(t, s)
	ref := func(i uint64) *drift.JournalRef {
		return &drift.JournalRef{Index: i, Time: t0.Add(time.Duration(i) * time.Minute)}
	}
	want := map[string][]drift.Sighting{
		digest(1): {{Environment: "prod", FirstAdmitted: ref(0), LastAdmitted: ref(1), FirstRan: ref(2)}, {Environment: "staging", FirstRan: ref(4)}},
		digest(2): {{Environment: "prod", FirstRan: ref(3)}},
		digest(3): {{Environment: "prod", FirstRan: ref(5)}},
	}
	got, err := s.Sightings(ctx, []string{digest(1), digest(2), digest(3), digest(4)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Sightings (-want +got):\n%s", diff)
	}
	if got, err := s.Sightings(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("Sightings(nil) = %v, %v", got, err)
	}

	// The service adds what runs in each environment's latest snapshot.
	for _, d := range []string{digest(1), digest(3)} {
		for i := range want[d] {
			want[d][i].RunningNow = true
		}
	}
	got, err = (&drift.Service{Store: s}).Sightings(ctx, []string{digest(1), digest(2), digest(3), digest(4)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Service.Sightings (-want +got):\n%s", diff)
	}
}

// RanBackfill checks that the backfill of a migration (the SQL after its
// "-- Backfill" comment), run by exec over the snapshots recorded, builds
// the same index of digests that ran as the store keeps with each
// snapshot.
func RanBackfill(t *testing.T, s Store, exec func(ctx context.Context, sql string) error, migration string) {
	ctx := context.Background()
	backfill := backfillOf(t, migration)
	sightingHistory(t, s)
	digests := []string{digest(1), digest(2), digest(3)}
	want, err := s.Sightings(ctx, digests)
	if err != nil {
		t.Fatal(err)
	}
	if err := exec(ctx, `DELETE FROM ran`); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Sightings(ctx, digests); cmp.Equal(want, got) {
		t.Fatal("emptying the table of digests that ran changed nothing")
	}
	if err := exec(ctx, "-- Backfill"+backfill); err != nil {
		t.Fatalf("backfill: %v", err)
	}
	got, err := s.Sightings(ctx, digests)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Sightings after the backfill (-as kept +backfilled):\n%s", diff)
	}
}

// SnapshotDigestsBackfill runs the backfill section of a migration that
// creates the index of the digests snapshot records name: it must index
// what the store indexes with each snapshot (started, stopped, changed).
func SnapshotDigestsBackfill(t *testing.T, s Store, exec func(ctx context.Context, sql string) error, migration string) {
	ctx := context.Background()
	backfill := backfillOf(t, migration)
	sightingHistory(t, s)
	a := journal.NewAppender(s, journal.AppenderOptions{})
	defer a.Close(ctx)
	rec := &drift.Recorder{Journal: a, Store: s, Heartbeat: time.Hour, FullEvery: 10}
	web := drift.Workload{Namespace: "ns", Kind: "Deployment", Name: "web", Pods: 1, Started: t0,
		Containers: []drift.Container{{Name: "c", Image: "registry.example.com/web@" + digest(1), Digest: digest(1)}}}
	if _, err := rec.Record(ctx, drift.Snapshot{Environment: "prod", Time: t0.Add(7 * time.Minute), Workloads: []drift.Workload{web}}, ""); err != nil {
		t.Fatal(err) // 7: delta, api (digest 3) and the pending pod stopped
	}
	records := func() map[string][]string {
		out := map[string][]string{}
		for _, d := range []string{digest(1), digest(2), digest(3)} {
			recs, err := s.RecordsWith(ctx, "prod", d, t0.Add(-time.Hour), t0.Add(time.Hour), 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				out[d] = append(out[d], fmt.Sprintf("%d:%s:%d", r.ID, r.Kind, len(r.Workloads)))
			}
		}
		return out
	}
	want := records()
	if got := want[digest(2)]; !cmp.Equal(got, []string{"2:full:0", "3:delta:0", "5:delta:0"}) {
		t.Errorf("RecordsWith(digest 2) = %v, want the full record without workloads, its start and its change", got)
	}
	if got := want[digest(3)]; !cmp.Equal(got, []string{"2:full:0", "5:delta:0", "7:delta:0"}) {
		t.Errorf("RecordsWith(digest 3) = %v, want the full record without workloads, its start (a change) and its stop", got)
	}
	if err := exec(ctx, `DELETE FROM snapshot_digests`); err != nil {
		t.Fatal(err)
	}
	if got := records(); cmp.Equal(want, got) {
		t.Fatal("emptying the index of the digests records name changed nothing")
	}
	if err := exec(ctx, "-- Backfill"+backfill); err != nil {
		t.Fatalf("backfill: %v", err)
	}
	if diff := cmp.Diff(want, records()); diff != "" {
		t.Errorf("RecordsWith after the backfill (-as kept +backfilled):\n%s", diff)
	}
}

// backfillOf returns the SQL after the "-- Backfill" comment of a
// migration file.
func backfillOf(t *testing.T, migration string) string {
	t.Helper()
	b, err := os.ReadFile(migration)
	if err != nil {
		t.Fatal(err)
	}
	_, backfill, ok := strings.Cut(string(b), "-- Backfill")
	if !ok {
		t.Fatalf("%s has no -- Backfill section", migration)
	}
	return backfill
}
