package api_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/sqlite"
)

// pausingStore is the real store, whose leaf reads wait until release is
// closed: exports held in flight.
type pausingStore struct {
	*sqlite.DB
	reading chan struct{}
	release chan struct{}
}

func (s pausingStore) Leaves(ctx context.Context, from uint64, limit int) ([]journal.Leaf, error) {
	s.reading <- struct{}{}
	<-s.release
	return s.DB.Leaves(ctx, from, limit)
}

// TestConcurrentExportsPerToken: a token may stream MaxConcurrentExports
// journal exports at once; one more is a 429 with Retry-After, another
// token's is not held up, and the slot frees when an export ends.
func TestConcurrentExportsPerToken(t *testing.T) {
	store := pausingStore{reading: make(chan struct{}, 16), release: make(chan struct{})}
	f := newFixture(t, func(f *fixture, cfg *api.Config) {
		store.DB = f.db
		cfg.Journal = store
	})
	ctx := context.Background()
	if _, _, err := evidence.NewService(f.journal, nil, nil).ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: "app", Digest: digest(1)}); err != nil {
		t.Fatal(err)
	}
	skey, _, _ := journal.LoadOrCreateKey(filepath.Join(t.TempDir(), "journal.key"), "vouch.test/api")
	signer, _ := note.NewSigner(skey)
	if _, _, err := journal.NewCheckpointer(f.db, signer, journal.CheckpointerOptions{}).Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	export := func(token string) <-chan int { return f.inBackground("GET", "/api/v1/audit/export", token, "", "") }
	var held []<-chan int
	for range api.MaxConcurrentExports {
		held = append(held, export("auditor"))
		<-store.reading // streaming
	}
	code, out, h := f.do("GET", "/api/v1/audit/export", "auditor", "", "")
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(out["detail"].(string), `token "auditor" has 2 exports streaming already`) {
		t.Errorf("a third export of the token = %d %v (Retry-After %q); want 429", code, out["detail"], h.Get("Retry-After"))
	}
	other := export("admin")
	<-store.reading // another token's export is not refused
	close(store.release)
	for _, done := range append(held, other) {
		if code := <-done; code != http.StatusOK {
			t.Errorf("a held export ended with %d, want 200", code)
		}
	}
	if code := <-export("auditor"); code != http.StatusOK {
		t.Errorf("an export after the others ended = %d, want 200", code)
	}
}
