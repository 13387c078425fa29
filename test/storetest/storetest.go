// Package storetest is the conformance suite every Vouch store passes: the
// same tests run against SQLite and against a real PostgreSQL.
package storetest

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
)

// Store is everything a storage adapter implements.
type Store interface {
	journal.Store
	evidence.Store
	evidence.BlobStore
	auth.Store
	auth.SessionStore
	drift.Store
	evidence.RefLister
	drift.DecisionStore
	// Admitted returns the latest admitted decision of each digest in env.
	Admitted(ctx context.Context, env string, digests []string) (map[string]uint64, error)
	Ping(ctx context.Context) error
}

// Run runs the suite. open returns a new, empty store for each test.
func Run(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"AppendAssignsContiguousIndices", testContiguous},
		{"AppendIsIdempotentByKey", testIdempotent},
		{"TreeStateMatchesLeaves", testTreeState},
		{"EntriesFilters", testEntriesFilters},
		{"FailedBatchStoresNothing", testFailedBatch},
		{"ConcurrentAppenders", testConcurrentAppenders},
		{"EvidenceIsProjected", testEvidence},
		{"EvidenceIngestionRules", testIngestionRules},
		{"AttestationReruns", testAttestationReruns},
		{"EvidenceAudit", testEvidenceAudit},
		{"Tokens", testTokens},
		{"Sessions", testSessions},
		{"ProofsVerify", testProofs},
		{"VerifyWhileAppending", testVerifyWhileAppending},
		{"Checkpoints", testCheckpoints},
		{"ExportVerifies", testExportVerifies},
		{"ExportTamperMatrix", testExportTamperMatrix},
		{"Snapshots", testSnapshots},
		{"Admitted", testAdmitted},
		{"Blobs", testBlobs},
		{"ApprovalQueries", testApprovalQueries},
		{"ArtifactPrefixes", testArtifactPrefixes},
		{"Sightings", testSightings},
		{"Decisions", testDecisions},
		{"AuditProjections", testAuditProjections},
		{"Periods", testPeriods},
	}
	t.Run("StoreTamperMatrix", func(t *testing.T) { testStoreTamperMatrix(t, open) })
	t.Run("CheckpointerRefusesRewrites", func(t *testing.T) { testCheckpointerRefusesRewrites(t, open) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			tt.fn(t, s)
		})
	}
}

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func entry(t testing.TB, kind journal.Kind, key string, i int) journal.Entry {
	t.Helper()
	e := journal.Entry{Kind: kind, Time: t0.Add(time.Duration(i) * time.Second), Key: key, Environment: "prod",
		Body: json.RawMessage(fmt.Sprintf(`{"n":%d,"text":"entry %d"}`, i, i))}
	if err := e.Seal(); err != nil {
		t.Fatal(err)
	}
	return e
}

func appendBatch(t testing.TB, s Store, entries ...journal.Entry) []journal.Appended {
	t.Helper()
	res, err := s.AppendBatch(context.Background(), entries)
	if err != nil {
		t.Fatalf("AppendBatch: %v", err)
	}
	if len(res) != len(entries) {
		t.Fatalf("AppendBatch returned %d results for %d entries", len(res), len(entries))
	}
	return res
}

