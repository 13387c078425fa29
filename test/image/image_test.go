// Package image tests the container image cmd/vouch-image builds.
package image

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// repoRoot is the repository's top directory.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// buildImage runs cmd/vouch-image for linux/amd64 into dir, with env
// added to the environment, and returns the digest it printed.
func buildImage(t *testing.T, dir string, env ...string) string {
	t.Helper()
	cmd := exec.Command("go", "run", "./cmd/vouch-image", "--out", dir, "--platforms", "linux/amd64", "--version", "v0.0.0-test")
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("vouch-image: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func TestImage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "image")
	digest := buildImage(t, dir)

	// The layout is an image index of one platform, valid blob by blob.
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	root, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	rm, err := root.IndexManifest()
	if err != nil || len(rm.Manifests) != 1 || rm.Manifests[0].Digest.String() != digest || rm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "v0.0.0-test" {
		t.Fatalf("index.json = %+v, %v; want the image index %s named by its version", rm, err, digest)
	}
	idx, err := root.ImageIndex(rm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("the image index does not validate: %v", err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Platform == nil || im.Manifests[0].Platform.String() != "linux/amd64" {
		t.Fatalf("image index manifests = %+v, want one for linux/amd64", im.Manifests)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}

	// It runs as the chart expects: the vouch binary as entrypoint, the
	// unprivileged user 65532, labelled with its source.
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	rev, _ := exec.Command("git", "-C", repoRoot(), "rev-parse", "HEAD").Output()
	if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/vouch"}) || !slices.Equal(c.Cmd, []string{"serve", "--data-dir=/var/lib/vouch"}) ||
		c.WorkingDir != "/var/lib/vouch" || c.Labels["org.opencontainers.image.revision"] != strings.TrimSpace(string(rev)) || c.Labels["org.opencontainers.image.version"] != "v0.0.0-test" {
		t.Errorf("image config = %+v", c)
	}

	// Its file system: the binary, static, and what a non-root process needs.
	files := readLayers(t, img)
	for name, want := range map[string]struct {
		mode  int64
		owner int
	}{"vouch": {0o755, 0}, "tmp/": {0o1777, 0}, "var/lib/vouch/": {0o700, 65532}, "etc/passwd": {0o644, 0}} {
		h, ok := files[name]
		if !ok || h.Mode&0o7777 != want.mode || h.Uid != want.owner || h.Gid != want.owner {
			t.Errorf("%s in the image: %+v (present %v), want mode %o owned by %d", name, h, ok, want.mode, want.owner)
		}
	}
	bin := filepath.Join(t.TempDir(), "vouch")
	if err := os.WriteFile(bin, files["vouch"].content, 0o755); err != nil {
		t.Fatal(err)
	}
	if f, err := elf.Open(bin); err != nil {
		t.Fatal(err)
	} else {
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Error("the binary is dynamically linked: it would not start on the image's empty base")
			}
		}
		f.Close()
	}
	// With no system roots in the image, outbound TLS needs the fallback roots linked in.
	if out, err := exec.Command("go", "version", "-m", bin).Output(); err != nil || !strings.Contains(string(out), "golang.org/x/crypto/x509roots/fallback") {
		t.Errorf("go version -m of the image's binary: %v, no fallback roots:\n%s", err, out)
	}
	if out, err := exec.Command(bin, "version").Output(); err != nil || strings.TrimSpace(string(out)) != "vouch v0.0.0-test" {
		t.Errorf("vouch version in the image = %q, %v", out, err)
	}
	// Vouch's own fingerprint of the layout is the digest it was built as.
	if out, err := exec.Command(bin, "fingerprint", dir).Output(); err != nil || strings.TrimSpace(string(out)) != digest {
		t.Errorf("vouch fingerprint of the layout = %q, %v; want %s", out, err, digest)
	}

	// The same commit builds the same digest, whatever build settings the
	// environment holds.
	if again := buildImage(t, filepath.Join(t.TempDir(), "again"), "GOAMD64=v3", "GOFLAGS=-tags=netgo", "GODEBUG=x509sha1=1"); again != digest {
		t.Errorf("rebuilt image %s, want %s: the build is not reproducible", again, digest)
	}

	// It replaces a layout it wrote, nothing else.
	precious := t.TempDir()
	os.WriteFile(filepath.Join(precious, "notes.txt"), []byte("keep"), 0o644)
	cmd := exec.Command("go", "run", "./cmd/vouch-image", "--out", precious, "--platforms", "linux/amd64")
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "neither empty nor an image layout") {
		t.Errorf("--out on a directory of other files: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(precious, "notes.txt")); err != nil {
		t.Errorf("the directory's file is gone: %v", err)
	}

	// A registry takes it, and serves it at the same digest.
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ref, err := name.ParseReference(u.Host + "/platform/vouch:v0.0.0-test")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatalf("push: %v", err)
	}
	pulled, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := pulled.Digest(); d.String() != digest {
		t.Errorf("the registry serves %s, want %s", d, digest)
	}
}

type file struct {
	*tar.Header
	content []byte
}

// readLayers reads the image's file system, layer by layer.
func readLayers(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]file{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			files[h.Name] = file{h, b}
		}
		rc.Close()
	}
	return files
}
