// Package trust decides what a signed attestation is worth: which public
// keys and which keyless signers Vouch trusts for which attestations
// (trusted_keys and trusted_identities in the configuration, the latter
// verified against sigstore_trusted_root), which attestations must be
// signed (require_signatures),
// and what a DSSE envelope with an in-toto statement records — an
// attestation for each subject, and for SLSA provenance the artifacts'
// provenance too.
package trust

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/intoto"
	"github.com/vouch-dev/vouch/evidence/sigstore"
)

// KeyConfig is one entry of trusted_keys.
type KeyConfig struct {
	// Name identifies the key in the policy input (key_id) and in logs.
	Name string `json:"name"`
	// PublicKey is a PEM public key (ECDSA P-256 as cosign writes it, or
	// Ed25519); PublicKeyFile reads it from a file instead.
	PublicKey     string `json:"public_key,omitempty"`
	PublicKeyFile string `json:"public_key_file,omitempty"`
	// Attestations are the names the key may sign; empty means any.
	Attestations []string `json:"attestations,omitempty"`
	// PredicateTypes, when given, are the in-toto predicate types it may
	// sign for them.
	PredicateTypes []string `json:"predicate_types,omitempty"`
}

// Config is the signature part of Vouch's configuration.
type Config struct {
	Keys []KeyConfig `json:"trusted_keys"`
	// Identities are the keyless signers trusted: CI jobs' OIDC identities
	// in the certificates of Sigstore bundles.
	Identities []sigstore.Identity `json:"trusted_identities"`
	// TrustedRoot is the Sigstore trusted root(s) that bundles' certificates,
	// log entries and timestamps are verified against (the content of
	// sigstore_trusted_root, JSON or JSON Lines).
	TrustedRoot []byte `json:"-"`
	// Required names the attestations accepted only when signed by a
	// trusted key ("*" for all).
	Required []string `json:"require_signatures"`
}

type key struct {
	pub   intoto.PublicKey
	names []string
	types []string
}

// Trust holds the trusted keys and identities.
type Trust struct {
	keys       []key
	identities []*sigstore.Identity
	sigstore   atomic.Pointer[sigstore.Verifier] // replaced by SetTrustedRoot
	required   []string
}

// New loads the keys. Errors name the configuration field.
func New(cfg Config) (*Trust, error) {
	t := &Trust{required: cfg.Required}
	// Names of keys and identities are the key_id attestations record.
	seen := map[string]bool{}
	claim := func(field, name string) error {
		_, reserved := evidence.ReadByVouch(name)
		switch {
		case seen[name]:
			return fmt.Errorf("%s.name: %q is used twice (names of keys and identities are key_id)", field, name)
		case reserved:
			return fmt.Errorf("%s.name: %q: forge: and change: name what Vouch reads from forges and change systems itself", field, name)
		}
		seen[name] = true
		return nil
	}
	for i, k := range cfg.Keys {
		field := fmt.Sprintf("trusted_keys[%d]", i)
		if k.Name == "" {
			return nil, fmt.Errorf("%s.name: is required", field)
		}
		if err := claim(field, k.Name); err != nil {
			return nil, err
		}
		pem := []byte(k.PublicKey)
		switch {
		case k.PublicKey != "" && k.PublicKeyFile != "":
			return nil, fmt.Errorf("%s: give public_key or public_key_file, not both", field)
		case k.PublicKeyFile != "":
			b, err := os.ReadFile(k.PublicKeyFile)
			if err != nil {
				return nil, fmt.Errorf("%s.public_key_file: %w", field, err)
			}
			pem = b
		case k.PublicKey == "":
			return nil, fmt.Errorf("%s: public_key or public_key_file is required", field)
		}
		pub, err := intoto.ParsePublicKey(pem)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		pub.ID = k.Name
		t.keys = append(t.keys, key{pub: pub, names: k.Attestations, types: k.PredicateTypes})
	}
	for i := range cfg.Identities {
		id := cfg.Identities[i]
		field := fmt.Sprintf("trusted_identities[%d]", i)
		if err := id.Compile(); err != nil {
			return nil, fmt.Errorf("%s.%w", field, err)
		}
		if err := claim(field, id.Name); err != nil {
			return nil, err
		}
		t.identities = append(t.identities, &id)
	}
	switch {
	case len(cfg.TrustedRoot) > 0:
		if err := t.SetTrustedRoot(cfg.TrustedRoot); err != nil {
			return nil, err
		}
	case len(t.identities) > 0:
		return nil, errors.New("trusted_identities: sigstore_trusted_root is required to verify them (for GitHub: gh attestation trusted-root > trusted_root.jsonl)")
	}
	for i, n := range cfg.Required {
		if n == "" {
			return nil, fmt.Errorf("require_signatures[%d]: is empty", i)
		}
	}
	return t, nil
}

