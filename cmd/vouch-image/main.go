// Command vouch-image builds Vouch's container image without Docker, as an
// OCI image layout (https://github.com/opencontainers/image-spec): the
// vouch binary built static (CGO_ENABLED=0, trimmed paths) for each
// platform, on an empty base, run as the unprivileged user 65532 the chart
// expects. Every timestamp is the commit's time, so the same commit builds
// the same image digest. Push the layout with any OCI tool:
//
//	go run ./cmd/vouch-image --out bin/image
//	crane push bin/image registry.example.com/platform/vouch:v1.2.3
//	skopeo copy --all oci:bin/image docker://registry.example.com/platform/vouch:v1.2.3
package main

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Media types of the OCI image specification.
const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// The user the image runs as: the chart's runAsUser and fsGroup.
const (
	uid     = 65532
	dataDir = "var/lib/vouch"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "vouch-image:", err)
		os.Exit(1)
	}
}

type options struct {
	out, pkg, goCmd, version, revision, source string
	platforms                                  []platform
	created                                    time.Time
}

func run(args []string) error {
	fs := flag.NewFlagSet("vouch-image", flag.ContinueOnError)
	var o options
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated os/arch[/variant] to build for")
	fs.StringVar(&o.out, "out", "bin/image", "directory to write the OCI image layout to (replaced)")
	fs.StringVar(&o.pkg, "package", "./cmd/vouch", "the Go package of the vouch command")
	fs.StringVar(&o.goCmd, "go", "go", "the go command")
	fs.StringVar(&o.version, "version", gitOr("dev", "describe", "--tags", "--always", "--dirty"), "version stamped into the binary and the image")
	fs.StringVar(&o.revision, "revision", gitOr("", "rev-parse", "HEAD"), "source revision label")
	fs.StringVar(&o.source, "source", "https://github.com/vouch-dev/vouch", "source repository label")
	epoch := fs.String("source-date-epoch", cmp.Or(os.Getenv("SOURCE_DATE_EPOCH"), gitOr("0", "log", "-1", "--format=%ct")), "the image's timestamps, in seconds since 1970 (default: $SOURCE_DATE_EPOCH, else the commit's time)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	secs, err := strconv.ParseInt(*epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("--source-date-epoch %q: want seconds since 1970", *epoch)
	}
	o.created = time.Unix(secs, 0).UTC()
	for _, p := range strings.Split(*platforms, ",") {
		pl, err := parsePlatform(strings.TrimSpace(p))
		if err != nil {
			return err
		}
		o.platforms = append(o.platforms, pl)
	}
	digest, err := build(o)
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", digest)
	fmt.Fprintf(os.Stderr, "built vouch %s for %s into %s (image %s)\npush it with: crane push %s REGISTRY/vouch:%s\n",
		o.version, *platforms, o.out, digest, o.out, o.version)
	return nil
}

// gitOr is git's answer, or def when git cannot answer (no repository).
func gitOr(def string, args ...string) string {
	out, err := exec.Command("git", args...).Output()
	if s := strings.TrimSpace(string(out)); err == nil && s != "" {
		return s
	}
	return def
}

type platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

func parsePlatform(s string) (platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant, e.g. linux/amd64", s)
	}
	p := platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func (p platform) String() string {
	return strings.TrimSuffix(p.OS+"/"+p.Architecture+"/"+p.Variant, "/")
}

// descriptor points at a blob.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// layout writes blobs into an OCI image layout.
type layout struct{ dir string }

func (l layout) put(mediaType string, b []byte) (descriptor, error) {
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(l.dir, "blobs", "sha256", h), b, 0o644); err != nil {
		return descriptor{}, err
	}
	return descriptor{MediaType: mediaType, Digest: "sha256:" + h, Size: int64(len(b))}, nil
}

func (l layout) putJSON(mediaType string, v any) (descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return descriptor{}, err
	}
	return l.put(mediaType, b)
}

// build writes the layout and returns the image index's digest.
func build(o options) (string, error) {
	if err := clearOut(o.out); err != nil {
		return "", err
	}
	l := layout{dir: o.out}
	if err := os.MkdirAll(filepath.Join(o.out, "blobs", "sha256"), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "vouch-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	annotations := map[string]string{
		"org.opencontainers.image.created":  o.created.Format(time.RFC3339),
		"org.opencontainers.image.version":  o.version,
		"org.opencontainers.image.revision": o.revision,
		"org.opencontainers.image.source":   o.source,
		"org.opencontainers.image.title":    "vouch",
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	var manifests []descriptor
	for _, p := range o.platforms {
		bin := filepath.Join(tmp, "vouch-"+strings.ReplaceAll(p.String(), "/", "-"))
		if err := goBuild(o, p, bin); err != nil {
			return "", err
		}
		m, err := l.image(p, bin, o, annotations)
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		manifests = append(manifests, m)
	}
	index, err := l.putJSON(mediaIndex, map[string]any{"schemaVersion": 2, "mediaType": mediaIndex, "manifests": manifests, "annotations": annotations})
	if err != nil {
		return "", err
	}
	index.Annotations = map[string]string{"org.opencontainers.image.ref.name": o.version}
	if err := writeJSONFile(filepath.Join(o.out, "index.json"), map[string]any{"schemaVersion": 2, "mediaType": mediaIndex, "manifests": []descriptor{index}}); err != nil {
		return "", err
	}
	return index.Digest, writeJSONFile(filepath.Join(o.out, "oci-layout"), map[string]string{"imageLayoutVersion": "1.0.0"})
}

// clearOut removes the layout a previous build left in dir; it refuses to
// remove anything else.
func clearOut(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--out %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); len(entries) > 0 && err != nil {
		return fmt.Errorf("--out %s is neither empty nor an image layout this command wrote: choose another directory", dir)
	}
	return os.RemoveAll(dir)
}

