// Package intoto verifies signed in-toto attestations and reads SLSA
// provenance from them.
//
// It follows:
//
//   - DSSE, the Dead Simple Signing Envelope v1.0
//     (https://github.com/secure-systems-lab/dsse/blob/master/envelope.md and
//     protocol.md): an envelope {payloadType, payload, signatures[{keyid,
//     sig}]} whose signatures are over the pre-authentication encoding
//     PAE(payloadType, payload) = "DSSEv1" SP LEN(type) SP type SP
//     LEN(payload) SP payload, LEN being the byte length in ASCII decimal.
//     payload and sig are accepted in standard or URL-safe base64, padded or
//     not. keyid is an unauthenticated hint: it orders the keys tried and
//     names the error, it never decides.
//   - Signature schemes as cosign and the DSSE reference implementations use
//     them: ECDSA on P-256, an ASN.1 DER signature over the SHA-256 of the
//     PAE; and Ed25519 over the PAE itself.
//   - The in-toto Statement v1
//     (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md),
//     payloadType "application/vnd.in-toto+json", and the older Statement
//     v0.1.
//   - SLSA Provenance v1 (https://slsa.dev/spec/v1.0/provenance) and v0.2
//     (https://slsa.dev/spec/v0.2/provenance) predicates, read into the
//     fields of evidence.ArtifactReport; see Provenance.
//
// Keyless Sigstore bundles (Fulcio certificates, Rekor entries) are not
// handled here.
package intoto

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Errors of Verify.
var (
	// ErrUnsigned means the envelope has no signatures.
	ErrUnsigned = errors.New("the envelope is not signed")
	// ErrUnknownKey means every signature names, as its keyid, a key that
	// is not trusted, and no trusted key verifies any of them.
	ErrUnknownKey = errors.New("signed by a key that is not trusted")
	// ErrBadSignature means no trusted key verifies any signature although
	// a signature names a trusted key or names none: the payload was
	// altered, the signature is over something else, or (without a keyid)
	// it was made by a key that is not trusted.
	ErrBadSignature = errors.New("the signature does not verify")
)

// maxSignatures bounds the work of verifying one envelope.
const maxSignatures = 16

// Envelope is a DSSE envelope.
type Envelope struct {
	PayloadType string
	Payload     []byte
	Signatures  []Signature
}

// Signature is one signature of an envelope.
type Signature struct {
	KeyID string // optional, unauthenticated hint
	Sig   []byte
}

type envelopeJSON struct {
	PayloadType *string         `json:"payloadType"`
	Payload     *string         `json:"payload"`
	Signatures  []signatureJSON `json:"signatures"`
}

type signatureJSON struct {
	KeyID string  `json:"keyid"`
	Sig   *string `json:"sig"`
}

// ParseEnvelope reads a DSSE envelope in its JSON form.
func ParseEnvelope(data []byte) (Envelope, error) {
	var e Envelope
	if err := e.UnmarshalJSON(data); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// UnmarshalJSON reads a DSSE envelope in its JSON form.
func (e *Envelope) UnmarshalJSON(data []byte) error {
	var j envelopeJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return fmt.Errorf("intoto: envelope: %w", err)
	}
	switch {
	case j.PayloadType == nil || *j.PayloadType == "":
		return errors.New("intoto: envelope: payloadType is required")
	case j.Payload == nil:
		return errors.New("intoto: envelope: payload is required")
	case len(j.Signatures) > maxSignatures:
		return fmt.Errorf("intoto: envelope: %d signatures, more than %d", len(j.Signatures), maxSignatures)
	}
	payload, err := decodeBase64(*j.Payload)
	if err != nil {
		return fmt.Errorf("intoto: envelope: payload: %w", err)
	}
	out := Envelope{PayloadType: *j.PayloadType, Payload: payload}
	for i, s := range j.Signatures {
		if s.Sig == nil || *s.Sig == "" {
			return fmt.Errorf("intoto: envelope: signature %d: sig is required", i)
		}
		sig, err := decodeBase64(*s.Sig)
		if err != nil {
			return fmt.Errorf("intoto: envelope: signature %d: %w", i, err)
		}
		out.Signatures = append(out.Signatures, Signature{KeyID: s.KeyID, Sig: sig})
	}
	*e = out
	return nil
}

// MarshalJSON writes the envelope in its JSON form, in standard base64.
func (e Envelope) MarshalJSON() ([]byte, error) {
	type sig struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	}
	j := struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []sig  `json:"signatures"`
	}{e.PayloadType, base64.StdEncoding.EncodeToString(e.Payload), []sig{}}
	for _, s := range e.Signatures {
		j.Signatures = append(j.Signatures, sig{s.KeyID, base64.StdEncoding.EncodeToString(s.Sig)})
	}
	return json.Marshal(j)
}

// decodeBase64 accepts standard and URL-safe base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	return b, nil
}

// PAE is the DSSE pre-authentication encoding of a payload of type
// payloadType: the bytes that are signed.
func PAE(payloadType string, payload []byte) []byte {
	b := make([]byte, 0, len("DSSEv1")+len(payloadType)+len(payload)+24)
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}

// PublicKey is a trusted public key: ECDSA on P-256 or Ed25519.
type PublicKey struct {
	// ID names the key in results and errors. ParsePublicKey and
	// NewPublicKey set it to KeyID of the key; set it to the keyid the
	// envelopes carry when that is something else (a KMS URI, a name).
	ID  string
	Key crypto.PublicKey // *ecdsa.PublicKey or ed25519.PublicKey
}

