package rediscache_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/rediscache"
	"github.com/vouch-dev/vouch/sqlite"
	"github.com/vouch-dev/vouch/test/redistest"
	"github.com/vouch-dev/vouch/test/testlog"
)

// counting counts the lookups that reach the store.
type counting struct {
	evidence.Lookuper
	n atomic.Int64
}

func (c *counting) Lookup(ctx context.Context, digests []string) (map[string]evidence.Evidence, error) {
	c.n.Add(int64(len(digests)))
	return c.Lookuper.Lookup(ctx, digests)
}

func TestSharedCache(t *testing.T) {
	srv := redistest.ForTest(t)
	ctx := context.Background()
	st, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "vouch.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	app := journal.NewAppender(st, journal.AppenderOptions{})
	defer app.Close(ctx)
	svc := evidence.NewService(app, nil, nil)
	const d = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	const none = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	if _, _, err := svc.ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: "registry.example.com/app", Digest: d}); err != nil {
		t.Fatal(err)
	}

	opts, _ := rediscache.ClientOptions(srv.URL())
	store := &counting{Lookuper: st}
	a := rediscache.New(redis.NewClient(opts), store, rediscache.Options{})
	b := rediscache.New(redis.NewClient(opts), store, rediscache.Options{})
	maintain(t, a, b)

	// Replica A fills Redis, replica B reads it: the store is asked once,
	// for the digest with evidence and for the one without.
	for _, c := range []*rediscache.Cache{a, b, a} {
		got, err := c.Lookup(ctx, []string{d, none})
		if err != nil {
			t.Fatal(err)
		}
		if got[d].Artifact == nil || got[d].Artifact.Name != "registry.example.com/app" {
			t.Fatalf("lookup = %+v", got)
		}
		if _, ok := got[none]; ok {
			t.Fatalf("evidence for a digest without any: %+v", got[none])
		}
	}
	if n := store.n.Load(); n != 2 {
		t.Errorf("the store answered %d digests, want 2 (each once)", n)
	}

	// B hears A's invalidation, and the next lookup reads the store again.
	var mu sync.Mutex
	var heard []string
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	go b.Subscribe(subCtx, func(ds ...string) { mu.Lock(); heard = append(heard, ds...); mu.Unlock() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.Invalidate(ctx, d) // until B is subscribed
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		n := len(heard)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B never heard the invalidation")
		}
	}
	before := store.n.Load()
	if _, err := b.Lookup(ctx, []string{d}); err != nil {
		t.Fatal(err)
	}
	if store.n.Load() != before+1 {
		t.Error("an invalidated digest was served from Redis")
	}

	// Redis gone: lookups fall back to the store, without an error.
	srv.Kill()
	got, err := a.Lookup(ctx, []string{d, none})
	if err != nil || got[d].Artifact == nil {
		t.Fatalf("lookup with Redis down: %v %+v", err, got)
	}
	a.Invalidate(ctx, d) // logs, does not fail
}

// maintain runs the caches' Maintain until the test ends, and waits until
// they have emptied Redis of what a previous process may have left.
func maintain(t *testing.T, caches ...*rediscache.Cache) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	for _, c := range caches {
		go c.Maintain(ctx)
	}
	waitFor(t, "Redis in use", func() bool {
		for _, c := range caches {
			if !c.Active() {
				return false
			}
		}
		return true
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not after 15 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// calls counts the commands a client sends, pipelined ones included.
type calls struct{ n atomic.Int64 }

func (c *calls) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *calls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *calls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(int64(len(cmds))); return next(ctx, cmds) }
}

const digest = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

