// Package sigstore verifies Sigstore bundles: in-toto attestations signed
// "keyless", as GitHub's artifact attestations (actions/attest-build-provenance,
// `gh attestation`), `cosign attest` and the npm and PyPI provenance write
// them. The signer is not a key Vouch holds but the CI job's OIDC identity:
// a short-lived certificate from a Fulcio certificate authority names the
// workflow (subject) and the OIDC issuer, and a transparency-log entry or an
// RFC 3161 timestamp proves the signature was made while the certificate
// was valid.
//
// Verification is sigstore-go's, the reference implementation, against
// trusted roots the operator supplies (trusted_root.json as Sigstore's TUF
// repository publishes it, or `gh attestation trusted-root`): nothing is
// fetched at run time. Each root requires what it can vouch for: an entry
// in one of its transparency logs when it lists logs, certificate
// transparency (SCTs) when it lists CT logs, and at least one verified
// timestamp always. The signer's identity is then matched against the
// configured trusted identities.
package sigstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/vouch-dev/vouch/evidence/intoto"
)

// mediaTypePrefix starts the media type of every bundle version
// ("application/vnd.dev.sigstore.bundle+json;version=0.1",
// "application/vnd.dev.sigstore.bundle.v0.3+json").
const mediaTypePrefix = "application/vnd.dev.sigstore.bundle"

// IsBundle reports whether a JSON document says it is a Sigstore bundle.
func IsBundle(data []byte) bool {
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	return json.Unmarshal(data, &probe) == nil && strings.HasPrefix(probe.MediaType, mediaTypePrefix)
}

// Bundle is a parsed Sigstore bundle holding a DSSE envelope.
type Bundle struct {
	// MediaType is the bundle's, with its version.
	MediaType string
	// Envelope is the signed envelope; its statement is what the bundle
	// attests.
	Envelope intoto.Envelope
	bundle   *sgbundle.Bundle
}

// ParseBundle reads a bundle. It refuses bundles that sign a blob
// (`cosign sign-blob`) rather than an attestation.
func ParseBundle(data []byte) (*Bundle, error) {
	var b sgbundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("not a valid Sigstore bundle: %w", err)
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, errors.New("the Sigstore bundle signs a blob, not an attestation: send a bundle with a DSSE envelope (cosign attest, actions/attest-build-provenance)")
	}
	out := &Bundle{MediaType: b.GetMediaType(), bundle: &b, Envelope: intoto.Envelope{PayloadType: env.GetPayloadType(), Payload: env.GetPayload()}}
	for _, s := range env.GetSignatures() {
		out.Envelope.Signatures = append(out.Envelope.Signatures, intoto.Signature{KeyID: s.GetKeyid(), Sig: s.GetSig()})
	}
	return out, nil
}

// KeySigned reports whether the bundle was signed with a key (it names a
// public key hint instead of carrying a certificate): its envelope is then
// checked against trusted keys like any DSSE envelope.
func (b *Bundle) KeySigned() bool {
	return b.bundle.GetVerificationMaterial().GetPublicKey() != nil
}

// Identity is a signer Vouch trusts: the OIDC issuer and the certificate's
// subject (for GitHub Actions, the workflow:
// https://github.com/ORG/REPO/.github/workflows/FILE@REF).
type Identity struct {
	// Name identifies the identity in the policy input (key_id) and logs.
	Name string `json:"name"`
	// Issuer is the OIDC issuer, exactly
	// (https://token.actions.githubusercontent.com for GitHub Actions).
	Issuer string `json:"issuer"`
	// Subject is the certificate's subject, exactly; SubjectRegexp a
	// regular expression (RE2) the whole subject must match. One of them.
	Subject       string `json:"subject,omitempty"`
	SubjectRegexp string `json:"subject_regexp,omitempty"`
	// Attestations are the names the identity may sign (required: one CI
	// workflow signs whatever it is asked to). PredicateTypes, when given,
	// are the in-toto predicate types it may sign for them.
	Attestations   []string `json:"attestations"`
	PredicateTypes []string `json:"predicate_types,omitempty"`

	match verify.CertificateIdentity
}

// Compile checks the identity and prepares its matcher. Errors name the
// field.
func (id *Identity) Compile() error {
	switch {
	case id.Name == "":
		return errors.New("name: is required")
	case id.Issuer == "":
		return errors.New("issuer: is required (https://token.actions.githubusercontent.com for GitHub Actions)")
	case (id.Subject == "") == (id.SubjectRegexp == ""):
		return errors.New("give subject or subject_regexp, one of them")
	case len(id.Attestations) == 0:
		return errors.New("attestations: list the attestation names it may sign, e.g. [slsa-provenance]")
	}
	re := ""
	if id.SubjectRegexp != "" {
		// Anchored: an unanchored pattern would accept any subject that
		// merely contains it.
		re = "^(?:" + id.SubjectRegexp + ")$"
		if _, err := regexp.Compile(re); err != nil {
			return fmt.Errorf("subject_regexp: %w", err)
		}
	}
	m, err := verify.NewShortCertificateIdentity(id.Issuer, "", id.Subject, re)
	if err != nil {
		return err
	}
	id.match = m
	return nil
}

// Signs reports whether the identity may sign attestations of name with
// the predicate type.
func (id *Identity) Signs(name, predicateType string) bool {
	return slices.Contains(id.Attestations, name) && (len(id.PredicateTypes) == 0 || slices.Contains(id.PredicateTypes, predicateType))
}

