package evidence_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/sqlite"
)

// countingStore counts the lookups that reach the real store.
type countingStore struct {
	*sqlite.DB
	lookups int
}

func (s *countingStore) Lookup(ctx context.Context, digests []string) (map[string]evidence.Evidence, error) {
	s.lookups++
	return s.DB.Lookup(ctx, digests)
}

// openStore opens a real SQLite store for the test.
func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.New(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "v.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newAppender appends to store until the test ends.
func newAppender(t *testing.T, store journal.BatchAppender) *journal.Appender {
	a := journal.NewAppender(store, journal.AppenderOptions{})
	t.Cleanup(func() { a.Close(context.Background()) })
	return a
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	db := openStore(t)
	store := &countingStore{DB: db}
	cache := evidence.NewCache(store, 10, true)
	local := newAppender(t, cache.WrapJournal(db))
	remote := newAppender(t, db) // another replica: the cache hears nothing
	d := "sha256:1111111111111111111111111111111111111111111111111111111111111111"

	get := func() evidence.Evidence {
		t.Helper()
		m, err := cache.Lookup(ctx, []string{d})
		if err != nil {
			t.Fatal(err)
		}
		return m[d]
	}
	if ev := get(); !ev.Empty() || store.lookups != 1 {
		t.Fatalf("first lookup: %+v, %d store lookups", ev, store.lookups)
	}
	get()
	if store.lookups != 1 {
		t.Errorf("negative entry not cached: %d store lookups", store.lookups)
	}

	// Evidence written through this process's journal is seen at once.
	if _, _, err := evidence.NewService(local, nil, nil).ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: "app", Digest: d}); err != nil {
		t.Fatal(err)
	}
	if ev := get(); ev.Artifact == nil || store.lookups != 2 {
		t.Errorf("after a local write: artifact %v, %d store lookups; want the artifact from a fresh lookup", ev.Artifact, store.lookups)
	}

	// A remote write stays invisible until the change feed says so.
	yes := true
	if _, _, err := evidence.NewService(remote, nil, nil).Attest(ctx, "ci", evidence.AttestationReport{Digest: d, Name: "t", Passed: &yes}); err != nil {
		t.Fatal(err)
	}
	if ev := get(); len(ev.Attestations) != 0 {
		t.Fatal("cache saw a remote write without being told")
	}
	cache.Invalidate(d)
	if ev := get(); len(ev.Attestations) != 1 {
		t.Errorf("after Invalidate: %d attestations, want 1", len(ev.Attestations))
	}

	// Not live: every lookup goes to the store.
	cache.SetLive(false)
	n := store.lookups
	get()
	get()
	if store.lookups != n+2 {
		t.Errorf("cache not live served from memory: %d store lookups, want %d", store.lookups, n+2)
	}
	cache.SetLive(true)
	get()
	get()
	if store.lookups != n+3 {
		t.Errorf("live cache: %d store lookups, want %d", store.lookups, n+3)
	}
}

// failing is a store that is down.
type failing struct{}

func (failing) Lookup(context.Context, []string) (map[string]evidence.Evidence, error) {
	return nil, errors.New("connection refused")
}

// switchable passes lookups to a store until it is switched off.
type switchable struct {
	evidence.Lookuper
	down bool
}

func (s *switchable) Lookup(ctx context.Context, digests []string) (map[string]evidence.Evidence, error) {
	if s.down {
		return failing{}.Lookup(ctx, digests)
	}
	return s.Lookuper.Lookup(ctx, digests)
}

func TestCacheAnswersThroughAnOutage(t *testing.T) {
	ctx := context.Background()
	db := openStore(t)
	app := newAppender(t, db)
	if _, _, err := evidence.NewService(app, nil, nil).ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: "app", Digest: "sha256:" + strings.Repeat("a", 64)}); err != nil {
		t.Fatal(err)
	}
	sw := &switchable{Lookuper: db}
	c := evidence.NewCache(sw, 10, true)
	known, unknown := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	if _, err := c.Lookup(ctx, []string{known, unknown}); err != nil {
		t.Fatal(err)
	}
	// The database goes down, and with it the change feed.
	sw.down = true
	c.SetLive(false)
	got, err := c.Lookup(ctx, []string{known, unknown})
	if err != nil || got[known].Artifact == nil || len(got) != 1 {
		t.Fatalf("lookup during the outage = %v, %v; want the cached evidence", got, err)
	}
	if _, err := c.Lookup(ctx, []string{"sha256:" + strings.Repeat("c", 64)}); err == nil {
		t.Error("a digest never looked up was answered during the outage")
	}
	// Back: the cache starts empty and reads the store again.
	sw.down = false
	c.SetLive(true)
	if got, err := c.Lookup(ctx, []string{known}); err != nil || got[known].Artifact == nil {
		t.Fatalf("after the outage: %v, %v", got, err)
	}
}

// gated holds every lookup that reaches the store until the gate opens.
type gated struct {
	evidence.Lookuper
	gate    chan struct{}
	lookups atomic.Int32
}

func (s *gated) Lookup(ctx context.Context, digests []string) (map[string]evidence.Evidence, error) {
	s.lookups.Add(1)
	<-s.gate
	return s.Lookuper.Lookup(ctx, digests)
}

func TestCacheCoalescesLookups(t *testing.T) {
	ctx := context.Background()
	db := openStore(t)
	app := newAppender(t, db)
	known, unknown := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	if _, _, err := evidence.NewService(app, nil, nil).ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: "app", Digest: known}); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		store := &gated{Lookuper: db, gate: make(chan struct{})}
		c := evidence.NewCache(store, 10, true)
		const callers = 16
		results := make([]map[string]evidence.Evidence, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				var err error
				if results[i], err = c.Lookup(ctx, []string{known, unknown}); err != nil {
					t.Errorf("Lookup: %v", err)
				}
			})
		}
		synctest.Wait() // every caller is waiting: on the store, or for the one lookup
		if n := store.lookups.Load(); n != 1 {
			t.Errorf("%d concurrent misses of the same digests reached the store %d times, want 1", callers, n)
		}
		// A lookup after an invalidation must not join the lookup that
		// began before it.
		c.Invalidate(known)
		wg.Go(func() { c.Lookup(ctx, []string{known}) })
		synctest.Wait()
		if n := store.lookups.Load(); n != 2 {
			t.Errorf("after Invalidate: %d store lookups, want 2", n)
		}
		close(store.gate)
		wg.Wait()
		for i, got := range results {
			if len(got) != 1 || got[known].Artifact == nil {
				t.Errorf("caller %d got %v, want the artifact of %s only", i, got, known)
			}
		}
	})
}

func TestCacheMaxAge(t *testing.T) {
	db := openStore(t)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store := &countingStore{DB: db}
		c := evidence.NewCache(store, 10, true)
		c.SetMaxAge(time.Minute)
		d := "sha256:" + strings.Repeat("c", 64)
		for range 2 {
			if _, err := c.Lookup(ctx, []string{d}); err != nil {
				t.Fatal(err)
			}
		}
		if store.lookups != 1 {
			t.Fatalf("%d store lookups within the max age, want 1", store.lookups)
		}
		time.Sleep(time.Minute + time.Second)
		if _, err := c.Lookup(ctx, []string{d}); err != nil {
			t.Fatal(err)
		}
		if store.lookups != 2 {
			t.Errorf("%d store lookups after the max age, want 2", store.lookups)
		}
	})
}
