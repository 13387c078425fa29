package fingerprint_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/fingerprint"
	"github.com/vouch-dev/vouch/test/golden"
)

func TestFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		content string
		want    string
	}{
		{"", "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"hello world\n", "sha256:a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"},
	}
	for i, tt := range tests {
		name := filepath.Join(dir, fmt.Sprint(i))
		write(t, name, tt.content, 0o644)
		if got, err := fingerprint.File(name); err != nil || got != tt.want {
			t.Errorf("File(%q) = %s, %v; want %s", tt.content, got, err, tt.want)
		}
	}
	big := filepath.Join(dir, "big")
	content := strings.Repeat("0123456789abcdef", 1<<16)
	write(t, big, content, 0o644)
	sum := sha256.Sum256([]byte(content))
	if got, err := fingerprint.File(big); err != nil || got != "sha256:"+hex.EncodeToString(sum[:]) || !evidence.ValidDigest(got) {
		t.Errorf("File(1 MiB) = %s, %v", got, err)
	}
	if _, err := fingerprint.File(dir); err == nil || !strings.Contains(err.Error(), "is a directory: use Dir") {
		t.Errorf("File(a directory) = %v, want an error saying to use Dir", err)
	}
	if _, err := fingerprint.File(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("File(missing) = nil error")
	}
}

