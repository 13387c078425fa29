package console

import (
	"testing"

	"github.com/vouch-dev/vouch/evidence"
)

func TestSignedBy(t *testing.T) {
	for _, tc := range []struct {
		a    evidence.Attestation
		want string
	}{
		{evidence.Attestation{KeyID: "release-signer", Payload: []byte(`{"predicate_type":"x","signed":true}`)}, "key release-signer"},
		{evidence.Attestation{KeyID: "octo-release", Payload: []byte(`{"signer":{"identity":"octo-release",` +
			`"subject":"https://github.com/octo-org/api/.github/workflows/release.yml@refs/heads/main",` +
			`"source_commit":"4b825dc642cb6eb9a060e54bf8d69288fbee4904"}}`)},
			"octo-release, keyless: https://github.com/octo-org/api/.github/workflows/release.yml@refs/heads/main at 4b825dc642cb"},
		{evidence.Attestation{KeyID: "k"}, "key k"},
		{evidence.Attestation{KeyID: "forge:github", Type: evidence.TypePullRequest, Payload: []byte(`{"approvals":2}`)}, "read by Vouch from the forge github"},
	} {
		if got := signedBy(tc.a); got != tc.want {
			t.Errorf("signedBy = %q, want %q", got, tc.want)
		}
	}
}
