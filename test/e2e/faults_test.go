package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/journal"
)

// answers records, on the client side, what the webhook answered.
type answers struct {
	mu      sync.Mutex
	allowed map[string]bool // uid → allowed
	errors  []string
	wait    func() // until the workers stopped
}

func (a *answers) record(uid string, allowed bool, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.allowed[uid] = allowed
	if !allowed && len(a.errors) < 5 {
		a.errors = append(a.errors, msg)
	}
}

// load admits image in namespace from workers until stop is closed.
func load(v *vouch, prefix, namespace, image string, workers int, stop <-chan struct{}) *answers {
	a := &answers{allowed: map[string]bool{}}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				uid := fmt.Sprintf("%s-%d-%d", prefix, w, i)
				resp, err := v.review(uid, namespace, nil, image)
				switch {
				case err != nil:
					a.record(uid+" (no answer)", false, err.Error())
				case resp.Allowed:
					a.record(uid, true, "")
				default:
					a.record(uid, false, resp.Result.Message)
				}
			}
		}(w)
	}
	a.wait = wg.Wait
	return a
}

// journaledUIDs counts the admission entries of each UID.
func journaledUIDs(t *testing.T, v *vouch, token string) map[string]int {
	t.Helper()
	uids := map[string]int{}
	eachJournalEntry(t, v, token, "admission", func(e map[string]any) {
		uids[e["body"].(map[string]any)["uid"].(string)]++
	})
	return uids
}

// eachJournalEntry pages through the journal's entries of kind ("" for
// all), oldest first.
func eachJournalEntry(t *testing.T, v *vouch, token, kind string, fn func(e map[string]any)) {
	t.Helper()
	from := 0.0
	for {
		code, page := v.get(token, fmt.Sprintf("/api/v1/journal/entries?kind=%s&limit=1000&from=%d", kind, int(from)))
		if code != 200 {
			t.Fatalf("journal entries: %d %v", code, page)
		}
		for _, e := range page["entries"].([]any) {
			fn(e.(map[string]any))
		}
		next, ok := page["next"].(float64)
		if !ok {
			return
		}
		from = next
	}
}

// TestDatabaseOutage stops PostgreSQL under load: admissions go on from
// the cached evidence, their decisions are spooled and sequenced into the
// journal, exactly once each, when the database is back; evidence posted
// during the outage is refused with 503 and Retry-After, never lost.
func TestDatabaseOutage(t *testing.T) {
	v := start(t, pg.Database(t))
	ci := v.cli("token", "create", "--name", "ci", "--scopes", "evidence:write")
	auditor := v.cli("token", "create", "--name", "auditor", "--scopes", "audit:read")
	digest := "sha256:" + strings.Repeat("5", 64)
	image := "registry.example.com/shop/web@" + digest
	if code, out := v.post(ci, "/api/v1/artifacts", `{"name":"registry.example.com/shop/web","digest":"`+digest+`"}`); code != 201 {
		t.Fatalf("artifact: %d %v", code, out)
	}
	if resp := v.admit("warm", "default", image); !resp.Allowed {
		t.Fatalf("before the outage: %s", resp.Result.Message)
	}

	stop := make(chan struct{})
	a := load(v, "outage", "default", image, 4, stop)
	time.Sleep(300 * time.Millisecond)
	pg.Pause()
	var during int
	a.mu.Lock()
	before := len(a.allowed)
	a.mu.Unlock()
	// Evidence during the outage: refused, with Retry-After.
	req, _ := http.NewRequest("POST", "http://"+v.api+"/api/v1/artifacts", strings.NewReader(`{"name":"registry.example.com/shop/api","digest":"sha256:`+strings.Repeat("6", 64)+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+ci)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	evidenceStatus, retryAfter := resp.StatusCode, resp.Header.Get("Retry-After")
	// Still ready: a NotReady pod would take the webhook's endpoints away.
	readyCode, readyBody := v.get("", "/readyz")
	time.Sleep(1500 * time.Millisecond)
	a.mu.Lock()
	during = len(a.allowed) - before
	a.mu.Unlock()
	if err := pg.Resume(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	a.wait()

	if len(a.errors) > 0 {
		t.Errorf("admissions refused during the outage: %q", a.errors)
	}
	if readyCode != 200 || readyBody["status"] != "degraded" || !strings.Contains(fmt.Sprint(readyBody["reason"]), "spooled") {
		t.Errorf("readyz during the outage = %d %v, want 200 degraded, naming the spool", readyCode, readyBody)
	}
	if during == 0 {
		t.Error("no admission was answered during the outage")
	}
	switch evidenceStatus {
	case 503:
		if retryAfter == "" {
			t.Error("503 without Retry-After")
		}
	case 201:
		// Then it must be stored.
		if code, _ := v.get(auditor, "/api/v1/artifacts/sha256:"+strings.Repeat("6", 64)); code != 200 {
			t.Error("201 for evidence that was not stored")
		}
	default:
		t.Errorf("evidence during the outage: %d, want 503 or 201", evidenceStatus)
	}

	// Every allowed answer is journaled, exactly once, once the spool drained.
	var uids map[string]int
	waitFor(t, func() bool {
		uids = journaledUIDs(t, v, auditor)
		for uid, ok := range a.allowed {
			if ok && uids[uid] == 0 {
				return false
			}
		}
		return true
	})
	for uid, n := range uids {
		if n != 1 {
			t.Errorf("%s journaled %d times", uid, n)
		}
	}
	t.Logf("%d admissions answered, %d during the %s outage; all journaled once", len(a.allowed), during, 1500*time.Millisecond)
	// Nothing spooled would mean the outage did not reach the journal (the
	// log comes through a pipe: wait for the line).
	waitFor(t, func() bool { return strings.Contains(v.log.String(), "spooled entries sequenced into the journal") })
	out := v.cli("journal", "verify", "--public-key", v.cli("journal", "key"), "--database-url", envValue(v.env, "VOUCH_DATABASE_URL"))
	if !strings.Contains(out, "OK: the store's journal of") {
		t.Errorf("journal verify after the outage:\n%s", out)
	}
}

// TestKilledUnderLoad kills vouch with SIGKILL under load: after the
// restart, every request that was answered allowed=true is in the journal.
func TestKilledUnderLoad(t *testing.T) {
	onEachStore(t, func(t *testing.T, backend, url string) {
		v := start(t, url)
		auditor := v.cli("token", "create", "--name", "auditor", "--scopes", "audit:read")
		// The allow-list admits without evidence, so every answer is allowed=true.
		stop := make(chan struct{})
		a := load(v, "kill", "prod", "registry.k8s.io/pause:3.10", 4, stop)
		time.Sleep(700 * time.Millisecond)
		v.kill()
		close(stop)
		a.wait()
		v.restart()
		uids := journaledUIDs(t, v, auditor)
		allowed, missing := 0, 0
		for uid, ok := range a.allowed {
			if ok {
				allowed++
				if uids[uid] != 1 {
					missing++
					if missing < 5 {
						t.Errorf("answered allowed=true but journaled %d times: %s", uids[uid], uid)
					}
				}
			}
		}
		if allowed == 0 {
			t.Fatal("nothing was admitted before the kill")
		}
		t.Logf("%d admissions answered allowed before SIGKILL; %d missing from the journal after the restart", allowed, missing)
	})
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// TestShutdownDelay: after SIGTERM a replica serves on for --shutdown-delay
// with /readyz failing, so Kubernetes takes it out of the webhook's Service
// before its port closes; then it stops cleanly.
func TestShutdownDelay(t *testing.T) {
	v := start(t, "", "--shutdown-delay", "3s")
	v.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, func() bool { return strings.Contains(v.log.String(), "serving on while the pod leaves its Services") })
	if code, out := v.get("", "/readyz"); code != 503 || !strings.Contains(fmt.Sprint(out["detail"]), "shutting down") {
		t.Errorf("readyz during the shutdown delay = %d %v, want 503 shutting down", code, out)
	}
	if resp, err := v.review("during-delay", "default", nil, "nginx:1.27"); err != nil || resp.Allowed {
		t.Errorf("webhook during the shutdown delay: %+v, %v; want an answer (a denial)", resp, err)
	}
	v.stop()
}

// TestRefusedDecisionDuringOutage: with PostgreSQL down, a review whose
// UID PostgreSQL cannot store (a NUL) between two others is refused, not
// spooled, and the two others are journaled when the database is back. A
// spool holding such an entry (left by an older version) drains at the
// next start: the entry is set aside in refused-<date>.jsonl, the others
// are journaled.
func TestRefusedDecisionDuringOutage(t *testing.T) {
	v := start(t, pg.Database(t))
	auditor := v.cli("token", "create", "--name", "auditor", "--scopes", "audit:read")
	pg.Pause()
	resumed := false
	defer func() {
		if !resumed {
			pg.Resume()
		}
	}()
	for _, uid := range []string{"b1", "nul\x00", "b2"} {
		resp := v.admit(uid, "default", "nginx:1.27")
		switch {
		case uid == "nul\x00" && (resp.Allowed || resp.Result.Code != 500 || !strings.Contains(resp.Result.Message, "could not record the decision")):
			t.Errorf("%q during the outage: %+v, want a 500 refusal: the decision cannot be recorded", uid, resp.Result)
		case uid != "nul\x00" && (resp.Allowed || resp.Result.Code == 500):
			t.Errorf("%q during the outage: %+v, want denied by the policy", uid, resp.Result)
		}
	}
	if err := pg.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	// The API's first requests may meet connections the restart closed.
	journaled := func(uids ...string) func() bool {
		return func() bool {
			code, page := v.get(auditor, "/api/v1/journal/entries?kind=admission&limit=1000")
			if code != 200 {
				return false
			}
			n := map[string]int{}
			for _, e := range page["entries"].([]any) {
				n[e.(map[string]any)["body"].(map[string]any)["uid"].(string)]++
			}
			for _, uid := range uids {
				if n[uid] != 1 {
					return false
				}
			}
			return len(n) == len(uids)
		}
	}
	waitFor(t, journaled("b1", "b2"))
	waitFor(t, func() bool { return strings.Contains(scrapeMetrics(t, v), "vouch_journal_spool_entries 0\n") })
	if m := scrapeMetrics(t, v); !strings.Contains(m, `vouch_admissions_total{decision="unrecorded",dry_run="false",environment="default"} 1`) {
		t.Errorf("the refused review is not counted as unrecorded:\n%s", m)
	}
	if strings.Contains(v.log.String(), "still unreachable") {
		t.Error("the drain failed after the database was back")
	}

	// An older version's spool with the same three entries.
	v.stop()
	var spool []byte
	for _, uid := range []string{"c1", "nul\x00", "c2"} {
		body, _ := json.Marshal(map[string]any{"uid": uid, "environment": "default", "allowed": false})
		e := journal.Entry{Kind: journal.KindAdmission, Time: time.Now(), Environment: "default", Key: "admission:" + uid, Body: body}
		if err := e.Seal(); err != nil {
			t.Fatal(err)
		}
		spool = append(append(spool, e.Leaf...), '\n')
	}
	if err := os.WriteFile(filepath.Join(v.dataDir, "journal.spool"), spool, 0o600); err != nil {
		t.Fatal(err)
	}
	v.launch()
	waitFor(t, journaled("b1", "b2", "c1", "c2"))
	files, _ := filepath.Glob(filepath.Join(v.dataDir, "refused-*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("refused files: %v", files)
	}
	if data, _ := os.ReadFile(files[0]); strings.Count(string(data), "\n") != 1 || !strings.Contains(string(data), `admission:nul\u0000`) {
		t.Errorf("%s:\n%s", files[0], data)
	}
	// The log comes through a pipe: the line may arrive after the journal shows the drain.
	waitFor(t, func() bool {
		return strings.Contains(v.log.String(), "the journal store refused a spooled entry; set aside")
	})
	waitFor(t, func() bool { return strings.Contains(scrapeMetrics(t, v), "vouch_journal_spool_refused_total 1\n") })
	v.stop()
}

// scrapeMetrics returns the server's /metrics page.
func scrapeMetrics(t *testing.T, v *vouch) string {
	t.Helper()
	resp, err := http.Get("http://" + v.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
