package intoto_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/intoto"
)

// FuzzEnvelope checks that no envelope panics the parser or the verifier,
// and that nothing verifies with a key that did not sign. The envelopes in
// testdata are the seed corpus.
func FuzzEnvelope(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.dsse.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"payloadType":"t","payload":"","signatures":[{"keyid":"b3eeb04f081c3910","sig":"MEUCIQ=="}]}`))
	var keys []intoto.PublicKey
	for _, name := range []string{"testdata/ecdsa-p256.pub", "testdata/ed25519.pub"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		k, err := intoto.ParsePublicKey(b)
		if err != nil {
			f.Fatal(err)
		}
		keys = append(keys, k)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := intoto.ParseEnvelope(in)
		if err != nil {
			return
		}
		if _, err := e.Verify(keys...); err == nil && !strings.Contains(string(e.Payload), "payments-api") {
			t.Fatalf("an envelope the test keys never signed verifies: %q", e.Payload)
		}
		if s, err := e.Statement(); err == nil {
			checkStatement(t, s)
		}
	})
}

// FuzzStatement checks that no statement panics the parser or the
// provenance reader, and that the artifacts read have valid digests. The
// statements in testdata are the seed corpus.
func FuzzStatement(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.statement.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := intoto.ParseStatement(in)
		if err != nil {
			return
		}
		checkStatement(t, s)
	})
}

func checkStatement(t *testing.T, s intoto.Statement) {
	arts, err := s.Artifacts()
	if err != nil {
		return
	}
	if len(arts) != len(s.Subject) {
		t.Fatalf("%d artifacts for %d subjects", len(arts), len(s.Subject))
	}
	for _, a := range arts {
		if !evidence.ValidDigest(a.Digest) || a.Name == "" || len(a.Repository) > 1024 || len(a.Pipeline) > 256 {
			t.Fatalf("bad artifact %+v", a)
		}
	}
}