func allEntries(t *testing.T, s Store) []journal.Entry {
	t.Helper()
	var all []journal.Entry
	for from := uint64(0); ; {
		page, err := s.Entries(context.Background(), journal.Query{From: from, Limit: journal.MaxLimit})
		if err != nil {
			t.Fatalf("Entries: %v", err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		from = page[len(page)-1].Index + 1
	}
}

func testContiguous(t *testing.T, s Store) {
	var want []journal.Entry
	for b := 0; b < 3; b++ {
		var batch []journal.Entry
		for i := 0; i < 5; i++ {
			batch = append(batch, entry(t, "test", "", b*5+i))
		}
		res := appendBatch(t, s, batch...)
		for i, r := range res {
			if r.Existing || r.Index != uint64(b*5+i) {
				t.Fatalf("batch %d entry %d: index %d existing %v, want index %d", b, i, r.Index, r.Existing, b*5+i)
			}
			want = append(want, r.Entry)
		}
	}
	got := allEntries(t, s)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Entries differ from what was appended (-want +got):\n%s", diff)
	}
	for _, e := range got {
		if e.LeafHash != journal.LeafHash(e.Leaf) {
			t.Errorf("entry %d: stored leaf hash does not match leaf", e.Index)
		}
	}
}

func testIdempotent(t *testing.T, s Store) {
	first := appendBatch(t, s, entry(t, journal.KindAdmission, "admission:a", 0), entry(t, journal.KindAdmission, "admission:b", 1))
	// Same keys again (with different content), plus a repeat inside the batch.
	res := appendBatch(t, s,
		entry(t, journal.KindAdmission, "admission:a", 10),
		entry(t, journal.KindAdmission, "admission:c", 11),
		entry(t, journal.KindAdmission, "admission:c", 12),
		entry(t, journal.KindAdmission, "admission:b", 13),
	)
	want := []struct {
		index    uint64
		existing bool
		n        int
	}{{0, true, 0}, {2, false, 11}, {2, true, 11}, {1, true, 1}}
	for i, w := range want {
		var body struct{ N int }
		if err := json.Unmarshal(res[i].Body, &body); err != nil {
			t.Fatal(err)
		}
		if res[i].Index != w.index || res[i].Existing != w.existing || body.N != w.n {
			t.Errorf("result %d = index %d existing %v n %d, want index %d existing %v n %d",
				i, res[i].Index, res[i].Existing, body.N, w.index, w.existing, w.n)
		}
	}
	if res[0].Entry.LeafHash != first[0].LeafHash {
		t.Error("existing entry returned with a different leaf hash")
	}
	if n := len(allEntries(t, s)); n != 3 {
		t.Errorf("journal holds %d entries, want 3", n)
	}
}

func testTreeState(t *testing.T, s Store) {
	st, err := s.TreeState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != 0 || st.Root != journal.EmptyTree().Root {
		t.Fatalf("empty store: tree state %d %s, want 0 and the empty root", st.Size, st.Root)
	}
	for _, n := range []int{1, 2, 5, 13} {
		var batch []journal.Entry
		for i := 0; i < n; i++ {
			batch = append(batch, entry(t, "test", "", i))
		}
		appendBatch(t, s, batch...)
		st, err := s.TreeState(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		entries := allEntries(t, s)
		if st.Size != uint64(len(entries)) {
			t.Fatalf("tree size %d, entries %d", st.Size, len(entries))
		}
		if want := rootOf(t, entries); st.Root != want {
			t.Errorf("after %d entries: stored root %s, recomputed %s", len(entries), st.Root, want)
		}
	}
}

// rootOf recomputes the RFC 6962 root from stored leaves, independently of
// the store's incremental state.
func rootOf(t *testing.T, entries []journal.Entry) journal.Hash {
	t.Helper()
	f := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := f.NewEmptyRange(0)
	for _, e := range entries {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf(e.Leaf), nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	var h journal.Hash
	copy(h[:], root)
	return h
}

func testEntriesFilters(t *testing.T, s Store) {
	for i := 0; i < 10; i++ {
		e := entry(t, "a", "", i)
		if i%2 == 1 {
			e.Kind = "b"
		}
		if i%3 == 0 {
			e.Environment = "staging"
		}
		if err := e.Seal(); err != nil {
			t.Fatal(err)
		}
		appendBatch(t, s, e)
	}
	indices := func(q journal.Query) []uint64 {
		es, err := s.Entries(context.Background(), q)
		if err != nil {
			t.Fatalf("Entries(%+v): %v", q, err)
		}
		var out []uint64
		for _, e := range es {
			out = append(out, e.Index)
		}
		return out
	}
	tests := []struct {
		q    journal.Query
		want []uint64
	}{
		{journal.Query{From: 7}, []uint64{7, 8, 9}},
		{journal.Query{Limit: 2}, []uint64{0, 1}},
		{journal.Query{Kind: "b"}, []uint64{1, 3, 5, 7, 9}},
		{journal.Query{Environment: "staging"}, []uint64{0, 3, 6, 9}},
		{journal.Query{Kind: "a", Environment: "prod", From: 3}, []uint64{4, 8}},
		{journal.Query{From: 100}, nil},
	}
	for _, tt := range tests {
		if got := indices(tt.q); !cmp.Equal(got, tt.want) {
			t.Errorf("Entries(%+v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	for _, tt := range []struct {
		at   time.Time
		want uint64
	}{{t0.Add(-time.Hour), 0}, {t0.Add(3 * time.Second), 3}, {t0.Add(3500 * time.Millisecond), 4}, {t0.Add(time.Hour), 10}} {
		if got, err := s.FirstIndexAt(context.Background(), tt.at); err != nil || got != tt.want {
			t.Errorf("FirstIndexAt(%s) = %d, %v; want %d", tt.at, got, err, tt.want)
		}
	}
}

// testFailedBatch checks that a batch failing part-way (here: two artifact
// records for one digest under different keys, which the evidence tables
// refuse) leaves no trace.
func testFailedBatch(t *testing.T, s Store) {
	appendBatch(t, s, entry(t, "test", "", 0))
	before, _ := s.TreeState(context.Background())
	art := func(key, name string) journal.Entry {
		body, _ := evidence.EncodeBody(evidence.Artifact{Name: name, Digest: digest(1), ReportedBy: "ci", ReportedAt: t0})
		e := journal.Entry{Kind: evidence.KindArtifact, Time: t0, Key: key, Body: body}
		if err := e.Seal(); err != nil {
			t.Fatal(err)
		}
		return e
	}
	_, err := s.AppendBatch(context.Background(), []journal.Entry{entry(t, "test", "k", 1), art("x", "one"), art("y", "two")})
	if err == nil {
		t.Fatal("AppendBatch with a conflicting evidence record succeeded")
	}
	after, _ := s.TreeState(context.Background())
	if after.Size != before.Size || after.Root != before.Root {
		t.Errorf("tree state changed by a failed batch: %d -> %d", before.Size, after.Size)
	}
	if n := len(allEntries(t, s)); n != 1 {
		t.Errorf("journal holds %d entries after a failed batch, want 1", n)
	}
	if ev, _ := s.Lookup(context.Background(), []string{digest(1)}); len(ev) != 0 {
		t.Errorf("evidence stored by a failed batch: %v", ev)
	}
	// The store is still usable and the key is free.
	if res := appendBatch(t, s, entry(t, "test", "k", 2)); res[0].Existing || res[0].Index != 1 {
		t.Errorf("append after failed batch: index %d existing %v, want 1 false", res[0].Index, res[0].Existing)
	}
}

func testConcurrentAppenders(t *testing.T, s Store) {
	a := journal.NewAppender(s, journal.AppenderOptions{MaxBatch: 16})
	const workers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				key := fmt.Sprintf("k-%d-%d", w, i%(each/2)) // every key twice
				_, err := a.Append(context.Background(), journal.Entry{Kind: "test", Key: key, Body: json.RawMessage(`{}`)})
				if err != nil {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Fatalf("Append: %v", err)
	}
	entries := allEntries(t, s)
	if len(entries) != workers*each/2 {
		t.Fatalf("journal holds %d entries, want %d (one per key)", len(entries), workers*each/2)
	}
	for i, e := range entries {
		if e.Index != uint64(i) {
			t.Fatalf("entry %d has index %d: indices are not contiguous", i, e.Index)
		}
	}
	st, _ := s.TreeState(context.Background())
	if st.Root != rootOf(t, entries) {
		t.Error("tree root does not match the entries after concurrent appends")
	}
}

func digest(n int) string { return fmt.Sprintf("sha256:%064x", n) }

func testEvidence(t *testing.T, s Store) {
	ctx := context.Background()
	a := journal.NewAppender(s, journal.AppenderOptions{})
	defer a.Close(ctx)
	clock := t0
	svc := evidence.NewService(a, nil, func() time.Time { clock = clock.Add(time.Second); return clock })
	yes, no := true, false

	// An attestation may come before its artifact.
	att1, _, err := svc.Attest(ctx, "ci", evidence.AttestationReport{Digest: digest(1), Name: "unit-tests", Type: "junit", Passed: &no, Payload: json.RawMessage(`{"failures":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	art, _, err := svc.ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: "registry.example.com/app", Digest: digest(1), GitCommit: "0123456789abcdef0123456789abcdef01234567", BuildURL: "https://ci.example.com/1"})
	if err != nil {
		t.Fatal(err)
	}
	att2, _, err := svc.Attest(ctx, "ci", evidence.AttestationReport{Digest: digest(1), Name: "unit-tests", Type: "junit", Passed: &yes})
	if err != nil {
		t.Fatal(err)
	}
	// A code review's payload is read for decisions (its approvals count).
	review, _, err := svc.Attest(ctx, "ci", evidence.AttestationReport{Digest: digest(1), Name: "code-review", Type: evidence.TypePullRequest, Passed: &yes,
		Payload: json.RawMessage(`{"approvals":2,"commit":"0123456789abcdef0123456789abcdef01234567","repository":"org/app"}`)})
	if err != nil {
		t.Fatal(err)
	}
	// So is a change request's (its state and window decide).
	change, _, err := svc.Attest(ctx, "vouch", evidence.AttestationReport{Digest: digest(1), Name: "change-request", Type: evidence.TypeChangeRequest, Passed: &yes,
		Verified: true, KeyID: "change:servicenow", Payload: json.RawMessage(`{"approval":"approved","number":"CHG0030001","state":"implement"}`)})
	if err != nil {
		t.Fatal(err)
	}
	// A keyless attestation keeps the verified time it was signed.
	signedAt := time.Date(2026, 9, 1, 8, 0, 0, 123456000, time.UTC)
	keyless, _, err := svc.Attest(ctx, "ci", evidence.AttestationReport{Digest: digest(1), Name: "sbom", Type: "in-toto", Passed: &yes, Verified: true, KeyID: "ci-workflow", SignedAt: &signedAt})
	if err != nil || keyless.SignedAt == nil || !keyless.SignedAt.Equal(signedAt) {
		t.Fatalf("keyless attestation %+v, %v: want signed_at %s", keyless, err, signedAt)
	}
	exp := clock.Add(48 * time.Hour)
	ap, err := svc.Approve(ctx, "rm-alice", evidence.ApprovalRequest{Digest: digest(1), Environment: "prod", Decision: "approved", Reason: "CAB-1", ExpiresAt: &exp,
		ApproverIdentities: []string{"alice@example.com", "alice"}})
	if err != nil || !slices.Equal(ap.ApproverIdentities, []string{"alice@example.com", "alice"}) {
		t.Fatalf("approval %+v, %v: want the approver's identities kept", ap, err)
	}
	other, _, err := svc.ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: "registry.example.com/other", Digest: digest(2), GitCommit: "0123456789abcdef0123456789abcdef01234567"})
	if err != nil {
		t.Fatal(err)
	}

	got, err := s.Lookup(ctx, []string{digest(1), digest(2), digest(3)})
	if err != nil {
		t.Fatal(err)
	}
	att1NoPayload := att1
	att1NoPayload.Payload = nil
	want := map[string]evidence.Evidence{
		digest(1): {Digest: digest(1), Artifact: &art, Attestations: []evidence.Attestation{att1NoPayload, att2, review, change, keyless}, Approvals: []evidence.Approval{ap}},
		digest(2): {Digest: digest(2), Artifact: &other},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Lookup (-want +got):\n%s", diff)
	}

	full, err := s.Evidence(ctx, digest(1))
	if err != nil {
		t.Fatal(err)
	}
	if string(full.Attestations[0].Payload) != `{"failures":2}` {
		t.Errorf("Evidence payload = %s, want the posted payload", full.Attestations[0].Payload)
	}
	if _, err := s.Evidence(ctx, digest(9)); !errors.Is(err, evidence.ErrNotFound) {
		t.Errorf("Evidence(unknown) error = %v, want ErrNotFound", err)
	}

	list, err := s.Artifacts(ctx, evidence.ArtifactFilter{GitCommit: "0123456789abcdef0123456789abcdef01234567"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]evidence.Artifact{other, art}, list); diff != "" {
		t.Errorf("Artifacts by commit, newest first (-want +got):\n%s", diff)
	}
	list, _ = s.Artifacts(ctx, evidence.ArtifactFilter{Name: "registry.example.com/app"})
	if len(list) != 1 || list[0].Digest != digest(1) {
		t.Errorf("Artifacts by name = %v", list)
	}

	// The evidence records are the journal entries with the same ids.
	for _, id := range []uint64{art.ID, att1.ID, att2.ID, ap.ID} {
		es, _ := s.Entries(ctx, journal.Query{From: id, Limit: 1})
		if len(es) != 1 || es[0].Index != id {
			t.Errorf("no journal entry %d for an evidence record", id)
		}
	}
}

// testAttestationReruns: the same result posted again while it is the
// latest of its name is a retry; after another result of that name it is
// a new attestation, and the latest again (issue: a passing re-run after
// a failure was taken for the first pass, and the failure stayed latest).
func testAttestationReruns(t *testing.T, s Store) {
	ctx := context.Background()
	a := journal.NewAppender(s, journal.AppenderOptions{})
	defer a.Close(ctx)
	svc := evidence.NewService(a, nil, nil, evidence.WithHistory(s))
	yes, no := true, false
	report := func(passed *bool, payload string) (evidence.Attestation, bool) {
		t.Helper()
		att, created, err := svc.Attest(ctx, "ci", evidence.AttestationReport{Digest: digest(1), Name: "unit-tests", Type: "junit", Passed: passed, Payload: json.RawMessage(payload)})
		if err != nil {
			t.Fatal(err)
		}
		return att, created
	}
	pass1, created := report(&yes, `{"tests": 12}`)
	if !created {
		t.Fatal("first attestation not created")
	}
	if retry, created := report(&yes, `{"tests":12}`); created || retry.ID != pass1.ID {
		t.Errorf("the same pass again (a retry) = id %d created %v, want id %d not created", retry.ID, created, pass1.ID)
	}
	fail, created := report(&no, `{"tests":12,"failures":1}`)
	if !created || fail.ID <= pass1.ID {
		t.Fatalf("a failure after the pass = id %d created %v, want a new attestation", fail.ID, created)
	}
	pass2, created := report(&yes, `{"tests":12}`)
	if !created || pass2.ID <= fail.ID {
		t.Errorf("the pass again after the failure = id %d created %v, want a new attestation after %d", pass2.ID, created, fail.ID)
	}
	if retry, created := report(&yes, `{"tests":12}`); created || retry.ID != pass2.ID {
		t.Errorf("a retry of the re-run = id %d created %v, want id %d not created", retry.ID, created, pass2.ID)
	}
	ev, err := s.Evidence(ctx, digest(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Attestations) != 3 {
		t.Errorf("stored attestations = %+v, want pass, fail, pass", ev.Attestations)
	}
}

// testEvidenceAudit: evidence written through the journal audits clean;
// a row put into the tables around it, at an admission's index or past the
// journal's end, is found.
func testEvidenceAudit(t *testing.T, s Store) {
	ctx := context.Background()
	a := journal.NewAppender(s, journal.AppenderOptions{})
	defer a.Close(ctx)
	svc := evidence.NewService(a, nil, nil)
	yes := true
	if _, _, err := svc.ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: "registry.example.com/app", Digest: digest(1)}); err != nil {
		t.Fatal(err)
	}
	test, _, err := svc.Attest(ctx, "ci", evidence.AttestationReport{Digest: digest(1), Name: "unit-tests", Type: "junit", Passed: &yes,
		Payload: json.RawMessage(`{"tests": 12, "failures": 0}`)})
	if err != nil {
		t.Fatal(err)
	}
	approval, err := svc.Approve(ctx, "alice", evidence.ApprovalRequest{Digest: digest(1), Environment: "prod", Decision: "approved"})
	if err != nil {
		t.Fatal(err)
	}
	signedAt := time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)
	keyless, _, err := svc.Attest(ctx, "ci", evidence.AttestationReport{Digest: digest(1), Name: "sbom", Type: "in-toto", Passed: &yes,
		Verified: true, KeyID: "ci-workflow", SignedAt: &signedAt})
	if err != nil {
		t.Fatal(err)
	}
	change, _, err := svc.Attest(ctx, "ci", evidence.AttestationReport{Digest: digest(1), Name: "change-request", Type: evidence.TypeChangeRequest, Passed: &yes,
		Verified: true, KeyID: "change:servicenow", Payload: json.RawMessage(`{"number":"CHG1","state":"implement","approval":"approved"}`)})
	if err != nil {
		t.Fatal(err)
	}
	admission := appendBatch(t, s, entry(t, journal.KindAdmission, "admission:x", 0))[0].Index
	if n, err := evidence.Audit(ctx, s, s, nil); n != 5 || err != nil {
		t.Fatalf("Audit = %d, %v; want 5 records, no error", n, err)
	}
	tp, ok := s.(Tamperer)
	if !ok {
		t.Fatalf("%T does not implement storetest.Tamperer", s)
	}
	// Rows changed in place: a failed test made to pass, an approval
	// turned from rejected to approved would change admissions.
	tp.RewriteEvidence(t, fmt.Sprintf(`UPDATE attestations SET passed = NOT passed WHERE id = %d`, test.ID))
	tp.RewriteEvidence(t, fmt.Sprintf(`UPDATE approvals SET decision = 'rejected' WHERE id = %d`, approval.ID))
	// An old signature's time erased: the evidence would look fresh.
	tp.RewriteEvidence(t, fmt.Sprintf(`UPDATE attestations SET signed_at = NULL WHERE id = %d`, keyless.ID))
	// A change request's payload, which decisions read, changed.
	tp.RewriteEvidence(t, fmt.Sprintf(`UPDATE attestations SET payload = NULL WHERE id = %d`, change.ID))
	n, err := evidence.Audit(ctx, s, s, nil)
	var ae *journal.MismatchError
	if n != 5 || !errors.As(err, &ae) || ae.Count != 4 || !strings.Contains(err.Error(), "content differs") {
		t.Fatalf("Audit after four rows changed = %d, %v; want 5 records, 4 changed", n, err)
	}
	tp.InsertArtifact(t, admission, digest(7))
	tp.InsertArtifact(t, admission+1000, digest(8))
	n, err = evidence.Audit(ctx, s, s, nil)
	if n != 7 || !errors.As(err, &ae) || ae.Count != 6 {
		t.Fatalf("Audit after two rows inserted around the journal = %d, %v; want 7 records, 6 not the journal's", n, err)
	}
	t.Log(err)
}

func testIngestionRules(t *testing.T, s Store) {
	ctx := context.Background()
	a := journal.NewAppender(s, journal.AppenderOptions{})
	defer a.Close(ctx)
	svc := evidence.NewService(a, []string{"prod"}, nil)
	r := evidence.ArtifactReport{Name: "registry.example.com/app", Digest: digest(5), BuildURL: "https://ci.example.com/5"}
	first, created, err := svc.ReportArtifact(ctx, "ci", r)
	if err != nil || !created {
		t.Fatalf("first report: created %v, err %v", created, err)
	}
	again, created, err := svc.ReportArtifact(ctx, "other-ci", r)
	if err != nil || created || again.ID != first.ID || again.ReportedBy != "ci" {
		t.Errorf("same report again = %+v created %v err %v; want the first record, not created", again, created, err)
	}
	r.BuildURL, r.Author = "https://ci.example.com/5/attempts/2", "someone-else"
	if again, created, err := svc.ReportArtifact(ctx, "ci", r); err != nil || created || again.BuildURL != "https://ci.example.com/5" {
		t.Errorf("a re-run from the same source = %+v created %v err %v; want the first record", again, created, err)
	}
	r.Repository = "https://git.example.com/fork"
	if _, _, err := svc.ReportArtifact(ctx, "ci", r); !errors.Is(err, evidence.ErrConflict) {
		t.Errorf("another source for the same digest: err = %v, want ErrConflict", err)
	}
	yes := true
	at := evidence.AttestationReport{Digest: digest(5), Name: "scan", Passed: &yes}
	x1, c1, err1 := svc.Attest(ctx, "ci", at)
	x2, c2, err2 := svc.Attest(ctx, "ci", at)
	if err1 != nil || err2 != nil || !c1 || c2 || x1.ID != x2.ID {
		t.Errorf("identical attestation twice: (%d %v %v) (%d %v %v); want one record", x1.ID, c1, err1, x2.ID, c2, err2)
	}
	var verr *evidence.ValidationError
	if _, err := svc.Approve(ctx, "bob", evidence.ApprovalRequest{Digest: digest(5), Environment: "qa", Decision: "approved"}); !errors.As(err, &verr) {
		t.Errorf("approval for an unconfigured environment: err = %v, want a ValidationError", err)
	}
	if n := len(allEntries(t, s)); n != 2 {
		t.Errorf("journal holds %d entries, want 2 (one artifact, one attestation)", n)
	}
}

func testTokens(t *testing.T, s Store) {
	ctx := context.Background()
	now := t0
	svc := auth.NewService(s, func() time.Time { return now })
	tok, secret, err := svc.Create(ctx, auth.Request{Name: "ci-app", Scopes: []auth.Scope{auth.ScopeEvidenceWrite}, TTL: time.Hour,
		Identities: []string{" Alice@Example.com", "alice", "ALICE"}, Repositories: []string{"https://GitHub.com/Shop/web.git", "github.com/shop/*"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tok.Identities, []string{"alice@example.com", "alice"}) {
		t.Errorf("identities %q, want lower case, each once", tok.Identities)
	}
	if !slices.Equal(tok.Repositories, []string{"github.com/shop/web", "github.com/shop/*"}) {
		t.Errorf("repositories %q, want them as compared: lower case, no scheme or .git", tok.Repositories)
	}
	var inv *auth.InvalidError
	if _, _, err := svc.Create(ctx, auth.Request{Name: "rm", Scopes: []auth.Scope{auth.ScopeApprovalsWrite}, Identities: []string{"alice,bob"}}); !errors.As(err, &inv) {
		t.Errorf("an identity with a comma: err = %v, want InvalidError", err)
	}
	got, err := svc.Authenticate(ctx, secret)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if diff := cmp.Diff(tok, got); diff != "" {
		t.Errorf("Authenticate (-created +got):\n%s", diff)
	}
	if _, _, err := svc.Create(ctx, auth.Request{Name: "ci-app", Scopes: []auth.Scope{auth.ScopeAuditRead}}); !errors.Is(err, auth.ErrNameTaken) {
		t.Errorf("second token with the same name: err = %v, want ErrNameTaken", err)
	}
	if _, err := svc.Authenticate(ctx, secret+"x"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("wrong secret: err = %v, want ErrUnauthenticated", err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := svc.Authenticate(ctx, secret); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("expired token: err = %v, want ErrUnauthenticated", err)
	}
	if err := svc.Revoke(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := svc.Revoke(ctx, "nope"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("revoke unknown id: err = %v, want ErrNotFound", err)
	}
	if _, _, err := svc.Create(ctx, auth.Request{Name: "ci-app", Scopes: []auth.Scope{auth.ScopeAuditRead}}); err != nil {
		t.Errorf("name of a revoked token is not reusable: %v", err)
	}
	list, err := svc.List(ctx)
	if err != nil || len(list) != 2 || list[0].RevokedAt == nil || list[1].RevokedAt != nil {
		t.Errorf("List = %+v, %v; want the revoked and the new token", list, err)
	}
	if err := svc.Seed(ctx, "admin", "0123456789abcdef0123456789abcdef", []auth.Scope{auth.ScopeAdmin}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Seed(ctx, "admin", "0123456789abcdef0123456789abcdef", []auth.Scope{auth.ScopeAdmin}); err != nil {
		t.Errorf("seeding the same admin token twice: %v", err)
	}
}

func testSessions(t *testing.T, s Store) {
	ctx := context.Background()
	a := auth.Session{IDHash: auth.Hash("a"), TokenHash: auth.Hash("token"), Name: "auditor", CSRF: "csrf-a",
		CreatedAt: t0, LastSeen: t0, ExpiresAt: t0.Add(24 * time.Hour)}
	b := a
	b.IDHash, b.CSRF, b.LastSeen = auth.Hash("b"), "csrf-b", t0.Add(2*time.Hour)
	for _, ss := range []auth.Session{a, b} {
		if err := s.CreateSession(ctx, ss); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}
	if err := s.CreateSession(ctx, a); err == nil {
		t.Error("CreateSession with an id already stored: no error")
	}
	got, err := s.Session(ctx, a.IDHash)
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("Session (-created +got):\n%s", diff)
	}
	if _, err := s.Session(ctx, auth.Hash("c")); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("unknown session: err = %v, want ErrNotFound", err)
	}
	// Touching never moves last_seen back (replicas race).
	for _, at := range []time.Time{t0.Add(time.Hour), t0.Add(time.Minute)} {
		if err := s.TouchSession(ctx, a.IDHash, at); err != nil {
			t.Fatalf("TouchSession: %v", err)
		}
	}
	if got, err := s.Session(ctx, a.IDHash); err != nil || !got.LastSeen.Equal(t0.Add(time.Hour)) {
		t.Errorf("after touches at +1h and +1m: last seen %v, %v; want %v", got.LastSeen, err, t0.Add(time.Hour))
	}
	// Idle since before +90m: a (last seen +1h) goes, b (+2h) stays.
	if err := s.DeleteExpiredSessions(ctx, t0.Add(90*time.Minute), t0.Add(3*time.Hour)); err != nil {
		t.Fatalf("DeleteExpiredSessions: %v", err)
	}
	if _, err := s.Session(ctx, a.IDHash); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("idle session after the sweep: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Session(ctx, b.IDHash); err != nil {
		t.Errorf("live session after the sweep: %v", err)
	}
	// Past its expiry b goes too, however recently seen.
	if err := s.DeleteExpiredSessions(ctx, t0, b.ExpiresAt); err != nil {
		t.Fatalf("DeleteExpiredSessions: %v", err)
	}
	if _, err := s.Session(ctx, b.IDHash); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("expired session after the sweep: err = %v, want ErrNotFound", err)
	}
	if err := s.CreateSession(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, a.IDHash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, err := s.Session(ctx, a.IDHash); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("deleted session: err = %v, want ErrNotFound", err)
	}
}

// AppendSome appends n plain entries.
func AppendSome(t *testing.T, s journal.Store, n int) {
	t.Helper()
	var batch []journal.Entry
	for i := 0; i < n; i++ {
		batch = append(batch, entry(t, "test", "", i))
	}
	if _, err := s.AppendBatch(context.Background(), batch); err != nil {
		t.Fatalf("AppendBatch: %v", err)
	}
}

// testProofs appends batches of random sizes and checks, at many tree
// sizes, that the store's roots, inclusion and consistency proofs verify,
// and that a proof with one altered byte does not.
func testProofs(t *testing.T, s Store) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(1, 2))
	var sizes []uint64
	n := 0
	for len(sizes) < 12 {
		batch := make([]journal.Entry, 1+rnd.IntN(20))
		for i := range batch {
			batch[i] = entry(t, "test", "", n)
			n++
		}
		appendBatch(t, s, batch...)
		sizes = append(sizes, uint64(n))
	}
	entries := allEntries(t, s)
	for _, size := range sizes {
		want := rootOf(t, entries[:size])
		root, err := journal.RootAt(ctx, s, size)
		if err != nil || root != want {
			t.Fatalf("RootAt(%d) = %s, %v; want %s", size, root, err, want)
		}
		for _, index := range []uint64{0, size / 3, size / 2, size - 1} {
			p, err := journal.InclusionProof(ctx, s, index, size)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", index, size, err)
			}
			if err := journal.VerifyInclusion(index, size, entries[index].LeafHash, p, root); err != nil {
				t.Errorf("inclusion proof of %d in %d does not verify: %v", index, size, err)
			}
			if len(p) > 0 {
				p[rnd.IntN(len(p))][rnd.IntN(32)] ^= 1
				if journal.VerifyInclusion(index, size, entries[index].LeafHash, p, root) == nil {
					t.Errorf("altered inclusion proof of %d in %d verifies", index, size)
				}
			}
		}
		for _, older := range sizes {
			if older > size {
				break
			}
			p, err := journal.ConsistencyProof(ctx, s, older, size)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", older, size, err)
			}
			oldRoot := rootOf(t, entries[:older])
			if err := journal.VerifyConsistency(older, size, p, oldRoot, root); err != nil {
				t.Errorf("consistency proof %d -> %d does not verify: %v", older, size, err)
			}
			if len(p) > 0 {
				p[rnd.IntN(len(p))][0] ^= 0x80
				if journal.VerifyConsistency(older, size, p, oldRoot, root) == nil {
					t.Errorf("altered consistency proof %d -> %d verifies", older, size)
				}
			}
		}
	}
	if _, err := journal.InclusionProof(ctx, s, 0, uint64(n)+5); !errors.Is(err, journal.ErrNotFound) {
		t.Errorf("proof beyond the tree: err = %v, want ErrNotFound", err)
	}
}

func testCheckpoints(t *testing.T, s Store) {
	ctx := context.Background()
	if _, err := s.LatestCheckpoint(ctx); !errors.Is(err, journal.ErrNotFound) {
		t.Fatalf("LatestCheckpoint of an empty store: %v, want ErrNotFound", err)
	}
	skey, vkey, err := note.GenerateKey(crand.Reader, "vouch.test/journal")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	cp := journal.NewCheckpointer(s, signer, journal.CheckpointerOptions{Now: func() time.Time { return t0 }})
	if _, made, err := cp.Checkpoint(ctx); err != nil || made {
		t.Fatalf("checkpoint of an empty tree: made %v, %v", made, err)
	}
	var made []journal.Checkpoint
	for i := 0; i < 3; i++ {
		AppendSome(t, s, 2+i)
		c, ok, err := cp.Checkpoint(ctx)
		if err != nil || !ok {
			t.Fatalf("Checkpoint: made %v, %v", ok, err)
		}
		if _, again, _ := cp.Checkpoint(ctx); again {
			t.Error("a second checkpoint of an unchanged tree was made")
		}
		made = append(made, c)
	}
	if err := s.AddCheckpoint(ctx, made[0]); err != nil {
		t.Errorf("adding a checkpoint of a stored size: %v", err)
	}
	latest, err := s.LatestCheckpoint(ctx)
	if err != nil || !latest.Equal(made[2]) {
		t.Fatalf("LatestCheckpoint = %+v, %v; want the last made", latest, err)
	}
	opened, err := journal.OpenCheckpoint(latest.Note, verifier)
	if err != nil {
		t.Fatalf("stored checkpoint does not verify: %v", err)
	}
	st, _ := s.TreeState(ctx)
	if opened.Size != st.Size || opened.Root != st.Root || opened.Origin != "vouch.test/journal" {
		t.Errorf("checkpoint says %d %s %q, tree is %d %s", opened.Size, opened.Root, opened.Origin, st.Size, st.Root)
	}
	list, err := s.Checkpoints(ctx, made[1].Size, 10)
	if err != nil || len(list) != 2 || list[0].Size != made[1].Size || !list[0].Time.Equal(t0) {
		t.Errorf("Checkpoints(from %d) = %+v, %v", made[1].Size, list, err)
	}
}
