// Command bench measures admission throughput and latency end to end:
// `vouch serve` as a process on SQLite and on a real PostgreSQL (fsync on),
// every decision durable in the journal, driven over keep-alive HTTPS by
// the load generator on the same machine. It prints a Markdown table for
// docs/benchmarks.md and checks afterwards that every answered request was
// journaled. Run it with `make bench`.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/test/load"
	"github.com/vouch-dev/vouch/test/pgtest"
)

var (
	suite     = flag.String("suite", "admission,journal,drift,replay", "what to measure: admission, journal, drift, replay, compare, soak (comma-separated; compare is make bench-compare, soak make soak)")
	entries   = flag.Int("entries", 1000000, "journal entries for the export and verify benchmark")
	callers   = flag.Int("callers", 32, "concurrent appends in the journal benchmark, spread over the writers")
	duration  = flag.Duration("duration", 10*time.Second, "length of each measured run")
	artifacts = flag.Int("artifacts", 10000, "artifacts of evidence in the store besides the three under review")
	backends  = flag.String("backends", "sqlite,postgres", "stores to measure")
	binary    = flag.String("vouch", "bin/vouch", "vouch binary")
	floorAddr = flag.String("floor-addr", "", "serve as bench-compare's floor server on this address (started by the compare suite)")
	floorCert = flag.String("floor-cert", "", "the floor server's TLS certificate")
	floorKey  = flag.String("floor-key", "", "the floor server's TLS key")
	floorDB   = flag.String("floor-database-url", "", "the floor server logs every request durably in this PostgreSQL database before it answers")
	floorLog  = flag.String("floor-log", "journal", "with --floor-database-url, how: journal (Vouch's journal) or plain (one INSERT per batch)")
	profile   = flag.String("cpuprofile", "", "write a CPU profile of the measured queries here (drift suite; replay: PATH.BACKEND of the in-process replay)")
)

