package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/mod/modfile"
)

const (
	opaModule   = "github.com/open-policy-agent/opa"
	opaToolsDir = "test/bench/opa" // a module of its own: OPA's command stays out of Vouch's go.mod
)

// buildOPA returns the opa binary of the given version, built with the go
// command from test/bench/opa (through the module proxy) into
// $VOUCH_OPA_CACHE, or vouch/opa-VERSION under the user's cache directory,
// unless a binary built from the same inputs is there already. The binary is
// built under a temporary name and renamed into place.
func buildOPA(version string) (string, error) {
	cache := os.Getenv("VOUCH_OPA_CACHE")
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("opa: no cache directory (set VOUCH_OPA_CACHE): %w", err)
		}
		cache = filepath.Join(base, "vouch", "opa-"+version)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s %s\n", version, runtime.GOOS, runtime.GOARCH, runtime.Version())
	for _, name := range []string{"go.mod", "go.sum", "tools.go"} {
		b, err := os.ReadFile(filepath.Join(opaToolsDir, name))
		if err != nil {
			return "", fmt.Errorf("opa: %w (run from the repository's top directory)", err)
		}
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	stamp := hex.EncodeToString(h.Sum(nil))
	bin, stampFile := filepath.Join(cache, "opa"), filepath.Join(cache, "opa.stamp")
	if b, err := os.ReadFile(stampFile); err == nil && string(b) == stamp {
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.build-%d", bin, os.Getpid())
	defer os.Remove(tmp)
	fmt.Fprintf(os.Stderr, "compare: building opa %s into %s (a few minutes the first time)…\n", version, cache)
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", tmp, opaModule)
	cmd.Dir = opaToolsDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0", "GOFLAGS=-mod=readonly -buildvcs=false")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("opa: go build %s in %s: %w", opaModule, opaToolsDir, err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	if err := os.WriteFile(stampFile, []byte(stamp), 0o644); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "compare: built opa in %s\n", time.Since(start).Round(time.Second))
	return bin, nil
}

// requiredVersion returns the version of module that the go.mod file
// requires.
func requiredVersion(gomod, module string) (string, error) {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "", fmt.Errorf("%w (run from the repository's top directory)", err)
	}
	f, err := modfile.ParseLax(gomod, b, nil)
	if err != nil {
		return "", err
	}
	for _, r := range f.Require {
		if r.Mod.Path == module {
			return r.Mod.Version, nil
		}
	}
	return "", fmt.Errorf("%s does not require %s", gomod, module)
}
