package evidence_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

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

func TestCache(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "v.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := &countingStore{DB: db}
	cache := evidence.NewCache(store, 10, true)
	local := journal.NewAppender(cache.WrapJournal(db), journal.AppenderOptions{})
	defer local.Close(ctx)
	remote := journal.NewAppender(db, journal.AppenderOptions{}) // another replica: the cache hears nothing
	defer remote.Close(ctx)
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
	db, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "v.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	app := journal.NewAppender(db, journal.AppenderOptions{})
	defer app.Close(ctx)
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
