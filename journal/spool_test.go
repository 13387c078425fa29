package journal_test

import (
	"context"
	"encoding/json"
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
// With refuse set, it refuses a batch with an entry whose key contains
// refuse, as PostgreSQL refuses a NUL in a text column (SQLite does not).
type outage struct {
	*sqlite.DB
	down   atomic.Bool
	refuse string
}

func (o *outage) AppendBatch(ctx context.Context, es []journal.Entry) ([]journal.Appended, error) {
	if o.down.Load() {
		return nil, errors.New("connection refused")
	}
	for _, e := range es {
		if o.refuse != "" && strings.Contains(e.Key, o.refuse) {
			return nil, fmt.Errorf("%w: %s: invalid byte sequence (SQLSTATE 22021)", journal.ErrRefused, e.Key)
		}
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

// TestSpoolSetsAsideRefusedEntries: entries the store refuses, found in a
// spool (left by an older version, or missed by the screen), are set aside
// in refused-<date>.jsonl with why, and every other entry drains, in order.
func TestSpoolSetsAsideRefusedEntries(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(dir, "v.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := &outage{DB: db, refuse: "bad"}
	app := journal.NewAppender(store, journal.AppenderOptions{})
	defer app.Close(ctx)
	var depth, setAside atomic.Int64
	observe := func(pending, aside int) { depth.Store(int64(pending)); setAside.Add(int64(aside)) }
	path := filepath.Join(dir, "journal.spool")
	s, err := journal.OpenSpool(path, app, store, journal.SpoolOptions{After: 100 * time.Millisecond, Observe: observe})
	if err != nil {
		t.Fatal(err)
	}
	store.down.Store(true)
	var want []string
	for i := range 20 {
		uid := fmt.Sprint(i)
		if i == 0 || i == 7 || i == 19 {
			uid = "bad" + uid
		} else {
			want = append(want, uid)
		}
		if res, err := s.Append(ctx, entry(uid)); err != nil || !res.Spooled {
			t.Fatalf("store down, %s: %+v %v", uid, res, err)
		}
	}
	if depth.Load() != 20 {
		t.Errorf("observed depth %d, want 20", depth.Load())
	}
	store.down.Store(false)
	if err := s.Drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if got := strings.Join(keys(t, db), ","); got != strings.Join(want, ",") {
		t.Errorf("journal = %s, want %s", got, strings.Join(want, ","))
	}
	if s.Pending() != 0 || depth.Load() != 0 || setAside.Load() != 3 {
		t.Errorf("after the drain: %d pending, observed depth %d and %d set aside; want 0, 0, 3", s.Pending(), depth.Load(), setAside.Load())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "refused-*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("refused files: %v", files)
	}
	data, _ := os.ReadFile(files[0])
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%s has %d lines, want 3:\n%s", files[0], len(lines), data)
	}
	for i, uid := range []string{"bad0", "bad7", "bad19"} {
		var r struct {
			Error string
			Leaf  json.RawMessage
		}
		if err := json.Unmarshal([]byte(lines[i]), &r); err != nil {
			t.Fatal(err)
		}
		e, err := journal.ParseLeaf(0, r.Leaf)
		if err != nil || e.Key != "admission:"+uid || !strings.Contains(r.Error, "SQLSTATE 22021") {
			t.Errorf("line %d: %s (%v)", i+1, lines[i], err)
		}
	}
	// Not stuck: the next entry goes straight to the store.
	if res, err := s.Append(ctx, entry("next")); err != nil || res.Spooled {
		t.Errorf("after the drain: %+v %v", res, err)
	}
}

// TestSpoolScreensEntries: an entry the store would refuse is refused
// rather than spooled, also while entries wait in the spool.
func TestSpoolScreensEntries(t *testing.T) {
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
	screen := func(e journal.Entry) error {
		if strings.Contains(e.Key, "\x00") {
			return errors.New("a NUL character")
		}
		return nil
	}
	s, err := journal.OpenSpool(filepath.Join(dir, "journal.spool"), app, store, journal.SpoolOptions{After: 100 * time.Millisecond, Screen: screen})
	if err != nil {
		t.Fatal(err)
	}
	store.down.Store(true)
	for _, uid := range []string{"b1", "nul\x00", "b2"} {
		res, err := s.Append(ctx, entry(uid))
		if refused := uid == "nul\x00"; refused != errors.Is(err, journal.ErrRefused) || (!refused && (err != nil || !res.Spooled)) {
			t.Errorf("%q: %+v %v", uid, res, err)
		}
	}
	store.down.Store(false)
	if err := s.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keys(t, db), ","); got != "b1,b2" {
		t.Errorf("journal = %s, want b1,b2", got)
	}
}
