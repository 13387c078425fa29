package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
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
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/certs"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/postgres"
	"github.com/vouch-dev/vouch/test/load"
	"github.com/vouch-dev/vouch/test/pgtest"
	"github.com/vouch-dev/vouch/test/testlog"
)

// The compare suite (make bench-compare) measures `vouch serve` on
// PostgreSQL, every decision durable, against a plain OPA server deciding
// the same reviews with an equivalent policy over the same evidence loaded
// as data. Both get the same request body, concurrency, CPU pinning and
// TLS certificate; the load generator (bin/vouch-load) runs as a separate
// process on the same machine, and each load is run against Vouch and OPA
// back to back, alternating which goes first, so that a change in the
// machine's speed hits both.
var (
	rounds        = flag.Int("rounds", 2, "compare: how often each load is run against each server")
	largeEvidence = flag.Int("artifacts-large", 100000, "compare: artifacts of evidence for the memory measurement (0 to skip it)")
	serverCPUs    = flag.String("server-cpus", "", "compare: taskset CPU list for Vouch, PostgreSQL and OPA (empty: not pinned)")
	loadCPUs      = flag.String("load-cpus", "", "compare: taskset CPU list for the load generator (empty: not pinned)")
	loadBinary    = flag.String("load", "bin/vouch-load", "compare: the load generator binary")
	reviewFile    = flag.String("review", "test/bench/testdata/review-deployment.json", "compare: the AdmissionReview sent (its uid is replaced per request)")
	loadsFlag     = flag.String("loads", "closed:8,closed:32,open:2000", "compare: the loads run against each server, closed:CLIENTS or open:RATE, comma-separated")
	vouchProfile  = flag.String("vouch-cpuprofile", "", "compare: write a CPU profile of vouch serve under the 32-client load of the first round here")
	keepOutput    = flag.String("out", "", "compare: also write the results table to this file")
)

//go:embed testdata/opa/admission.rego
var opaPolicy []byte

// The benchmark's environment: what Vouch requires in prod, and what the
// OPA policy (testdata/opa/admission.rego) checks.
const compareConfig = `environments:
  - name: prod
    namespaces: [prod]
    require:
      digest: true
      provenance: true
      attestations: [unit-tests, security-scan]
      approval: true
`

// compareLoad is one load of the comparison.
type compareLoad struct {
	name        string
	concurrency int
	rate        float64
}

// closed32 and open2000 are the loads the targets are about.
var (
	closed32 = compareLoad{"closed, 32 clients", 32, 0}
	open2000 = compareLoad{"open, 2000 req/s", 64, 2000}
)

var compareLoads = []compareLoad{{"closed, 8 clients", 8, 0}, closed32, open2000}

// parseLoads reads --loads: comma-separated closed:CLIENTS and
// open:RATE (an open loop allows at most 64 in flight, or 32 per 1,000/s).
func parseLoads(s string) ([]compareLoad, error) {
	var out []compareLoad
	for _, f := range strings.Split(s, ",") {
		kind, n, ok := strings.Cut(strings.TrimSpace(f), ":")
		v, err := strconv.Atoi(n)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("--loads: %q is not closed:CLIENTS or open:RATE", f)
		}
		switch kind {
		case "closed":
			out = append(out, compareLoad{fmt.Sprintf("closed, %d clients", v), v, 0})
		case "open":
			out = append(out, compareLoad{fmt.Sprintf("open, %d req/s", v), max(64, v*32/1000), float64(v)})
		default:
			return nil, fmt.Errorf("--loads: %q is not closed:CLIENTS or open:RATE", f)
		}
	}
	return out, nil
}

// measured is one run of one load against one server.
type measured struct {
	load, server string
	round        int
	res          load.Result
	serverCPU    time.Duration // of the server's processes (Vouch: vouch serve and PostgreSQL)
	dbCPU        time.Duration // of PostgreSQL alone
	loadCPU      time.Duration // of the load generator
	rss          int64         // peak RSS of the server process during the run, bytes
}

// target is a server under test.
type target struct {
	name string
	url  string
	proc *process
	pg   *pgtest.Server // Vouch only
	runs []measured
	idle int64 // RSS after start with the evidence loaded, before any admission
}

