package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/postgres"
	"github.com/vouch-dev/vouch/sqlite"
	"github.com/vouch-dev/vouch/test/pgtest"
)

type journalStore interface {
	journal.Store
	Close() error
}

// runJournal measures durable appends (1 and 4 writers, each an Appender
// with its own connection, as replicas have), then export and verify of a
// journal of -entries entries through the real binary.
func runJournal() error {
	ctx := context.Background()
	pg, err := pgtest.Start(pgtest.Options{Durable: true})
	if err != nil {
		return err
	}
	defer pg.Stop()
	fmt.Printf("\nDurable appends, %d callers in all, each appending when its previous append resolved:\n\n", *callers)
	fmt.Println("| store | writers | appends | appends/s | p50 ms | p99 ms | max ms |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, backend := range strings.Split(*backends, ",") {
		for _, writers := range []int{1, 4} {
			target := filepath.Join(os.TempDir(), fmt.Sprintf("vouch-bench-%d.db", time.Now().UnixNano()))
			if backend == "postgres" {
				if target, err = pg.NewDatabase(ctx); err != nil {
					return err
				}
				target += os.Getenv("VOUCH_BENCH_PG_PARAMS")
			}
			r, err := appendLoad(ctx, backend, target, writers, *duration)
			os.Remove(target)
			if err != nil {
				return err
			}
			fmt.Printf("| %s | %d | %d | %.0f | %.2f | %.2f | %.2f |\n", backend, writers, r.n, r.rate, r.p50, r.p99, r.max)
		}
	}
	return exportVerify(ctx)
}

type appendResult struct {
	n                   int
	rate, p50, p99, max float64
}

func openJournal(ctx context.Context, backend, target string) (journalStore, error) {
	if backend == "postgres" {
		return postgres.New(ctx, postgres.Config{URL: target})
	}
	return sqlite.New(ctx, sqlite.Config{Path: target})
}

// appendLoad runs writers appenders fed by -callers goroutines in all
// (the same offered load however many writers), appending admission-sized
// entries for d.
func appendLoad(ctx context.Context, backend, target string, writers int, d time.Duration) (appendResult, error) {
	body := sampleBody()
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	start := time.Now()
	for w := 0; w < writers; w++ {
		s, err := openJournal(ctx, backend, target)
		if err != nil {
			return appendResult{}, err
		}
		defer s.Close()
		a := journal.NewAppender(s, journal.AppenderOptions{})
		defer a.Close(ctx)
		for g := 0; g < *callers/writers; g++ {
			wg.Add(1)
			go func(w, g int) {
				defer wg.Done()
				var mine []time.Duration
				for i := 0; time.Now().Before(deadline); i++ {
					t := time.Now()
					if _, err := a.Append(ctx, journal.Entry{Kind: journal.KindAdmission, Key: fmt.Sprintf("admission:%d-%d-%d", w, g, i), Body: body}); err != nil {
						panic(err)
					}
					mine = append(mine, time.Since(t))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}(w, g)
		}
	}
	wg.Wait()
	took := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	return appendResult{n: len(lat), rate: float64(len(lat)) / took.Seconds(), p50: ms(0.5), p99: ms(0.99), max: ms(1)}, nil
}

func sampleBody() json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "operation": "CREATE", "api_version": "apps/v1", "kind": "Deployment",
		"namespace": "payments-eu", "name": "web", "user": "system:serviceaccount:argocd:argocd-application-controller",
		"environment": "prod", "allowed": true, "policy_version": "sha256:10a886fa9aca16999731db8c678faeb1325f24d8dce45a5920c6f139e30e05c6",
		"evidence": []int{41, 42, 43, 57, 58, 59, 60, 61, 62},
		"images": []map[string]string{
			{"container": "web", "container_type": "container", "image": "registry.example.com/payments/web@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", "digest": "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"},
			{"container": "proxy", "container_type": "container", "image": "registry.example.com/platform/proxy@sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9", "digest": "sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"},
			{"container": "migrate", "container_type": "init", "image": "registry.example.com/payments/migrate@sha256:baa5a0964d3320fbc0c6a922140453c8513ea24ab8fd0577034804a967248096", "digest": "sha256:baa5a0964d3320fbc0c6a922140453c8513ea24ab8fd0577034804a967248096"},
		},
	})
	return b
}