// newStore returns a SQLite store holding an artifact that passed its unit
// tests.
func newStore(t *testing.T) *sqlite.DB {
	t.Helper()
	st, err := sqlite.New(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "vouch.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := newService(t, st)
	if _, _, err := svc.ReportArtifact(context.Background(), "ci", evidence.ArtifactReport{Name: "registry.example.com/app", Digest: digest}); err != nil {
		t.Fatal(err)
	}
	unitTests(t, svc, true)
	return st
}

// newService records evidence through a journal appending to store.
func newService(t *testing.T, store journal.Store) *evidence.Service {
	app := journal.NewAppender(store, journal.AppenderOptions{})
	t.Cleanup(func() { app.Close(context.Background()) })
	return evidence.NewService(app, nil, nil)
}

func unitTests(t *testing.T, svc *evidence.Service, passed bool) {
	t.Helper()
	if _, _, err := svc.Attest(context.Background(), "ci", evidence.AttestationReport{Digest: digest, Name: "unit-tests", Passed: &passed}); err != nil {
		t.Fatal(err)
	}
}

// failing reports whether ev holds the failed unit tests.
func failing(ev evidence.Evidence) bool {
	for _, a := range ev.Attestations {
		if a.Name == "unit-tests" && !a.Passed {
			return true
		}
	}
	return false
}

// TestHungRedis: a Redis that stops answering (SIGSTOP: connections are
// accepted, nothing is read) costs one short deadline; then the breaker
// leaves it alone and the store answers at once.
func TestHungRedis(t *testing.T) {
	srv := redistest.ForTest(t)
	ctx := context.Background()
	st := newStore(t)
	opts, err := rediscache.ClientOptions(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	sent := &calls{}
	rdb.AddHook(sent)
	c := rediscache.New(rdb, st, rediscache.Options{})
	maintain(t, c)
	if got, err := c.Lookup(ctx, []string{digest}); err != nil || got[digest].Artifact == nil {
		t.Fatalf("lookup: %v %+v", err, got)
	}

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer srv.Resume() // Stop's SIGKILL ends a stopped process too; this is for order
	before := sent.n.Load()
	start := time.Now()
	for i := 0; i < 50; i++ {
		got, err := c.Lookup(ctx, []string{digest})
		if err != nil || got[digest].Artifact == nil {
			t.Fatalf("lookup %d with Redis hung: %v %+v", i, err, got)
		}
	}
	c.Invalidate(ctx, digest)
	took := time.Since(start)
	// One read timed out; the breaker kept the other lookups and the
	// invalidation off Redis (a probe may fall in a slow run).
	if n := sent.n.Load() - before; n < 1 || n > 3 {
		t.Errorf("%d commands sent to a hung Redis for 50 lookups and an invalidation, want 1 (a probe or two at most)", n)
	}
	if c.Active() {
		t.Error("the cache still uses a Redis that does not answer")
	}
	// Before, each lookup waited for go-redis's 5 s read timeout.
	if took > time.Second {
		t.Errorf("50 lookups and an invalidation with Redis hung took %s", took)
	}
	t.Logf("50 lookups and an invalidation with Redis hung: %s, %d commands sent", took, sent.n.Load()-before)

	// Back: the breaker probes again after its backoff and closes.
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Redis in use again", func() bool {
		c.Lookup(ctx, []string{digest})
		return c.Active()
	})
}

