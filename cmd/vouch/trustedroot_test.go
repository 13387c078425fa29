package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/evidence/sigstore"
	"github.com/vouch-dev/vouch/evidence/trust"
	"github.com/vouch-dev/vouch/test/sigstoretest"
	"github.com/vouch-dev/vouch/test/testlog"
)

// TestTrustedRootReloads: a new sigstore_trusted_root on disk (Sigstore
// rotated its keys) is used without a restart; one that does not load is
// logged and the old one kept.
func TestTrustedRootReloads(t *testing.T) {
	const workflow = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
	old, rotated := sigstoretest.New(t), sigstoretest.New(t)
	file := filepath.Join(t.TempDir(), "trusted_root.json")
	replace := func(b []byte) { // as a ConfigMap's files are: swapped, never half-written
		tmp := file + ".new"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	loaded := old.TrustedRoot(t)
	replace(loaded)
	tr, err := trust.New(trust.Config{TrustedRoot: loaded,
		Identities: []sigstore.Identity{{Name: "release", Issuer: sigstoretest.GitHubIssuer, Subject: workflow, Attestations: []string{"sbom"}}}})
	if err != nil {
		t.Fatal(err)
	}
	statement := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"app","digest":{"sha256":"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}}],` +
		`"predicateType":"https://spdx.dev/Document","predicate":{"spdxVersion":"SPDX-2.3"}}`)
	verified := func(s *sigstoretest.Sigstore) bool {
		b, err := sigstore.ParseBundle(s.Attest(t, sigstoretest.Job{Subject: workflow}, statement))
		if err != nil {
			t.Fatal(err)
		}
		st, err := b.Envelope.Statement()
		if err != nil {
			t.Fatal(err)
		}
		return tr.CheckBundle(b, st, "sbom").Verified
	}
	if !verified(old) || verified(rotated) {
		t.Fatal("before the rotation: want the old authority's signature verified, the new one's not")
	}
	logs := &testlog.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		watchTrustedRoot(ctx, file, loaded, tr, slog.New(slog.NewTextHandler(logs, nil)), 5*time.Millisecond)
		close(done)
	}()
	defer func() { cancel(); <-done }()
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s\n%s", what, logs)
			}
		}
	}

	replace([]byte(`{"mediaType": "not a trusted root"`))
	eventually("a root that does not load is logged", func() bool {
		return strings.Contains(logs.String(), "does not load: the previous trusted roots stay in force")
	})
	if !verified(old) {
		t.Error("after a root that does not load: the old authority's signature is no longer verified")
	}

	replace(rotated.TrustedRoot(t))
	eventually("the new root is used", func() bool { return verified(rotated) })
	if verified(old) {
		t.Error("after the rotation: the old authority's signature is still verified")
	}
	if !strings.Contains(logs.String(), "sigstore_trusted_root changed: verifying keyless signatures against the new trusted roots") {
		t.Errorf("the reload is not logged:\n%s", logs)
	}
}
