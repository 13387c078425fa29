// Package sigstoretest is a Sigstore of its own for tests: a Fulcio-like
// certificate authority that issues certificates as Fulcio does for a CI
// job (the workflow as a URI subject, the OIDC issuer and the source
// repository in Fulcio's extensions), a Rekor-like transparency log and a
// timestamp authority (sigstore-go's virtual ones), and a trusted_root.json
// for them. Its bundles are what GitHub's artifact attestations are,
// signed by keys the test holds; Sigstore's public instance cannot sign
// for tests.
package sigstoretest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
)

// GitHubIssuer is GitHub Actions' OIDC issuer.
const GitHubIssuer = "https://token.actions.githubusercontent.com"

// Sigstore is a certificate authority, a transparency log and a timestamp
// authority.
type Sigstore struct {
	virtual *ca.VirtualSigstore // the log and the timestamp authority
	root    *x509.Certificate
	inter   *x509.Certificate
	key     *ecdsa.PrivateKey // the intermediate's
}

// New starts a Sigstore.
func New(t testing.TB) *Sigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	inter, key, err := ca.GenerateFulcioIntermediate(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return &Sigstore{virtual: vs, root: rootCert, inter: inter, key: key}
}

// TrustedRoot is the trusted_root.json of the Sigstore: its certificate
// authority, its log and its timestamp authority (no CT log: the
// certificates carry no SCTs).
func (s *Sigstore) TrustedRoot(t testing.TB) []byte {
	return s.TrustedRootWith(t, true, false)
}

// TrustedRootWith is the trusted root with or without the transparency log
// (without: as GitHub's own root, timestamps only) and with or without a
// CT log (with: as Sigstore's public root, which requires SCTs).
func (s *Sigstore) TrustedRootWith(t testing.TB, withLog, withCT bool) []byte {
	t.Helper()
	logs, ct := map[string]*root.TransparencyLog{}, map[string]*root.TransparencyLog{}
	if withCT {
		ct = s.virtual.CTLogs()
	}
	for id, l := range s.virtual.RekorLogs() {
		if !withLog {
			break
		}
		c := *l
		// The virtual log's ID is its hex form; a trusted root holds bytes.
		if c.ID, _ = hex.DecodeString(string(l.ID)); c.ID == nil {
			t.Fatalf("log id %q", l.ID)
		}
		logs[id] = &c
	}
	cas := []root.CertificateAuthority{&root.FulcioCertificateAuthority{
		Root: s.root, Intermediates: []*x509.Certificate{s.inter}, URI: "https://fulcio.test",
		ValidityPeriodStart: s.root.NotBefore, ValidityPeriodEnd: s.root.NotAfter,
	}}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, cas, ct, s.virtual.TimestampingAuthorities(), logs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Job is the CI job a certificate is issued to.
type Job struct {
	Subject string // the workflow, e.g. https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main
	Issuer  string // default GitHubIssuer
	// Source repository and commit, in Fulcio's extensions (optional).
	Repository string
	Commit     string
	// NoLog leaves the transparency-log entry out (only a timestamp).
	NoLog bool
}

// Attest signs an in-toto statement as the job and returns the Sigstore
// bundle (v0.3) as JSON.
func (s *Sigstore) Attest(t testing.TB, job Job, statement []byte) []byte {
	t.Helper()
	if job.Issuer == "" {
		job.Issuer = GitHubIssuer
	}
	leaf, key := s.leaf(t, job)
	const payloadType = "application/vnd.in-toto+json"
	pae := dsse.PAE(payloadType, statement)
	h := sha256.Sum256(pae)
	sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	env := &dsse.Envelope{PayloadType: payloadType, Payload: base64.StdEncoding.EncodeToString(statement),
		Signatures: []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}}
	tsr, err := s.virtual.TimestampResponse(sig)
	if err != nil {
		t.Fatal(err)
	}
	material := &protobundle.VerificationMaterial{
		Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: leaf.Raw}},
		TimestampVerificationData: &protobundle.TimestampVerificationData{Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: tsr}}},
	}
	if !job.NoLog {
		material.TlogEntries = append(material.TlogEntries, s.logEntry(t, leaf, env, sig))
	}
	b := &protobundle.Bundle{
		MediaType:            "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: material,
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			PayloadType: payloadType, Payload: statement, Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	out, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// BlobSignature turns a bundle into one that signs a blob (cosign
// sign-blob): a message signature in place of its envelope.
func BlobSignature(t testing.TB, bundle []byte) []byte {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatal(err)
	}
	delete(b, "dsseEnvelope")
	b["messageSignature"] = map[string]any{
		"messageDigest": map[string]any{"algorithm": "SHA2_256", "digest": base64.StdEncoding.EncodeToString(make([]byte, 32))},
		"signature":     base64.StdEncoding.EncodeToString([]byte("sig")),
	}
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// logEntry enters the signed envelope in the log, with the log's promise
// (SET) and an inclusion proof.
func (s *Sigstore) logEntry(t testing.TB, leaf *x509.Certificate, env *dsse.Envelope, sig []byte) *protorekor.TransparencyLogEntry {
	t.Helper()
	e, err := s.virtual.GenerateTlogEntry(leaf, env, sig, time.Now().Unix(), true)
	if err != nil {
		t.Fatal(err)
	}
	tle := e.TransparencyLogEntry()
	set, err := s.virtual.RekorSignPayload(tlog.RekorPayload{
		Body: e.Body(), IntegratedTime: tle.IntegratedTime, LogIndex: tle.LogIndex, LogID: hex.EncodeToString(tle.LogId.KeyId),
	})
	if err != nil {
		t.Fatal(err)
	}
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	return tle
}

// Fulcio's certificate extensions (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md).
var (
	oidIssuer           = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
	oidSourceRepository = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 12}
	oidSourceCommit     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 13}
)

// leaf issues a 10-minute certificate to the job, as Fulcio does.
func (s *Sigstore) leaf(t testing.TB, job Job) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	subject, err := url.Parse(job.Subject)
	if err != nil {
		t.Fatal(err)
	}
	var exts []pkix.Extension
	for _, e := range []struct {
		oid   asn1.ObjectIdentifier
		value string
	}{{oidIssuer, job.Issuer}, {oidSourceRepository, job.Repository}, {oidSourceCommit, job.Commit}} {
		if e.value == "" {
			continue
		}
		v, err := asn1.MarshalWithParams(e.value, "utf8")
		if err != nil {
			t.Fatal(err)
		}
		exts = append(exts, pkix.Extension{Id: e.oid, Value: v})
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		NotBefore:    now.Add(-time.Minute), NotAfter: now.Add(10 * time.Minute),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		URIs:            []*url.URL{subject},
		ExtraExtensions: exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.inter, key.Public(), crypto.Signer(s.key))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}
