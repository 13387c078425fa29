//go:build unix

package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// KubernetesVersion is the version of kube-apiserver and kubectl that Build
// produces; test/cluster/tools/go.mod pins the same version.
const KubernetesVersion = "v1.37.2"

// Binaries holds the paths of the programs a cluster runs.
type Binaries struct {
	Etcd          string
	KubeAPIServer string
	Kubectl       string
}

// markerName is the file, written last, that says the binaries beside it are
// complete and for which inputs they were built.
const markerName = "built.stamp"

var (
	buildMu   sync.Mutex
	buildDone Binaries // set once a Build in this process succeeded
)

// Build returns the cluster's binaries, building them with the go command
// into the cache directory first if they are missing or were built from other
// inputs. The cache directory is $VOUCH_CLUSTER_CACHE, or
// vouch/cluster-v1.37.2 under the user's cache directory ($XDG_CACHE_HOME or
// ~/.cache). A lock file serialises builds from concurrent test processes,
// and binaries are built under temporary names and renamed into place, so an
// interrupted build never leaves a partial binary behind.
func Build(ctx context.Context) (Binaries, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDone != (Binaries{}) {
		return buildDone, nil
	}
	b, err := build(ctx)
	if err != nil {
		return Binaries{}, err
	}
	buildDone = b
	return b, nil
}

func build(ctx context.Context) (Binaries, error) {
	tools, err := toolsDir()
	if err != nil {
		return Binaries{}, err
	}
	cache, err := cacheDir()
	if err != nil {
		return Binaries{}, err
	}
	stamp, err := buildStamp(tools)
	if err != nil {
		return Binaries{}, err
	}
	bins := Binaries{
		Etcd:          filepath.Join(cache, "etcd"),
		KubeAPIServer: filepath.Join(cache, "kube-apiserver"),
		Kubectl:       filepath.Join(cache, "kubectl"),
	}
	if upToDate(cache, stamp, bins) {
		return bins, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("cluster: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(cache, ".lock"))
	if err != nil {
		return Binaries{}, err
	}
	defer unlock()
	// Another process may have built them while this one waited.
	if upToDate(cache, stamp, bins) {
		return bins, nil
	}
	if err := goBuild(ctx, tools, cache, stamp); err != nil {
		return Binaries{}, err
	}
	return bins, nil
}

// toolsDir finds test/cluster/tools beside this source file, or, when the
// test binary was built with -trimpath, from the main module's directory.
func toolsDir() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dir := filepath.Join(filepath.Dir(file), "tools")
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("cluster: locating test/cluster/tools: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("cluster: locating test/cluster/tools: not inside the vouch module")
	}
	dir := filepath.Join(filepath.Dir(gomod), "test", "cluster", "tools")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("cluster: locating test/cluster/tools: %w", err)
	}
	return dir, nil
}

func cacheDir() (string, error) {
	if dir := os.Getenv("VOUCH_CLUSTER_CACHE"); dir != "" {
		return filepath.Abs(dir)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cluster: no cache directory (set VOUCH_CLUSTER_CACHE): %w", err)
	}
	return filepath.Join(base, "vouch", "cluster-"+KubernetesVersion), nil
}

// ldflags stamps the Kubernetes version into kube-apiserver and kubectl, as
// the Kubernetes release build does.
func ldflags() string {
	flags := []string{"-s", "-w"}
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		major, minor, _ := strings.Cut(strings.TrimPrefix(KubernetesVersion, "v"), ".")
		minor, _, _ = strings.Cut(minor, ".")
		flags = append(flags,
			"-X", pkg+".gitVersion="+KubernetesVersion,
			"-X", pkg+".gitMajor="+major,
			"-X", pkg+".gitMinor="+minor,
			"-X", pkg+".gitTreeState=archive",
		)
	}
	return strings.Join(flags, " ")
}

