// Package fingerprint computes the content digests Vouch identifies
// artifacts by — of a file, of a directory tree and of an image in an OCI
// image layout — each as "sha256:" and 64 lower-case hex characters.
//
// # Files
//
// File is the SHA-256 of the file's content, as sha256sum computes it.
//
// # Directories
//
// Dir is the SHA-256 of a canonical manifest of the tree, which
// DirManifest returns. It depends only on the relative paths, the kinds of
// entries, file contents, the owner execute bit of files and symlink
// targets — not on creation order, timestamps, owners, other permission
// bits or the machine — so that two checkouts or builds of the same tree
// have the same digest.
//
// The manifest, format vouch-dir-v1, is the line "vouch-dir-v1\n" followed
// by one record for every entry under the root (the root itself excluded,
// hidden entries included), in ascending byte-wise order of their paths.
// A path is relative to the root, its elements separated by "/", without a
// leading "./". SP is one space (0x20), NUL one zero byte:
//
//	directory:     "dir" SP path NUL
//	regular file:  "file" SP mode SP size SP sha256 SP path NUL
//	symbolic link: "symlink" SP path NUL target NUL
//
// mode is "755" when the file's owner execute bit is set and "644"
// otherwise (as git records modes); size is its length in bytes in ASCII
// decimal; sha256 the lower-case hex SHA-256 of its content; target the
// link's target exactly as stored. Paths and targets are the bytes the
// file system gives; they cannot contain NUL, so records are unambiguous.
// Symbolic links are recorded, never followed; a link whose target is
// absolute or, taken lexically from the link's directory, leaves the root
// is refused, as are devices, sockets and pipes.
//
// # OCI image layouts
//
// OCILayout is the digest of the image an OCI image layout
// (https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md)
// holds: the descriptor its index.json lists — an image manifest, or an
// image index for a multi-platform image — after checking that the blob
// is present with that digest and size. That is the digest a registry
// gives the image once pushed.
package fingerprint

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ManifestHeader is the first line of a directory manifest.
const ManifestHeader = "vouch-dir-v1\n"

func digestOf(sum []byte) string { return "sha256:" + hex.EncodeToString(sum) }

// File returns the digest of the content of the regular file at name.
func File(name string) (string, error) {
	// Stat before opening: opening a named pipe would wait for a writer.
	info, err := os.Stat(name)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %w", err)
	}
	if info.IsDir() {
		return "", fmt.Errorf("fingerprint: %s is a directory: use Dir", name)
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("fingerprint: %s is not a regular file", name)
	}
	f, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %w", err)
	}
	defer f.Close()
	if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
		return "", fmt.Errorf("fingerprint: %s changed while it was opened", name)
	}
	sum, _, err := hashReader(f)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %s: %w", name, err)
	}
	return digestOf(sum), nil
}

func hashReader(r io.Reader) (sum []byte, size int64, err error) {
	h := sha256.New()
	size, err = io.Copy(h, r)
	return h.Sum(nil), size, err
}

// Dir returns the digest of the directory tree at name: the SHA-256 of its
// DirManifest.
func Dir(name string) (string, error) {
	m, err := DirManifest(name)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(m)
	return digestOf(sum[:]), nil
}

// record is one entry of a directory manifest.
type record struct {
	path string
	data []byte // the encoded record
}

// DirManifest returns the canonical manifest of the directory tree at name,
// in the format the package documentation defines.
func DirManifest(name string) ([]byte, error) {
	info, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("fingerprint: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("fingerprint: %s is not a directory: use File", name)
	}
	root, err := os.OpenRoot(name)
	if err != nil {
		return nil, fmt.Errorf("fingerprint: %w", err)
	}
	defer root.Close()
	var recs []record
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		r, err := entry(root, p, d.Type())
		if err != nil {
			return err
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fingerprint: %s: %w", name, err)
	}
	slices.SortFunc(recs, func(a, b record) int { return strings.Compare(a.path, b.path) })
	var m bytes.Buffer
	m.WriteString(ManifestHeader)
	for _, r := range recs {
		m.Write(r.data)
	}
	return m.Bytes(), nil
}

// entry encodes the record of the entry p of type t.
func entry(root *os.Root, p string, t fs.FileMode) (record, error) {
	switch {
	case t.IsDir():
		return record{p, []byte("dir " + p + "\x00")}, nil
	case t&fs.ModeSymlink != 0:
		target, err := root.Readlink(p)
		if err != nil {
			return record{}, err
		}
		if escapes(p, target) {
			return record{}, fmt.Errorf("symlink %s points outside the directory, to %s", p, target)
		}
		return record{p, []byte("symlink " + p + "\x00" + target + "\x00")}, nil
	case t.IsRegular():
		f, err := root.Open(p)
		if err != nil {
			return record{}, err
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return record{}, err
		}
		if !info.Mode().IsRegular() { // replaced while walking
			return record{}, fmt.Errorf("%s changed while it was read", p)
		}
		sum, size, err := hashReader(f)
		if err != nil {
			return record{}, fmt.Errorf("%s: %w", p, err)
		}
		mode := "644"
		if info.Mode().Perm()&0o100 != 0 {
			mode = "755"
		}
		return record{p, fmt.Appendf(nil, "file %s %d %x %s\x00", mode, size, sum, p)}, nil
	}
	return record{}, fmt.Errorf("%s is a %s, not a file, directory or symlink", p, kind(t))
}