// NewPublicKey returns k as a trusted key with its KeyID.
func NewPublicKey(k crypto.PublicKey) (PublicKey, error) {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return PublicKey{}, fmt.Errorf("intoto: an ECDSA key on %s; only P-256 is supported", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return PublicKey{}, fmt.Errorf("intoto: an Ed25519 key of %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
	default:
		return PublicKey{}, fmt.Errorf("intoto: %T keys are not supported: use ECDSA P-256 or Ed25519", k)
	}
	id, err := KeyID(k)
	if err != nil {
		return PublicKey{}, err
	}
	return PublicKey{ID: id, Key: k}, nil
}

// ParsePublicKey reads a trusted key: a PEM "PUBLIC KEY" (PKIX, as cosign
// writes cosign.pub) holding an ECDSA P-256 or Ed25519 key, or a raw
// Ed25519 key of 32 bytes, given as such or in hex or base64.
func ParsePublicKey(data []byte) (PublicKey, error) {
	text := bytes.TrimSpace(data)
	if bytes.HasPrefix(text, []byte("-----BEGIN")) {
		block, _ := pem.Decode(text)
		switch {
		case block == nil:
			return PublicKey{}, errors.New("intoto: public key: bad PEM")
		case strings.Contains(block.Type, "PRIVATE"):
			return PublicKey{}, fmt.Errorf("intoto: public key: this is a %s; give the public key", block.Type)
		case block.Type != "PUBLIC KEY":
			return PublicKey{}, fmt.Errorf("intoto: public key: PEM type %q, want \"PUBLIC KEY\"", block.Type)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return PublicKey{}, fmt.Errorf("intoto: public key: %w", err)
		}
		return NewPublicKey(k)
	}
	if len(data) == ed25519.PublicKeySize {
		return NewPublicKey(ed25519.PublicKey(bytes.Clone(data)))
	}
	s := string(text)
	if b, err := hex.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
		return NewPublicKey(ed25519.PublicKey(b))
	}
	if b, err := decodeBase64(s); err == nil && len(b) == ed25519.PublicKeySize {
		return NewPublicKey(ed25519.PublicKey(b))
	}
	return PublicKey{}, errors.New("intoto: public key: neither a PEM public key nor a raw Ed25519 key")
}

// KeyID is the stable id of a public key: the first 16 hex characters of
// the SHA-256 of its PKIX (SubjectPublicKeyInfo) DER encoding.
func KeyID(k crypto.PublicKey) (string, error) {
	sum, err := fingerprint(k)
	if err != nil {
		return "", err
	}
	return sum[:16], nil
}

// fingerprint is the hex SHA-256 of k's PKIX DER encoding.
func fingerprint(k crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return "", fmt.Errorf("intoto: key id: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// Matches reports whether keyid, an envelope's hint, names k: it is k.ID,
// or KeyID of k, or the full hex SHA-256 of its PKIX encoding.
func (k PublicKey) Matches(keyid string) bool {
	if keyid == "" {
		return false
	}
	if keyid == k.ID {
		return true
	}
	fp, err := fingerprint(k.Key)
	return err == nil && (keyid == fp || keyid == fp[:16])
}

// verify reports whether sig is k's signature of the PAE pae.
func (k PublicKey) verify(pae, sig []byte) bool {
	switch pub := k.Key.(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return false
		}
		h := sha256.Sum256(pae)
		return ecdsa.VerifyASN1(pub, h[:], sig)
	case ed25519.PublicKey:
		return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, pae, sig)
	}
	return false
}

// Verify checks the envelope's signatures against the trusted keys and
// returns the key that verified one. Keys named by a signature's keyid are
// tried first, then the others. It fails with ErrUnsigned, ErrUnknownKey
// or ErrBadSignature.
func (e Envelope) Verify(trusted ...PublicKey) (PublicKey, error) {
	if len(trusted) == 0 {
		return PublicKey{}, errors.New("intoto: verify: no trusted keys")
	}
	if len(e.Signatures) == 0 {
		return PublicKey{}, fmt.Errorf("intoto: verify: %w", ErrUnsigned)
	}
	pae := PAE(e.PayloadType, e.Payload)
	var named []string // trusted keys named by a signature
	hinted := true     // every signature carries a keyid
	for _, s := range e.Signatures {
		keys := slices.Clone(trusted)
		slices.SortStableFunc(keys, func(a, b PublicKey) int {
			am, bm := a.Matches(s.KeyID), b.Matches(s.KeyID)
			switch {
			case am && !bm:
				return -1
			case bm && !am:
				return 1
			}
			return 0
		})
		for _, k := range keys {
			if k.verify(pae, s.Sig) {
				return k, nil
			}
		}
		if s.KeyID == "" {
			hinted = false
		} else if keys[0].Matches(s.KeyID) {
			named = append(named, keys[0].ID)
		}
	}
	if len(named) > 0 {
		return PublicKey{}, fmt.Errorf("intoto: verify: %w with trusted key %s: the payload was altered or the signature is over something else", ErrBadSignature, strings.Join(named, ", "))
	}
	if hinted {
		var ids []string
		for _, s := range e.Signatures {
			ids = append(ids, strconv.Quote(s.KeyID))
		}
		return PublicKey{}, fmt.Errorf("intoto: verify: %w: keyid %s", ErrUnknownKey, strings.Join(ids, ", "))
	}
	return PublicKey{}, fmt.Errorf("intoto: verify: %w with any of the %d trusted keys: the payload was altered, or it was signed by a key that is not trusted", ErrBadSignature, len(trusted))
}