// buildStamp identifies the inputs of a build: the tools module's files, the
// link flags and the target platform. The Go version is left out on purpose,
// so that a toolchain upgrade does not cost a rebuild of several minutes.
func buildStamp(tools string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s/%s\n", KubernetesVersion, ldflags(), runtime.GOOS, runtime.GOARCH)
	for _, name := range []string{"go.mod", "go.sum", "tools.go", filepath.Join("etcd", "main.go")} {
		data, err := os.ReadFile(filepath.Join(tools, name))
		if err != nil {
			return "", fmt.Errorf("cluster: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
	}
	return KubernetesVersion + " " + hex.EncodeToString(h.Sum(nil)), nil
}

func upToDate(cache, stamp string, bins Binaries) bool {
	data, err := os.ReadFile(filepath.Join(cache, markerName))
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(data), "\n")
	if first != stamp {
		return false
	}
	for _, p := range []string{bins.Etcd, bins.KubeAPIServer, bins.Kubectl} {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// lock takes an exclusive flock on path, waiting for ctx while another
// process holds it.
func lock(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("cluster: locking %s: %w", path, err)
		}
		if !told {
			fmt.Fprintf(os.Stderr, "cluster: waiting for another process building the cluster binaries (%s)\n", path)
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("cluster: waiting for %s: %w", path, context.Cause(ctx))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// goBuild builds the three binaries into a temporary directory in cache,
// renames them into place and then writes the marker. The caller holds the
// lock.
func goBuild(ctx context.Context, tools, cache, stamp string) error {
	// Leftovers of builds that were killed.
	if old, _ := filepath.Glob(filepath.Join(cache, ".build-*")); len(old) > 0 {
		for _, dir := range old {
			os.RemoveAll(dir)
		}
	}
	tmp, err := os.MkdirTemp(cache, ".build-")
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer os.RemoveAll(tmp)

	fmt.Fprintf(os.Stderr, "cluster: building etcd, kube-apiserver %s and kubectl %s into %s (first run takes several minutes)…\n",
		KubernetesVersion, KubernetesVersion, cache)
	start := time.Now()
	cmd := exec.Command("go", "build", "-ldflags="+ldflags(), "-o", tmp+string(filepath.Separator),
		"./etcd", "k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kubectl")
	cmd.Dir = tools
	cmd.Env = append(os.Environ(),
		"GOWORK=off",
		"CGO_ENABLED=0",
		"GOFLAGS=-mod=readonly -buildvcs=false",
	)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = io.MultiWriter(&out, os.Stderr)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cluster: starting go build (is the Go toolchain on PATH?): %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case err = <-done:
			waiting = false
		case <-tick.C:
			fmt.Fprintf(os.Stderr, "cluster: still building (%s)…\n", time.Since(start).Round(time.Second))
		case <-ctx.Done():
			// The go command runs the compiler and linker as children;
			// stop all of them.
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			return fmt.Errorf("cluster: building the cluster binaries, stopped after %s: %w "+
				"(a first build takes several minutes; the Go build cache keeps what was compiled, "+
				"so running again goes on from there, or give go test a longer -timeout)",
				time.Since(start).Round(time.Second), context.Cause(ctx))
		}
	}
	if err != nil {
		return fmt.Errorf("cluster: go build in %s: %w\n%s", tools, err, out.Bytes())
	}

	// The marker goes first and comes back last: binaries from two
	// different builds are never taken for a complete set.
	marker := filepath.Join(cache, markerName)
	if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cluster: %w", err)
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kubectl"} {
		if err := os.Rename(filepath.Join(tmp, name), filepath.Join(cache, name)); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	gover, _ := exec.Command("go", "env", "GOVERSION").Output()
	info := fmt.Sprintf("%s\nbuilt %s with %s in %s\n", stamp, time.Now().UTC().Format(time.RFC3339),
		strings.TrimSpace(string(gover)), time.Since(start).Round(time.Second))
	if err := os.WriteFile(filepath.Join(tmp, markerName), []byte(info), 0o644); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if err := os.Rename(filepath.Join(tmp, markerName), marker); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	fmt.Fprintf(os.Stderr, "cluster: built the cluster binaries in %s\n", time.Since(start).Round(time.Second))
	return nil
}
