package kube

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/test/cluster"
	"github.com/vouch-dev/vouch/test/pgtest"
)

var (
	kube     *cluster.Cluster
	pg       *pgtest.Server
	vouchBin string
)

// TestMain starts one kube-apiserver (built on first use, then cached) and
// one PostgreSQL for the whole package, and builds the vouch binary.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // chart tests only: the others need the cluster
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "vouch-kube-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	vouchBin = filepath.Join(dir, "vouch")
	// Built in the repository's own module (with its go.sum), not this one.
	build := exec.Command("go", "build", "-C", "../..", "-o", vouchBin, "./cmd/vouch")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build vouch:", err)
		return 1
	}
	if kube, err = cluster.Start(ctx, cluster.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer kube.Stop()
	if pg, err = pgtest.Start(pgtest.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pg.Stop()
	return m.Run()
}

// needCluster is for tests that need the apiserver; with -short there is none.
func needCluster(t *testing.T) {
	t.Helper()
	if kube == nil {
		t.Skip("needs the kube-apiserver: not run with -short")
	}
}

// kubectl runs kubectl against the test cluster.
func kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, errOut, err := kube.Kubectl(ctx, args...)
	if err != nil {
		return out + errOut, fmt.Errorf("kubectl %v: %w: %s", args, err, errOut)
	}
	return out, nil
}

// mustKubectl is kubectl that fails the test on error.
func mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := kubectl(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// applyYAML applies a manifest with extra kubectl flags.
func applyYAML(t *testing.T, manifest string, flags ...string) (string, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return kubectl(t, append([]string{"apply", "-f", f}, flags...)...)
}
