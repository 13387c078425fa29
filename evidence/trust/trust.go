// Package trust decides what a signed attestation is worth: which public
// keys Vouch trusts for which attestations (trusted_keys in the
// configuration), which attestations must be signed (require_signatures),
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

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/intoto"
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
}

// Config is the signature part of Vouch's configuration.
type Config struct {
	Keys []KeyConfig `json:"trusted_keys"`
	// Required names the attestations accepted only when signed by a
	// trusted key ("*" for all).
	Required []string `json:"require_signatures"`
}

type key struct {
	pub   intoto.PublicKey
	names []string
}

// Trust holds the trusted keys.
type Trust struct {
	keys     []key
	required []string
}

// New loads the keys. Errors name the configuration field.
func New(cfg Config) (*Trust, error) {
	t := &Trust{required: cfg.Required}
	seen := map[string]bool{}
	for i, k := range cfg.Keys {
		field := fmt.Sprintf("trusted_keys[%d]", i)
		if k.Name == "" {
			return nil, fmt.Errorf("%s.name: is required", field)
		}
		if seen[k.Name] {
			return nil, fmt.Errorf("%s.name: %q is used twice", field, k.Name)
		}
		seen[k.Name] = true
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
		t.keys = append(t.keys, key{pub: pub, names: k.Attestations})
	}
	for i, n := range cfg.Required {
		if n == "" {
			return nil, fmt.Errorf("require_signatures[%d]: is empty", i)
		}
	}
	return t, nil
}

// SignatureRequired reports whether attestations of name must be signed.
func (t *Trust) SignatureRequired(name string) bool {
	return t != nil && (slices.Contains(t.required, name) || slices.Contains(t.required, "*"))
}

// Verdict is what a signature check found.
type Verdict struct {
	Verified bool
	KeyID    string // the trusted key that verified it
	Problem  string // why not, when not verified
}

// Check verifies an envelope for an attestation of name against the keys
// trusted for that name.
func (t *Trust) Check(e intoto.Envelope, name string) Verdict {
	var keys []intoto.PublicKey
	if t != nil {
		for _, k := range t.keys {
			if len(k.names) == 0 || slices.Contains(k.names, name) {
				keys = append(keys, k.pub)
			}
		}
	}
	if len(keys) == 0 {
		return Verdict{Problem: fmt.Sprintf("no trusted key is configured for attestation %q", name)}
	}
	k, err := e.Verify(keys...)
	if err != nil {
		return Verdict{Problem: err.Error()}
	}
	return Verdict{Verified: true, KeyID: k.ID}
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
			Verified: v.Verified, KeyID: v.KeyID,
		})
	}
	return r, nil
}