// Signer is who signed a verified bundle, from its certificate.
type Signer struct {
	// Identity is the name of the trusted identity it matched.
	Identity string `json:"identity"`
	Subject  string `json:"subject"`
	Issuer   string `json:"issuer"`
	// The source and run, as Fulcio records them for CI providers that
	// give them (GitHub Actions, GitLab CI, Buildkite…).
	SourceRepository string `json:"source_repository,omitempty"`
	SourceCommit     string `json:"source_commit,omitempty"`
	SourceRef        string `json:"source_ref,omitempty"`
	BuildConfig      string `json:"build_config,omitempty"`
	Run              string `json:"run,omitempty"`
	// SignedAt is the earliest verified time of the signature; Witnesses
	// are the logs and timestamp authorities that attest it.
	SignedAt  time.Time `json:"signed_at"`
	Witnesses []string  `json:"witnesses"`
}

// Verifier verifies bundles against trusted roots.
type Verifier struct {
	roots []trustedRoot
}

type trustedRoot struct {
	name     string
	verifier *verify.Verifier
}

// NewVerifier loads trusted roots: one trusted_root.json document, or JSON
// Lines of them as `gh attestation trusted-root` prints (Sigstore's public
// instance and GitHub's own, which signs private repositories'
// attestations).
func NewVerifier(trustedRoots []byte) (*Verifier, error) {
	docs := [][]byte{trustedRoots}
	if !json.Valid(trustedRoots) {
		docs = nil
		for _, line := range bytes.Split(trustedRoots, []byte("\n")) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				docs = append(docs, line)
			}
		}
	}
	v := &Verifier{}
	for i, doc := range docs {
		tr, err := root.NewTrustedRootFromJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("trusted root %d: %w", i+1, err)
		}
		opts := []verify.VerifierOption{verify.WithObserverTimestamps(1)}
		if len(tr.RekorLogs()) > 0 {
			opts = append(opts, verify.WithTransparencyLog(1))
		}
		if len(tr.CTLogs()) > 0 {
			opts = append(opts, verify.WithSignedCertificateTimestamps(1))
		}
		sv, err := verify.NewVerifier(tr, opts...)
		if err != nil {
			return nil, fmt.Errorf("trusted root %d: %w", i+1, err)
		}
		v.roots = append(v.roots, trustedRoot{name: rootName(i, tr), verifier: sv})
	}
	if len(v.roots) == 0 {
		return nil, errors.New("no trusted root in the file")
	}
	return v, nil
}

// rootName names a trusted root in errors by its certificate authority.
func rootName(i int, tr *root.TrustedRoot) string {
	for _, ca := range tr.FulcioCertificateAuthorities() {
		if f, ok := ca.(*root.FulcioCertificateAuthority); ok && f.URI != "" {
			return fmt.Sprintf("trusted root %d (%s)", i+1, f.URI)
		}
	}
	return fmt.Sprintf("trusted root %d", i+1)
}

// Verify checks a certificate-signed bundle — certificate chain, signature,
// timestamps, transparency — against each trusted root in turn, then
// matches the certificate's identity against ids, the identities trusted
// for the attestation. The error says what failed.
func (v *Verifier) Verify(b *Bundle, ids []*Identity) (Signer, error) {
	if v == nil || len(v.roots) == 0 {
		return Signer{}, errors.New("no Sigstore trusted root is configured (sigstore_trusted_root)")
	}
	// The artifact is not checked here: the statement's subjects are what
	// Vouch records the attestation for, bound by their digests. The
	// identity is matched below, by the same matcher, to name it.
	policy := verify.NewPolicy(verify.WithoutArtifactUnsafe(), verify.WithoutIdentitiesUnsafe())
	var res *verify.VerificationResult
	var problems []string
	for _, r := range v.roots {
		var err error
		if res, err = r.verifier.Verify(b.bundle, policy); err == nil {
			break
		}
		problems = append(problems, r.name+": "+err.Error())
	}
	if len(problems) == len(v.roots) {
		return Signer{}, fmt.Errorf("the Sigstore bundle does not verify: %s", strings.Join(problems, "; "))
	}
	cert := res.Signature.Certificate
	if cert == nil {
		return Signer{}, errors.New("the Sigstore bundle carries no certificate")
	}
	s := signer(*cert, res.VerifiedTimestamps)
	for _, id := range ids {
		if id.match.Verify(*cert) == nil {
			s.Identity = id.Name
			return s, nil
		}
	}
	return Signer{}, fmt.Errorf("signed by %s (issuer %s), which no trusted identity for this attestation matches", s.Subject, s.Issuer)
}

func signer(c certificate.Summary, ts []verify.TimestampVerificationResult) Signer {
	s := Signer{
		Subject: c.SubjectAlternativeName, Issuer: c.Issuer,
		SourceRepository: c.SourceRepositoryURI, SourceCommit: c.SourceRepositoryDigest, SourceRef: c.SourceRepositoryRef,
		BuildConfig: c.BuildConfigURI, Run: c.RunInvocationURI,
	}
	for _, t := range ts {
		if s.SignedAt.IsZero() || t.Timestamp.Before(s.SignedAt) {
			s.SignedAt = t.Timestamp.UTC()
		}
		if !slices.Contains(s.Witnesses, t.URI) {
			s.Witnesses = append(s.Witnesses, t.URI)
		}
	}
	return s
}
