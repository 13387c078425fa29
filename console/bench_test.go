package console_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/console"
	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/policy"
	"github.com/vouch-dev/vouch/postgres"
	vrego "github.com/vouch-dev/vouch/rego"
	"github.com/vouch-dev/vouch/sqlite"
	"github.com/vouch-dev/vouch/test/pgtest"
	"github.com/vouch-dev/vouch/webhook"
)

// Benchmark journal: what a busy cluster records in three months.
const (
	benchEntries  = 1_000_000
	benchServices = 200
	benchSpan     = 90 * 24 * time.Hour
	// BenchDirEnv keeps the seeded store between runs: seeding takes
	// minutes, the pages milliseconds.
	BenchDirEnv = "VOUCH_CONSOLE_BENCH_DIR"
)

var benchEnvs = []string{"dev", "staging", "prod"}

func benchDigest(build int) string {
	sum := sha256.Sum256([]byte("build " + strconv.Itoa(build)))
	return fmt.Sprintf("sha256:%x", sum)
}

func benchImage(service, build int) string {
	return fmt.Sprintf("registry.example.com/team%d/svc-%d@%s", service%20, service, benchDigest(build))
}

// seedJournal writes a journal of benchEntries entries through the
// store's batch path, as Vouch would have written them one by one: every
// build reported with two attestations and (mostly) a prod approval,
// deployed to dev, staging and prod — each deploy an admitted Deployment
// (or, without approval, a denied one), a snapshot delta and the Pods and
// ReplicaSets the rollout admits — spread over 90 days.
func seedJournal(tb testing.TB, db benchStore, cp *journal.Checkpointer) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(7, 7))
	start := time.Now().UTC().Add(-benchSpan).Truncate(time.Second)
	step := benchSpan / benchEntries
	var batch []journal.Entry
	next := uint64(0)
	add := func(kind journal.Kind, env, key string, body []byte) {
		e := journal.Entry{Kind: kind, Time: start.Add(time.Duration(next+uint64(len(batch))) * step), Environment: env, Key: key, Body: body}
		if err := e.Seal(); err != nil {
			tb.Fatal(err)
		}
		batch = append(batch, e)
	}
	flush := func() {
		if len(batch) == 0 {
			return
		}
		res, err := db.AppendBatch(ctx, batch)
		if err != nil {
			tb.Fatal(err)
		}
		if got := res[len(res)-1].Index; got != next+uint64(len(batch))-1 {
			tb.Fatalf("batch ended at index %d, want %d", got, next+uint64(len(batch))-1)
		}
		next += uint64(len(batch))
		batch = batch[:0]
		if next/100_000 != (next-uint64(len(res)))/100_000 { // a checkpoint every 100,000 entries or so
			if _, _, err := cp.Checkpoint(ctx); err != nil {
				tb.Fatal(err)
			}
		}
	}
	type envState struct {
		cur      drift.Snapshot
		lastRec  uint64
		sinceAll int
	}
	states := map[string]*envState{}
	for _, env := range benchEnvs {
		s := &envState{cur: drift.Snapshot{Environment: env}, sinceAll: drift.DefaultFullEvery}
		for svc := 0; svc < benchServices; svc++ {
			s.cur.Workloads = append(s.cur.Workloads, drift.Workload{Namespace: fmt.Sprintf("team%d", svc%20), Kind: "Deployment", Name: fmt.Sprintf("svc-%d", svc), Pods: 3,
				Containers: []drift.Container{{Name: "app", Image: benchImage(svc, -1-svc), Digest: benchDigest(-1 - svc)}}})
		}
		s.cur.Normalize()
		states[env] = s
	}
	snapshot := func(env string, svc, build int) {
		s := states[env]
		prev := s.cur
		s.cur = drift.Snapshot{Environment: env, Workloads: append([]drift.Workload(nil), prev.Workloads...)}
		for i, w := range s.cur.Workloads {
			if w.Name == fmt.Sprintf("svc-%d", svc) {
				s.cur.Workloads[i].Containers = []drift.Container{{Name: "app", Image: benchImage(svc, build), Digest: benchDigest(build)}}
			}
		}
		rec := drift.Record{Environment: env, Hash: s.cur.ContentHash()}
		if s.sinceAll+1 >= drift.DefaultFullEvery {
			rec.Kind, rec.Workloads, s.sinceAll = drift.RecordFull, s.cur.Workloads, 0
		} else {
			d := drift.Compare(prev, s.cur)
			base := s.lastRec
			rec.Kind, rec.Diff, rec.Base = drift.RecordDelta, &d, &base
			s.sinceAll++
		}
		body, _ := json.Marshal(rec)
		s.lastRec = next + uint64(len(batch))
		add(drift.KindSnapshot, env, "snapshot:"+strconv.FormatUint(s.lastRec, 10), body)
	}
	uid := 0
	admit := func(env string, svc, build int, kind, name string, allowed bool, msgs []string) {
		uid++
		img := benchImage(svc, build)
		body, _ := json.Marshal(map[string]any{
			"uid": fmt.Sprintf("%08x-bench", uid), "operation": "CREATE", "kind": kind, "namespace": fmt.Sprintf("team%d", svc%20), "name": name,
			"user": fmt.Sprintf("system:serviceaccount:argocd:team%d", svc%20), "groups": []string{"system:serviceaccounts"},
			"environment": env, "allowed": allowed, "messages": msgs, "policy_version": "sha256:10a886fa9aca16999731db8c678faeb1325f24d8dce45a5920c6f139e30e05c6",
			"images": []map[string]string{{"container": "app", "container_type": "container", "image": img, "digest": benchDigest(build)}},
		})
		add(journal.KindAdmission, env, fmt.Sprintf("admission:%08x-bench", uid), body)
	}
	for build := 0; next+uint64(len(batch)) < benchEntries; build++ {
		svc := rnd.IntN(benchServices)
		dg := benchDigest(build)
		at := start.Add(time.Duration(next+uint64(len(batch))) * step)
		art, _ := evidence.EncodeBody(&evidence.Artifact{Name: fmt.Sprintf("registry.example.com/team%d/svc-%d", svc%20, svc), Digest: dg,
			GitCommit: fmt.Sprintf("%040x", build), Repository: fmt.Sprintf("https://git.example.com/team%d/svc-%d", svc%20, svc),
			BuildURL: fmt.Sprintf("https://ci.example.com/builds/%d", build), ReportedBy: "ci", ReportedAt: at})
		add(evidence.KindArtifact, "", "artifact:"+dg, art)
		for _, name := range []string{"unit-tests", "sast"} {
			att, _ := evidence.EncodeBody(&evidence.Attestation{Digest: dg, Name: name, Type: "junit", Passed: rnd.IntN(20) != 0, ReportedBy: "ci", ReportedAt: at})
			add(evidence.KindAttestation, "", fmt.Sprintf("attestation:%s:%s", name, dg), att)
		}
		approved := rnd.IntN(5) != 0
		if approved {
			ap, _ := evidence.EncodeBody(&evidence.Approval{Digest: dg, Environment: "prod", Decision: evidence.Approved, Reason: fmt.Sprintf("CAB-%d", build), Approver: "release-manager", ApprovedAt: at})
			add(evidence.KindApproval, "prod", fmt.Sprintf("approval:%d", build), ap)
		}
		for _, env := range benchEnvs {
			if env == "prod" && !approved {
				admit(env, svc, build, "Deployment", fmt.Sprintf("svc-%d", svc), false, []string{fmt.Sprintf(`container "app": image %s has no release approval for prod (required in prod)`, benchImage(svc, build))})
				continue
			}
			admit(env, svc, build, "Deployment", fmt.Sprintf("svc-%d", svc), true, nil)
			snapshot(env, svc, build)
			// The rollout: a ReplicaSet and its Pods, rescheduled Pods later.
			perDeploy := 28 + rnd.IntN(8)
			admit(env, svc, build, "ReplicaSet", fmt.Sprintf("svc-%d-%x", svc, build), true, nil)
			for p := 0; p < perDeploy; p++ {
				admit(env, svc, build, "Pod", fmt.Sprintf("svc-%d-%x-%d", svc, build, p), true, nil)
			}
		}
		if len(batch) >= 5000 {
			flush()
		}
	}
	flush()
	if _, _, err := cp.Checkpoint(ctx); err != nil {
		tb.Fatal(err)
	}
}