// SetTrustedRoot replaces the Sigstore trusted roots (the content of
// sigstore_trusted_root), as when Sigstore or GitHub rotate their keys.
// Verifications under way finish with the roots they began with; roots
// that do not load change nothing.
func (t *Trust) SetTrustedRoot(root []byte) error {
	v, err := sigstore.NewVerifier(root)
	if err != nil {
		return fmt.Errorf("sigstore_trusted_root: %w", err)
	}
	t.sigstore.Store(v)
	return nil
}

// SignatureRequired reports whether attestations of name must be signed.
func (t *Trust) SignatureRequired(name string) bool {
	return t != nil && (slices.Contains(t.required, name) || slices.Contains(t.required, "*"))
}

// Verdict is what a signature check found.
type Verdict struct {
	Verified bool
	KeyID    string           // the trusted key or identity that verified it
	Signer   *sigstore.Signer // who signed keyless, when verified so
	Problem  string           // why not, when not verified
}

// Check verifies an envelope holding st for an attestation of name
// against the keys trusted for that name and st's predicate type.
func (t *Trust) Check(e intoto.Envelope, st intoto.Statement, name string) Verdict {
	var keys []intoto.PublicKey
	if t != nil {
		for _, k := range t.keys {
			if (len(k.names) == 0 || slices.Contains(k.names, name)) && (len(k.types) == 0 || slices.Contains(k.types, st.PredicateType)) {
				keys = append(keys, k.pub)
			}
		}
	}
	if len(keys) == 0 {
		return Verdict{Problem: fmt.Sprintf("no trusted key is configured for attestation %q of predicate type %s (trusted_keys)", name, st.PredicateType)}
	}
	k, err := e.Verify(keys...)
	if err != nil {
		return Verdict{Problem: err.Error()}
	}
	return Verdict{Verified: true, KeyID: k.ID}
}

