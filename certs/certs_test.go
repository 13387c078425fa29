package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"testing"
	"time"
)

func TestEnsureCreatesRenewsAndKeeps(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	f, wrote, err := Ensure(dir, []string{"vouch.vouch-system.svc", "10.0.0.7"}, now)
	if err != nil || !wrote {
		t.Fatalf("Ensure = %v, %v; want a new certificate", wrote, err)
	}
	cert, _, err := loadFiles(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _, err := loadFiles(f.CACert, f.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, name := range []string{"localhost", "vouch.vouch-system.svc", "127.0.0.1", "10.0.0.7"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: now}); err != nil {
			t.Errorf("certificate does not verify for %s: %v", name, err)
		}
	}
	if info, _ := os.Stat(f.Key); info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", info.Mode().Perm())
	}

	if _, wrote, _ := Ensure(dir, []string{"10.0.0.7", "vouch.vouch-system.svc"}, now.Add(24*time.Hour)); wrote {
		t.Error("Ensure rewrote a valid certificate for the same names")
	}
	if _, wrote, _ := Ensure(dir, []string{"other.example"}, now); !wrote {
		t.Error("Ensure kept a certificate for other names")
	}
	if _, wrote, _ := Ensure(dir, []string{"other.example"}, now.Add(ServingLifetime-RenewBefore+time.Hour)); !wrote {
		t.Error("Ensure kept a certificate about to expire")
	}
}

func TestSourceReloadsChangedFiles(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	f, _, err := Ensure(dir, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewSource(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx)
	first, _ := src.GetCertificate(nil)

	if _, _, err := Ensure(dir, []string{"renamed.example"}, now); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cur, err := src.GetCertificate(&tls.ClientHelloInfo{Conn: (*net.TCPConn)(nil)})
		if err != nil {
			t.Fatal(err)
		}
		if cur != first && cur.Leaf != nil && len(cur.Leaf.DNSNames) == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the source still serves the old certificate 10s after the files changed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func loadFiles(certFile, keyFile string) (*x509.Certificate, any, error) {
	c, _ := os.ReadFile(certFile)
	k, _ := os.ReadFile(keyFile)
	return parsePair(c, k)
}