// benchStore is what the console and its neighbours need of a store.
type benchStore interface {
	journal.Store
	evidence.Store
	evidence.BlobStore
	auth.Store
	auth.SessionStore
	drift.Store
	drift.AdmittedLookup
	drift.DecisionStore
	Ping(ctx context.Context) error
	Close() error
}

// BenchStoreEnv chooses the benchmark's store: "postgres" for a real
// PostgreSQL started for the run (seeded every time), SQLite otherwise.
const BenchStoreEnv = "VOUCH_CONSOLE_BENCH_STORE"

// benchConsole opens (seeding it the first time) the benchmark store and
// serves the console over it with the policy in use, as vouch serve does.
func benchConsole(b *testing.B) (h http.Handler, mid time.Time, cookie *http.Cookie) {
	ctx := context.Background()
	dir := os.Getenv(BenchDirEnv)
	if dir == "" {
		dir = b.TempDir()
	}
	var db benchStore
	if os.Getenv(BenchStoreEnv) == "postgres" {
		srv, err := pgtest.Start(pgtest.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(srv.Stop)
		pg, err := postgres.New(ctx, postgres.Config{URL: srv.Database(b)})
		if err != nil {
			b.Fatal(err)
		}
		db, dir = pg, b.TempDir()
	} else {
		lite, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(dir, "vouch.db")})
		if err != nil {
			b.Fatal(err)
		}
		db = lite
	}
	b.Cleanup(func() { db.Close() })
	skey, _, err := journal.LoadOrCreateKey(filepath.Join(dir, "journal.key"), "vouch.bench/journal")
	if err != nil {
		b.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	pub, _ := journal.VerifierKey(skey)
	cp := journal.NewCheckpointer(db, signer, journal.CheckpointerOptions{})
	st, err := db.TreeState(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if st.Size < benchEntries {
		if st.Size > 0 {
			b.Fatalf("%s holds a journal of %d entries: remove it to seed again", dir, st.Size)
		}
		t := time.Now()
		seedJournal(b, db, cp)
		b.Logf("seeded %d journal entries in %s", benchEntries, time.Since(t).Round(time.Second))
	}
	first, _ := db.Leaves(ctx, 0, 1)
	e, _ := journal.ParseLeaf(0, first[0].Data)
	mid = e.Time.Add(benchSpan / 2)

	envs, err := policy.NewEnvironments("dev", []policy.Environment{
		{Name: "staging", Namespaces: []string{"staging"}, Require: policy.Requirements{Digest: true, Provenance: true}},
		{Name: "prod", Namespaces: []string{"prod"}, Require: policy.Requirements{Digest: true, Provenance: true, Attestations: []string{"unit-tests"}, Approval: true}},
	})
	if err != nil {
		b.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.Config{Builtin: vrego.FS})
	if err != nil {
		b.Fatal(err)
	}
	appender := journal.NewAppender(db, journal.AppenderOptions{})
	b.Cleanup(func() { appender.Close(ctx) })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The evidence cache, as vouch serve has it on SQLite.
	cache := evidence.NewCache(db, 100_000, true)
	hook, err := webhook.New(webhook.Config{Policy: engine, Evidence: cache, FreshEvidence: db, Journal: appender, Environments: envs, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	tokens := auth.NewService(db, nil)
	_, secret, err := tokens.Create(ctx, auth.Request{Name: fmt.Sprintf("auditor-%d", time.Now().UnixNano()), Scopes: []auth.Scope{auth.ScopeAuditRead}})
	if err != nil {
		b.Fatal(err)
	}
	ds := &drift.Service{Store: db, Recorder: &drift.Recorder{Journal: appender, Store: db},
		Checker: drift.Checker{Evidence: cache, Admitted: db, Assessor: assessor{hook}}, Environments: benchEnvs, Journal: db}
	apiServer := api.New(api.Config{Evidence: evidence.NewService(appender, benchEnvs, nil), EvidenceStore: db, Journal: db, Tokens: tokens,
		Blobs: db, Drift: ds, Ready: db.Ping, Logger: quiet})
	c, err := console.New(console.Config{Tokens: tokens, Sessions: db, Journal: db, Evidence: db, Blobs: db, Decisions: db, Drift: ds,
		Environments: benchEnvs, PublicKey: pub, API: apiServer, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	// Sign in as a browser would.
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest("GET", "/sign-in", nil))
	csrf := cookieNamed(rec.Result(), console.CSRFCookie)
	form := url.Values{"csrf": {csrf.Value}, "token": {secret}}
	req := httptest.NewRequest("POST", "/sign-in", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(csrf)
	rec = httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	if cookie = cookieNamed(rec.Result(), console.SessionCookie); cookie == nil {
		b.Fatalf("sign-in = %d", rec.Code)
	}
	return c, mid, cookie
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// assessor lets compliance ask the webhook's policy, as vouch serve wires it.
type assessor struct{ h *webhook.Handler }

func (a assessor) Assess(ctx context.Context, env, kind string, object []byte) (drift.Assessment, error) {
	rec, err := a.h.Assess(ctx, env, kind, object)
	return drift.Assessment{Allowed: rec.Allowed, Messages: rec.Messages}, err
}

// BenchmarkPages renders every console page over a journal of 1,000,000
// entries on SQLite (server time: the handler, without the network). Run
// with VOUCH_CONSOLE_BENCH_DIR set to keep the seeded store:
//
//	VOUCH_CONSOLE_BENCH_DIR=/tmp/vouch-console-bench go test -run '^$' -bench Pages -benchtime 20x ./console/
func BenchmarkPages(b *testing.B) {
	if testing.Short() {
		b.Skip("seeds a journal of 1,000,000 entries")
	}
	h, mid, cookie := benchConsole(b)
	day := mid.Add(-24 * time.Hour).Format("2006-01-02T15:04:05")
	midV := mid.Format("2006-01-02T15:04:05")
	for _, p := range []struct{ name, path string }{
		{"overview", "/"},
		{"environment-now", "/environments/prod"},
		{"environment-as-of", "/environments/prod?at=" + midV},
		{"diff-30d", "/environments/prod/diff?from=30d"},
		{"decisions", "/decisions"},
		{"decisions-denied-prod", "/decisions?environment=prod&outcome=denied"},
		{"decisions-namespace-day", "/decisions?namespace=team7&from=" + day + "&to=" + midV},
		{"decisions-text", "/decisions?q=svc-17-"},
		{"decisions-text-rare", "/decisions?q=no-such-thing"},
		{"decisions-deep-page", "/decisions?before=500000"},
		{"artifacts", "/artifacts"},
		{"artifact-search", "/artifacts?q=" + url.QueryEscape("registry.example.com/team17/svc-17")},
		{"artifact-first-build", "/artifacts/" + benchDigest(0)},
		{"artifact", "/artifacts/" + benchDigest(5000)},
		{"journal", "/journal"},
		{"journal-verify-now", "/journal?verify=1"},
		{"entry", "/journal/entries/500000"},
		{"downloads", "/downloads"},
	} {
		b.Run(p.name, func(b *testing.B) {
			cpu0 := cpuTime()
			for b.Loop() {
				req := httptest.NewRequest("GET", p.path, nil)
				req.AddCookie(cookie)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("GET %s = %d:\n%s", p.path, rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
			// CPU time (all goroutines): what the page costs whatever else
			// the shared machine runs.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/page")
		})
	}
}
