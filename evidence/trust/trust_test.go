package trust

import (
	"os"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/evidence/sigstore"
	"github.com/vouch-dev/vouch/test/sigstoretest"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../sigstore/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const sigstoreJS = "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"

func TestNewRefusesIdentities(t *testing.T) {
	root := read(t, "trusted-root-public-good.json")
	id := sigstore.Identity{Name: "release", Issuer: sigstoretest.GitHubIssuer, Subject: sigstoreJS}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no root", Config{Identities: []sigstore.Identity{id}}, "trusted_identities: sigstore_trusted_root is required"},
		{"bad root", Config{Identities: []sigstore.Identity{id}, TrustedRoot: []byte(`{"mediaType":"x"}`)}, "sigstore_trusted_root: trusted root 1:"},
		{"empty root", Config{TrustedRoot: []byte("\n\n")}, "sigstore_trusted_root: no trusted root in the file"},
		{"no issuer", Config{Identities: []sigstore.Identity{{Name: "x", Subject: "s"}}, TrustedRoot: root}, "trusted_identities[0].issuer: is required"},
		{"name of a key", Config{
			Keys:       []KeyConfig{{Name: "release", PublicKey: string(read(t, "publish_key.pub"))}},
			Identities: []sigstore.Identity{id}, TrustedRoot: root,
		}, `trusted_identities[0].name: "release" is used twice`},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestCheckBundle(t *testing.T) {
	tr, err := New(Config{
		Keys: []KeyConfig{{Name: "npm", PublicKey: string(read(t, "publish_key.pub"))}},
		Identities: []sigstore.Identity{{
			Name: "sigstore-js-release", Issuer: sigstoretest.GitHubIssuer, Subject: sigstoreJS, Attestations: []string{"slsa-provenance"},
		}},
		TrustedRoot: read(t, "trusted-root-public-good.json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	bundle := func(name string) *sigstore.Bundle {
		b, err := sigstore.ParseBundle(read(t, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	prov := bundle("bundle-provenance.json")
	v := tr.CheckBundle(prov, "slsa-provenance")
	if !v.Verified || v.KeyID != "sigstore-js-release" || v.Signer == nil || v.Signer.SourceRepository != "https://github.com/sigstore/sigstore-js" {
		t.Errorf("keyless provenance: %+v", v)
	}
	if v := tr.CheckBundle(prov, "unit-tests"); v.Verified || v.Problem != `no trusted identity is configured for attestation "unit-tests" (trusted_identities)` {
		t.Errorf("keyless for another name: %+v", v)
	}
	// A key-signed bundle is checked against the keys.
	if v := tr.CheckBundle(bundle("bundle-publish.json"), "npm-publish"); !v.Verified || v.KeyID != "npm" || v.Signer != nil {
		t.Errorf("key-signed bundle: %+v", v)
	}
	// Nothing configured: not verified, and says why.
	var none *Trust
	if v := none.CheckBundle(prov, "slsa-provenance"); v.Verified || !strings.Contains(v.Problem, "no trusted identity") {
		t.Errorf("no trust: %+v", v)
	}
}
