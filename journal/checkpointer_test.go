package journal_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/sqlite"
)

// TestCheckpointerRunReportsARefusalOnce: a leader whose store does not
// extend the checkpoint published before (another history) refuses to
// sign, and reports it once, not every interval.
func TestCheckpointerRunReportsARefusalOnce(t *testing.T) {
	ctx := context.Background()
	skey, _, err := note.GenerateKey(rand.Reader, "vouch.test/run")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	published := t.TempDir()
	pub, _ := journal.NewPublisher(published)
	store := func(text string) *sqlite.DB {
		db, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "vouch.db")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		e := journal.Entry{Kind: "note", Key: "note:" + text, Time: time.Now(), Body: []byte(fmt.Sprintf(`{"text":%q}`, text))}
		if err := e.Seal(); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AppendBatch(ctx, []journal.Entry{e}); err != nil {
			t.Fatal(err)
		}
		return db
	}
	if _, ok, err := journal.NewCheckpointer(store("first"), signer, journal.CheckpointerOptions{Publishers: []journal.Publisher{pub}}).Checkpoint(ctx); !ok || err != nil {
		t.Fatalf("first checkpoint: %v %v", ok, err)
	}
	var refusals atomic.Int32
	var signed atomic.Int32
	c := journal.NewCheckpointer(store("another history"), signer, journal.CheckpointerOptions{
		Interval: 10 * time.Millisecond, Publishers: []journal.Publisher{pub}, Logger: slog.New(slog.DiscardHandler),
		Refused: func(_ context.Context, err error) {
			if errors.Is(err, journal.ErrInconsistent) {
				refusals.Add(1)
			}
		},
		Observe: func(journal.Checkpoint, error) { signed.Add(1) },
	})
	runCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	c.Run(runCtx)
	if refusals.Load() != 1 || signed.Load() != 0 {
		t.Errorf("over ~20 intervals: %d refusals reported, %d checkpoints signed; want 1 and 0", refusals.Load(), signed.Load())
	}
}
