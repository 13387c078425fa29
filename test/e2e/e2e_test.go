// Package e2e runs `vouch serve` as a real process, on SQLite and on a real
// PostgreSQL, and drives it over the network as CI pipelines and the
// kube-apiserver would.
package e2e

import (
	"bytes"
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
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/vouch-dev/vouch/test/pgtest"
	"github.com/vouch-dev/vouch/test/testlog"
)

var (
	binary string
	pg     *pgtest.Server
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(0) // end-to-end tests need the full build and PostgreSQL
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "vouch-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "vouch")
	build := exec.Command("go", "build", "-o", binary, "github.com/vouch-dev/vouch/cmd/vouch")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build vouch:", err)
		return 1
	}
	if pg, err = pgtest.Start(pgtest.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pg.Stop()
	return m.Run()
}

// vouch is a running `vouch serve` process.
type vouch struct {
	t       *testing.T
	args    []string
	env     []string
	cmd     *exec.Cmd
	dataDir string
	api     string
	webhook string
	log     *testlog.Buffer
	done    chan error
	https   *http.Client
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

const config = `
environments:
  - name: prod
    namespaces: ["prod"]
    require:
      digest: true
      provenance: true
      attestations: ["unit-tests"]
      approval: true
    allow: ["registry.k8s.io/pause"]
  - name: build-servers # reported by "vouch snapshot paths"
`

// onEachStore runs test on SQLite (url "") and on a fresh PostgreSQL
// database.
func onEachStore(t *testing.T, test func(t *testing.T, backend, url string)) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			url := ""
			if backend == "postgres" {
				url = pg.Database(t)
			}
			test(t, backend, url)
		})
	}
}

func start(t *testing.T, databaseURL string, extra ...string) *vouch {
	t.Helper()
	return startConfig(t, config, databaseURL, extra...)
}

// startConfig starts vouch serve with the given YAML configuration.
func startConfig(t *testing.T, config, databaseURL string, extra ...string) *vouch {
	t.Helper()
	return startIn(t, t.TempDir(), config, databaseURL, extra...)
}

