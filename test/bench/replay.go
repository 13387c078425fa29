package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/policy"
	"github.com/vouch-dev/vouch/postgres"
	vrego "github.com/vouch-dev/vouch/rego"
	"github.com/vouch-dev/vouch/replay"
	"github.com/vouch-dev/vouch/sqlite"
	"github.com/vouch-dev/vouch/test/pgtest"
	"github.com/vouch-dev/vouch/webhook"
)

var (
	replayDecisions = flagInt("replay-decisions", 100000, "admission decisions journaled for the replay benchmark")
	replayServices  = flagInt("replay-services", 200, "services deployed in the replay benchmark's history")
)

// replayConfig is the environments of the replay history, for `vouch
// serve` and in process alike.
const replayConfig = `
environments:
  - name: prod
    namespaces: ["prod-*"]
    require:
      digest: true
      provenance: true
      attestations: ["unit-tests", "security-scan"]
      approval: true
    allow: ["registry.k8s.io/pause"]
  - name: staging
    namespaces: ["staging-*"]
    require:
      digest: true
      provenance: true
      attestations: ["unit-tests"]
`

// replayCandidate adds a rule: prod workloads carry a team label.
const replayCandidate = `package vouch.admission

deny contains {"msg": sprintf("%s %s: add a \"team\" label naming the owning team (required in prod)", [input.workload.kind, input.workload.name]), "rule": "team-label", "requirement": "team label"} if {
	input.environment.name == "prod"
	not input.workload.labels.team
}
`

type replayStore interface {
	journal.Store
	evidence.Store
	Close() error
}