// CheckBundle verifies a Sigstore bundle holding st for an attestation of
// name: a certificate-signed bundle against the identities trusted for
// that name and st's predicate type, a key-signed one against the keys.
func (t *Trust) CheckBundle(b *sigstore.Bundle, st intoto.Statement, name string) Verdict {
	if b.KeySigned() {
		return t.Check(b.Envelope, st, name)
	}
	var ids []*sigstore.Identity
	if t != nil {
		for _, id := range t.identities {
			if id.Signs(name, st.PredicateType) {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return Verdict{Problem: fmt.Sprintf("no trusted identity is configured for attestation %q of predicate type %s (trusted_identities)", name, st.PredicateType)}
	}
	s, err := t.sigstore.Load().Verify(b, ids)
	if err != nil {
		return Verdict{Problem: err.Error()}
	}
	if problem := boundToSigner(s, st); problem != "" {
		return Verdict{Problem: problem}
	}
	return Verdict{Verified: true, KeyID: s.Identity, Signer: &s}
}

// boundToSigner checks provenance against the certificate that signed it:
// the certificate names the repository and commit the signing workflow
// ran from, and SLSA provenance must name the same — else a workflow of
// one repository could vouch for another repository's build.
func boundToSigner(s sigstore.Signer, st intoto.Statement) string {
	if st.PredicateType != intoto.SLSAProvenanceV1 && st.PredicateType != intoto.SLSAProvenanceV02 {
		return ""
	}
	arts, err := st.Artifacts()
	if err != nil {
		return "" // Reports refuses the statement, saying why
	}
	for _, a := range arts {
		if s.SourceRepository != "" && auth.RepositoryKey(a.Repository) != auth.RepositoryKey(s.SourceRepository) {
			return fmt.Sprintf("the provenance names repository %q, but the certificate was issued to a workflow of %s", a.Repository, s.SourceRepository)
		}
		if s.SourceCommit != "" && !strings.EqualFold(a.GitCommit, s.SourceCommit) {
			return fmt.Sprintf("the provenance names commit %q, but the certificate was issued to a workflow run at commit %s", a.GitCommit, s.SourceCommit)
		}
	}
	return ""
}

// ErrNoName means the envelope's predicate type has no default name.
var ErrNoName = errors.New("an attestation name is required for this predicate type")

// DefaultName is the attestation name of a predicate type when the caller
// gives none: SLSA provenance is "slsa-provenance".
func DefaultName(predicateType string) (string, error) {
	switch predicateType {
	case intoto.SLSAProvenanceV1, intoto.SLSAProvenanceV02:
		return "slsa-provenance", nil
	}
	return "", fmt.Errorf("%w (%s)", ErrNoName, predicateType)
}

// TestResultV01 is the in-toto test-result predicate.
const TestResultV01 = "https://in-toto.io/attestation/test-result/v0.1"

// Records are what one envelope records.
type Records struct {
	Attestations []evidence.AttestationReport
	// Artifacts is the provenance of each subject, for SLSA provenance.
	Artifacts []evidence.ArtifactReport
}

// Reports turns a statement into an attestation per subject (type
// "in-toto", bound by the subject's sha256; the caller sets Blob to the
// stored envelope) and, for
// SLSA provenance, the subjects' provenance. An attestation passes unless
// its predicate says it failed (a test-result with result FAILED).
func Reports(st intoto.Statement, name string, v Verdict) (Records, error) {
	passed := true
	summary := map[string]any{"predicate_type": st.PredicateType, "signed": v.Verified}
	if v.Problem != "" {
		summary["signature_problem"] = v.Problem
	}
	if v.Signer != nil {
		summary["signer"] = v.Signer
	}
	if st.PredicateType == TestResultV01 {
		var p struct {
			Result string `json:"result"`
		}
		if err := json.Unmarshal(st.Predicate, &p); err != nil || p.Result == "" {
			return Records{}, fmt.Errorf("test-result predicate: no result")
		}
		passed = p.Result != "FAILED"
		summary["result"] = p.Result
	}
	var signedAt *time.Time
	if v.Signer != nil && !v.Signer.SignedAt.IsZero() {
		t := v.Signer.SignedAt.UTC().Truncate(time.Microsecond) // as the stores keep it
		signedAt = &t
	}
	var r Records
	if st.PredicateType == intoto.SLSAProvenanceV1 || st.PredicateType == intoto.SLSAProvenanceV02 {
		arts, err := st.Artifacts()
		if err != nil {
			return Records{}, err
		}
		r.Artifacts = arts
		if p, err := st.Provenance(); err == nil {
			summary["builder_id"], summary["build_type"] = p.BuilderID, p.BuildType
		}
	}
	for _, sub := range st.Subject {
		d, err := sub.SHA256()
		if err != nil {
			return Records{}, err
		}
		s := map[string]any{"subject": sub.Name}
		for k, v := range summary {
			s[k] = v
		}
		payload, _ := json.Marshal(s)
		r.Attestations = append(r.Attestations, evidence.AttestationReport{
			Digest: d, Name: name, Type: "in-toto", Passed: &passed, Payload: payload,
			Verified: v.Verified, KeyID: v.KeyID, SignedAt: signedAt,
		})
	}
	return r, nil
}