func runCompare() error {
	started := time.Now()
	loadAtStart := loadAverage()
	loads, err := parseLoads(*loadsFlag)
	if err != nil {
		return err
	}
	opaVersion, err := checkOPAVersion()
	if err != nil {
		return err
	}
	opaBin, err := buildOPA(opaVersion)
	if err != nil {
		return err
	}
	review, err := os.ReadFile(*reviewFile)
	if err != nil {
		return err
	}
	images, err := reviewImages(review)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "vouch-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tlsFiles, _, err := certs.Ensure(filepath.Join(dir, "tls"), nil, time.Now())
	if err != nil {
		return err
	}
	bodyFile := filepath.Join(dir, "review.json")
	if err := os.WriteFile(bodyFile, review, 0o644); err != nil {
		return err
	}

	pg, err := pgtest.Start(pgtest.Options{Durable: true})
	if err != nil {
		return err
	}
	defer pg.Stop()
	if *serverCPUs != "" {
		if out, err := exec.Command("taskset", "-a", "-p", "-c", *serverCPUs, strconv.Itoa(pg.Pid())).CombinedOutput(); err != nil {
			return fmt.Errorf("pin PostgreSQL: %v: %s", err, out)
		}
	}
	dbURL, err := pg.NewDatabase(context.Background())
	if err != nil {
		return err
	}
	pgVersion, _ := exec.Command("psql", dbURL, "-Atc", "SHOW server_version").Output()

	vouch, api, err := startVouch(dir, "vouch", dbURL, tlsFiles)
	if err != nil {
		return err
	}
	defer vouch.proc.stop()
	vouch.pg = pg
	fmt.Fprintf(os.Stderr, "compare: seeding Vouch with %d artifacts and the 3 under review…\n", *artifacts)
	if err := seed(api, 0, *artifacts); err != nil {
		return err
	}
	reviewed, err := seedReviewed(api, images)
	if err != nil {
		return err
	}
	vouch.idle = vouch.proc.rss()

	dataFile := filepath.Join(dir, "evidence.json")
	if err := writeOPAData(dataFile, *artifacts, reviewed); err != nil {
		return err
	}
	opa, err := startOPA(opaBin, dir, dataFile, tlsFiles)
	if err != nil {
		return err
	}
	defer opa.proc.stop()
	opa.idle = opa.proc.rss()

	var floors []*target
	for _, f := range []struct{ name, log string }{{"floor", ""}, {"durable floor", "plain"}, {"journal floor", "journal"}} {
		dbURL := ""
		if f.log != "" {
			if dbURL, err = pg.NewDatabase(context.Background()); err != nil {
				return err
			}
		}
		t, err := startFloor(f.name, tlsFiles, dbURL, f.log)
		if err != nil {
			return err
		}
		defer t.proc.stop()
		if f.log != "" {
			t.pg = pg
		}
		floors = append(floors, t)
	}

	for _, t := range append([]*target{vouch, opa}, floors...) {
		fmt.Fprintf(os.Stderr, "compare: warming up %s…\n", t.name)
		if _, err := runLoad(t, tlsFiles.CACert, bodyFile, compareLoad{"warm-up", 16, 0}, 3*time.Second, 0, ""); err != nil {
			return err
		}
	}
	for r := 1; r <= *rounds; r++ {
		for i, l := range loads {
			order := append([]*target{vouch, opa}, floors...)
			if (r+i)%2 == 0 {
				order = append([]*target{opa, vouch}, floors...)
				slices.Reverse(order[2:])
			}
			for _, t := range order {
				profile := ""
				if t == vouch && r == 1 && l.concurrency == 32 && l.rate == 0 {
					profile = *vouchProfile
				}
				m, err := runLoad(t, tlsFiles.CACert, bodyFile, l, *duration, r, profile)
				if err != nil {
					return err
				}
				t.runs = append(t.runs, m)
				fmt.Fprintf(os.Stderr, "compare: round %d, %s, %s: %s\n", r, l.name, t.name, m.res)
			}
		}
	}
	sent := 0
	for _, m := range vouch.runs {
		sent += m.res.Allowed + m.res.Denied
	}
	n, err := api.countAdmissions()
	if err != nil {
		return err
	}
	if n < sent {
		return fmt.Errorf("vouch: %d answers but only %d admission entries in the journal", sent, n)
	}
	fmt.Fprintf(os.Stderr, "compare: Vouch's journal holds %d admission decisions (%d answered in the measured runs, the rest in warm-up)\n", n, sent)
	pgIdlePSS := pgPSS(pg)
	footprint, err := measureJournal(dbURL)
	if err != nil {
		return err
	}
	opa.proc.stop()
	vouch.proc.stop()
	for _, t := range floors {
		t.proc.stop()
	}

	var large []memoryRow
	if *largeEvidence > *artifacts {
		if large, err = measureLarge(dir, opaBin, dbURL, pg, tlsFiles, bodyFile, reviewed); err != nil {
			return err
		}
	}

	var out bytes.Buffer
	printCompare(&out, compareReport{
		started: started, loadStart: loadAtStart, loadEnd: loadAverage(), pgVersion: strings.TrimSpace(string(pgVersion)),
		opaVersion: opaVersion, bodyBytes: vouch.runs[0].res.BodyBytes, vouch: vouch, opa: opa, floors: floors, pgPSS: pgIdlePSS, large: large, journal: footprint,
	})
	os.Stdout.Write(out.Bytes())
	if *keepOutput != "" {
		return os.WriteFile(*keepOutput, out.Bytes(), 0o644)
	}
	return nil
}