// runReplay journals -replay-decisions admission decisions through the
// webhook handler, with the evidence of a week of builds arriving in
// between, into SQLite and PostgreSQL; then replays them all with a
// candidate policy, in process and through `vouch policy replay` against
// `vouch serve`.
func runReplay() error {
	ctx := context.Background()
	defer debug.SetGCPercent(debug.SetGCPercent(400)) // as vouch serve runs
	var pg *pgtest.Server
	type result struct {
		backend            string
		journaled          time.Duration
		inProcess, viaCLI  time.Duration
		cpu, serveCPU      time.Duration // CPU time the replay took, in process and in vouch serve
		rep                replay.Report
		cliFlips, cliTotal int
	}
	var results []result
	for _, backend := range strings.Split(*backends, ",") {
		dir, err := os.MkdirTemp("", "vouch-bench-replay-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		databaseURL := ""
		var st replayStore
		if backend == "postgres" {
			if pg == nil {
				if pg, err = pgtest.Start(pgtest.Options{Durable: true}); err != nil {
					return err
				}
				defer pg.Stop()
			}
			if databaseURL, err = pg.NewDatabase(ctx); err != nil {
				return err
			}
			st, err = postgres.New(ctx, postgres.Config{URL: databaseURL})
		} else {
			st, err = sqlite.New(ctx, sqlite.Config{Path: filepath.Join(dir, "vouch.db")})
		}
		if err != nil {
			return err
		}
		h, hook, err := newReplayHistory(ctx, st)
		if err != nil {
			st.Close()
			return err
		}
		fmt.Fprintf(os.Stderr, "replay: %s: journaling %d decisions through the webhook…\n", backend, *replayDecisions)
		t0 := time.Now()
		from, to, err := h.write(ctx, *replayDecisions)
		h.appender.Close(ctx)
		if err != nil {
			st.Close()
			return err
		}
		r := result{backend: backend, journaled: time.Since(t0)}
		fmt.Fprintf(os.Stderr, "replay: %s: journaled in %s; replaying in process…\n", backend, r.journaled.Round(time.Second))

		replayer := &replay.Replayer{Journal: st, Evidence: st, Webhook: hook, Current: h.engine, Builtin: vrego.FS}
		cand, err := replayer.Candidate(ctx, map[string]string{"team.rego": replayCandidate})
		if err != nil {
			st.Close()
			return err
		}
		stop, err := startProfile(backend)
		if err != nil {
			st.Close()
			return err
		}
		t0, cpu0 := time.Now(), processCPU(os.Getpid())
		r.rep, err = replayer.Replay(ctx, cand, replay.Options{Since: from, Until: to.Add(time.Second), Limit: replay.MaxLimit})
		r.inProcess, r.cpu = time.Since(t0), processCPU(os.Getpid())-cpu0
		stop()
		st.Close()
		if err != nil {
			return err
		}
		if r.rep.Totals.Decisions != *replayDecisions {
			return fmt.Errorf("replay: %s: replayed %d decisions, journaled %d", backend, r.rep.Totals.Decisions, *replayDecisions)
		}
		fmt.Fprintf(os.Stderr, "replay: %s: in process %s: %+v\n", backend, r.inProcess.Round(time.Millisecond), r.rep.Totals)

		r.viaCLI, r.serveCPU, r.cliTotal, r.cliFlips, err = replayViaCLI(dir, databaseURL, from, to.Add(time.Second))
		if err != nil {
			return fmt.Errorf("replay: %s: %w", backend, err)
		}
		if r.cliTotal != r.rep.Totals.Decisions || r.cliFlips != r.rep.Totals.AdmitToDeny {
			return fmt.Errorf("replay: %s: vouch policy replay saw %d decisions and %d flips, in process %d and %d", backend, r.cliTotal, r.cliFlips, r.rep.Totals.Decisions, r.rep.Totals.AdmitToDeny)
		}
		fmt.Fprintf(os.Stderr, "replay: %s: vouch policy replay %s\n", backend, r.viaCLI.Round(time.Millisecond))
		results = append(results, r)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("\nReplay of %d journaled admission decisions (%d services, %d CPUs, %s, load average %s), candidate = built-in policy + a team-label rule:\n\n",
		*replayDecisions, *replayServices, runtime.NumCPU(), runtime.Version(), strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Println("| store | decisions | admit→deny | unchanged (reasons changed) | `vouch policy replay` s | decisions/s | server CPU s | in process s | decisions/s | CPU s | journaling took |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		t := r.rep.Totals
		fmt.Printf("| %s | %d | %d | %d (%d) | %.2f | %.0f | %.1f | %.2f | %.0f | %.1f | %s |\n", r.backend, t.Decisions, t.AdmitToDeny, t.Unchanged, t.ReasonsChanged,
			r.viaCLI.Seconds(), float64(t.Decisions)/r.viaCLI.Seconds(), r.serveCPU.Seconds(),
			r.inProcess.Seconds(), float64(t.Decisions)/r.inProcess.Seconds(), r.cpu.Seconds(), r.journaled.Round(time.Second))
	}
	return nil
}

// startProfile starts a CPU profile when -cpuprofile is set (one file per
// backend: PATH.BACKEND).
func startProfile(backend string) (func(), error) {
	if *profile == "" {
		return func() {}, nil
	}
	f, err := os.Create(*profile + "." + backend)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// replayViaCLI starts `vouch serve` on the store and times `vouch policy
// replay` of [since, until) with the candidate.
func replayViaCLI(dir, databaseURL string, since, until time.Time) (took, cpu time.Duration, decisions, flips int, err error) {
	cfg := filepath.Join(dir, "vouch.yaml")
	policies := filepath.Join(dir, "candidate")
	if err := os.WriteFile(cfg, []byte(replayConfig), 0o644); err != nil {
		return 0, 0, 0, 0, err
	}
	if err := os.MkdirAll(policies, 0o755); err != nil {
		return 0, 0, 0, 0, err
	}
	if err := os.WriteFile(filepath.Join(policies, "team.rego"), []byte(replayCandidate), 0o644); err != nil {
		return 0, 0, 0, 0, err
	}
	apiAddr := freeAddr()
	var logBuf bytes.Buffer
	args := []string{"serve", "--config", cfg, "--data-dir", dir, "--api-addr", apiAddr, "--webhook-addr", freeAddr(), "--log-level", "warn"}
	debugAddr := freeAddr()
	if *profile != "" {
		args = append(args, "--debug-addr", debugAddr)
	}
	cmd := exec.Command(*binary, args...)
	cmd.Env = append(os.Environ(), "VOUCH_DATABASE_URL="+databaseURL)
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, 0, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	if err := waitReady("http://" + apiAddr + "/readyz"); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("%w\n%s", err, logBuf.String())
	}
	cli := exec.Command(*binary, "policy", "replay", "--policy-dir", policies, "--since", since.Format(time.RFC3339Nano),
		"--until", until.Format(time.RFC3339Nano), "--limit", fmt.Sprint(replay.MaxLimit), "-o", "json")
	cli.Env = append(os.Environ(), "VOUCH_SERVER=http://"+apiAddr, "VOUCH_DATA_DIR="+dir)
	cli.Stderr = os.Stderr
	t0, cpu0 := time.Now(), processCPU(cmd.Process.Pid)
	if *profile != "" {
		// The server's CPU profile of the first seconds of the replay.
		go exec.Command("curl", "-s", "-o", *profile+".serve", "http://"+debugAddr+"/debug/pprof/profile?seconds=4").Run()
	}
	out, err := cli.Output()
	took, cpu = time.Since(t0), processCPU(cmd.Process.Pid)-cpu0
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("vouch policy replay: %w\n%s", err, logBuf.String())
	}
	var rep replay.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		return 0, 0, 0, 0, err
	}
	return took, cpu, rep.Totals.Decisions, rep.Totals.AdmitToDeny, nil
}

// processCPU returns the user and system CPU time process pid has used
// (Linux: /proc/PID/stat, in clock ticks of 10 ms).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // after "pid (comm) "
	var utime, stime int64
	fmt.Sscan(fields[11], &utime)
	fmt.Sscan(fields[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// history writes a week of deployments: services whose builds are
// reported (provenance, tests, scan, approval) as time goes by, and
// deployments of their latest builds to staging and prod.
type history struct {
	st       replayStore
	appender *journal.Appender
	engine   *policy.Engine
	hook     *webhook.Handler
	evidence *evidence.Service
	clock    atomic.Int64 // ticks of 3 s since start
	rnd      *rand.Rand
	builds   []int // latest build of each service; 0 when none yet
	nextID   int
	start    time.Time
}

func newReplayHistory(ctx context.Context, st replayStore) (*history, *webhook.Handler, error) {
	h := &history{st: st, rnd: rand.New(rand.NewPCG(7, 7)), builds: make([]int, *replayServices), start: time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)}
	now := func() time.Time { return h.start.Add(time.Duration(h.clock.Add(1)) * 3 * time.Second) }
	cache := evidence.NewCache(st, evidence.DefaultCacheSize, true) // as vouch serve runs
	h.appender = journal.NewAppender(cache.WrapJournal(st), journal.AppenderOptions{Now: now})
	var err error
	if h.engine, err = policy.New(ctx, policy.Config{Builtin: vrego.FS}); err != nil {
		return nil, nil, err
	}
	envs, err := policy.NewEnvironments("default", []policy.Environment{
		{Name: "prod", Namespaces: []string{"prod-*"}, Allow: []string{"registry.k8s.io/pause"},
			Require: policy.Requirements{Digest: true, Provenance: true, Attestations: []string{"unit-tests", "security-scan"}, Approval: true}},
		{Name: "staging", Namespaces: []string{"staging-*"}, Require: policy.Requirements{Digest: true, Provenance: true, Attestations: []string{"unit-tests"}}},
	})
	if err != nil {
		return nil, nil, err
	}
	h.hook, err = webhook.New(webhook.Config{Policy: h.engine, Evidence: cache, FreshEvidence: st, Journal: h.appender, Environments: envs,
		Logger: slog.New(slog.DiscardHandler), Now: now})
	h.evidence = evidence.NewService(h.appender, envs.Names(), now)
	return h, h.hook, err
}

func (h *history) digest(build int) string { return fmt.Sprintf("sha256:%064x", 0xb0000000+build) }

// build reports a new build of service s: provenance, unit tests (95 %
// pass), a security scan (90 % pass) and, mostly, a prod approval that
// expires in three days; now and then a later rejection.
func (h *history) build(ctx context.Context, s int) error {
	h.nextID++
	b, d := h.nextID, h.digest(h.nextID)
	yes, no := true, false
	if _, _, err := h.evidence.ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: fmt.Sprintf("registry.example.com/team%d/svc%d", s%20, s), Digest: d,
		GitCommit: strings.Repeat("a", 40), BuildURL: fmt.Sprintf("https://ci.example.com/svc%d/%d", s, b), Pipeline: "release"}); err != nil {
		return err
	}
	for _, a := range []struct {
		name string
		pass float64
	}{{"unit-tests", 0.95}, {"security-scan", 0.90}} {
		passed := &yes
		if h.rnd.Float64() > a.pass {
			passed = &no
		}
		if _, _, err := h.evidence.Attest(ctx, "ci", evidence.AttestationReport{Digest: d, Name: a.name, Type: "junit", Passed: passed, URL: "https://ci.example.com/r"}); err != nil {
			return err
		}
	}
	if h.rnd.Float64() < 0.85 {
		exp := h.start.Add(time.Duration(h.clock.Load())*3*time.Second + 72*time.Hour)
		if _, err := h.evidence.Approve(ctx, "release-manager", evidence.ApprovalRequest{Digest: d, Environment: "prod", Decision: "approved", Reason: "CAB", ExpiresAt: &exp}); err != nil {
			return err
		}
	}
	h.builds[s] = b
	return nil
}