func write(t *testing.T, name, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

// entry is one thing in a tree built by a test.
type entry struct {
	path    string
	content string      // file content, or symlink target
	mode    os.FileMode // 0 for a symlink; os.ModeDir for an empty directory
}

// sample is a small release tree: a binary, a config, docs, a symlink and
// an empty directory.
var sample = []entry{
	{"bin/app", "\x7fELF binary", 0o755},
	{"bin/app-helper", "#!/bin/sh\nexec app \"$@\"\n", 0o750},
	{"bin/latest", "app", 0},
	{"etc/app/config.yaml", "listen: :8080\n", 0o644},
	{"share/doc/README with spaces.md", "# App\n", 0o600},
	{"share/doc/ünïcode.txt", "ü\n", 0o644},
	{"a-c", "sorted before a/b", 0o644},
	{"a/b", "", 0o644},
	{".hidden", "included", 0o644},
	{"var/cache", "", os.ModeDir},
}

// build makes the tree in a new directory, in the given order of entries,
// with the given modification time.
func build(t *testing.T, entries []entry, mtime time.Time) string {
	t.Helper()
	dir := t.TempDir()
	for _, e := range entries {
		name := filepath.Join(dir, filepath.FromSlash(e.path))
		switch {
		case e.mode == os.ModeDir:
			if err := os.MkdirAll(name, 0o700); err != nil {
				t.Fatal(err)
			}
		case e.mode == 0:
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(e.content, name); err != nil {
				t.Fatal(err)
			}
			continue
		default:
			write(t, name, e.content, e.mode)
		}
		if err := os.Chtimes(name, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func dirDigest(t *testing.T, dir string) string {
	t.Helper()
	d, err := fingerprint.Dir(dir)
	if err != nil {
		t.Fatalf("Dir(%s): %v", dir, err)
	}
	if !evidence.ValidDigest(d) {
		t.Fatalf("Dir(%s) = %q, not a valid digest", dir, d)
	}
	return d
}

// TestDirManifestFormat spells out the records of a small tree.
func TestDirManifestFormat(t *testing.T) {
	dir := build(t, []entry{
		{"x y/run.sh", "echo\n", 0o700},
		{"x y/link", "run.sh", 0},
		{"data", "abc", 0o444},
	}, time.Now())
	m, err := fingerprint.DirManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "vouch-dir-v1\n" +
		"file 644 3 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad data\x00" +
		"dir x y\x00" +
		"symlink x y/link\x00run.sh\x00" +
		"file 755 5 " + sha("echo\n") + " x y/run.sh\x00"
	if diff := cmp.Diff(want, string(m)); diff != "" {
		t.Errorf("DirManifest() (-want +got):\n%s", diff)
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestDirStable shows that creation order, timestamps and permission bits
// other than the owner's execute bit do not change the digest.
func TestDirStable(t *testing.T) {
	a := dirDigest(t, build(t, sample, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)))
	reversed := slices.Clone(sample)
	slices.Reverse(reversed)
	for i := range reversed {
		switch m := reversed[i].mode; {
		case m == 0o755:
			reversed[i].mode = 0o700 // still executable by the owner
		case m == 0o644:
			reversed[i].mode = 0o664 | 0o010 // group bits, even group execute, do not count
		}
	}
	b := dirDigest(t, build(t, reversed, time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)))
	if a != b {
		t.Errorf("Dir() = %s and %s for the same tree built in another order, at another time, with other modes", a, b)
	}
}

// TestDirChanges shows that each change of content, name, kind, execute
// bit or symlink target changes the digest.
func TestDirChanges(t *testing.T) {
	base := dirDigest(t, build(t, sample, time.Now()))
	tests := []struct {
		name   string
		change func(entries []entry) []entry
	}{
		{"a changed byte", func(es []entry) []entry { es[3].content = "listen: :8081\n"; return es }},
		{"a byte appended", func(es []entry) []entry { es[3].content += " "; return es }},
		{"a renamed file", func(es []entry) []entry { es[3].path = "etc/app/config.yml"; return es }},
		{"a file moved to another directory", func(es []entry) []entry { es[3].path = "etc/config.yaml"; return es }},
		{"execute bit set", func(es []entry) []entry { es[3].mode = 0o744; return es }},
		{"execute bit cleared", func(es []entry) []entry { es[0].mode = 0o644; return es }},
		{"another symlink target", func(es []entry) []entry { es[2].content = "app-helper"; return es }},
		{"a symlink replaced by the file it points to", func(es []entry) []entry {
			es[2] = entry{"bin/latest", "\x7fELF binary", 0o755}
			return es
		}},
		{"an empty directory removed", func(es []entry) []entry { return es[:len(es)-1] }},
		{"an empty directory added", func(es []entry) []entry { return append(es, entry{"tmp", "", os.ModeDir}) }},
		{"an empty file added", func(es []entry) []entry { return append(es, entry{"bin/.keep", "", 0o644}) }},
		{"contents of two files swapped", func(es []entry) []entry {
			es[3].content, es[4].content = es[4].content, es[3].content
			return es
		}},
	}
	seen := map[string]string{base: "the sample"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dirDigest(t, build(t, tt.change(slices.Clone(sample)), time.Now()))
			if prev, ok := seen[d]; ok {
				t.Errorf("Dir() = %s, the same as for %s", d, prev)
			}
			seen[d] = tt.name
		})
	}
}

func TestDirRefuses(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		wantErr string
	}{
		{"symlink to an absolute path", []entry{{"lib/python", "/usr/bin/python3", 0}}, "symlink lib/python points outside the directory, to /usr/bin/python3"},
		{"symlink up and out", []entry{{"a/b/link", "../../../etc/passwd", 0}}, "points outside the directory"},
		{"symlink to the parent of the root", []entry{{"up", "..", 0}}, "points outside the directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := build(t, tt.entries, time.Now())
			if _, err := fingerprint.Dir(dir); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Dir() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	// Links that stay inside are fine, dangling or not.
	ok := build(t, []entry{{"a/b/link", "../../c", 0}, {"a/self", ".", 0}, {"a/dangling", "missing/file", 0}}, time.Now())
	dirDigest(t, ok)

	file := filepath.Join(t.TempDir(), "f")
	write(t, file, "x", 0o644)
	if _, err := fingerprint.Dir(file); err == nil || !strings.Contains(err.Error(), "not a directory: use File") {
		t.Errorf("Dir(a file) = %v, want an error saying to use File", err)
	}
	if _, err := fingerprint.Dir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("Dir(missing) = nil error")
	}
}

// TestDirRootSymlink shows that a root given through a symlink is the
// directory it names.
func TestDirRootSymlink(t *testing.T) {
	dir := build(t, sample, time.Now())
	link := filepath.Join(t.TempDir(), "release")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if a, b := dirDigest(t, dir), dirDigest(t, link); a != b {
		t.Errorf("Dir(symlink to dir) = %s, Dir(dir) = %s", b, a)
	}
}

func TestDirEmpty(t *testing.T) {
	sum := sha256.Sum256([]byte(fingerprint.ManifestHeader))
	if got, want := dirDigest(t, t.TempDir()), "sha256:"+hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Dir(empty) = %s, want %s", got, want)
	}
}

// TestOCILayoutGolden reads the sample layouts in testdata.
func TestOCILayoutGolden(t *testing.T) {
	tests := []struct {
		layout, sel string
	}{
		{"oci-buildx", ""},
		{"oci-buildx", "1.4.2"},
		{"oci-buildx", "registry.example.com/team/app:1.4.2"},
		{"oci-two-tags", "1.4.1"},
		{"oci-two-tags", "1.4.2"},
	}
	got := map[string]string{}
	for _, tt := range tests {
		d, err := fingerprint.OCILayout(filepath.Join("testdata", tt.layout), tt.sel)
		if err != nil {
			t.Fatalf("OCILayout(%s, %q): %v", tt.layout, tt.sel, err)
		}
		got[tt.layout+":"+tt.sel] = d
	}
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	golden.Equal(t, "testdata/oci-layouts.golden", b)
	if _, err := fingerprint.OCILayout("testdata/oci-two-tags", ""); err == nil ||
		!strings.Contains(err.Error(), `index.json lists 2 manifests; choose one by reference name or platform: sha256:`) ||
		!strings.Contains(err.Error(), `(ref "1.4.1")`) || !strings.Contains(err.Error(), `(ref "1.4.2")`) {
		t.Errorf("OCILayout(two tags, \"\") = %v, want an error naming both", err)
	}
}

// layout writes an OCI image layout with the given blobs and index.json
// manifests, each blob given by its content.
type layout struct {
	dir string
}

func newLayout(t *testing.T) layout {
	t.Helper()
	l := layout{t.TempDir()}
	write(t, filepath.Join(l.dir, "oci-layout"), `{"imageLayoutVersion":"1.0.0"}`, 0o644)
	return l
}

// blob stores content and returns its descriptor fields.
func (l layout) blob(t *testing.T, content string) (digest string, size int) {
	t.Helper()
	h := sha(content)
	write(t, filepath.Join(l.dir, "blobs", "sha256", h), content, 0o644)
	return "sha256:" + h, len(content)
}

func (l layout) index(t *testing.T, manifests ...string) {
	t.Helper()
	write(t, filepath.Join(l.dir, "index.json"), `{"schemaVersion":2,"manifests":[`+strings.Join(manifests, ",")+`]}`, 0o644)
}

func desc(mediaType, digest string, size int, extra string) string {
	return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d%s}`, mediaType, digest, size, extra)
}

const (
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	ociIndex    = "application/vnd.oci.image.index.v1+json"
)

func TestOCILayout(t *testing.T) {
	l := newLayout(t)
	amd, amdSize := l.blob(t, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}`)
	arm, armSize := l.blob(t, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"a":1},"layers":[]}`)
	docker, dockerSize := l.blob(t, `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}`)
	amdDesc := desc(ociManifest, amd, amdSize, `,"platform":{"os":"linux","architecture":"amd64"},"annotations":{"org.opencontainers.image.ref.name":"1.0-amd64"}`)
	armDesc := desc(ociManifest, arm, armSize, `,"platform":{"os":"linux","architecture":"arm64","variant":"v8"},"annotations":{"org.opencontainers.image.ref.name":"1.0-arm64"}`)

	tests := []struct {
		name      string
		manifests []string
		sel       string
		want      string
		wantErr   string
	}{
		{name: "one manifest", manifests: []string{desc(ociManifest, amd, amdSize, "")}, want: amd},
		{name: "one Docker manifest", manifests: []string{desc("application/vnd.docker.distribution.manifest.v2+json", docker, dockerSize, "")}, want: docker},
		{name: "by platform", manifests: []string{amdDesc, armDesc}, sel: "linux/arm64/v8", want: arm},
		{name: "by reference name", manifests: []string{amdDesc, armDesc}, sel: "1.0-amd64", want: amd},
		{name: "one manifest, selected", manifests: []string{amdDesc}, sel: "linux/amd64", want: amd},
		{name: "several, none selected", manifests: []string{amdDesc, armDesc}, wantErr: `index.json lists 2 manifests; choose one by reference name or platform: ` + amd + ` (ref "1.0-amd64", linux/amd64), ` + arm + ` (ref "1.0-arm64", linux/arm64/v8)`},
		{name: "no match", manifests: []string{amdDesc, armDesc}, sel: "linux/s390x", wantErr: `no manifest in index.json has the reference name or platform "linux/s390x"; it lists ` + amd},
		{name: "one manifest, another selected", manifests: []string{amdDesc}, sel: "2.0", wantErr: `no manifest in index.json has the reference name or platform "2.0"`},
		{name: "ambiguous", manifests: []string{amdDesc, desc(ociManifest, arm, armSize, `,"platform":{"os":"linux","architecture":"amd64"}`)}, sel: "linux/amd64", wantErr: `2 manifests in index.json match "linux/amd64"`},
		{name: "no manifests", wantErr: "index.json lists no manifests"},
		{name: "not an image", manifests: []string{desc("application/vnd.oci.image.layer.v1.tar+gzip", amd, amdSize, "")}, wantErr: `mediaType "application/vnd.oci.image.layer.v1.tar+gzip" is not an image manifest or index`},
		{name: "sha512", manifests: []string{desc(ociManifest, "sha512:"+strings.Repeat("ab", 64), 10, "")}, wantErr: `manifest digest "sha512:`},
		{name: "blob missing", manifests: []string{desc(ociManifest, "sha256:"+strings.Repeat("0", 64), 10, "")}, wantErr: "no such file"},
		{name: "wrong size", manifests: []string{desc(ociManifest, amd, amdSize+1, "")}, wantErr: fmt.Sprintf("is %d bytes, not the %d index.json gives", amdSize, amdSize+1)},
		{name: "digest path escaping", manifests: []string{desc(ociManifest, "sha256:../../../../etc/passwd", 10, "")}, wantErr: "is not sha256: and 64 lower-case hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l.index(t, tt.manifests...)
			got, err := fingerprint.OCILayout(l.dir, tt.sel)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("OCILayout(%q) = %s, %v; want an error containing %q", tt.sel, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("OCILayout(%q): %v", tt.sel, err)
			}
			if got != tt.want {
				t.Errorf("OCILayout(%q) = %s, want %s", tt.sel, got, tt.want)
			}
		})
	}
}