// adminToken is the admin token of every vouch serve the suite starts:
// they share one database.
var adminToken = auth.NewSecret()

// startVouch starts vouch serve on the PostgreSQL database with the
// benchmark's environment and TLS certificate.
func startVouch(dir, name, dbURL string, tlsFiles certs.Files) (*target, *apiClient, error) {
	data := filepath.Join(dir, name)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, nil, err
	}
	cfg := filepath.Join(data, "vouch.yaml")
	if err := os.WriteFile(cfg, []byte(compareConfig), 0o644); err != nil {
		return nil, nil, err
	}
	apiAddr, hookAddr, debugAddr := freeAddr(), freeAddr(), freeAddr()
	p, err := startProcess(name, *serverCPUs, append(os.Environ(), "VOUCH_DATABASE_URL="+dbURL, "VOUCH_ADMIN_TOKEN="+adminToken), *binary, "serve",
		"--config", cfg, "--data-dir", data, "--api-addr", apiAddr, "--webhook-addr", hookAddr, "--debug-addr", debugAddr,
		"--tls-cert-file", tlsFiles.Cert, "--tls-key-file", tlsFiles.Key, "--api-rate-limit", "0", "--log-level", "warn")
	if err != nil {
		return nil, nil, err
	}
	if err := waitReady("http://" + apiAddr + "/readyz"); err != nil {
		p.stop()
		return nil, nil, fmt.Errorf("%s: %w\n%s", name, err, p.output())
	}
	api := &apiClient{base: "http://" + apiAddr, token: adminToken}
	p.debugAddr = debugAddr
	return &target{name: "vouch", url: "https://" + hookAddr + "/validate", proc: p}, api, nil
}

// startFloor starts this program as a floor server (--floor-addr): an
// HTTPS server that admits every review at once without reading it. What
// the load generator measures against it is what the machine, TLS and the
// load generator cost before any server does any work. With a database,
// each request is first logged durably (log: plain or journal, see
// serveFloor): what durability adds, without evidence or policy.
func startFloor(name string, tlsFiles certs.Files, dbURL, log string) (*target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr := freeAddr()
	p, err := startProcess(name, *serverCPUs, os.Environ(), self, "--floor-addr", addr, "--floor-cert", tlsFiles.Cert, "--floor-key", tlsFiles.Key,
		"--floor-database-url", dbURL, "--floor-log", log)
	if err != nil {
		return nil, err
	}
	err = p.waitUp(time.Minute, 20*time.Millisecond, func() error {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", name, err, p.output())
	}
	return &target{name: name, url: "https://" + addr + "/", proc: p}, nil
}

// floorAnswer is the floor server's one answer.
var floorAnswer = []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":true}}`)

// floorEntryBody is what a durable floor logs per request: 1 KB of JSON,
// about the size of Vouch's admission records (the report gives their
// average leaf from the same run).
var floorEntryBody = []byte(`{"decision":"allowed","pad":"` + strings.Repeat("x", 1000) + `"}`)

// serveFloor is the floor server: it answers every request with
// floorAnswer until killed. With dbURL, each request is first logged in
// that PostgreSQL database through a journal.Appender — Vouch's group
// commit — and answered once durable. log "journal" is Vouch's journal:
// its sequencer and tree, one entry of a kind no projection reads; "plain"
// is the least a durable log does: one INSERT per batch, committed.
func serveFloor(addr, cert, key, dbURL, log string) error {
	logged := func(*http.Request) error { return nil }
	if dbURL != "" {
		ctx := context.Background()
		var store journal.BatchAppender
		switch log {
		case "journal":
			db, err := postgres.New(ctx, postgres.Config{URL: dbURL})
			if err != nil {
				return err
			}
			store = db
		case "plain":
			pool, err := pgxpool.New(ctx, dbURL)
			if err != nil {
				return err
			}
			if _, err := pool.Exec(ctx, `CREATE TABLE floor_log (id bigserial PRIMARY KEY, leaf bytea NOT NULL)`); err != nil {
				return err
			}
			store = plainLog{pool}
		default:
			return fmt.Errorf("--floor-log %q: want journal or plain", log)
		}
		appender := journal.NewAppender(store, journal.AppenderOptions{})
		var n atomic.Uint64
		logged = func(r *http.Request) error {
			_, err := appender.Append(r.Context(), journal.Entry{Kind: "bench-floor", Environment: "prod", Key: fmt.Sprintf("floor:%d", n.Add(1)), Body: floorEntryBody})
			return err
		}
	}
	return http.ListenAndServeTLS(addr, cert, key, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if err := logged(r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(floorAnswer)
	}))
}

// plainLog is the durable floor's log: each batch one INSERT of its
// leaves, committed; no sequencer, tree, keys or projections.
type plainLog struct{ pool *pgxpool.Pool }

