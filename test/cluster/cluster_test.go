//go:build unix

package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCluster builds the binaries, starts a cluster, uses it with kubectl and
// stops it. A missing toolchain or a failed build fails the test; only -short
// skips it.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver (and may build them for minutes); skipped with -short")
	}
	ctx, cancel := testContext(t)
	defer cancel()

	start := time.Now()
	bins, err := Build(ctx)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Logf("Build: %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	c, err := Start(ctx, Options{Binaries: bins})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { c.Stop() })
	t.Logf("Start: ready at %s in %s", c.Server, time.Since(start).Round(time.Millisecond))

	kubectl := func(args ...string) string {
		t.Helper()
		out, _, err := c.Kubectl(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	var version struct {
		ClientVersion struct{ GitVersion string } `json:"clientVersion"`
		ServerVersion struct{ GitVersion string } `json:"serverVersion"`
	}
	if err := json.Unmarshal([]byte(kubectl("version", "-o", "json")), &version); err != nil {
		t.Fatalf("kubectl version -o json: %v", err)
	}
	t.Logf("kubectl version: client %s, server %s", version.ClientVersion.GitVersion, version.ServerVersion.GitVersion)
	if version.ClientVersion.GitVersion != KubernetesVersion || version.ServerVersion.GitVersion != KubernetesVersion {
		t.Errorf("kubectl version: client %q, server %q; want %s for both",
			version.ClientVersion.GitVersion, version.ServerVersion.GitVersion, KubernetesVersion)
	}

	namespaces := strings.Fields(kubectl("get", "namespaces", "-o", "name"))
	for _, want := range []string{"namespace/default", "namespace/kube-system"} {
		if !slices.Contains(namespaces, want) {
			t.Errorf("kubectl get namespaces: %q lacks %s", namespaces, want)
		}
	}

	kubectl("create", "namespace", "vouch-e2e")
	kubectl("-n", "vouch-e2e", "create", "configmap", "settings", "--from-literal=mode=strict")
	if got := kubectl("-n", "vouch-e2e", "get", "configmap", "settings", "-o", "jsonpath={.data.mode}"); got != "strict" {
		t.Errorf("configmap settings: data.mode = %q, want strict", got)
	}
	// The admin token is in system:masters, which RBAC lets do anything.
	if got := strings.TrimSpace(kubectl("auth", "can-i", "delete", "namespaces")); got != "yes" {
		t.Errorf("kubectl auth can-i delete namespaces = %q, want yes", got)
	}

	pids := []int{c.apiserver.cmd.Process.Pid, c.etcd.cmd.Process.Pid}
	start = time.Now()
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop: %s", time.Since(start).Round(time.Millisecond))
	for _, p := range []*process{c.apiserver, c.etcd} {
		if !p.exited() {
			t.Errorf("%s still running after Stop", p.name)
		}
	}
	// Both were reaped, so their pids (and process groups) are gone.
	for _, pid := range pids {
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d after Stop: kill 0 = %v, want ESRCH", pid, err)
		}
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after Stop: %v, want it removed", c.Dir, err)
	}
}

// TestStartFailure checks that a kube-apiserver that cannot start makes Start
// fail with the end of its log, and leaves nothing behind.
func TestStartFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver (and may build them for minutes); skipped with -short")
	}
	ctx, cancel := testContext(t)
	defer cancel()
	bins, err := Build(ctx)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "vouch-cluster-*"))
	c, err := Start(ctx, Options{Binaries: bins, APIServerArgs: []string{"--authorization-mode=NoSuchMode"}})
	if err == nil {
		c.Stop()
		t.Fatal("Start succeeded with --authorization-mode=NoSuchMode")
	}
	first, _, _ := strings.Cut(err.Error(), "\n")
	t.Logf("Start: %s (then the ends of the logs)", first)
	for _, want := range []string{"kube-apiserver exited", "last lines of the kube-apiserver log", "NoSuchMode"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start error lacks %q:\n%v", want, err)
		}
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "vouch-cluster-*"))
	for _, dir := range after {
		if !slices.Contains(before, dir) {
			t.Errorf("Start left %s behind", dir)
		}
	}
}

// testContext returns a context that ends 30 seconds before the test's
// deadline (go test -timeout), so that a first build too slow for it fails
// the test with an explanation rather than a panic.
func testContext(t *testing.T) (context.Context, context.CancelFunc) {
	if deadline, ok := t.Deadline(); ok {
		return context.WithDeadline(context.Background(), deadline.Add(-30*time.Second))
	}
	return context.WithCancel(context.Background())
}