func main() {
	flag.Parse()
	if *floorAddr != "" {
		fmt.Fprintln(os.Stderr, "bench: floor server:", serveFloor(*floorAddr, *floorCert, *floorKey, *floorDB, *floorLog))
		os.Exit(1)
	}
	for _, s := range strings.Split(*suite, ",") {
		var err error
		switch s {
		case "admission":
			err = run()
		case "journal":
			err = runJournal()
		case "drift":
			err = runDrift()
		case "replay":
			err = runReplay()
		case "compare":
			err = runCompare()
		case "soak":
			err = runSoak()
		default:
			err = fmt.Errorf("unknown suite %q", s)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
}

type row struct {
	backend string
	res     load.Result
}

func run() error {
	var rows []row
	var pgVersion string
	for _, backend := range strings.Split(*backends, ",") {
		url := ""
		if backend == "postgres" {
			pg, err := pgtest.Start(pgtest.Options{Durable: true})
			if err != nil {
				return err
			}
			defer pg.Stop()
			if url, err = pg.NewDatabase(context.Background()); err != nil {
				return err
			}
			out, _ := exec.Command("psql", url, "-Atc", "SHOW server_version").Output()
			pgVersion = strings.TrimSpace(string(out))
		}
		r, err := measure(backend, url)
		rows = append(rows, r...)
		if err != nil {
			return err
		}
	}
	fmt.Printf("\nMachine: %s, %d CPUs, %s; PostgreSQL %s (fsync on, synchronous_commit on); SQLite WAL, synchronous=FULL.\n",
		cpuModel(), runtime.NumCPU(), runtime.Version(), pgVersion)
	fmt.Printf("Review: a Deployment with 3 containers (%d bytes), fresh UID per request; %d artifacts of evidence in the store.\n\n",
		len(sampleReview()), *artifacts+3)
	fmt.Println("| store | load | requests | errors | req/s | p50 ms | p90 ms | p99 ms | max ms |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		mode := fmt.Sprintf("closed, %d clients", r.res.Concurrency)
		if r.res.Mode == "open" {
			mode = fmt.Sprintf("open, %.0f req/s", r.res.TargetRate)
		}
		fmt.Printf("| %s | %s | %d | %d | %.0f | %.2f | %.2f | %.2f | %.2f |\n", r.backend, mode, r.res.Requests, r.res.Errors,
			r.res.RPS, r.res.P50, r.res.P90, r.res.P99, r.res.Max)
	}
	return nil
}

func measure(backend, databaseURL string) ([]row, error) {
	dir, err := os.MkdirTemp("", "vouch-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	apiAddr, hookAddr := freeAddr(), freeAddr()
	var logBuf bytes.Buffer
	cmd := exec.Command(*binary, "serve", "--data-dir", dir, "--api-addr", apiAddr, "--webhook-addr", hookAddr, "--api-rate-limit", "0", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "VOUCH_DATABASE_URL="+databaseURL)
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	if err := waitReady("http://" + apiAddr + "/readyz"); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", backend, err, logBuf.String())
	}
	token, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	api := &apiClient{base: "http://" + apiAddr, token: strings.TrimSpace(string(token))}

	fmt.Fprintf(os.Stderr, "%s: seeding %d artifacts…\n", backend, *artifacts)
	if err := seed(api, 0, *artifacts); err != nil {
		return nil, err
	}
	images := []string{}
	for i := 0; i < 3; i++ {
		d := fmt.Sprintf("sha256:%064x", 1<<40+i)
		if err := api.post("/api/v1/artifacts", map[string]any{"name": fmt.Sprintf("registry.example.com/team/svc%d", i), "digest": d,
			"git_commit": strings.Repeat("a", 40), "build_url": "https://ci.example.com/1"}); err != nil {
			return nil, err
		}
		images = append(images, fmt.Sprintf("registry.example.com/team/svc%d@%s", i, d))
	}

	pem, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	allowed := true
	base := load.Options{URL: "https://" + hookAddr + "/validate", TLS: &tls.Config{RootCAs: pool}, Images: images, WantAllowed: &allowed}

	warm := base
	warm.Concurrency, warm.Duration = 16, 2*time.Second
	if _, err := load.Run(context.Background(), warm); err != nil {
		return nil, err
	}
	var rows []row
	runs := []load.Options{base, base, base}
	runs[0].Concurrency, runs[0].Duration = 8, *duration
	runs[1].Concurrency, runs[1].Duration = 32, *duration
	runs[2].Concurrency, runs[2].Rate, runs[2].Duration = 64, 2000, *duration
	sent := 0
	for _, o := range runs {
		res, err := load.Run(context.Background(), o)
		if err != nil {
			return rows, err
		}
		fmt.Fprintf(os.Stderr, "%s: %s\n", backend, res)
		rows = append(rows, row{backend, res})
		sent += res.Allowed + res.Denied
	}

	// Every answered request must be in the journal.
	n, err := api.countAdmissions()
	if err != nil {
		return rows, err
	}
	if n < sent {
		return rows, fmt.Errorf("%s: %d answers but only %d admission entries in the journal", backend, sent, n)
	}
	fmt.Fprintf(os.Stderr, "%s: journal holds %d admission decisions (%d answered in the measured runs, the rest in warm-up)\n", backend, n, sent)
	return rows, nil
}

// seed posts the bulk artifacts from up to n (exclusive) with 16 clients.
func seed(api *apiClient, from, n int) error {
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := from + w; i < n; i += 16 {
				if err := api.post("/api/v1/artifacts", bulkArtifact(i)); err != nil {
					errc <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// bulkArtifact is the i-th artifact of evidence besides those reviewed.
func bulkArtifact(i int) evidence.ArtifactReport {
	return evidence.ArtifactReport{Name: fmt.Sprintf("registry.example.com/bulk/app%d", i%500),
		Digest: fmt.Sprintf("sha256:%064x", i+1), GitCommit: strings.Repeat("b", 40)}
}

type apiClient struct{ base, token string }

func (a *apiClient) get(path string, out any) error {
	req, _ := http.NewRequest("GET", a.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, raw)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (a *apiClient) post(path string, body any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", a.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		raw, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, raw)
	}
	io.Copy(io.Discard, resp.Body)
	return nil
}

func (a *apiClient) countAdmissions() (int, error) {
	n := 0
	next := "0"
	for next != "" {
		req, _ := http.NewRequest("GET", a.base+"/api/v1/journal/entries?kind=admission&limit=1000&from="+next, nil)
		req.Header.Set("Authorization", "Bearer "+a.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		var page struct {
			Entries []json.RawMessage `json:"entries"`
			Next    *uint64           `json:"next"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		n += len(page.Entries)
		next = ""
		if page.Next != nil {
			next = fmt.Sprint(*page.Next)
		}
	}
	return n, nil
}

func waitReady(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after 30s")
}

func freeAddr() string {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	return l.Addr().String()
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			return strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
		}
	}
	return runtime.GOARCH
}

func sampleReview() string {
	return string(load.SampleReview("default", []string{"registry.example.com/team/svc0@sha256:" + strings.Repeat("0", 64),
		"registry.example.com/team/svc1@sha256:" + strings.Repeat("0", 64), "registry.example.com/team/svc2@sha256:" + strings.Repeat("0", 64)}))
}

func flagInt(name string, def int, usage string) *int { return flag.Int(name, def, usage) }