func (l plainLog) AppendBatch(ctx context.Context, entries []journal.Entry) ([]journal.Appended, error) {
	leaves := make([][]byte, len(entries))
	out := make([]journal.Appended, len(entries))
	for i, e := range entries {
		leaves[i], out[i] = e.Leaf, journal.Appended{Entry: e}
	}
	if _, err := l.pool.Exec(ctx, `INSERT INTO floor_log (leaf) SELECT unnest($1::bytea[])`, leaves); err != nil {
		return nil, err
	}
	return out, nil
}

// startOPA starts a plain OPA server with the policy and the evidence as
// data, answering AdmissionReviews at POST / (the default decision,
// data.system.main).
func startOPA(bin, dir, dataFile string, tlsFiles certs.Files) (*target, error) {
	policy := filepath.Join(dir, "admission.rego")
	if err := os.WriteFile(policy, opaPolicy, 0o644); err != nil {
		return nil, err
	}
	addr := freeAddr()
	p, err := startProcess("opa", *serverCPUs, os.Environ(), bin, "run", "--server", "--addr", addr,
		"--tls-cert-file", tlsFiles.Cert, "--tls-private-key-file", tlsFiles.Key, "--log-level", "error", policy, dataFile)
	if err != nil {
		return nil, err
	}
	// OPA answers /health once the policy and data are loaded.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig(tlsFiles.CACert)}}
	err = p.waitUp(2*time.Minute, 100*time.Millisecond, func() error {
		resp, err := client.Get("https://" + addr + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/health: HTTP %d", resp.StatusCode)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &target{name: "opa", url: "https://" + addr + "/", proc: p}, nil
}

// runLoad runs the load generator against t once and measures the
// server's CPU time and peak RSS meanwhile.
func runLoad(t *target, caFile, bodyFile string, l compareLoad, d time.Duration, round int, profile string) (measured, error) {
	args := []string{"--url", t.url, "--ca", caFile, "--body", bodyFile, "--want-allowed",
		"--concurrency", strconv.Itoa(l.concurrency), "--duration", d.String()}
	if l.rate > 0 {
		args = append(args, "--rate", strconv.FormatFloat(l.rate, 'f', -1, 64))
	}
	name, cmdArgs := *loadBinary, args
	if *loadCPUs != "" {
		name, cmdArgs = "taskset", append([]string{"-c", *loadCPUs, *loadBinary}, args...)
	}
	cmd := exec.Command(name, cmdArgs...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	cpu0, db0 := t.cpu()
	stopRSS := make(chan struct{})
	peak := make(chan int64, 1)
	go func() {
		var max int64
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if r := t.proc.rss(); r > max {
				max = r
			}
			select {
			case <-stopRSS:
				peak <- max
				return
			case <-tick.C:
			}
		}
	}()
	profiled := make(chan error, 1)
	if profile != "" {
		go func() { profiled <- fetchProfile(t.proc.debugAddr, profile, d-2*time.Second) }()
	} else {
		profiled <- nil
	}
	err := cmd.Run()
	close(stopRSS)
	cpu1, db1 := t.cpu()
	m := measured{load: l.name, server: t.name, round: round, serverCPU: cpu1 - cpu0, dbCPU: db1 - db0, rss: <-peak}
	if cmd.ProcessState != nil {
		m.loadCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if perr := <-profiled; perr != nil {
		return m, perr
	}
	if jerr := json.Unmarshal(lastLine(stdout.Bytes()), &m.res); jerr != nil {
		return m, fmt.Errorf("%s: load generator: %v (%v)\n%s%s", t.name, err, jerr, stdout.Bytes(), stderr.Bytes())
	}
	if err != nil && m.res.Errors == 0 {
		return m, fmt.Errorf("%s: load generator: %v\n%s", t.name, err, stderr.Bytes())
	}
	return m, nil // errors are reported in the table
}

// cpu returns the CPU time used so far by the server's processes, and by
// PostgreSQL alone.
func (t *target) cpu() (total, db time.Duration) {
	total = procCPU(t.proc.cmd.Process.Pid, false)
	if t.pg != nil {
		db = procCPU(t.pg.Pid(), true)
	}
	return total + db, db
}

func fetchProfile(addr, file string, d time.Duration) error {
	if d < time.Second {
		d = time.Second
	}
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds())))
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cpu profile: HTTP %d", resp.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// seedReviewed reports the artifacts under review with complete evidence
// (provenance, two passed attestations, a prod approval) and returns it as
// Vouch's API shows it.
func seedReviewed(api *apiClient, images []string) ([]evidence.Evidence, error) {
	expires := time.Now().Add(365 * 24 * time.Hour).UTC().Format(time.RFC3339)
	var out []evidence.Evidence
	for i, img := range images {
		name, digest, _ := strings.Cut(img, "@")
		posts := []struct {
			path string
			body map[string]any
		}{
			{"/api/v1/artifacts", map[string]any{"name": name, "digest": digest, "git_commit": fmt.Sprintf("%040x", i+1),
				"repository": "https://git.example.com/payments", "build_url": fmt.Sprintf("https://ci.example.com/payments/%d", 100+i)}},
			{"/api/v1/attestations", map[string]any{"digest": digest, "name": "unit-tests", "type": "junit", "passed": true,
				"url": "https://ci.example.com/tests", "payload": map[string]any{"tests": 412, "failures": 0}}},
			{"/api/v1/attestations", map[string]any{"digest": digest, "name": "security-scan", "type": "sarif", "passed": true,
				"url": "https://ci.example.com/scan", "payload": map[string]any{"critical": 0, "high": 0}}},
			{"/api/v1/approvals", map[string]any{"digest": digest, "environment": "prod", "decision": "approved",
				"reason": "CAB-1234", "expires_at": expires}},
		}
		for _, p := range posts {
			if err := api.post(p.path, p.body); err != nil {
				return nil, err
			}
		}
		var ev evidence.Evidence
		if err := api.get("/api/v1/artifacts/"+digest, &ev); err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// writeOPAData writes the evidence as OPA data: the n bulk artifacts seed
// reports to Vouch, as Vouch's API shows them, and the reviewed ones.
func writeOPAData(file string, n int, reviewed []evidence.Evidence) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	w.WriteString(`{"evidence":{"artifacts":{`)
	enc := json.NewEncoder(w)
	now := time.Now().UTC()
	for i := 0; i < n; i++ {
		a := bulkArtifact(i)
		ev := evidence.Evidence{Digest: a.Digest, Artifact: &evidence.Artifact{ID: uint64(i + 1), Name: a.Name, Digest: a.Digest,
			GitCommit: a.GitCommit, ReportedBy: "admin", ReportedAt: now}, Attestations: []evidence.Attestation{}, Approvals: []evidence.Approval{}}
		fmt.Fprintf(w, "%q:", a.Digest)
		enc.Encode(ev)
		w.WriteString(",")
	}
	for i, ev := range reviewed {
		if i > 0 {
			w.WriteString(",")
		}
		fmt.Fprintf(w, "%q:", ev.Digest)
		enc.Encode(ev)
	}
	w.WriteString("}}}\n")
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// reviewImages returns the container images of the review's pod template.
func reviewImages(review []byte) ([]string, error) {
	var r struct {
		Request struct {
			Object struct {
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct{ Image string } `json:"containers"`
						} `json:"spec"`
					} `json:"template"`
				} `json:"spec"`
			} `json:"object"`
		} `json:"request"`
	}
	if err := json.Unmarshal(review, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", *reviewFile, err)
	}
	var out []string
	for _, c := range r.Request.Object.Spec.Template.Spec.Containers {
		out = append(out, c.Image)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no containers in the pod template", *reviewFile)
	}
	return out, nil
}

// memoryRow is a server's memory with more evidence.
type memoryRow struct {
	server    string
	artifacts int
	idle      int64
	load      measured
	// idleFile and loadFile are the file-backed part of the RSS (the
	// executable's pages, RssFile) idle and after the load; the rest is
	// anonymous memory, the heap.
	idleFile, loadFile int64
}

// measureLarge starts Vouch and OPA again with largeEvidence artifacts of
// evidence and measures their RSS idle and under 32 clients.
func measureLarge(dir, opaBin, dbURL string, pg *pgtest.Server, tlsFiles certs.Files, bodyFile string, reviewed []evidence.Evidence) ([]memoryRow, error) {
	n := *largeEvidence
	vouch, api, err := startVouch(dir, "vouch-large", dbURL, tlsFiles)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "compare: seeding Vouch up to %d artifacts…\n", n)
	start := time.Now()
	if err := seed(api, *artifacts, n); err != nil {
		vouch.proc.stop()
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "compare: seeded %d artifacts in %s\n", n-*artifacts, time.Since(start).Round(time.Second))
	vouch.proc.stop()
	// A fresh process: the memory of a server that holds that much
	// evidence, not of one that just ingested it.
	if vouch, _, err = startVouch(dir, "vouch-large", dbURL, tlsFiles); err != nil {
		return nil, err
	}
	defer vouch.proc.stop()
	vouch.pg = pg
	var rows []memoryRow
	measure := func(t *target) error {
		idle, idleFile := t.proc.rss(), t.proc.rssFile()
		if _, err := runLoad(t, tlsFiles.CACert, bodyFile, compareLoad{"warm-up", 16, 0}, 3*time.Second, 0, ""); err != nil {
			return err
		}
		m, err := runLoad(t, tlsFiles.CACert, bodyFile, closed32, *duration, 0, "")
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "compare: %d artifacts, %s, %s: %s\n", n, m.load, t.name, m.res)
		rows = append(rows, memoryRow{server: t.name, artifacts: n + len(reviewed), idle: idle, load: m, idleFile: idleFile, loadFile: t.proc.rssFile()})
		return nil
	}
	if err := measure(vouch); err != nil {
		return nil, err
	}
	vouch.proc.stop()
	dataFile := filepath.Join(dir, "evidence-large.json")
	if err := writeOPAData(dataFile, n, reviewed); err != nil {
		return nil, err
	}
	opa, err := startOPA(opaBin, dir, dataFile, tlsFiles)
	if err != nil {
		return nil, err
	}
	defer opa.proc.stop()
	if err := measure(opa); err != nil {
		return nil, err
	}
	return rows, nil
}