func writeJSONFile(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(name, b, 0o644)
}

// buildSettings are the environment variables that change what go build
// makes; the build sets them all itself, so that the caller's environment
// cannot change the image.
var buildSettings = []string{"CGO_ENABLED", "GOOS", "GOARCH", "GOARM", "GOAMD64", "GOARM64", "GO386", "GOEXPERIMENT", "GOFLAGS", "GODEBUG", "GOWORK", "GOTOOLCHAIN"}

// goBuild builds the vouch command for p, static and reproducible: no VCS
// stamp (it would record the checkout's untracked files), trimmed paths,
// each architecture's baseline unless the platform names a variant.
func goBuild(o options, p platform, out string) error {
	cmd := exec.Command(o.goCmd, "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -X main.version="+o.version, "-o", out, o.pkg)
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); !slices.Contains(buildSettings, name) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture, "GOFLAGS=-mod=readonly", "GOWORK=off", "GOTOOLCHAIN=local")
	switch {
	case p.Architecture == "arm":
		cmd.Env = append(cmd.Env, "GOARM="+cmp.Or(strings.TrimPrefix(p.Variant, "v"), "7"))
	case p.Architecture == "amd64":
		cmd.Env = append(cmd.Env, "GOAMD64="+cmp.Or(p.Variant, "v1"))
	case p.Variant != "":
		return fmt.Errorf("platform %s: variants are known for arm and amd64 only", p)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for %s: %w", p, err)
	}
	return nil
}

// image writes one platform's layer, config and manifest.
func (l layout) image(p platform, bin string, o options, annotations map[string]string) (descriptor, error) {
	tarball, err := rootfs(bin, o.created)
	if err != nil {
		return descriptor{}, err
	}
	diffID := sha256.Sum256(tarball)
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // no name or time in the header: reproducible
	if _, err := zw.Write(tarball); err != nil {
		return descriptor{}, err
	}
	if err := zw.Close(); err != nil {
		return descriptor{}, err
	}
	layer, err := l.put(mediaLayer, gz.Bytes())
	if err != nil {
		return descriptor{}, err
	}
	labels := map[string]string{}
	for k, v := range annotations {
		labels[k] = v
	}
	cfg := map[string]any{
		"created": o.created.Format(time.RFC3339), "architecture": p.Architecture, "os": p.OS,
		"config": map[string]any{
			"User":       fmt.Sprintf("%d:%d", uid, uid),
			"Entrypoint": []string{"/vouch"},
			"Cmd":        []string{"serve", "--data-dir=/" + dataDir},
			"WorkingDir": "/" + dataDir,
			"Env":        []string{"PATH=/"},
			"Labels":     labels,
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diffID[:])}},
		"history": []map[string]string{{"created": o.created.Format(time.RFC3339), "created_by": "vouch-image " + o.version}},
	}
	if p.Variant != "" {
		cfg["variant"] = p.Variant
	}
	config, err := l.putJSON(mediaConfig, cfg)
	if err != nil {
		return descriptor{}, err
	}
	m, err := l.putJSON(mediaManifest, map[string]any{"schemaVersion": 2, "mediaType": mediaManifest, "config": config,
		"layers": []descriptor{layer}, "annotations": annotations})
	if err != nil {
		return descriptor{}, err
	}
	m.Platform = &p
	return m, nil
}

// rootfs is the image's one layer: the binary, a writable /tmp, the data
// directory owned by the image's user, and /etc/passwd and /etc/group
// naming that user. Every entry has the same time and fixed owners.
func rootfs(bin string, at time.Time) ([]byte, error) {
	exe, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64, owner int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: owner, Gid: owner, ModTime: at})
	}
	file := func(name string, mode int64, content []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(content)), ModTime: at}); err != nil {
			return err
		}
		_, err := tw.Write(content)
		return err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/%s:/sbin/nologin\n", uid, uid, dataDir)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", uid)
	for _, step := range []func() error{
		func() error { return dir("etc", 0o755, 0) },
		func() error { return file("etc/group", 0o644, []byte(group)) },
		func() error { return file("etc/passwd", 0o644, []byte(passwd)) },
		func() error { return dir("tmp", 0o1777, 0) },
		func() error { return dir("var", 0o755, 0) },
		func() error { return dir("var/lib", 0o755, 0) },
		func() error { return dir(dataDir, 0o700, uid) },
		func() error { return file("vouch", 0o755, exe) },
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
