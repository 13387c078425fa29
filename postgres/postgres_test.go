package postgres_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/jackc/pgx/v5"

	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/postgres"
	"github.com/vouch-dev/vouch/test/pgtest"
	"github.com/vouch-dev/vouch/test/storetest"
)

var server *pgtest.Server

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() {
		var err error
		if server, err = pgtest.Start(pgtest.Options{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if server != nil {
		server.Stop()
	}
	os.Exit(code)
}

func open(t *testing.T, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.New(context.Background(), postgres.Config{URL: url})
	if err != nil {
		t.Fatalf("postgres.New: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func needServer(t *testing.T) {
	if server == nil {
		t.Skip("PostgreSQL tests do not run with -short")
	}
}

func TestConformance(t *testing.T) {
	needServer(t)
	storetest.Run(t, func(t *testing.T) storetest.Store { return open(t, server.Database(t)) })
}

// TestReplicasMigrateTogether starts several stores on one empty database
// at once: the advisory lock lets exactly one apply the migrations.
func TestReplicasMigrateTogether(t *testing.T) {
	needServer(t)
	url := server.Database(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := postgres.New(context.Background(), postgres.Config{URL: url})
			if err != nil {
				errs <- err
				return
			}
			db.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent start: %v", err)
	}
	db := open(t, url)
	storetest.AppendSome(t, db, 1)
}

func TestJournalIsAppendOnly(t *testing.T) {
	needServer(t)
	db := open(t, server.Database(t))
	storetest.AppendSome(t, db, 2)
	for _, stmt := range []string{
		`UPDATE journal_entries SET kind = 'x' WHERE idx = 0`,
		`DELETE FROM journal_entries WHERE idx = 1`,
		`TRUNCATE journal_entries`,
	} {
		err := db.ExecForTest(context.Background(), stmt)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only trigger to refuse it", stmt, err)
		}
	}
}

// TestEvidenceChangesReachOtherReplicas runs two stores on one database, as
// two replicas would: evidence recorded through one is seen by the other's
// cache within 100 ms, through LISTEN/NOTIFY.
func TestEvidenceChangesReachOtherReplicas(t *testing.T) {
	needServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := server.Database(t)
	a, b := open(t, url), open(t, url)
	cache := evidence.NewCache(b, 100, false)
	listening := make(chan bool, 10)
	go b.WatchEvidence(ctx, func(d string) { cache.Invalidate(d) }, func(live bool) { cache.SetLive(live); listening <- live }, slog.Default())
	if !<-listening {
		t.Fatal("watcher did not start listening")
	}
	d := "sha256:" + strings.Repeat("ab", 32)
	if m, _ := cache.Lookup(ctx, []string{d}); len(m) != 0 {
		t.Fatal("evidence before any was written")
	}
	appender := journal.NewAppender(a, journal.AppenderOptions{})
	defer appender.Close(ctx)
	if _, _, err := evidence.NewService(appender, nil, nil).ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: "app", Digest: d}); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	for {
		m, err := cache.Lookup(ctx, []string{d})
		if err != nil {
			t.Fatal(err)
		}
		if m[d].Artifact != nil {
			t.Logf("replica B saw the artifact %s after replica A recorded it", time.Since(written).Round(time.Millisecond))
			break
		}
		if time.Since(written) > 100*time.Millisecond {
			t.Fatal("replica B's cache did not see the artifact within 100ms")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestLeastPrivilegeRoles applies roles.sql and runs Vouch as vouch_app:
// it appends, serves proofs and checkpoints, and cannot change history even
// with the triggers out of the way; vouch_auditor verifies read-only.
func TestLeastPrivilegeRoles(t *testing.T) {
	needServer(t)
	ctx := context.Background()
	url := server.Database(t)
	owner := open(t, url) // applies the migrations
	sqlText, err := os.ReadFile("roles.sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.ExecForTest(ctx, string(sqlText)); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("roles.sql: %v", err)
	}
	asRole := func(role string) string {
		return strings.Replace(url, "postgres://postgres@", "postgres://"+role+"@", 1)
	}

	app := open(t, asRole("vouch_app"))
	storetest.AppendSome(t, app, 5)
	a := journal.NewAppender(app, journal.AppenderOptions{})
	defer a.Close(ctx)
	if _, _, err := evidence.NewService(a, nil, nil).ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: "app", Digest: "sha256:" + strings.Repeat("cd", 32)}); err != nil {
		t.Fatalf("vouch_app reporting evidence: %v", err)
	}
	skey, _, _ := journal.LoadOrCreateKey(t.TempDir()+"/k", "vouch.test/roles")
	signer, _ := note.NewSigner(skey)
	if _, _, err := journal.NewCheckpointer(app, signer, journal.CheckpointerOptions{}).Checkpoint(ctx); err != nil {
		t.Fatalf("vouch_app signing a checkpoint: %v", err)
	}
	if _, err := journal.InclusionProof(ctx, app, 2, 6); err != nil {
		t.Fatalf("vouch_app proof: %v", err)
	}
	now := time.Now()
	ss := auth.Session{IDHash: auth.Hash("id"), TokenHash: auth.Hash("token"), Name: "auditor", CSRF: "c", CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}
	for what, err := range map[string]error{
		"creating":    app.CreateSession(ctx, ss),
		"touching":    app.TouchSession(ctx, ss.IDHash, now.Add(time.Minute)),
		"sweeping":    app.DeleteExpiredSessions(ctx, now.Add(-time.Hour), now),
		"signing out": app.DeleteSession(ctx, ss.IDHash),
	} {
		if err != nil {
			t.Errorf("vouch_app %s a console session: %v", what, err)
		}
	}
	for _, stmt := range []string{
		`UPDATE journal_entries SET kind = 'x' WHERE idx = 0`,
		`DELETE FROM journal_entries WHERE idx = 0`,
		`DELETE FROM journal_checkpoints`,
		`ALTER TABLE journal_entries DISABLE TRIGGER USER`,
	} {
		if err := app.ExecForTest(ctx, stmt); err == nil || !strings.Contains(err.Error(), "permission denied") && !strings.Contains(err.Error(), "must be owner") {
			t.Errorf("vouch_app: %s: err = %v, want permission denied", stmt, err)
		}
	}

	auditor, err := postgres.New(ctx, postgres.Config{URL: asRole("vouch_auditor"), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer auditor.Close()
	vkey, _ := journal.VerifierKey(skey)
	v, _ := journal.NewVerifier(vkey)
	if rep, err := journal.VerifyStore(ctx, auditor, v, journal.VerifyOptions{}, nil); err != nil || rep.Size != 6 {
		t.Errorf("vouch_auditor verifying: %+v, %v", rep, err)
	}
	// …and the audits of what verify checks against the journal.
	if _, err := evidence.Audit(ctx, auditor, auditor, nil); err != nil {
		t.Errorf("vouch_auditor auditing the evidence: %v", err)
	}
	if _, err := drift.AuditProjections(ctx, auditor, auditor); err != nil {
		t.Errorf("vouch_auditor auditing the decisions and snapshots: %v", err)
	}
	if err := auditor.ExecForTest(ctx, `INSERT INTO journal_checkpoints VALUES (99, '\x00', '\x00', now())`); err == nil {
		t.Error("vouch_auditor could insert")
	}
}

// TestRanBackfill runs the backfill of migration 0006 over recorded
// snapshots: it must index what the store indexes with each snapshot.
func TestRanBackfill(t *testing.T) {
	needServer(t)
	db := open(t, server.Database(t))
	storetest.RanBackfill(t, db, db.ExecForTest, "migrations/0006_search.sql")
}

// TestDecisionsBackfill runs the backfill of migration 0008 over journaled
// admissions: it must index what the store indexes with each admission.
func TestDecisionsBackfill(t *testing.T) {
	needServer(t)
	db := open(t, server.Database(t))
	storetest.DecisionsBackfill(t, db, db.ExecForTest, "migrations/0008_decisions.sql")
}

// TestSnapshotDigestsBackfill runs the backfill of migration 0009 over
// recorded snapshots.
func TestSnapshotDigestsBackfill(t *testing.T) {
	needServer(t)
	db := open(t, server.Database(t))
	storetest.SnapshotDigestsBackfill(t, db, db.ExecForTest, "migrations/0009_snapshot_digests.sql")
}

// TestRefusedEntryFailsAlone: an entry PostgreSQL cannot store (a NUL in a
// text column) fails with journal.ErrRefused, and the entries batched with
// it are committed without it.
func TestRefusedEntryFailsAlone(t *testing.T) {
	needServer(t)
	ctx := context.Background()
	db := open(t, server.Database(t))
	a := journal.NewAppender(db, journal.AppenderOptions{MaxDelay: 100 * time.Millisecond})
	defer a.Close(ctx)
	// b is refused by the sequencer itself; d only by the decisions log's
	// digest index, after the sequencer stored it: that too must undo all.
	entries := []journal.Entry{
		{Kind: journal.KindAdmission, Key: "admission:a", Body: []byte(`{"uid":"x"}`)},
		{Kind: journal.KindAdmission, Key: "admission:b\x00", Body: []byte(`{"uid":"x"}`)},
		{Kind: journal.KindAdmission, Key: "admission:c", Body: []byte(`{"uid":"x"}`)},
		{Kind: journal.KindAdmission, Key: "admission:d", Body: []byte(`{"uid":"x","images":[{"image":"r/a","digest":"sha256:\u0000"}]}`)},
	}
	var futures []journal.Future
	for _, e := range entries {
		futures = append(futures, a.Add(ctx, e))
	}
	for i, f := range futures {
		_, err := f()
		if refused := errors.Is(err, journal.ErrRefused); refused != (i == 1 || i == 3) {
			t.Errorf("entry %d: %v", i, err)
		}
	}
	es, err := db.Entries(ctx, journal.Query{Limit: 10})
	if err != nil || len(es) != 2 || es[0].Key != "admission:a" || es[1].Key != "admission:c" {
		t.Fatalf("journal after refused entries: %v %+v", err, es)
	}
	if st, err := db.TreeState(ctx); err != nil || st.Size != 2 {
		t.Fatalf("tree after refused entries: %+v, %v", st, err)
	}
}

// TestAppendsDoNotScanTheJournal appends on one connection whose plans
// were made while the journal was empty, then grows the journal: every
// batch must find existing keys and join its projections through indexes,
// never by reading the whole journal (SET LOCAL enable_seqscan).
func TestAppendsDoNotScanTheJournal(t *testing.T) {
	needServer(t)
	ctx := context.Background()
	url := server.Database(t)
	open(t, url).Close() // migrated; its connection's statistics are its own
	stats, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer stats.Close(ctx)
	waitAlone(t, stats)
	if _, err := stats.Exec(ctx, `SELECT pg_stat_reset_single_table_counters('journal_entries'::regclass)`); err != nil {
		t.Fatal(err)
	}

	db, err := postgres.New(ctx, postgres.Config{URL: url, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	batch := func(n, from int) {
		t.Helper()
		entries := make([]journal.Entry, n)
		for i := range entries {
			entries[i] = journal.Entry{Kind: journal.KindAdmission, Time: time.Now(), Environment: "prod",
				Key: fmt.Sprintf("admission:%d", from+i), Body: []byte(fmt.Sprintf(`{"uid":"%d","allowed":true,"images":[{"image":"r/a@sha256:%064d","digest":"sha256:%064d"}]}`, from+i, i, i))}
			if err := entries[i].Seal(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.AppendBatch(ctx, entries); err != nil {
			t.Fatal(err)
		}
	}
	batch(1, 0) // plans made while the journal holds one entry
	const batches, size = 40, 100
	for i := 0; i < batches; i++ {
		batch(size, 1+i*size)
	}
	batch(512, 1) // all of them stored before: found by key, not appended again
	db.Close()    // the backend flushes its statistics as it exits
	waitAlone(t, stats)

	var seq, idx int64
	if err := stats.QueryRow(ctx, `SELECT seq_scan, COALESCE(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'journal_entries'`).Scan(&seq, &idx); err != nil {
		t.Fatal(err)
	}
	if idx < batches || seq != 0 {
		t.Errorf("journal_entries over %d batches: %d sequential scans, %d index scans; want 0 sequential", batches+2, seq, idx)
	}
}

// waitAlone waits until c is the only connection to its database, so
// that the others' statistics have been flushed.
func waitAlone(t *testing.T, c *pgx.Conn) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var n int
		if err := c.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d other connections still open", n)
		}
	}
}

// TestSpoolDrainSetsAsideRefused: a spool holding good, refused, good
// entries (left by a version that spooled what PostgreSQL refuses) drains
// into PostgreSQL: both good entries are journaled, the refused one is set
// aside in refused-<date>.jsonl, and the spool is not stuck.
func TestSpoolDrainSetsAsideRefused(t *testing.T) {
	needServer(t)
	ctx := context.Background()
	db := open(t, server.Database(t))
	a := journal.NewAppender(db, journal.AppenderOptions{})
	defer a.Close(ctx)
	dir := t.TempDir()
	path := dir + "/journal.spool"
	var spooled []byte
	for _, key := range []string{"admission:b1", "admission:nul\x00", "admission:b2"} {
		e := journal.Entry{Kind: journal.KindAdmission, Time: time.Now(), Key: key, Body: []byte(`{"uid":"x"}`)}
		if err := e.Seal(); err != nil {
			t.Fatal(err)
		}
		spooled = append(append(spooled, e.Leaf...), '\n')
	}
	if err := os.WriteFile(path, spooled, 0o600); err != nil {
		t.Fatal(err)
	}
	var setAside int
	s, err := journal.OpenSpool(path, a, db, journal.SpoolOptions{Observe: func(_, n int) { setAside += n }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
	es, err := db.Entries(ctx, journal.Query{Limit: 10})
	if err != nil || len(es) != 2 || es[0].Key != "admission:b1" || es[1].Key != "admission:b2" {
		t.Fatalf("journal after the drain: %v %+v", err, es)
	}
	if s.Pending() != 0 || setAside != 1 {
		t.Errorf("%d pending, %d set aside; want 0 and 1", s.Pending(), setAside)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "refused-*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("refused files: %v", files)
	}
	data, _ := os.ReadFile(files[0])
	if n := strings.Count(string(data), "\n"); n != 1 || !strings.Contains(string(data), `admission:nul\u0000`) || !strings.Contains(string(data), "22021") {
		t.Errorf("%s (%d lines):\n%s", files[0], n, data)
	}
	if res, err := s.Append(ctx, journal.Entry{Kind: journal.KindAdmission, Key: "admission:b3", Body: []byte(`{"uid":"x"}`)}); err != nil || res.Spooled {
		t.Errorf("after the drain: %+v %v", res, err)
	}
}

// TestScreenAgreesWithAppend: Screen refuses, without a round trip, what
// AppendBatch refuses, in the entry's columns and in its projections, and
// passes what it stores.
func TestScreenAgreesWithAppend(t *testing.T) {
	needServer(t)
	ctx := context.Background()
	db := open(t, server.Database(t))
	for i, e := range []journal.Entry{
		{Kind: journal.KindAdmission, Key: "admission:a", Body: []byte(`{"uid":"x","images":[{"image":"r/a","digest":"sha256:1"}]}`)},
		{Kind: journal.KindAdmission, Key: "admission:b\x00", Body: []byte(`{"uid":"x"}`)},
		{Kind: journal.KindAdmission, Key: "admission:c", Environment: "p\x00", Body: []byte(`{"uid":"x"}`)},
		{Kind: journal.KindAdmission, Key: "admission:d", Body: []byte(`{"uid":"x","images":[{"image":"r/a","digest":"sha256:\u0000"}]}`)},
		{Kind: journal.KindAdmission, Key: "admission:e", Body: []byte(`{"uid":"x\u0000","name":"\u0000"}`)}, // the decisions log replaces NUL
		{Kind: journal.KindAdmission, Key: "admission:f\xff", Body: []byte(`{"uid":"x"}`)},
	} {
		e.Time = time.Now()
		if err := e.Seal(); err != nil {
			t.Fatal(err)
		}
		screened := db.Screen(e)
		_, appended := db.AppendBatch(ctx, []journal.Entry{e})
		if (screened == nil) != (appended == nil) || (screened != nil && !errors.Is(screened, journal.ErrRefused)) {
			t.Errorf("entry %d (%q): Screen = %v, AppendBatch = %v", i, e.Key, screened, appended)
		}
	}
}

// TestSchemaVersions: a database a newer Vouch migrated (a rollback) is
// reported as ahead of this binary, and opens.
func TestSchemaVersions(t *testing.T) {
	needServer(t)
	url := server.Database(t)
	db := open(t, url)
	v := db.SchemaVersions()
	if v.Ahead() || v.Known < 12 || v.Found != v.Known {
		t.Fatalf("a fresh database: %+v", v)
	}
	if err := db.ExecForTest(context.Background(), `INSERT INTO schema_migrations (version) VALUES (999)`); err != nil {
		t.Fatal(err)
	}
	if got := open(t, url).SchemaVersions(); !got.Ahead() || got.Found != 999 || got.Known != v.Known {
		t.Errorf("a database migrated by a newer Vouch: %+v", got)
	}
}