type compareReport struct {
	started            time.Time
	loadStart, loadEnd string
	pgVersion          string
	opaVersion         string
	bodyBytes          int
	vouch, opa         *target
	floors             []*target // floor, durable floor, journal floor
	pgPSS              int64
	large              []memoryRow
	journal            journalFootprint
}

func printCompare(w io.Writer, r compareReport) {
	pin := "not pinned"
	if *serverCPUs != "" || *loadCPUs != "" {
		pin = fmt.Sprintf("servers on CPUs %q, load generator on CPUs %q (taskset)", *serverCPUs, *loadCPUs)
	}
	fmt.Fprintf(w, "\nRun of %s (UTC), %s of measured runs per load and server, %d rounds.\n", r.started.UTC().Format("2006-01-02 15:04"), *duration, *rounds)
	fmt.Fprintf(w, "Machine: %s, %d CPUs, %s; load average %s at the start, %s at the end; %s.\n",
		cpuModel(), runtime.NumCPU(), runtime.Version(), r.loadStart, r.loadEnd, pin)
	fmt.Fprintf(w, "Vouch %s on PostgreSQL %s (fsync on, synchronous_commit on; every decision durable in the journal before the answer);\n"+
		"OPA %s built from the module proxy (`opa run --server`, policy test/bench/testdata/opa/admission.rego, evidence as data);\n"+
		"floor: an HTTPS server that admits every review at once, unread (what the machine, TLS and the load generator cost);\n"+
		"durable floor: the floor, each request first logged durably (a 1 KB row; Vouch's group commit, one INSERT per batch, same PostgreSQL);\n"+
		"journal floor: the same through Vouch's journal (sequencer and Merkle tree): what durability adds, without evidence or policy.\n",
		gitDescribe(), r.pgVersion, r.opaVersion)
	fmt.Fprintf(w, "Review: a Deployment with 3 containers (%d bytes), fresh UID per request, keep-alive HTTPS (HTTP/1.1), same certificate;\n"+
		"evidence: %d artifacts, the 3 reviewed with provenance, 2 passed attestations and a prod approval; every answer checked to admit.\n\n",
		r.bodyBytes, *artifacts+3)
	fmt.Fprintln(w, "| load | round | server | requests | errors | req/s | p50 ms | p90 ms | p99 ms | max ms | server CPU µs/req | load-gen CPU µs/req |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for i := range r.vouch.runs {
		row := []measured{r.vouch.runs[i], r.opa.runs[i]}
		for _, f := range r.floors {
			row = append(row, f.runs[i])
		}
		for _, m := range row {
			server := map[string]string{"vouch": "Vouch", "opa": "OPA"}[m.server]
			if server == "" {
				server = m.server
			}
			cpu := fmt.Sprintf("%.0f", perReq(m.serverCPU, m.res))
			if m.dbCPU > 0 {
				cpu = fmt.Sprintf("%.0f (PostgreSQL %.0f)", perReq(m.serverCPU, m.res), perReq(m.dbCPU, m.res))
			}
			fmt.Fprintf(w, "| %s | %d | %s | %d | %d | %.0f | %.2f | %.2f | %.2f | %.2f | %s | %.0f |\n", m.load, m.round, server,
				m.res.Requests, m.res.Errors, m.res.RPS, m.res.P50, m.res.P90, m.res.P99, m.res.Max, cpu, perReq(m.loadCPU, m.res))
		}
	}
	fmt.Fprintln(w, "\n| load | round | req/s Vouch/OPA | p50 Vouch/OPA | p99 Vouch/OPA |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for i := range r.vouch.runs {
		v, o := r.vouch.runs[i].res, r.opa.runs[i].res
		fmt.Fprintf(w, "| %s | %d | %.2f | %.2f | %.2f |\n", r.vouch.runs[i].load, r.vouch.runs[i].round, ratio(v.RPS, o.RPS), ratio(v.P50, o.P50), ratio(v.P99, o.P99))
	}
	fmt.Fprintln(w, "\n| server | artifacts of evidence | RSS idle MB | peak RSS under load MB |")
	fileBacked := ""
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, t := range []*target{r.vouch, r.opa} {
		var peak int64
		for _, m := range t.runs {
			peak = max(peak, m.rss)
		}
		server := map[string]string{"vouch": "Vouch (vouch serve)", "opa": "OPA"}[t.name]
		fmt.Fprintf(w, "| %s | %d | %.0f | %.0f |\n", server, *artifacts+3, mb(t.idle), mb(peak))
	}
	for _, row := range r.large {
		server := map[string]string{"vouch": "Vouch (vouch serve)", "opa": "OPA"}[row.server]
		fmt.Fprintf(w, "| %s | %d | %.0f | %.0f (32 clients: %.0f req/s, p99 %.2f ms) |\n", server, row.artifacts, mb(row.idle), mb(row.load.rss), row.load.res.RPS, row.load.res.P99)
		fileBacked += fmt.Sprintf("%s %.0f MB idle, %.0f MB after the load; ", server, mb(row.idleFile), mb(row.loadFile))
	}
	if fileBacked != "" {
		fmt.Fprintf(w, "\nOf that RSS, file-backed (the executable's pages; the rest is anonymous memory, the heap): %s\n", strings.TrimSuffix(fileBacked, "; "))
	}
	fmt.Fprintln(w, "\nTargets (issue 8), from this run:")
	var ratios []string
	var p99s, pacerLate []float64
	floorP99s := make([][]float64, len(r.floors))
	for i := range r.vouch.runs {
		v, o := r.vouch.runs[i], r.opa.runs[i]
		switch {
		case v.load == closed32.name:
			ratios = append(ratios, fmt.Sprintf("%.2f", ratio(v.res.RPS, o.res.RPS)))
		case v.load == open2000.name:
			p99s, pacerLate = append(p99s, v.res.P99), append(pacerLate, v.res.PacerLateP99)
			for j, f := range r.floors {
				floorP99s[j] = append(floorP99s[j], f.runs[i].res.P99)
				pacerLate = append(pacerLate, f.runs[i].res.PacerLateP99)
			}
		}
	}
	if len(ratios) > 0 {
		fmt.Fprintf(w, "- throughput at 32 clients ≥ 1.0× OPA's: Vouch/OPA %s (per round)\n", strings.Join(ratios, ", "))
	}
	if len(p99s) > 0 {
		var floorsWorst []string
		for j, f := range r.floors {
			floorsWorst = append(floorsWorst, fmt.Sprintf("%s %.2f ms", f.name, slices.Max(floorP99s[j])))
		}
		fmt.Fprintf(w, "- p99 ≤ 5 ms at an open-loop 2,000 req/s: Vouch's worst p99 over the rounds %.2f ms (worst of the floors: %s; the load generator's own pacer, p99 late: %.2f ms)\n",
			slices.Max(p99s), strings.Join(floorsWorst, ", "), slices.Max(pacerLate))
	}
	for _, row := range r.large {
		if row.server == "vouch" {
			fmt.Fprintf(w, "- RSS ≤ 150 MB with %d artifacts of evidence: Vouch %.0f MB idle, %.0f MB peak under 32 clients\n", row.artifacts, mb(row.idle), mb(row.load.rss))
		}
	}
	j := r.journal
	fmt.Fprintf(w, "\nJournal on PostgreSQL after the runs: %d entries, %d of them admissions (canonical leaf %.0f bytes on average; the other entries %.0f);\n"+
		"journal_entries with its indexes %.1f MB, journal_nodes %.1f MB, admitted %.1f MB: %.0f bytes on disk per entry.\n",
		j.entries, j.admissions, j.admissionLeaf, j.otherLeaf, mb(j.entriesBytes), mb(j.nodesBytes), mb(j.admittedBytes),
		float64(j.entriesBytes+j.nodesBytes)/float64(max(j.entries, 1)))
	fmt.Fprintf(w, "\nPostgreSQL's own memory (proportional set size of all its processes, shared buffers included) after the runs: %.0f MB.\n", mb(r.pgPSS))
}

