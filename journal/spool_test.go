package journal_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/sqlite"
)

// outage is a store that can be switched off, as a database going down.
type outage struct {
	*sqlite.DB
	down atomic.Bool
}

func (o *outage) AppendBatch(ctx context.Context, es []journal.Entry) ([]journal.Appended, error) {
	if o.down.Load() {
		return nil, errors.New("connection refused")
	}
	return o.DB.AppendBatch(ctx, es)
}

func entry(uid string) journal.Entry {
	return journal.Entry{Kind: journal.KindAdmission, Key: "admission:" + uid, Body: []byte(fmt.Sprintf(`{"uid":%q}`, uid))}
}

func keys(t *testing.T, db *sqlite.DB) []string {
	t.Helper()
	es, err := db.Entries(context.Background(), journal.Query{Limit: journal.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, strings.TrimPrefix(e.Key, "admission:"))
	}
	return out
}

func TestSpool(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(dir, "v.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := &outage{DB: db}
	app := journal.NewAppender(store, journal.AppenderOptions{})
	defer app.Close(ctx)
	path := filepath.Join(dir, "journal.spool")
	s, err := journal.OpenSpool(path, app, store, journal.SpoolOptions{After: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}

	if res, err := s.Append(ctx, entry("a")); err != nil || res.Spooled {
		t.Fatalf("store up: %+v %v", res, err)
	}
	store.down.Store(true)
	for _, uid := range []string{"b", "c"} {
		if res, err := s.Append(ctx, entry(uid)); err != nil || !res.Spooled {
			t.Fatalf("store down, %s: %+v %v", uid, res, err)
		}
	}
	// A retried request (same key) is answered from the spool, once.
	if res, err := s.Append(ctx, entry("b")); err != nil || !res.Existing || !res.Spooled {
		t.Fatalf("retry while spooled: %+v %v", res, err)
	}
	// The store comes back, but the spool is not drained yet: new entries
	// queue behind the spooled ones, to keep the order of the answers.
	store.down.Store(false)
	if res, _ := s.Append(ctx, entry("d")); !res.Spooled {
		t.Fatal("an entry overtook the spooled ones")
	}

	// A process that dies now leaves the spool on disk, with a torn last
	// line if it died mid-write; the next one drains it.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"body":{"uid":"torn"`)
	f.Close()
	s2, err := journal.OpenSpool(path, app, store, journal.SpoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s2.Pending() != 3 {
		t.Fatalf("reopened spool holds %d entries, want 3", s2.Pending())
	}
	if err := s2.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	// Draining again (the first process's view) appends nothing twice.
	if err := s.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keys(t, db), ","); got != "a,b,c,d" {
		t.Errorf("journal = %s, want a,b,c,d", got)
	}
	if res, err := s2.Append(ctx, entry("e")); err != nil || res.Spooled {
		t.Errorf("after the drain: %+v %v", res, err)
	}

	// Neither the store nor the spool: fail closed, with why.
	store.down.Store(true)
	badPath := filepath.Join(dir, "unwritable.spool")
	bad, err := journal.OpenSpool(badPath, app, store, journal.SpoolOptions{After: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	os.Mkdir(badPath, 0o700) // the spool file cannot be opened for writing now
	if _, err := bad.Append(ctx, entry("f")); err == nil || !strings.Contains(err.Error(), "the spool "+badPath+" cannot be written") {
		t.Errorf("spool unwritable: %v", err)
	}
}