// TestFailedInvalidationNeverServesStale: passing evidence is cached in
// Redis; Redis hangs; a failing result is recorded and its invalidation
// fails; Redis comes back with its old data. No lookup may return the
// passing evidence again: not through the replica that wrote, nor one that
// heard the change from the store's feed, nor one started meanwhile.
func TestFailedInvalidationNeverServesStale(t *testing.T) {
	srv := redistest.ForTest(t)
	ctx := context.Background()
	opts, err := rediscache.ClientOptions(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	client := func() *redis.Client {
		c := redis.NewClient(opts)
		t.Cleanup(func() { c.Close() })
		return c
	}
	raw := client()
	st := newStore(t)

	// Replica A records evidence as vouch serve wires it: Redis
	// invalidated after the commit, then its in-process cache. Replica B
	// hears changes from the store's feed (Forget), as on PostgreSQL.
	a := rediscache.New(client(), st, rediscache.Options{})
	memA := evidence.NewCache(a, 100, true)
	memA.SetMaxAge(30 * time.Second)
	svcA := newService(t, memA.WrapJournal(evidence.InvalidateAfter(st, func(ds []string) { a.Invalidate(ctx, ds...) })))
	b := rediscache.New(client(), st, rediscache.Options{})
	maintain(t, a, b)
	for _, l := range []evidence.Lookuper{memA, a, b} {
		got, err := l.Lookup(ctx, []string{digest})
		if err != nil || got[digest].Artifact == nil || failing(got[digest]) {
			t.Fatalf("lookup before: %v %+v", err, got)
		}
	}
	stale, err := raw.Get(ctx, rediscache.KeyPrefix+digest).Result()
	if err != nil {
		t.Fatalf("the passing evidence is not in Redis: %v", err)
	}

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer srv.Resume()
	paused := time.Now()
	// C starts, as a replica restarted without A's pending deletes would;
	// it does not hear of the change.
	c := rediscache.New(client(), st, rediscache.Options{})
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	go c.Maintain(cctx)
	unitTests(t, svcA, false) // committed; the delete from Redis fails
	b.Forget(digest)          // the store's feed reaches B
	replicas := map[string]evidence.Lookuper{"A (in-process cache)": memA, "A": a, "B": b, "C": c}
	check := func(when string) {
		t.Helper()
		for name, l := range replicas {
			got, err := l.Lookup(ctx, []string{digest})
			if err != nil {
				t.Fatalf("%s, %s: %v", when, name, err)
			}
			if !failing(got[digest]) {
				t.Fatalf("%s, %s answered the evidence from before the failing unit tests: %+v", when, name, got[digest])
			}
		}
	}
	check("Redis hung")

	// Every call sent meanwhile has timed out (within 500 ms); the
	// breakers leave Redis alone for a second after their failures. Redis
	// comes back with its data, the passing evidence written back as a
	// restored save file would hold it (what the hung server holds may
	// lose the key to a DEL it finds in its socket buffer).
	time.Sleep(time.Until(paused.Add(900 * time.Millisecond)))
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := raw.Set(ctx, rediscache.KeyPrefix+digest, stale, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	// Lookups without pause, so that they, not the background deletes,
	// are the first to try Redis again when the breakers let them.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		check("Redis back with its old data")
	}
	// The deletes were retried: Redis is in use again, without the stale
	// entry.
	waitFor(t, "every replica using Redis again", func() bool { return a.Active() && b.Active() && c.Active() })
	if v, err := raw.Get(ctx, rediscache.KeyPrefix+digest).Result(); err == nil && v == stale {
		t.Error("the stale entry is still in Redis")
	}
	check("Redis in use again")
}

// TestTooManyPending: past MaxPending digests, Redis is bypassed until
// every key of the cache is deleted.
func TestTooManyPending(t *testing.T) {
	srv := redistest.ForTest(t)
	ctx := context.Background()
	opts, _ := rediscache.ClientOptions(srv.URL())
	raw := redis.NewClient(opts)
	defer raw.Close()
	c := rediscache.New(redis.NewClient(opts), newStore(t), rediscache.Options{MaxPending: 2})
	maintain(t, c)
	for i := range 3000 { // more than one SCAN's batch
		raw.Set(ctx, fmt.Sprintf(rediscache.KeyPrefix+"sha256:%064d", i), "{}", time.Hour)
	}
	raw.Set(ctx, "other:key", "kept", time.Hour)
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer srv.Resume()
	c.Forget("sha256:1", "sha256:2", "sha256:3")
	if c.Active() {
		t.Error("Redis in use with more digests pending than MaxPending")
	}
	if got, err := c.Lookup(ctx, []string{digest}); err != nil || got[digest].Artifact == nil {
		t.Fatalf("lookup: %v %+v", err, got)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Redis in use again", c.Active)
	keys, err := raw.Keys(ctx, rediscache.KeyPrefix+"*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("%d keys left in the cache after its flush (%v)", len(keys), err)
	}
	if v, _ := raw.Get(ctx, "other:key").Result(); v != "kept" {
		t.Error("the flush deleted a key outside the cache")
	}
}

// open is a replica's cache as vouch serve opens it (rediscache.Open),
// logging into logs; its client is closed when t ends.
func open(t *testing.T, opts *redis.Options, st evidence.Lookuper, logs *testlog.Buffer) *rediscache.Cache {
	c, rdb := rediscache.Open(opts, st, rediscache.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	t.Cleanup(func() { rdb.Close() })
	return c
}

// TestRestartedRedisNeverServesStale: Redis acknowledges the delete of a
// change, then crashes and restarts from a save file made before it, with
// the old entry. Each replica's first new connection sees another run_id
// (Connected), and lookups bypass Redis until the cache is emptied: no
// replica answers the evidence from before the change.
func TestRestartedRedisNeverServesStale(t *testing.T) {
	srv := redistest.ForTest(t)
	ctx := context.Background()
	opts, err := rediscache.ClientOptions(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	var logs testlog.Buffer
	a, b := open(t, opts, st, &logs), open(t, opts, st, &logs)
	svcA := newService(t, evidence.InvalidateAfter(st, func(ds []string) { a.Invalidate(ctx, ds...) }))
	maintain(t, a, b)
	for _, c := range []*rediscache.Cache{a, b} {
		if got, err := c.Lookup(ctx, []string{digest}); err != nil || failing(got[digest]) {
			t.Fatalf("lookup before: %v %+v", err, got)
		}
	}
	raw := redis.NewClient(opts)
	defer raw.Close()
	if err := raw.Save(ctx).Err(); err != nil { // the snapshot holds the passing evidence
		t.Fatal(err)
	}
	unitTests(t, svcA, false) // deleted from Redis, which acknowledges
	b.Forget(digest)          // the store's feed reaches B
	if n, err := raw.Exists(ctx, rediscache.KeyPrefix+digest).Result(); err != nil || n != 0 {
		t.Fatalf("the key after the change: %d %v", n, err)
	}
	time.Sleep(2 * rediscache.Settle) // both deletes done: the digest is no longer pending
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if v, err := raw.Get(ctx, rediscache.KeyPrefix+digest).Result(); err != nil || v == "" {
		t.Fatalf("the restarted Redis does not hold the old entry: %q %v", v, err)
	}
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		for name, c := range map[string]*rediscache.Cache{"A": a, "B": b} {
			got, err := c.Lookup(ctx, []string{digest})
			if err != nil {
				t.Fatalf("%s after the restart: %v", name, err)
			}
			if !failing(got[digest]) {
				t.Fatalf("%s answered the evidence from before the failing unit tests after Redis restarted from its save file: %+v", name, got[digest])
			}
		}
	}
	waitFor(t, "both replicas using Redis again", func() bool { return a.Active() && b.Active() })
	if v, err := raw.Get(ctx, rediscache.KeyPrefix+digest).Result(); err == nil && !strings.Contains(v, `"passed":false`) {
		t.Errorf("the stale entry is still in Redis: %s", v)
	}
	if !strings.Contains(logs.String(), "another redis server answers") {
		t.Errorf("the change of server is not logged:\n%s", logs.String())
	}
}

// TestDemotedRedisNeverServesStale: the server a replica's pooled
// connections reach becomes a replica of another (a failover behind one
// address) holding the entry from before a change. The connections stay
// open, so no new one sees another run_id; the ROLE read with each lookup
// does, and the store answers.
func TestDemotedRedisNeverServesStale(t *testing.T) {
	srv, other := redistest.ForTest(t), redistest.ForTest(t)
	ctx := context.Background()
	opts, err := rediscache.ClientOptions(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	var logs testlog.Buffer
	a := open(t, opts, st, &logs)
	svc := newService(t, evidence.InvalidateAfter(st, func(ds []string) { a.Invalidate(ctx, ds...) }))
	maintain(t, a)
	if got, err := a.Lookup(ctx, []string{digest}); err != nil || failing(got[digest]) {
		t.Fatalf("lookup before: %v %+v", err, got)
	}
	raw := redis.NewClient(opts)
	defer raw.Close()
	stale, err := raw.Get(ctx, rediscache.KeyPrefix+digest).Result()
	if err != nil {
		t.Fatal(err)
	}
	unitTests(t, svc, false)
	time.Sleep(2 * rediscache.Settle)
	oopts, _ := rediscache.ClientOptions(other.URL())
	o := redis.NewClient(oopts)
	defer o.Close()
	if err := o.Set(ctx, rediscache.KeyPrefix+digest, stale, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(oopts.Addr, ":")
	if err := raw.Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the demoted server holding the old entry", func() bool { v, _ := raw.Get(ctx, rediscache.KeyPrefix+digest).Result(); return v == stale })
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		got, err := a.Lookup(ctx, []string{digest})
		if err != nil || !failing(got[digest]) {
			t.Fatalf("lookup from a demoted server: %v %+v", err, got[digest])
		}
	}
	if !strings.Contains(logs.String(), "a redis replica answered") {
		t.Errorf("the replica is not logged:\n%s", logs.String())
	}
}