// exportVerify builds a SQLite journal of -entries entries, serves it with
// vouch serve, exports it with the CLI and verifies the export, reporting
// rates and peak memory of each process.
func exportVerify(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "vouch-bench-journal-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(dir, "vouch.db")})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "journal: writing %d entries…\n", *entries)
	body := sampleBody()
	for n := 0; n < *entries; {
		batch := make([]journal.Entry, min(5000, *entries-n))
		now := time.Now()
		for i := range batch {
			batch[i] = journal.Entry{Kind: journal.KindAdmission, Time: now, Key: "admission:" + strconv.Itoa(n+i), Body: body}
			if err := batch[i].Seal(); err != nil {
				return err
			}
		}
		if _, err := s.AppendBatch(ctx, batch); err != nil {
			return err
		}
		n += len(batch)
	}
	s.Close()

	apiAddr, hookAddr := freeAddr(), freeAddr()
	server := exec.Command(*binary, "serve", "--data-dir", dir, "--api-addr", apiAddr, "--webhook-addr", hookAddr, "--log-level", "warn")
	if err := server.Start(); err != nil {
		return err
	}
	defer func() { server.Process.Signal(syscall.SIGTERM); server.Wait() }()
	if err := waitReady("http://" + apiAddr + "/readyz"); err != nil {
		return err
	}
	// The first checkpoint is signed at start.
	time.Sleep(6 * time.Second)
	token, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	rssBefore := vmRSS(server.Process.Pid)
	export := filepath.Join(dir, "export.jsonl")
	exportTime, _, err := timed(*binary, "journal", "export", "--server", "http://"+apiAddr, "--token", strings.TrimSpace(string(token)), "--output", export)
	if err != nil {
		return err
	}
	serverPeak := vmHWM(server.Process.Pid)
	info, _ := os.Stat(export)
	key, err := exec.Command(*binary, "journal", "key", "--data-dir", dir).Output()
	if err != nil {
		return err
	}
	verifyTime, verifyRSS, err := timed(*binary, "journal", "verify", "--public-key", strings.TrimSpace(string(key)), export)
	if err != nil {
		return err
	}
	n := float64(*entries)
	fmt.Printf("\nJournal of %d admission entries (%.0f MB export):\n\n", *entries, float64(info.Size())/1e6)
	fmt.Println("| step | time | entries/s | MB/s | peak memory |")
	fmt.Println("|---|---|---|---|---|")
	fmt.Printf("| export (vouch serve → vouch journal export, HTTP, streamed) | %.2f s | %.0f | %.0f | server RSS %d MB before, peak %d MB |\n",
		exportTime.Seconds(), n/exportTime.Seconds(), float64(info.Size())/1e6/exportTime.Seconds(), rssBefore>>10, serverPeak>>10)
	fmt.Printf("| verify (vouch journal verify, offline) | %.2f s | %.0f | %.0f | max RSS %d MB |\n",
		verifyTime.Seconds(), n/verifyTime.Seconds(), float64(info.Size())/1e6/verifyTime.Seconds(), verifyRSS>>10)
	return nil
}

// timed runs a command and returns its wall time and peak RSS in KiB.
func timed(name string, args ...string) (time.Duration, int64, error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	var out strings.Builder
	cmd.Stdout = &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%s %v: %w\n%s", name, args, err, out.String())
	}
	took := time.Since(start)
	fmt.Fprint(os.Stderr, out.String())
	return took, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss, nil
}

func vmRSS(pid int) int64 { return procStatus(pid, "VmRSS:") }
func vmHWM(pid int) int64 { return procStatus(pid, "VmHWM:") }

// procStatus reads a KiB figure from /proc/PID/status.
func procStatus(pid int, field string) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			n, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return n
		}
	}
	return 0
}
