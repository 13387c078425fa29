package rediscache_test

import (
	"context"
	"path/filepath"
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
	if testing.Short() {
		t.Skip("Redis tests do not run with -short; without -short they fail when redis-server is missing")
	}
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
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

	opts, _ := redis.ParseURL(srv.URL())
	store := &counting{Lookuper: st}
	a := rediscache.New(redis.NewClient(opts), store, rediscache.Options{})
	b := rediscache.New(redis.NewClient(opts), store, rediscache.Options{})

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
