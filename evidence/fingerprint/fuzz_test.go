package fingerprint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzSelectManifest checks that no index.json panics the selection and
// that what is selected is a sha256 image descriptor. The index.json files
// of the layouts in testdata are the seed corpus.
func FuzzSelectManifest(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/index.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "")
		f.Add(b, "1.4.2")
		f.Add(b, "linux/amd64")
	}
	f.Fuzz(func(t *testing.T, index []byte, sel string) {
		d, err := selectManifest(index, sel)
		if err != nil {
			return
		}
		if !sha256DigestRE.MatchString(d.Digest) || strings.Contains(d.Digest, "/") || d.Size < 0 {
			t.Fatalf("selected %+v", d)
		}
	})
}
