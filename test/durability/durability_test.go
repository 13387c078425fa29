// Package durability checks the journal's sequencing and durability with
// real processes: several writers appending to one PostgreSQL at once, and
// writers killed with SIGKILL in the middle of their batches.
package durability

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"

	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/postgres"
	"github.com/vouch-dev/vouch/sqlite"
	"github.com/vouch-dev/vouch/test/pgtest"
)

// A test binary started with VOUCH_TEST_WRITER set is a writer process:
// it appends entries and prints the key of each append whose future
// resolved, one per line, until it has appended VOUCH_TEST_COUNT entries
// (forever when 0).
func TestMain(m *testing.M) {
	if os.Getenv("VOUCH_TEST_WRITER") != "" {
		os.Exit(writer())
	}
	flag.Parse()
	if testing.Short() {
		os.Exit(0)
	}
	var err error
	if pg, err = pgtest.Start(pgtest.Options{Durable: true}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

var pg *pgtest.Server

type store interface {
	journal.Store
	Close() error
}

func openStore(ctx context.Context, backend, target string) (store, error) {
	if backend == "postgres" {
		return postgres.New(ctx, postgres.Config{URL: target})
	}
	return sqlite.New(ctx, sqlite.Config{Path: target})
}

func writer() int {
	ctx := context.Background()
	id := os.Getenv("VOUCH_TEST_WRITER")
	count, _ := strconv.Atoi(os.Getenv("VOUCH_TEST_COUNT"))
	s, err := openStore(ctx, os.Getenv("VOUCH_TEST_BACKEND"), os.Getenv("VOUCH_TEST_TARGET"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	a := journal.NewAppender(s, journal.AppenderOptions{MaxBatch: 64})
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	const goroutines = 16
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; count == 0 || i < count; i += goroutines {
				key := fmt.Sprintf("%s-%d", id, i)
				body, _ := json.Marshal(map[string]any{"writer": id, "n": i})
				if _, err := a.Append(ctx, journal.Entry{Kind: "test", Key: key, Body: body}); err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintln(out, key)
				out.Flush() // what the parent reads is what was durable
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	if err := a.Close(ctx); err != nil {
		return 1
	}
	return 0
}

func startWriter(t *testing.T, id, backend, target string, count int) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "VOUCH_TEST_WRITER="+id, "VOUCH_TEST_COUNT="+strconv.Itoa(count),
		"VOUCH_TEST_BACKEND="+backend, "VOUCH_TEST_TARGET="+target)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(stdout)
}

// keysIn reads every entry of the store and returns their keys.
func keysIn(t *testing.T, s store) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	for from := uint64(0); ; {
		es, err := s.Entries(context.Background(), journal.Query{From: from, Limit: journal.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return keys
		}
		for _, e := range es {
			if keys[e.Key] {
				t.Fatalf("key %s appears twice", e.Key)
			}
			keys[e.Key] = true
		}
		from = es[len(es)-1].Index + 1
	}
}

// verify checks the whole store (tree state, nodes, leaves) with a
// checkpoint signed for the occasion.
func verify(t *testing.T, s store) journal.StoreReport {
	t.Helper()
	skey, _, err := journal.LoadOrCreateKey(filepath.Join(t.TempDir(), "k"), "vouch.test/durability")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := journal.NewCheckpointer(s, signer, journal.CheckpointerOptions{}).Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	vkey, err := journal.VerifierKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := journal.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := journal.VerifyStore(context.Background(), s, v, journal.VerifyOptions{}, nil)
	if err != nil {
		t.Fatalf("the journal does not verify: %v", err)
	}
	return rep
}

func TestFourWritersOnePostgreSQL(t *testing.T) {
	url := pg.Database(t)
	ctx := context.Background()
	s, err := openStore(ctx, "postgres", url) // migrate before the writers race
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const writers, each = 4, 10000
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		cmd, out := startWriter(t, fmt.Sprintf("w%d", w), "postgres", url, each)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for out.Scan() {
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("writer: %v", err)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	rep := verify(t, s)
	if rep.Size != writers*each {
		t.Fatalf("journal holds %d entries, want %d", rep.Size, writers*each)
	}
	keys := keysIn(t, s)
	for w := 0; w < writers; w++ {
		for i := 0; i < each; i++ {
			if !keys[fmt.Sprintf("w%d-%d", w, i)] {
				t.Fatalf("entry w%d-%d is missing", w, i)
			}
		}
	}
	t.Logf("%d processes appended %d entries in %s (%.0f appends/s): indices 0..%d contiguous, log verifies",
		writers, rep.Size, took.Round(time.Millisecond), float64(rep.Size)/took.Seconds(), rep.Size-1)
}

// TestKilledWriterLosesNothingAcknowledged kills a writer with SIGKILL
// while it has batches in flight: afterwards the journal verifies and
// holds every entry whose append had resolved.
func TestKilledWriterLosesNothingAcknowledged(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "vouch.db")
			if backend == "postgres" {
				target = pg.Database(t)
			}
			ctx := context.Background()
			acked := map[string]bool{}
			for round := 0; round < 3; round++ {
				cmd, out := startWriter(t, fmt.Sprintf("r%d", round), backend, target, 0)
				for n := 0; n < 1500 && out.Scan(); n++ {
					acked[out.Text()] = true
				}
				cmd.Process.Signal(syscall.SIGKILL)
				for out.Scan() { // what was printed before the kill was acknowledged too
					acked[out.Text()] = true
				}
				cmd.Wait()
			}
			if backend == "postgres" {
				// The killed writer's server process may still commit the
				// batch it was sent: afterwards is once it has gone.
				waitForOtherBackends(t, target)
			}
			s, err := openStore(ctx, backend, target)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			rep := verify(t, s)
			keys := keysIn(t, s)
			for k := range acked {
				if !keys[k] {
					t.Fatalf("acknowledged entry %s is missing after SIGKILL", k)
				}
			}
			if len(keys) == 0 || uint64(len(keys)) != rep.Size {
				t.Fatalf("journal holds %d keys, tree size %d", len(keys), rep.Size)
			}
			t.Logf("3 writers killed mid-batch: %d acknowledged appends all present among %d entries; the log verifies", len(acked), rep.Size)
		})
	}
}

// waitForOtherBackends waits until no other session is connected to the
// database at url.
func waitForOtherBackends(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var n int
		if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions of the killed writers still connected after 30s", n)
		}
	}
}
