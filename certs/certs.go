// Package certs provides the webhook's serving certificate: a self-managed
// CA and serving certificate in the data directory when none is given, and
// a certificate source that reloads the files when they change (through
// k8s.io/apiserver's dynamiccertificates, which watches them with
// fsnotify and handles Kubernetes Secret volume swaps).
package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// Lifetimes and renewal margin of generated certificates.
const (
	CALifetime      = 10 * 365 * 24 * time.Hour
	ServingLifetime = 365 * 24 * time.Hour
	RenewBefore     = 30 * 24 * time.Hour
)

// Files are the paths of a generated CA and serving certificate.
type Files struct {
	CACert, CAKey, Cert, Key string
}

// DefaultFiles returns the file names used in dir.
func DefaultFiles(dir string) Files {
	return Files{
		CACert: filepath.Join(dir, "ca.crt"), CAKey: filepath.Join(dir, "ca.key"),
		Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key"),
	}
}

// Bundle is a CA and a serving certificate signed by it, PEM-encoded.
type Bundle struct {
	CACert, CAKey, Cert, Key []byte
}

// Renew returns a bundle whose serving certificate is valid for at least
// RenewBefore, for localhost, 127.0.0.1 and dnsNames (IP addresses among
// them become IP SANs), signed by a CA valid as long. It keeps what in b is
// still good, and reports whether anything changed. A new CA replaces the
// serving certificate too.
func Renew(b Bundle, dnsNames []string, now time.Time) (Bundle, bool, error) {
	ca, caKey, err := parsePair(b.CACert, b.CAKey)
	changed := false
	if err != nil || now.Add(RenewBefore).After(ca.NotAfter) {
		if ca, caKey, err = newCA(now); err != nil {
			return b, false, err
		}
		if b.CACert, b.CAKey, err = encodePair(ca.Raw, caKey); err != nil {
			return b, false, err
		}
		b.Cert, b.Key, changed = nil, nil, true
	}
	names, ips := sans(dnsNames)
	cur, _, err := parsePair(b.Cert, b.Key)
	if err == nil && now.Add(RenewBefore).Before(cur.NotAfter) && sameSANs(cur, names, ips) && cur.CheckSignatureFrom(ca) == nil {
		return b, changed, nil
	}
	der, key, err := newServing(ca, caKey, names, ips, now)
	if err != nil {
		return b, false, err
	}
	if b.Cert, b.Key, err = encodePair(der, key); err != nil {
		return b, false, err
	}
	return b, true, nil
}

// Ensure makes sure dir holds a valid bundle (see Renew) in the files of
// DefaultFiles, creating or renewing what is missing, expiring or for
// other names, and reports whether it wrote anything.
func Ensure(dir string, dnsNames []string, now time.Time) (Files, bool, error) {
	f := DefaultFiles(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, false, err
	}
	var b Bundle
	b.CACert, _ = os.ReadFile(f.CACert)
	b.CAKey, _ = os.ReadFile(f.CAKey)
	b.Cert, _ = os.ReadFile(f.Cert)
	b.Key, _ = os.ReadFile(f.Key)
	nb, changed, err := Renew(b, dnsNames, now)
	if err != nil || !changed {
		return f, false, err
	}
	for _, w := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{f.CAKey, nb.CAKey, 0o600}, {f.CACert, nb.CACert, 0o644}, {f.Key, nb.Key, 0o600}, {f.Cert, nb.Cert, 0o644}} {
		if err := writeAtomic(w.path, w.data, w.mode); err != nil {
			return f, false, err
		}
	}
	return f, true, nil
}

func sans(dnsNames []string) ([]string, []net.IP) {
	names := []string{"localhost"}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	for _, n := range dnsNames {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names, ips
}

func sameSANs(c *x509.Certificate, names []string, ips []net.IP) bool {
	a, b := slices.Clone(c.DNSNames), slices.Clone(names)
	sort.Strings(a)
	sort.Strings(b)
	if !slices.Equal(a, b) || len(c.IPAddresses) != len(ips) {
		return false
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func newCA(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Vouch webhook CA", Organization: []string{"Vouch"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

func newServing(ca *x509.Certificate, caKey *ecdsa.PrivateKey, names []string, ips []net.IP, now time.Time) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[len(names)-1], Organization: []string{"Vouch"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(ServingLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	return der, key, err
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("not an ECDSA key")
	}
	return pair.Leaf, key, nil
}

func encodePair(der []byte, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Memory serves a certificate set in memory (from a Kubernetes Secret, say).
type Memory struct {
	cur atomic.Pointer[tls.Certificate]
}

// Set replaces the served certificate.
func (m *Memory) Set(certPEM, keyPEM []byte) error {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	m.cur.Store(&pair)
	return nil
}

// GetCertificate returns the current certificate; it fits
// tls.Config.GetCertificate.
func (m *Memory) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := m.cur.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("no serving certificate yet")
}

// Source serves the certificate in a pair of files, reloading them when
// they change.
type Source struct {
	content *dynamiccertificates.DynamicCertKeyPairContent
	mu      sync.Mutex
	pem     []byte
	cert    *tls.Certificate
}

// NewSource loads the pair; it fails if the files do not hold a valid
// certificate and matching key.
func NewSource(certFile, keyFile string) (*Source, error) {
	c, err := dynamiccertificates.NewDynamicServingContentFromFiles("vouch-webhook", certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	s := &Source{content: c}
	if _, err := s.GetCertificate(nil); err != nil {
		return nil, err
	}
	return s, nil
}

// Run watches the files until ctx ends.
func (s *Source) Run(ctx context.Context) { s.content.Run(ctx, 1) }

// GetCertificate returns the current certificate; it fits
// tls.Config.GetCertificate.
func (s *Source) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	certPEM, keyPEM := s.content.CurrentCertKeyContent()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert != nil && bytes.Equal(certPEM, s.pem) {
		return s.cert, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	s.pem, s.cert = certPEM, &pair
	return s.cert, nil
}