// escapes reports whether the symlink at p with target leaves the root,
// taken lexically.
func escapes(p, target string) bool {
	if target == "" || path.IsAbs(target) || filepath.IsAbs(target) {
		return true
	}
	j := path.Join(path.Dir(p), filepath.ToSlash(target))
	return j == ".." || strings.HasPrefix(j, "../")
}

func kind(t fs.FileMode) string {
	switch {
	case t&fs.ModeNamedPipe != 0:
		return "named pipe"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeDevice != 0:
		return "device"
	}
	return "file of type " + t.String()
}

// OCI image layout.

const (
	refNameAnnotation   = "org.opencontainers.image.ref.name"
	imageNameAnnotation = "io.containerd.image.name"
	maxIndex            = 16 << 20 // bytes of index.json read
)

var imageMediaTypes = []string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}

var sha256DigestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	Platform  *struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Variant      string `json:"variant"`
	} `json:"platform"`
	Annotations map[string]string `json:"annotations"`
}

// platform is "os/arch" or "os/arch/variant", or "" without a platform.
func (d descriptor) platform() string {
	p := d.Platform
	if p == nil || p.OS == "" || p.Architecture == "" {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

func (d descriptor) String() string {
	var about []string
	if r := d.Annotations[refNameAnnotation]; r != "" {
		about = append(about, "ref "+strconv.Quote(r))
	}
	if p := d.platform(); p != "" {
		about = append(about, p)
	}
	if len(about) == 0 {
		return d.Digest
	}
	return d.Digest + " (" + strings.Join(about, ", ") + ")"
}

// OCILayout returns the digest of the image in the OCI image layout at
// name. When index.json lists one manifest, sel may be empty. Otherwise sel
// picks one: by reference name (the org.opencontainers.image.ref.name or
// io.containerd.image.name annotation, such as "1.4.2") or by platform
// ("linux/amd64", "linux/arm64/v8"); an error names the manifests when
// none or several match.
func OCILayout(name, sel string) (string, error) {
	root, err := os.OpenRoot(name)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %w", err)
	}
	defer root.Close()
	layout, err := root.ReadFile("oci-layout")
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("fingerprint: %s is not an OCI image layout: it has no oci-layout file", name)
	}
	if err != nil {
		return "", fmt.Errorf("fingerprint: %w", err)
	}
	var l struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(layout, &l); err != nil || !strings.HasPrefix(l.Version, "1.") {
		return "", fmt.Errorf("fingerprint: %s/oci-layout: imageLayoutVersion is not 1.x", name)
	}
	index, err := readLimited(root, "index.json", maxIndex)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %s: %w", name, err)
	}
	d, err := selectManifest(index, sel)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %s: %w", name, err)
	}
	blob := "blobs/sha256/" + strings.TrimPrefix(d.Digest, "sha256:")
	f, err := root.Open(blob)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %s: manifest %s: %w", name, d.Digest, err)
	}
	defer f.Close()
	sum, size, err := hashReader(f)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %s: %s: %w", name, blob, err)
	}
	if got := digestOf(sum); got != d.Digest {
		return "", fmt.Errorf("fingerprint: %s: %s has digest %s, not the %s index.json gives", name, blob, got, d.Digest)
	}
	if size != d.Size {
		return "", fmt.Errorf("fingerprint: %s: %s is %d bytes, not the %d index.json gives", name, blob, size, d.Size)
	}
	return d.Digest, nil
}

func readLimited(root *os.Root, name string, max int64) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, max)
	}
	return b, nil
}

// selectManifest picks the descriptor sel names from an index.json.
func selectManifest(index []byte, sel string) (descriptor, error) {
	var idx struct {
		SchemaVersion int          `json:"schemaVersion"`
		Manifests     []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(index, &idx); err != nil {
		return descriptor{}, fmt.Errorf("index.json: %w", err)
	}
	if idx.SchemaVersion != 2 {
		return descriptor{}, fmt.Errorf("index.json: schemaVersion is %d, want 2", idx.SchemaVersion)
	}
	if len(idx.Manifests) == 0 {
		return descriptor{}, errors.New("index.json lists no manifests")
	}
	var match []descriptor
	for _, d := range idx.Manifests {
		if sel == "" || d.Annotations[refNameAnnotation] == sel || d.Annotations[imageNameAnnotation] == sel || d.platform() == sel {
			match = append(match, d)
		}
	}
	list := func(ds []descriptor) string {
		s := make([]string, len(ds))
		for i, d := range ds {
			s[i] = d.String()
		}
		return strings.Join(s, ", ")
	}
	switch {
	case len(match) == 0:
		return descriptor{}, fmt.Errorf("no manifest in index.json has the reference name or platform %q; it lists %s", sel, list(idx.Manifests))
	case len(match) > 1 && sel == "":
		return descriptor{}, fmt.Errorf("index.json lists %d manifests; choose one by reference name or platform: %s", len(match), list(match))
	case len(match) > 1:
		return descriptor{}, fmt.Errorf("%d manifests in index.json match %q: %s", len(match), sel, list(match))
	}
	d := match[0]
	if !slices.Contains(imageMediaTypes, d.MediaType) {
		return descriptor{}, fmt.Errorf("manifest %s: mediaType %q is not an image manifest or index", d.Digest, d.MediaType)
	}
	if !sha256DigestRE.MatchString(d.Digest) {
		return descriptor{}, fmt.Errorf("manifest digest %q is not sha256: and 64 lower-case hex characters", d.Digest)
	}
	if d.Size < 0 {
		return descriptor{}, fmt.Errorf("manifest %s: size %d", d.Digest, d.Size)
	}
	return d, nil
}