// startIn is startConfig on a data directory of the caller's.
func startIn(t *testing.T, dataDir, config, databaseURL string, extra ...string) *vouch {
	t.Helper()
	cfgFile := filepath.Join(dataDir, "vouch.yaml")
	if err := os.WriteFile(cfgFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	v := &vouch{t: t, dataDir: dataDir, api: freeAddr(t), webhook: freeAddr(t), log: &testlog.Buffer{}}
	v.args = append([]string{"serve", "--config", cfgFile, "--data-dir", dataDir, "--api-addr", v.api, "--webhook-addr", v.webhook}, extra...)
	v.env = append(os.Environ(), "VOUCH_DATABASE_URL="+databaseURL)
	t.Cleanup(func() {
		v.kill()
		if t.Failed() {
			t.Logf("vouch log:\n%s", v.log)
		}
	})
	v.launch()
	return v
}

// launch starts the process and waits until it is ready.
func (v *vouch) launch() {
	t := v.t
	t.Helper()
	v.done = make(chan error, 1)
	v.cmd = exec.Command(binary, v.args...)
	v.cmd.Env = v.env
	v.cmd.Stdout, v.cmd.Stderr = v.log, v.log
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { v.done <- v.cmd.Wait() }()
	ready := "http://" + v.api + "/readyz"
	readyClient := http.DefaultClient
	if slices.Contains(v.args, "--api-tls") {
		ready = "https://" + v.api + "/readyz"
		readyClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := readyClient.Get(ready)
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vouch not ready after 30s:\n%s", v.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ca, err := os.ReadFile(filepath.Join(v.dataDir, "ca.crt"))
	if err != nil {
		t.Fatalf("the generated CA was not written: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	v.https = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
}

// kill stops the process with SIGKILL, as a crash would, and waits for it.
func (v *vouch) kill() {
	if v.cmd != nil && v.cmd.ProcessState == nil {
		v.cmd.Process.Kill()
		<-v.done
	}
}

// restart starts the process again on the same data directory and flags.
func (v *vouch) restart() {
	v.t.Helper()
	v.kill()
	v.launch()
}

// cli runs a vouch CLI command against the server and returns its stdout.
func (v *vouch) cli(args ...string) string {
	v.t.Helper()
	out, errOut, code := v.exec(args...)
	if code != 0 {
		v.t.Fatalf("vouch %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return strings.TrimSpace(out)
}

// run runs a vouch CLI command and returns its output (stdout and stderr)
// and exit status.
func (v *vouch) run(args ...string) (string, int) {
	out, errOut, code := v.exec(args...)
	return out + errOut, code
}

func (v *vouch) exec(args ...string) (stdout, stderr string, code int) {
	v.t.Helper()
	return v.execEnv(nil, args...)
}

// execEnv runs a vouch CLI command with extra environment variables; those
// of the CI system the tests may run in are left out.
func (v *vouch) execEnv(env []string, args ...string) (stdout, stderr string, code int) {
	v.t.Helper()
	cmd := exec.Command(binary, args...)
	for _, kv := range os.Environ() {
		if !isCIVariable(kv) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, "VOUCH_SERVER=http://"+v.api, "VOUCH_DATA_DIR="+v.dataDir), env...)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		v.t.Fatal(err)
	}
	return string(out), errBuf.String(), code
}

// isCIVariable reports whether NAME=value is one of the variables vouch
// reads provenance defaults from.
func isCIVariable(kv string) bool {
	name, _, _ := strings.Cut(kv, "=")
	for _, p := range []string{"GITHUB_", "GITLAB_", "CI_", "TF_BUILD", "BUILD_", "SYSTEM_", "JENKINS_", "GIT_", "JOB_NAME"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func (v *vouch) post(token, path, body string) (int, map[string]any) {
	v.t.Helper()
	req, _ := http.NewRequest("POST", "http://"+v.api+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return do(v.t, http.DefaultClient, req)
}

func (v *vouch) get(token, path string) (int, map[string]any) {
	v.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+v.api+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return do(v.t, http.DefaultClient, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %v: %s", req.Method, req.URL, err, raw)
	}
	return resp.StatusCode, out
}

// admit sends an AdmissionReview for a Deployment over HTTPS.
func (v *vouch) admit(uid, namespace string, images ...string) *admissionv1.AdmissionResponse {
	v.t.Helper()
	return v.admitAnnotated(uid, namespace, nil, images...)
}

// admitAnnotated sends an AdmissionReview for a Deployment with
// annotations.
func (v *vouch) admitAnnotated(uid, namespace string, annotations map[string]string, images ...string) *admissionv1.AdmissionResponse {
	v.t.Helper()
	resp, err := v.review(uid, namespace, annotations, images...)
	if err != nil {
		v.t.Fatal(err)
	}
	return resp
}

// review sends an AdmissionReview for a Deployment and returns the
// answer, or an error when there was no valid one. Safe for goroutines.
func (v *vouch) review(uid, namespace string, annotations map[string]string, images ...string) (*admissionv1.AdmissionResponse, error) {
	var cs []string
	for i, img := range images {
		cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":%q}`, i, img))
	}
	ann, _ := json.Marshal(annotations)
	uidJSON, _ := json.Marshal(uid) // any UID, a NUL too
	body := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":%s,
		"kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},
		"namespace":%q,"name":"web","operation":"CREATE","userInfo":{"username":"kubectl-user"},
		"object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":%q,"annotations":%s},
		"spec":{"template":{"spec":{"containers":[%s]}}}}}}`, uidJSON, namespace, namespace, ann, strings.Join(cs, ","))
	resp, err := v.https.Post("https://"+v.webhook+"/validate", "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&review); err != nil || review.Response == nil || string(review.Response.UID) != uid {
		return nil, fmt.Errorf("bad AdmissionReview answer (%v): %+v", err, review)
	}
	return review.Response, nil
}

// stop sends SIGTERM and waits for a clean exit.
func (v *vouch) stop() {
	v.t.Helper()
	v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-v.done:
		if err != nil {
			v.t.Errorf("vouch exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		v.t.Fatal("vouch did not stop within 30s of SIGTERM")
	}
	if !strings.Contains(v.log.String(), `"msg":"stopped"`) {
		v.t.Errorf("no clean shutdown in the log:\n%s", v.log)
	}
}

func TestEndToEnd(t *testing.T) {
	onEachStore(t, func(t *testing.T, backend, url string) {
		v := start(t, url)
		ci := v.cli("token", "create", "--name", "ci-app", "--scopes", "evidence:write")
		rm := v.cli("token", "create", "--name", "release-manager", "--scopes", "approvals:write")
		auditor := v.cli("token", "create", "--name", "auditor", "--scopes", "audit:read")
		if !strings.HasPrefix(ci, "vouch_") {
			t.Fatalf("token create printed %q, want a secret", ci)
		}
		digest := "sha256:" + strings.Repeat("ab", 32)
		image := "registry.example.com/team/app@" + digest

		// No evidence: denied, saying what is missing.
		resp := v.admit("uid-deny", "default", image)
		wantMsg := `container "c0": image ` + image + ` has no provenance: no build with this digest was reported to Vouch (required in default)`
		if resp.Allowed || resp.Result.Message != wantMsg {
			t.Fatalf("without evidence: allowed=%v message=%q, want denied with %q", resp.Allowed, resp.Result.Message, wantMsg)
		}
		if resp := v.admit("uid-tag", "default", "nginx:1.27"); resp.Allowed || !strings.Contains(resp.Result.Message, "is not pinned by digest") {
			t.Errorf("tag image: %+v", resp)
		}

		// CI reports the build: admitted in the default environment.
		if code, out := v.post(ci, "/api/v1/artifacts", `{"name":"registry.example.com/team/app","digest":"`+digest+`","git_commit":"0123456789abcdef0123456789abcdef01234567","build_url":"https://ci.example.com/builds/42"}`); code != 201 {
			t.Fatalf("report artifact: %d %v", code, out)
		}
		if resp := v.admit("uid-admit", "default", image); !resp.Allowed {
			t.Fatalf("with provenance: denied: %s", resp.Result.Message)
		}

		// prod needs a passed unit-tests attestation and an approval.
		if resp := v.admit("uid-prod-1", "prod", image, "registry.k8s.io/pause:3.10"); resp.Allowed ||
			!strings.Contains(resp.Result.Message, `has no passed attestation "unit-tests" (required in prod)`) ||
			!strings.Contains(resp.Result.Message, "has no release approval for prod") {
			t.Fatalf("prod without attestation and approval: %+v", resp.Result)
		}
		if code, out := v.post(ci, "/api/v1/attestations", `{"digest":"`+digest+`","name":"unit-tests","type":"junit","passed":true,"url":"https://ci.example.com/builds/42/tests"}`); code != 201 {
			t.Fatalf("attest: %d %v", code, out)
		}
		if code, out := v.post(ci, "/api/v1/approvals", `{"digest":"`+digest+`","environment":"prod","decision":"approved"}`); code != 403 {
			t.Errorf("CI token approving: %d %v, want 403", code, out)
		}
		if code, out := v.post(rm, "/api/v1/approvals", `{"digest":"`+digest+`","environment":"prod","decision":"approved","reason":"CAB-1234"}`); code != 201 || out["approver"] != "release-manager" {
			t.Fatalf("approve: %d %v", code, out)
		}
		if resp := v.admit("uid-prod-2", "prod", image, "registry.k8s.io/pause:3.10"); !resp.Allowed {
			t.Fatalf("prod with evidence: denied: %s", resp.Result.Message)
		}

		// The journal holds every decision and every evidence record, in order.
		code, page := v.get(auditor, "/api/v1/journal/entries?limit=1000")
		if code != 200 {
			t.Fatalf("journal: %d %v", code, page)
		}
		var got []string
		for _, e := range page["entries"].([]any) {
			e := e.(map[string]any)
			body := e["body"].(map[string]any)
			switch e["kind"] {
			case "admission":
				got = append(got, fmt.Sprintf("admission %s allowed=%v", body["uid"], body["allowed"]))
			default:
				got = append(got, fmt.Sprint(e["kind"]))
			}
		}
		want := []string{
			"policy", "admission uid-deny allowed=false", "admission uid-tag allowed=false", "artifact",
			"admission uid-admit allowed=true", "admission uid-prod-1 allowed=false", "attestation", "approval",
			"admission uid-prod-2 allowed=true",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("journal =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}

		// Metrics count what happened.
		resp2, err := http.Get("http://" + v.api + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp2.Body)
		resp2.Body.Close()
		for _, m := range []string{
			`vouch_admissions_total{decision="allowed",dry_run="false",environment="prod"} 1`,
			`vouch_admissions_total{decision="denied",dry_run="false",environment="default"} 2`,
			`vouch_evidence_ingested_total{kind="artifact",result="created"} 1`,
			`vouch_journal_appends_total{result="committed"} 9`,
		} {
			if !strings.Contains(string(metrics), m) {
				t.Errorf("/metrics lacks %s", m)
			}
		}
		if strings.Contains(v.log.String(), ci) || strings.Contains(v.log.String(), rm) {
			t.Error("a token secret appears in the server log")
		}
		v.stop()
	})
}