// write journals n decisions, 50 at a time in parallel, with a new build
// reported before each group of 50, and returns the time range.
func (h *history) write(ctx context.Context, n int) (from, to time.Time, err error) {
	from = h.start
	for s := range h.builds {
		if err := h.build(ctx, s); err != nil {
			return from, to, err
		}
	}
	var failed atomic.Int64
	for done := 0; done < n; {
		if err := h.build(ctx, h.rnd.IntN(len(h.builds))); err != nil {
			return from, to, err
		}
		group := min(50, n-done)
		reqs := make([]*admissionv1.AdmissionRequest, group)
		for i := range reqs {
			reqs[i] = h.request(done + i)
		}
		var wg sync.WaitGroup
		work := make(chan *admissionv1.AdmissionRequest)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range work {
					if resp := h.hook.Handle(ctx, r); resp.Result != nil && resp.Result.Code >= 500 {
						failed.Add(1)
					}
				}
			}()
		}
		for _, r := range reqs {
			work <- r
		}
		close(work)
		wg.Wait()
		done += group
	}
	if failed.Load() > 0 {
		return from, to, fmt.Errorf("%d decisions failed", failed.Load())
	}
	return from, h.start.Add(time.Duration(h.clock.Load()) * 3 * time.Second), nil
}

// request is a deployment of a service's latest build to staging or prod:
// the app, in half the services a sidecar, in prod a pause init
// container; one service in ten has no team label.
func (h *history) request(i int) *admissionv1.AdmissionRequest {
	s := h.rnd.IntN(len(h.builds))
	ns := fmt.Sprintf("staging-team%d", s%20)
	if h.rnd.IntN(2) == 0 {
		ns = fmt.Sprintf("prod-team%d", s%20)
	}
	labels := map[string]string{"app": fmt.Sprintf("svc%d", s), "team": fmt.Sprintf("team%d", s%20)}
	if s%10 == 0 {
		delete(labels, "team")
	}
	containers := []map[string]string{{"name": "app", "image": fmt.Sprintf("registry.example.com/team%d/svc%d@%s", s%20, s, h.digest(h.builds[s]))}}
	if s%2 == 0 {
		p := (s + 1) % len(h.builds)
		containers = append(containers, map[string]string{"name": "proxy", "image": fmt.Sprintf("registry.example.com/team%d/svc%d@%s", p%20, p, h.digest(h.builds[p]))})
	}
	spec := map[string]any{"containers": containers}
	if strings.HasPrefix(ns, "prod-") {
		spec["initContainers"] = []map[string]string{{"name": "pause", "image": "registry.k8s.io/pause:3.10"}}
	}
	obj, _ := json.Marshal(map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": fmt.Sprintf("svc%d", s), "namespace": ns, "labels": labels,
			"annotations": map[string]string{"argocd.argoproj.io/tracking-id": fmt.Sprintf("svc%d:apps/Deployment:%s/svc%d", s, ns, s)}},
		"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{"labels": labels}, "spec": spec}},
	})
	return &admissionv1.AdmissionRequest{
		UID: types.UID(fmt.Sprintf("replay-%d", i)), Kind: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		Resource:  metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
		Namespace: ns, Name: fmt.Sprintf("svc%d", s), Operation: admissionv1.Update,
		UserInfo: authv1.UserInfo{Username: "system:serviceaccount:argocd:argocd-application-controller", Groups: []string{"system:serviceaccounts", "system:authenticated"}},
		Object:   k8sruntime.RawExtension{Raw: obj},
	}
}
