package kube

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/test/testlog"
)

// replica is one `vouch serve` process.
type replica struct {
	name         string
	cmd          *exec.Cmd
	api, webhook string
	log          *testlog.Buffer
	done         chan error
}

const vouchConfig = `
environments:
  - name: prod
    namespaces: ["prod"]
    require:
      digest: true
      provenance: true
      attestations: ["unit-tests"]
      approval: true
    allow: ["registry.k8s.io/pause"]
  - name: canary
    namespaces: ["canary"]
    require: {digest: true}
    mode: warn
`

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startReplica starts vouch serve against the cluster and the shared
// database, keeping its webhook certificate in the vouch-tls Secret.
func startReplica(t *testing.T, name, dbURL, keyFile, adminToken string) *replica {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vouch.yaml")
	os.WriteFile(cfg, []byte(vouchConfig), 0o644)
	r := &replica{name: name, api: freePort(t), webhook: freePort(t), log: &testlog.Buffer{}, done: make(chan error, 1)}
	r.cmd = exec.Command(vouchBin, "serve", "--config", cfg, "--data-dir", dir, "--api-addr", r.api, "--webhook-addr", r.webhook,
		"--kubeconfig", kube.Kubeconfig, "--namespace", "vouch-system", "--leader-election=true", "--leader-election-id", "vouch",
		"--webhook-secret", "vouch-tls", "--webhook-configuration", "vouch", "--journal-key-file", keyFile,
		"--checkpoint-interval", "500ms")
	r.cmd.Env = append(os.Environ(), "VOUCH_DATABASE_URL="+dbURL, "VOUCH_ADMIN_TOKEN="+adminToken, "POD_NAME="+name)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		r.stop(t)
		if t.Failed() {
			t.Logf("%s log:\n%s", name, r.log)
		}
	})
	waitFor(t, 60*time.Second, name+" ready", func() bool {
		resp, err := http.Get("http://" + r.api + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return r
}

func (r *replica) stop(t *testing.T) {
	if r.cmd.ProcessState != nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
}

// decisions returns the UIDs of the non-dry-run decisions a replica logged.
func (r *replica) decisions() map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(r.log.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg    string `json:"msg"`
			UID    string `json:"uid"`
			DryRun bool   `json:"dry_run"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "admission decided" && !l.DryRun {
			out[l.UID] = true
		}
	}
	return out
}

// roundRobin forwards TCP connections to the backends in turn: the
// Service in front of the replicas.
func roundRobin(t *testing.T, backends ...string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Uint64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// The next backend that answers, as a Service with readiness would.
				var b net.Conn
				first := n.Add(1)
				for i := uint64(0); i < uint64(len(backends)) && b == nil; i++ {
					b, _ = net.Dial("tcp", backends[(first+i)%uint64(len(backends))])
				}
				if b == nil {
					return
				}
				defer b.Close()
				go io.Copy(b, c)
				io.Copy(c, b)
			}()
		}
	}()
	return l.Addr().String()
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// api calls the Vouch API of a replica.
func api(t *testing.T, r *replica, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+r.api+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func deployment(ns, name string, images ...string) string {
	var cs []string
	for i, img := range images {
		cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":%q}`, i, img))
	}
	return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%q,"namespace":%q},
"spec":{"replicas":1,"selector":{"matchLabels":{"app":%q}},"template":{"metadata":{"labels":{"app":%q}},"spec":{"containers":[%s]}}}}`,
		name, ns, name, name, strings.Join(cs, ","))
}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestKubernetesEndToEnd runs two vouch replicas on one PostgreSQL behind
// one ValidatingWebhookConfiguration rendered from the chart, and drives
// the real apiserver with kubectl.
func TestKubernetesEndToEnd(t *testing.T) {
	needCluster(t)
	kubectl(t, "create", "namespace", "vouch-system")
	for _, ns := range []string{"apps", "prod", "canary"} {
		mustKubectl(t, "create", "namespace", ns)
		mustKubectl(t, "-n", ns, "create", "serviceaccount", "default") // no controller-manager makes it
	}
	mustKubectl(t, "label", "namespace", "prod", "team=payments") // reaches decisions as input.namespace
	dbURL := pg.Database(t)
	keyFile := filepath.Join(t.TempDir(), "journal.key")
	admin := strings.Repeat("a", 40)
	// Migrate once before the replicas race (they can, but the log is calmer).
	a := startReplica(t, "vouch-a", dbURL, keyFile, admin)
	b := startReplica(t, "vouch-b", dbURL, keyFile, admin)
	lb := roundRobin(t, a.webhook, b.webhook)

	// The webhook configuration, rendered from the chart, pointing at the replicas.
	objs, err := render(t, map[string]any{"webhook": map[string]any{"url": "https://" + lb + "/validate"}})
	if err != nil {
		t.Fatal(err)
	}
	vwc, _ := json.Marshal(objs["ValidatingWebhookConfiguration/vouch"])
	if out, err := applyYAML(t, string(vwc)); err != nil {
		t.Fatalf("register the webhook: %v\n%s", err, out)
	}
	t.Cleanup(func() { kubectl(t, "delete", "validatingwebhookconfiguration", "vouch", "--ignore-not-found") })

	// The leader creates the certificate Secret and patches the caBundle;
	// both replicas then serve the Secret's certificate.
	waitFor(t, 60*time.Second, "caBundle patched by the leader", func() bool {
		out, _ := kubectl(t, "get", "validatingwebhookconfiguration", "vouch", "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}")
		return len(out) > 100
	})
	ca, _ := kubectl(t, "get", "validatingwebhookconfiguration", "vouch", "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}")
	secretCA, _ := kubectl(t, "-n", "vouch-system", "get", "secret", "vouch-tls", "-o", "jsonpath={.data.ca\\.crt}")
	if ca != secretCA {
		t.Fatalf("caBundle and the Secret's CA differ")
	}
	holder := mustKubectl(t, "-n", "vouch-system", "get", "lease", "vouch", "-o", "jsonpath={.spec.holderIdentity}")
	if !strings.HasPrefix(holder, "vouch-a_") && !strings.HasPrefix(holder, "vouch-b_") {
		t.Errorf("lease holder = %q, want one of the replicas", holder)
	}
	if _, err := base64.StdEncoding.DecodeString(ca); err != nil {
		t.Fatalf("caBundle is not base64: %v", err)
	}
	for _, r := range []*replica{a, b} {
		waitFor(t, 30*time.Second, r.name+" serving the Secret's certificate", func() bool {
			return strings.Contains(r.log.String(), "serving the webhook certificate from its secret")
		})
	}

	ci := mustToken(t, a, admin, "ci", "evidence:write")
	rm := mustToken(t, a, admin, "release-manager", "approvals:write")
	image := "registry.example.com/shop/web@" + digestOf("web-v1")
	image2 := "registry.example.com/shop/web@" + digestOf("web-v2")

	// 1. A tag image: denied, with Vouch's message.
	out, err := applyYAML(t, deployment("apps", "web", "nginx:1.27"))
	if err == nil || !strings.Contains(out, `admission webhook "validate.vouch.dev" denied the request`) || !strings.Contains(out, `image nginx:1.27 is not pinned by digest (required in default)`) {
		t.Fatalf("tag image: err %v, output:\n%s", err, out)
	}
	// In warn mode the same change is admitted, and kubectl prints why it
	// would have been denied.
	f := filepath.Join(t.TempDir(), "canary.yaml")
	os.WriteFile(f, []byte(deployment("canary", "web", "nginx:1.27")), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	stdout, stderr, err := kube.Kubectl(ctx, "apply", "-f", f)
	cancel()
	if err != nil || !strings.Contains(stderr, "Warning: would be denied in enforce mode: ") || !strings.Contains(stderr, "image nginx:1.27 is not pinned by digest (required in canary)") {
		t.Fatalf("warn mode: err %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	// 2. Pinned, no provenance: denied.
	if out, err := applyYAML(t, deployment("apps", "web", image)); err == nil || !strings.Contains(out, "has no provenance") {
		t.Fatalf("no provenance: err %v, output:\n%s", err, out)
	}
	// Dry runs reach Vouch, get the same answer, and are not journaled.
	if out, err := applyYAML(t, deployment("apps", "web", image), "--dry-run=server"); err == nil || !strings.Contains(out, "has no provenance") {
		t.Fatalf("dry run: err %v, output:\n%s", err, out)
	}
	// 3. After CI reports the build: admitted, client-side and server-side apply alike.
	for _, d := range []string{digestOf("web-v1"), digestOf("web-v2")} {
		if code, out := api(t, a, ci, "POST", "/api/v1/artifacts", `{"name":"registry.example.com/shop/web","digest":"`+d+`"}`); code != 201 {
			t.Fatalf("report: %d %v", code, out)
		}
	}
	if out, err := applyYAML(t, deployment("apps", "web", image), "--dry-run=server"); err != nil {
		t.Fatalf("dry run with evidence: %v\n%s", err, out)
	}
	if out, err := applyYAML(t, deployment("apps", "web", image)); err != nil {
		t.Fatalf("with provenance: %v\n%s", err, out)
	}
	if out, err := applyYAML(t, deployment("apps", "api", image), "--server-side", "--field-manager=argocd-controller"); err != nil {
		t.Fatalf("server-side apply: %v\n%s", err, out)
	}
	if out, err := applyYAML(t, deployment("apps", "api2", "nginx:1.27"), "--server-side", "--field-manager=argocd-controller"); err == nil || !strings.Contains(out, "is not pinned by digest") {
		t.Fatalf("server-side apply of a tag image: err %v\n%s", err, out)
	}

	// The apiserver keeps its connection to whichever replica it reached:
	// stop that one, and the other takes over admissions and leadership.
	first, second := a, b
	if len(b.decisions()) > len(a.decisions()) {
		first, second = b, a
	}
	first.stop(t)
	waitFor(t, 30*time.Second, "the other replica leads", func() bool {
		out, _ := kubectl(t, "-n", "vouch-system", "get", "lease", "vouch", "-o", "jsonpath={.spec.holderIdentity}")
		return strings.HasPrefix(out, second.name+"_")
	})

	// 4. prod needs a passed attestation and an approval for each digest.
	api(t, second, ci, "POST", "/api/v1/attestations", `{"digest":"`+digestOf("web-v1")+`","name":"unit-tests","passed":true}`)
	api(t, second, ci, "POST", "/api/v1/attestations", `{"digest":"`+digestOf("web-v2")+`","name":"unit-tests","passed":true}`)
	api(t, second, rm, "POST", "/api/v1/approvals", `{"digest":"`+digestOf("web-v1")+`","environment":"prod","decision":"approved"}`)
	if out, err := applyYAML(t, deployment("prod", "web", image, "registry.k8s.io/pause:3.10")); err != nil {
		t.Fatalf("prod with evidence and approval: %v\n%s", err, out)
	}
	if out, err := applyYAML(t, deployment("prod", "web", image2, "registry.k8s.io/pause:3.10")); err == nil || !strings.Contains(out, "has no release approval for prod") {
		t.Fatalf("update to an unapproved digest: err %v\n%s", err, out)
	}
	api(t, second, rm, "POST", "/api/v1/approvals", `{"digest":"`+digestOf("web-v2")+`","environment":"prod","decision":"approved","reason":"CAB-7"}`)
	if out, err := applyYAML(t, deployment("prod", "web", image2, "registry.k8s.io/pause:3.10")); err != nil {
		t.Fatalf("update after approval: %v\n%s", err, out)
	}

	// 5. Every workload kind and container type is checked.
	podSpec := func(kind, init, main string) string {
		restart := `"Never"`
		if kind == "StatefulSet" || kind == "DaemonSet" {
			restart = `"Always"`
		}
		return fmt.Sprintf(`{"initContainers":[{"name":"init","image":%q}],"containers":[{"name":"main","image":%q}],"restartPolicy":%s}`, init, main, restart)
	}
	kinds := map[string]string{
		"StatefulSet": `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"NAME","namespace":"apps"},"spec":{"serviceName":"x","selector":{"matchLabels":{"a":"NAME"}},"template":{"metadata":{"labels":{"a":"NAME"}},"spec":SPEC}}}`,
		"DaemonSet":   `{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"NAME","namespace":"apps"},"spec":{"selector":{"matchLabels":{"a":"NAME"}},"template":{"metadata":{"labels":{"a":"NAME"}},"spec":SPEC}}}`,
		"Job":         `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"NAME","namespace":"apps"},"spec":{"template":{"spec":SPEC}}}`,
		"CronJob":     `{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"NAME","namespace":"apps"},"spec":{"schedule":"0 * * * *","jobTemplate":{"spec":{"template":{"spec":SPEC}}}}}`,
		"Pod":         `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"NAME","namespace":"apps"},"spec":SPEC}`,
	}
	for kind, tmpl := range kinds {
		name := strings.ToLower(kind)
		bad := strings.NewReplacer("NAME", name, "SPEC", podSpec(kind, "busybox:1.36", image)).Replace(tmpl)
		if out, err := applyYAML(t, bad); err == nil || !strings.Contains(out, `init container "init": image busybox:1.36 is not pinned`) {
			t.Errorf("%s with an unpinned init container: err %v\n%s", kind, err, out)
		}
		good := strings.NewReplacer("NAME", name, "SPEC", podSpec(kind, image, image)).Replace(tmpl)
		if out, err := applyYAML(t, good); err != nil {
			t.Errorf("%s with evidence: %v\n%s", kind, err, out)
		}
	}
	// The ephemeralcontainers subresource: a debug container needs evidence too.
	patch := `{"spec":{"ephemeralContainers":[{"name":"debug","image":"busybox:1.36","targetContainerName":"main"}]}}`
	if out, err := kubectl(t, "-n", "apps", "patch", "pod", "pod", "--subresource=ephemeralcontainers", "--type=strategic", "-p", patch); err == nil || !strings.Contains(out, `ephemeral container "debug": image busybox:1.36 is not pinned`) {
		t.Errorf("unpinned ephemeral container: err %v\n%s", err, out)
	}
	patch = strings.Replace(patch, "busybox:1.36", image, 1)
	if out, err := kubectl(t, "-n", "apps", "patch", "pod", "pod", "--subresource=ephemeralcontainers", "--type=strategic", "-p", patch); err != nil {
		t.Errorf("ephemeral container with evidence: %v\n%s", err, out)
	}

	// 6. Never blocked: kube-system, scale, status, delete.
	if out, err := applyYAML(t, deployment("kube-system", "tagged", "nginx:1.27")); err != nil {
		t.Errorf("kube-system blocked: %v\n%s", err, out)
	}
	if out, err := kubectl(t, "-n", "apps", "scale", "deployment", "web", "--replicas=3"); err != nil {
		t.Errorf("scale blocked: %v\n%s", err, out)
	}
	if out, err := kubectl(t, "-n", "apps", "delete", "deployment", "api"); err != nil {
		t.Errorf("delete blocked: %v\n%s", err, out)
	}

	// 7. The journal holds exactly the non-dry-run decisions, from both replicas.
	auditor := mustToken(t, second, admin, "auditor", "audit:read")
	journaled := map[string]bool{}
	prodLabels := map[string]any{}
	for next := 0; ; {
		code, page := api(t, second, auditor, "GET", fmt.Sprintf("/api/v1/journal/entries?kind=admission&limit=1000&from=%d", next), "")
		if code != 200 {
			t.Fatalf("journal: %d %v", code, page)
		}
		for _, e := range page["entries"].([]any) {
			body := e.(map[string]any)["body"].(map[string]any)
			journaled[body["uid"].(string)] = true
			if body["namespace"] == "prod" {
				prodLabels, _ = body["namespace_labels"].(map[string]any)
			}
		}
		if page["next"] == nil {
			break
		}
		next = int(page["next"].(float64))
	}
	logged := map[string]bool{}
	perReplica := map[string]int{}
	for _, r := range []*replica{a, b} {
		for uid := range r.decisions() {
			logged[uid] = true
			perReplica[r.name]++
		}
	}
	if prodLabels["team"] != "payments" {
		t.Errorf("a decision in prod journaled namespace labels %v, want the namespace's team=payments", prodLabels)
	}
	if len(journaled) != len(logged) {
		t.Errorf("journal holds %d decisions, the replicas logged %d non-dry-run decisions", len(journaled), len(logged))
	}
	for uid := range logged {
		if !journaled[uid] {
			t.Errorf("decision %s is not in the journal", uid)
		}
	}
	if perReplica["vouch-a"] == 0 || perReplica["vouch-b"] == 0 {
		t.Errorf("decisions per replica = %v: both should have answered", perReplica)
	}
	if second.cmd.ProcessState != nil {
		t.Fatal("the remaining replica exited")
	}
	t.Logf("%d decisions journaled (replica a %d, b %d), dry runs not journaled", len(journaled), perReplica["vouch-a"], perReplica["vouch-b"])

	// 8. Vouch down: changes are refused (failurePolicy Fail); back up: they go through.
	second.stop(t)
	if out, err := applyYAML(t, deployment("apps", "down", image)); err == nil || !strings.Contains(out, "failed calling webhook") {
		t.Errorf("with Vouch down: err %v\n%s", err, out)
	}
	a = startReplica(t, "vouch-a2", dbURL, keyFile, admin)
	b = startReplica(t, "vouch-b2", dbURL, keyFile, admin)
	lb2 := roundRobin(t, a.webhook, b.webhook)
	objs, _ = render(t, map[string]any{"webhook": map[string]any{"url": "https://" + lb2 + "/validate", "caBundle": ca}})
	vwc, _ = json.Marshal(objs["ValidatingWebhookConfiguration/vouch"])
	if out, err := applyYAML(t, string(vwc)); err != nil {
		t.Fatalf("re-point the webhook: %v\n%s", err, out)
	}
	waitFor(t, 60*time.Second, "admissions again after Vouch is back", func() bool {
		_, err := applyYAML(t, deployment("apps", "down", image))
		return err == nil
	})
}

func mustToken(t *testing.T, r *replica, admin, name, scopes string) string {
	t.Helper()
	code, out := api(t, r, admin, "POST", "/api/v1/tokens", fmt.Sprintf(`{"name":%q,"scopes":[%q]}`, name, scopes))
	if code != 201 {
		t.Fatalf("create token %s: %d %v", name, code, out)
	}
	return out["secret"].(string)
}
