package kube

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/test/testlog"
)

// podStatus sets a pod's status as a kubelet would: running, with the
// digest its containers run, or waiting for a reason.
func podStatus(t *testing.T, ns, name, container, image, digest, waiting string) {
	t.Helper()
	state := `{"running":{"startedAt":"2026-11-25T10:00:00Z"}}`
	if waiting != "" {
		state = fmt.Sprintf(`{"waiting":{"reason":%q}}`, waiting)
	}
	imageID := ""
	if digest != "" {
		imageID = "docker-pullable://" + strings.SplitN(image, "@", 2)[0] + "@" + digest
	}
	patch := fmt.Sprintf(`{"status":{"phase":"Running","startTime":"2026-11-25T10:00:00Z","containerStatuses":[{"name":%q,"image":%q,"imageID":%q,"ready":true,"restartCount":0,"state":%s}]}}`,
		container, image, imageID, state)
	mustKubectl(t, "-n", ns, "patch", "pod", name, "--subresource=status", "--type=merge", "-p", patch)
}

func pod(ns, name, image string) string {
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"namespace":%q},"spec":{"containers":[{"name":"app","image":%q}]}}`, name, ns, image)
}

// receiver is a notification endpoint that is down until up is called.
type receiver struct {
	mu       sync.Mutex
	up       bool
	received []map[string]any
	refused  int
	url      string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.up {
			r.refused++
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var n map[string]any
		b, _ := io.ReadAll(req.Body)
		json.Unmarshal(b, &n)
		r.received = append(r.received, n)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	r.url = "http://" + l.Addr().String() + "/hook"
	return r
}

func (r *receiver) setUp() { r.mu.Lock(); r.up = true; r.mu.Unlock() }

func (r *receiver) count() (received, refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.received), r.refused
}

// TestDriftAgainstTheCluster watches a real apiserver (pods and their
// status written as a kubelet would, no webhook registered) and checks
// snapshots, state at a time, diffs and every compliance status, and that
// notifications reach a receiver that was down for a while.
func TestDriftAgainstTheCluster(t *testing.T) {
	needCluster(t)
	const ns = "shop"
	kubectl(t, "create", "namespace", ns)
	kubectl(t, "-n", ns, "create", "serviceaccount", "default")
	kubectl(t, "create", "namespace", "vouch-system")

	rcv := newReceiver(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vouch.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
environments:
  - name: shop
    namespaces: ["shop"]
    require: {digest: true, provenance: true}
  - name: mirror # reported by "vouch snapshot k8s", as a cluster Vouch does not run in would be
notifications:
  - {name: ops, type: webhook, url: %q}
`, rcv.url)), 0o644)
	r := &replica{name: "vouch-drift", api: freePort(t), webhook: freePort(t), log: &testlog.Buffer{}, done: make(chan error, 1)}
	admin := strings.Repeat("d", 40)
	r.cmd = exec.Command(vouchBin, "serve", "--config", cfg, "--data-dir", dir, "--api-addr", r.api, "--webhook-addr", r.webhook,
		"--kubeconfig", kube.Kubeconfig, "--namespace", "vouch-system", "--snapshot-interval", "2s")
	r.cmd.Env = append(os.Environ(), "VOUCH_DATABASE_URL="+pg.Database(t), "VOUCH_ADMIN_TOKEN="+admin)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		r.stop(t)
		if t.Failed() {
			t.Logf("vouch log:\n%s", r.log)
		}
	})
	waitFor(t, 60*time.Second, "vouch ready", func() bool {
		resp, err := http.Get("http://" + r.api + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	auditor := mustToken(t, r, admin, "auditor", "audit:read")
	ci := mustToken(t, r, admin, "ci", "evidence:write")
	get := func(path string, out any) int {
		req, _ := http.NewRequest("GET", "http://"+r.api+path, nil)
		req.Header.Set("Authorization", "Bearer "+auditor)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(out)
		return resp.StatusCode
	}
	statuses := func() map[string]string { // workload/container -> status
		var rep struct {
			Artifacts []struct{ Workload, Container, Status string }
		}
		if code := get("/api/v1/environments/shop/compliance", &rep); code != 200 {
			return nil
		}
		out := map[string]string{}
		for _, a := range rep.Artifacts {
			out[a.Workload] = a.Status
		}
		return out
	}

	good := "registry.example.com/shop/web@" + digestOf("good")
	// An admitted, documented workload: provenance, and an allowed decision
	// journaled as the webhook would (through its own Assess path is not
	// enough: it records nothing), so post the evidence and admit it by
	// sending the AdmissionReview to Vouch's webhook directly.
	api(t, r, ci, "POST", "/api/v1/artifacts", `{"name":"registry.example.com/shop/web","digest":"`+digestOf("good")+`"}`)
	admitDirect(t, r, ns, "web", good)
	mustKubectlApply(t, pod(ns, "web", good))
	podStatus(t, ns, "web", "app", good, digestOf("good"), "")

	// Created while the webhook was off: running without an admitted decision.
	sneaky := "registry.example.com/shop/tool@" + digestOf("sneaky")
	api(t, r, ci, "POST", "/api/v1/artifacts", `{"name":"registry.example.com/shop/tool","digest":"`+digestOf("sneaky")+`"}`)
	mustKubectlApply(t, pod(ns, "tool", sneaky))
	podStatus(t, ns, "tool", "app", sneaky, digestOf("sneaky"), "")

	// Never reported by CI, and crash-looping.
	crash := "registry.example.com/shop/crash@" + digestOf("crash")
	mustKubectlApply(t, pod(ns, "crash", crash))
	podStatus(t, ns, "crash", "app", crash, digestOf("crash"), "CrashLoopBackOff")

	// A pod whose runtime has not reported a digest yet must not break anything.
	mustKubectlApply(t, pod(ns, "pending", "nginx:1.27"))

	var got map[string]string
	waitFor(t, 30*time.Second, "compliance of the four pods", func() bool {
		got = statuses()
		return got["Pod/web"] == "compliant" && got["Pod/tool"] == "undocumented" && got["Pod/crash"] == "failed" && got["Pod/pending"] == "undocumented"
	})
	t.Logf("compliance: %v", got)

	// What runs in an exempt namespace is recorded, as exempt: never
	// evaluated, and no reporter may write it.
	kubectl(t, "-n", "kube-system", "create", "serviceaccount", "default")
	mustKubectlApply(t, pod("kube-system", "dns", "registry.k8s.io/coredns:v1.12.0"))
	waitFor(t, 30*time.Second, "the kube-system pod in the exempt environment", func() bool {
		var rep struct {
			Artifacts []struct{ Namespace, Workload, Status string }
		}
		return get("/api/v1/environments/exempt/compliance", &rep) == 200 && len(rep.Artifacts) == 1 &&
			rep.Artifacts[0].Namespace == "kube-system" && rep.Artifacts[0].Workload == "Pod/dns" && rep.Artifacts[0].Status == "exempt"
	})
	if code, out := api(t, r, admin, "PUT", "/api/v1/environments/exempt/snapshot", `{"workloads":[]}`); code != http.StatusConflict {
		t.Errorf("a report into the exempt environment: %d %v, want 409", code, out)
	}
	before := time.Now()

	// Snapshots deduplicate: no new content record while nothing changes.
	workloadEvents := func() int {
		var events struct{ Events []struct{ Type string } }
		get("/api/v1/environments/shop/events?since=1h", &events)
		n := 0
		for _, e := range events.Events {
			if e.Type != "compliance-changed" {
				n++
			}
		}
		return n
	}
	n := workloadEvents()
	time.Sleep(5 * time.Second) // two heartbeats
	if m := workloadEvents(); m != n {
		t.Errorf("events grew from %d to %d without any change", n, m)
	}

	// Remove one pod: state now and state before differ by exactly it.
	mustKubectl(t, "-n", ns, "delete", "pod", "tool", "--grace-period=0", "--force")
	waitFor(t, 30*time.Second, "the deletion in the state", func() bool {
		var st struct{ Workloads []struct{ Name string } }
		get("/api/v1/environments/shop/state", &st)
		for _, w := range st.Workloads {
			if w.Name == "tool" {
				return false
			}
		}
		return len(st.Workloads) == 3
	})
	var past struct{ Workloads []struct{ Name string } }
	get("/api/v1/environments/shop/state?at="+before.UTC().Format(time.RFC3339Nano), &past)
	if len(past.Workloads) != 4 {
		t.Errorf("state before the deletion has %d workloads, want 4", len(past.Workloads))
	}
	var diff struct {
		Diff struct {
			Stopped []struct{ Name string }
			Started []struct{ Name string }
		}
	}
	get("/api/v1/environments/shop/diff?from="+before.UTC().Format(time.RFC3339Nano), &diff)
	if len(diff.Diff.Stopped) != 1 || diff.Diff.Stopped[0].Name != "tool" || len(diff.Diff.Started) != 0 {
		t.Errorf("diff since before the deletion = %+v", diff.Diff)
	}

	// Notifications: the receiver refused the first deliveries; once it is
	// up, the retries get through.
	waitFor(t, 30*time.Second, "a refused delivery", func() bool { _, refused := rcv.count(); return refused > 0 })
	rcv.setUp()
	waitFor(t, 60*time.Second, "a delivered notification", func() bool { received, _ := rcv.count(); return received > 0 })
	var journal struct{ Entries []map[string]any }
	waitFor(t, 30*time.Second, "the delivery journaled", func() bool {
		get("/api/v1/journal/entries?kind=notification-delivery&limit=1000", &journal)
		for _, e := range journal.Entries {
			if e["body"].(map[string]any)["delivered"] == true {
				return true
			}
		}
		return false
	})
	rcv.mu.Lock()
	first := rcv.received[0]
	for _, n := range rcv.received {
		if n["environment"] == "exempt" {
			t.Errorf("a notification about the exempt namespaces: %v", n)
		}
	}
	rcv.mu.Unlock()
	if first["environment"] != "shop" || first["counts"] == nil {
		t.Errorf("notification = %v", first)
	}

	// The compliance change is an event of the environment, next to the
	// workload changes, and the CLI shows it.
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(vouchBin, args...)
		cmd.Env = append(os.Environ(), "VOUCH_SERVER=http://"+r.api, "VOUCH_TOKEN="+admin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("vouch %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := cli("env", "log", "shop", "--since", "1h"); !strings.Contains(out, "compliance-changed") || !strings.Contains(out, "stopped") {
		t.Errorf("vouch env log shop:\n%s", out)
	}

	// Reporter mode: "vouch snapshot k8s" reads the same cluster into the
	// reported environment "mirror"; a second run changes nothing.
	if out := cli("snapshot", "k8s", "--kubeconfig", kube.Kubeconfig, "--environment", "mirror", "--namespaces", "shop"); !strings.Contains(out, "3 workloads reported, recorded as full") {
		t.Errorf("first vouch snapshot k8s: %s", out)
	}
	if out := cli("snapshot", "k8s", "--kubeconfig", kube.Kubeconfig, "--environment", "mirror", "--namespaces", "shop"); !strings.Contains(out, "recorded as heartbeat") && !strings.Contains(out, "recorded as unchanged") {
		t.Errorf("second vouch snapshot k8s: %s", out)
	}
	var shopState, mirrorState struct {
		Workloads []struct {
			Namespace, Kind, Name string
			Containers            []struct{ Image, Digest string }
		}
	}
	get("/api/v1/environments/shop/state", &shopState)
	get("/api/v1/environments/mirror/state", &mirrorState)
	if fmt.Sprint(shopState.Workloads) != fmt.Sprint(mirrorState.Workloads) {
		t.Errorf("reported state %v, want what the snapshotter saw: %v", mirrorState.Workloads, shopState.Workloads)
	}
	// In a reported environment a release approval documents a deployment:
	// "web" has provenance but no approval for mirror yet.
	var mirror struct {
		Artifacts []struct{ Workload, Status string }
	}
	get("/api/v1/environments/mirror/compliance", &mirror)
	for _, a := range mirror.Artifacts {
		if a.Workload == "Pod/web" && a.Status != "undocumented" {
			t.Errorf("web in mirror without approval: %s, want undocumented", a.Status)
		}
	}
	rm := mustToken(t, r, admin, "release-manager", "approvals:write")
	api(t, r, rm, "POST", "/api/v1/approvals", `{"digest":"`+digestOf("good")+`","environment":"mirror","decision":"approved","reason":"CAB-7"}`)
	waitFor(t, 10*time.Second, "web compliant in mirror after its approval", func() bool {
		get("/api/v1/environments/mirror/compliance", &mirror)
		for _, a := range mirror.Artifacts {
			if a.Workload == "Pod/web" {
				return a.Status == "compliant"
			}
		}
		return false
	})

	// Gauges per environment and status.
	resp, err := http.Get("http://" + r.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `vouch_compliance_artifacts{environment="shop",status="failed"} 1`) {
		t.Errorf("no failed gauge for shop in /metrics")
	}
}

func mustKubectlApply(t *testing.T, manifest string) {
	t.Helper()
	if out, err := applyYAML(t, manifest); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// admitDirect sends Vouch's webhook an AdmissionReview for a pod, as the
// apiserver would had the webhook been registered.
func admitDirect(t *testing.T, r *replica, ns, name, image string) {
	t.Helper()
	body := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"drift-%s",
		"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
		"namespace":%q,"name":%q,"operation":"CREATE","userInfo":{"username":"deployer"},"object":%s}}`, name, ns, name, pod(ns, name, image))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS()}}
	resp, err := client.Post("https://"+r.webhook+"/validate", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var review struct{ Response struct{ Allowed bool } }
	json.NewDecoder(resp.Body).Decode(&review)
	if !review.Response.Allowed {
		t.Fatalf("admission of %s was denied", name)
	}
}

// insecureTLS trusts any certificate: the test talks to a process it just
// started on loopback.
func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }
