package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vouch-dev/vouch/test/load"
	"github.com/vouch-dev/vouch/test/pgtest"
)

var (
	soakDuration = flag.Duration("soak-duration", 10*time.Minute, "soak: how long to hold the load")
	soakRate     = flag.Float64("soak-rate", 1000, "soak: admissions per second (open loop)")
	soakIngest   = flag.Float64("soak-ingest", 10, "soak: builds reported per second alongside (artifact + attestation each)")
)

// vitals is one reading of the server's own metrics.
type vitals struct {
	at         time.Duration
	rss, heap  float64 // bytes
	goroutines float64
}

// runSoak holds an open-loop admission load on vouch serve over PostgreSQL
// (every decision durable) while CI reports builds, reads the server's
// memory and goroutines every 10 s, and fails on any error, on a rate not
// held, on a missing journal entry, or on memory or goroutines that keep
// growing.
func runSoak() error {
	pg, err := pgtest.Start(pgtest.Options{Durable: true})
	if err != nil {
		return err
	}
	defer pg.Stop()
	url, err := pg.NewDatabase(context.Background())
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "vouch-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	apiAddr, hookAddr := freeAddr(), freeAddr()
	logFile, err := os.Create(filepath.Join(dir, "vouch.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(*binary, "serve", "--data-dir", dir, "--api-addr", apiAddr, "--webhook-addr", hookAddr,
		"--log-level", "warn", "--api-rate-limit", "0")
	cmd.Env = append(os.Environ(), "VOUCH_DATABASE_URL="+url)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	if err := waitReady("http://" + apiAddr + "/readyz"); err != nil {
		return err
	}
	token, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	api := &apiClient{base: "http://" + apiAddr, token: strings.TrimSpace(string(token))}
	if err := seed(api, 0, 10000); err != nil {
		return err
	}
	var images []string
	for i := 0; i < 3; i++ {
		d := fmt.Sprintf("sha256:%064x", 1<<40+i)
		if err := api.post("/api/v1/artifacts", map[string]any{"name": fmt.Sprintf("registry.example.com/team/svc%d", i), "digest": d}); err != nil {
			return err
		}
		images = append(images, fmt.Sprintf("registry.example.com/team/svc%d@%s", i, d))
	}
	pem, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	allowed := true

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	var samples []vitals
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // vitals every 10 s
		defer wg.Done()
		for t := time.NewTicker(10 * time.Second); ; {
			if v, err := readVitals("http://" + apiAddr + "/metrics"); err == nil {
				v.at = time.Since(start)
				samples = append(samples, v)
				fmt.Fprintf(os.Stderr, "soak: %5.0fs  RSS %6.1f MB  heap %6.1f MB  goroutines %4.0f\n", v.at.Seconds(), v.rss/1e6, v.heap/1e6, v.goroutines)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	var builds, ingestErrors atomic.Int64
	var firstIngestError atomic.Value
	go func() { // CI reporting builds alongside
		defer wg.Done()
		for t := time.NewTicker(time.Duration(float64(time.Second) / *soakIngest)); ; {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			n := builds.Add(1)
			d := fmt.Sprintf("sha256:%064x", 1<<48+n)
			err := api.post("/api/v1/artifacts", map[string]any{"name": "registry.example.com/team/new", "digest": d, "git_commit": strings.Repeat("c", 40)})
			if err == nil {
				err = api.post("/api/v1/attestations", map[string]any{"digest": d, "name": "unit-tests", "type": "junit", "passed": true})
			}
			if err != nil {
				ingestErrors.Add(1)
				firstIngestError.CompareAndSwap(nil, err.Error())
			}
		}
	}()
	res, err := load.Run(ctx, load.Options{URL: "https://" + hookAddr + "/validate", TLS: &tls.Config{RootCAs: pool}, Images: images,
		WantAllowed: &allowed, Concurrency: 256, Rate: *soakRate, Duration: *soakDuration})
	cancel()
	wg.Wait()
	if err != nil {
		return err
	}
	journaled, err := api.countAdmissions()
	if err != nil {
		return err
	}

	fmt.Printf("\nSoak: %s at %.0f admissions/s (open loop, vouch serve on PostgreSQL, fsync on), %.0f builds/s reported alongside.\n\n",
		*soakDuration, *soakRate, *soakIngest)
	fmt.Println("| minute | RSS MB | heap in use MB | goroutines |")
	fmt.Println("|---|---|---|---|")
	for _, s := range samples {
		if int(s.at.Seconds())%60 < 10 {
			fmt.Printf("| %.0f | %.1f | %.1f | %.0f |\n", s.at.Minutes(), s.rss/1e6, s.heap/1e6, s.goroutines)
		}
	}
	fmt.Printf("\nadmissions: %s\nbuilds reported: %d (artifact + attestation), errors %d; admission entries in the journal: %d\n",
		res, builds.Load(), ingestErrors.Load(), journaled)

	var problems []string
	if res.Errors > 0 {
		problems = append(problems, fmt.Sprintf("%d admission errors (first: %s)", res.Errors, res.FirstError))
	}
	if res.RPS < 0.95**soakRate {
		problems = append(problems, fmt.Sprintf("held %.0f admissions/s of the %.0f/s asked for (p50 %.0f ms from the scheduled send)", res.RPS, *soakRate, res.P50))
	}
	if n := ingestErrors.Load(); n > 0 {
		problems = append(problems, fmt.Sprintf("%d ingestion errors (first: %v)", n, firstIngestError.Load()))
	}
	if journaled < res.Allowed {
		problems = append(problems, fmt.Sprintf("%d admissions answered but %d journaled", res.Allowed, journaled))
	}
	if len(samples) >= 12 {
		// After the first minute (warm-up), the last third against the first.
		early, late := mean(samples[6:6+len(samples)/3]), mean(samples[len(samples)-len(samples)/3:])
		fmt.Printf("vitals, second minute vs last third: RSS %.1f → %.1f MB, heap %.1f → %.1f MB, goroutines %.0f → %.0f\n",
			early.rss/1e6, late.rss/1e6, early.heap/1e6, late.heap/1e6, early.goroutines, late.goroutines)
		if late.rss > early.rss*1.25 || late.heap > early.heap*1.5 || late.goroutines > early.goroutines*1.2+10 {
			problems = append(problems, "memory or goroutines grew")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("soak failed: %s", strings.Join(problems, "; "))
	}
	fmt.Println("soak passed: the rate held, no errors, every allowed answer journaled, memory and goroutines flat")
	return nil
}

func mean(vs []vitals) vitals {
	var m vitals
	for _, v := range vs {
		m.rss += v.rss / float64(len(vs))
		m.heap += v.heap / float64(len(vs))
		m.goroutines += v.goroutines / float64(len(vs))
	}
	return m
}

// readVitals reads the process collector's RSS, the heap in use and the
// goroutine count from a Prometheus text endpoint.
func readVitals(url string) (vitals, error) {
	resp, err := http.Get(url)
	if err != nil {
		return vitals{}, err
	}
	defer resp.Body.Close()
	var v vitals
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, _ := strconv.ParseFloat(value, 64)
		switch name {
		case "process_resident_memory_bytes":
			v.rss = f
		case "go_memstats_heap_inuse_bytes":
			v.heap = f
		case "go_goroutines":
			v.goroutines = f
		}
	}
	return v, sc.Err()
}