func perReq(d time.Duration, r load.Result) float64 {
	n := r.Allowed + r.Denied
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func gitDescribe() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "(unknown commit)"
	}
	return strings.TrimSpace(string(out))
}

// process is a server started by the benchmark.
type process struct {
	name      string
	cmd       *exec.Cmd
	log       *testlog.Buffer
	done      chan struct{}
	debugAddr string
}

// startProcess starts bin with args, pinned to cpus with taskset when set.
func startProcess(name, cpus string, env []string, bin string, args ...string) (*process, error) {
	if cpus != "" {
		args = append([]string{"-c", cpus, bin}, args...)
		bin = "taskset"
	}
	p := &process{name: name, cmd: exec.Command(bin, args...), log: &testlog.Buffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// waitUp calls up every interval until it succeeds; when the process
// exits or timeout passes first, it stops the process and fails with its
// output.
func (p *process) waitUp(timeout, interval time.Duration, up func() error) error {
	for deadline := time.Now().Add(timeout); ; time.Sleep(interval) {
		err := up()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || p.exited() {
			p.stop()
			return fmt.Errorf("%s not ready: %v\n%s", p.name, err, p.output())
		}
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process (SIGTERM, SIGKILL after 30 s) and waits for it.
func (p *process) stop() {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *process) output() string { return p.log.String() }

// rss is the process's resident set size in bytes (0 once it exited).
func (p *process) rss() int64 {
	return statusKB(p.cmd.Process.Pid, "VmRSS:") << 10
}

// rssFile is the file-backed part of the resident set (RssFile): the
// executable's and libraries' pages.
func (p *process) rssFile() int64 {
	return statusKB(p.cmd.Process.Pid, "RssFile:") << 10
}

func statusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// procCPU is the user and system CPU time of a process, and with
// children set also that of its children, running or exited (PostgreSQL's
// backends; they leave the postmaster's process group).
func procCPU(pid int, children bool) time.Duration {
	total := ticks(pid, children)
	if children {
		for _, c := range childrenOf(pid) {
			total += ticks(c, false)
		}
	}
	return time.Duration(total) * time.Second / 100 // USER_HZ
}

func ticks(pid int, children bool) int64 {
	f := statFields(pid)
	if len(f) < 15 {
		return 0
	}
	var sum int64
	n := 2
	if children {
		n = 4
	}
	for _, s := range f[11 : 11+n] { // utime, stime, cutime, cstime
		v, _ := strconv.ParseInt(s, 10, 64)
		sum += v
	}
	return sum
}

// statFields are the fields of /proc/PID/stat after the command name:
// state, ppid, pgrp, ….
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// childrenOf returns the running children of a process.
func childrenOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(child); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// pgPSS is the proportional set size of all of PostgreSQL's processes.
func pgPSS(pg *pgtest.Server) int64 {
	var total int64
	for _, pid := range append(childrenOf(pg.Pid()), pg.Pid()) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				total += kb << 10
			}
		}
	}
	return total
}

// checkOPAVersion returns the OPA version of Vouch's go.mod and fails
// unless test/bench/opa/go.mod pins the same.
func checkOPAVersion() (string, error) {
	product, err := requiredVersion("go.mod", opaModule)
	if err != nil {
		return "", err
	}
	tools, err := requiredVersion(filepath.Join(opaToolsDir, "go.mod"), opaModule)
	if err != nil {
		return "", err
	}
	if product != tools {
		return "", fmt.Errorf("%s requires %s %s but go.mod %s: make them the same (cd %s && go get %s@%s && go mod tidy)",
			filepath.Join(opaToolsDir, "go.mod"), opaModule, tools, product, opaToolsDir, opaModule, product)
	}
	return product, nil
}

// tlsConfig trusts the CA in caFile.
func tlsConfig(caFile string) *tls.Config {
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(caFile); err == nil {
		pool.AppendCertsFromPEM(pem)
	}
	return &tls.Config{RootCAs: pool}
}

// journalFootprint is what the journal takes in PostgreSQL.
type journalFootprint struct {
	entries, admissions                     int64
	admissionLeaf, otherLeaf                float64 // average canonical leaf bytes
	entriesBytes, nodesBytes, admittedBytes int64   // tables with their indexes and TOAST
}

// measureJournal measures the journal's size on disk, after a VACUUM so
// that the visibility map and free space are settled.
func measureJournal(dbURL string) (journalFootprint, error) {
	if out, err := exec.Command("psql", dbURL, "-Atqc", "VACUUM ANALYZE journal_entries, journal_nodes, admitted").CombinedOutput(); err != nil {
		return journalFootprint{}, fmt.Errorf("vacuum: %v: %s", err, out)
	}
	out, err := exec.Command("psql", dbURL, "-AtF", " ", "-c", `SELECT
  count(*), count(*) FILTER (WHERE kind = 'admission'),
  coalesce(avg(octet_length(leaf)) FILTER (WHERE kind = 'admission'), 0),
  coalesce(avg(octet_length(leaf)) FILTER (WHERE kind <> 'admission'), 0),
  pg_total_relation_size('journal_entries'), pg_total_relation_size('journal_nodes'), pg_total_relation_size('admitted')
FROM journal_entries`).Output()
	if err != nil {
		return journalFootprint{}, fmt.Errorf("journal size: %w", err)
	}
	var j journalFootprint
	if _, err := fmt.Sscan(string(out), &j.entries, &j.admissions, &j.admissionLeaf, &j.otherLeaf, &j.entriesBytes, &j.nodesBytes, &j.admittedBytes); err != nil {
		return j, fmt.Errorf("journal size: %q: %w", out, err)
	}
	return j, nil
}