func TestOCILayoutBroken(t *testing.T) {
	l := newLayout(t)
	d, size := l.blob(t, `{"schemaVersion":2}`)
	l.index(t, desc(ociIndex, d, size, ""))
	// A blob whose content is not its name.
	write(t, filepath.Join(l.dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")), `{"schemaVersion":3}`, 0o644)
	if _, err := fingerprint.OCILayout(l.dir, ""); err == nil || !strings.Contains(err.Error(), "has digest sha256:") {
		t.Errorf("OCILayout(corrupt blob) = %v, want a digest mismatch", err)
	}

	tests := []struct {
		name, file, content, wantErr string
	}{
		{"no oci-layout", "oci-layout", "", "is not an OCI image layout: it has no oci-layout file"},
		{"layout version 2", "oci-layout", `{"imageLayoutVersion":"2.0.0"}`, "imageLayoutVersion is not 1.x"},
		{"index.json not JSON", "index.json", `{`, "index.json: unexpected end of JSON input"},
		{"schemaVersion 1", "index.json", `{"schemaVersion":1,"manifests":[]}`, "schemaVersion is 1, want 2"},
		{"no index.json", "index.json", "", "index.json: no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLayout(t)
			d, size := l.blob(t, `{}`)
			l.index(t, desc(ociManifest, d, size, ""))
			name := filepath.Join(l.dir, tt.file)
			if tt.content == "" {
				if err := os.Remove(name); err != nil {
					t.Fatal(err)
				}
			} else {
				write(t, name, tt.content, 0o644)
			}
			if _, err := fingerprint.OCILayout(l.dir, ""); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("OCILayout() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	if _, err := fingerprint.OCILayout(filepath.Join(t.TempDir(), "missing"), ""); err == nil {
		t.Errorf("OCILayout(missing) = nil error")
	}
}

func ExampleDir() {
	dir, err := os.MkdirTemp("", "release")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "app.conf"), []byte("port = 8080\n"), 0o644); err != nil {
		panic(err)
	}
	m, err := fingerprint.DirManifest(dir)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", m)
	d, err := fingerprint.Dir(dir)
	if err != nil {
		panic(err)
	}
	fmt.Println(d == "sha256:"+sha(string(m)))
	// Output:
	// "vouch-dir-v1\nfile 644 12 37107a4e5ea873399e16cc41781ede69752273d4232675d990fda44a0603dfa2 app.conf\x00"
	// true
}
