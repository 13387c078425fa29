package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clientCA makes a CA and a client certificate it signed, as the
// apiserver's would be.
func clientCA(t *testing.T) (caPEM []byte, client tls.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "apiserver client CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	ckey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ctmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	cder, err := x509.CreateCertificate(rand.Reader, ctmpl, ca, &ckey.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), tls.Certificate{Certificate: [][]byte{cder}, PrivateKey: ckey}
}

// TestTLSEverywhere serves the API over HTTPS and accepts only the
// apiserver's client certificate on the webhook.
func TestTLSEverywhere(t *testing.T) {
	caPEM, client := clientCA(t)
	caFile := filepath.Join(t.TempDir(), "client-ca.pem")
	os.WriteFile(caFile, caPEM, 0o644)
	v := start(t, "", "--api-tls", "--webhook-client-ca-file", caFile)

	// The API answers HTTPS with the serving certificate, and not plain HTTP.
	ca, _ := os.ReadFile(filepath.Join(v.dataDir, "ca.crt"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	apiClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := apiClient.Get("https://" + v.api + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("API over HTTPS: %v %v", resp, err)
	}
	resp.Body.Close()
	if resp, err := http.Get("http://" + v.api + "/healthz"); err == nil && resp.StatusCode == 200 {
		t.Error("the API answered plain HTTP with --api-tls")
	}

	// The webhook refuses a client without the apiserver's certificate…
	if resp, err := v.review("no-cert", "default", nil, "nginx:1.27"); err == nil {
		t.Errorf("webhook answered a client without a certificate: %+v", resp)
	} else if !strings.Contains(err.Error(), "certificate") && !strings.Contains(err.Error(), "tls") {
		t.Logf("refused: %v", err)
	}
	// …and answers the one with it.
	v.https.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{client}
	resp2, err := v.review("with-cert", "default", nil, "nginx:1.27")
	if err != nil || resp2.Allowed {
		t.Errorf("webhook with the client certificate: %+v %v", resp2, err)
	}

	// An API on the network without TLS is refused at start, with why.
	out, code := v.run("serve", "--data-dir", t.TempDir(), "--api-addr", ":0", "--webhook-addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(out, "listens beyond loopback without TLS") {
		t.Errorf("serve with a plain-HTTP API on all interfaces: exit %d\n%s", code, out)
	}

	// An address in use stops the start before anything is created: no
	// token, key, certificate or database in the new data directory.
	dir := t.TempDir()
	out, code = v.run("serve", "--data-dir", dir, "--webhook-addr", v.webhook, "--api-addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(out, "webhook_addr") || !strings.Contains(out, "address already in use") || strings.Contains(out, "database is closed") {
		t.Errorf("serve on the webhook address in use: exit %d\n%s", code, out)
	}
	if made, _ := os.ReadDir(dir); len(made) > 0 {
		t.Errorf("serve that could not listen left %v in its data directory", made)
	}
}

// TestStartWarnsAndCloses: a webhook reachable beyond loopback without
// mTLS is warned about at start, and a data directory open to other users
// is closed (it holds the admin token, the keys and the database).
func TestStartWarnsAndCloses(t *testing.T) {
	const warning = "the webhook accepts reviews from any client that reaches it"
	_, port, _ := strings.Cut(freeAddr(t), ":")
	// The log reaches the test through a pipe: wait for the start's last line.
	started := func(v *vouch) string {
		waitFor(t, func() bool { return strings.Contains(v.log.String(), `"msg":"vouch started"`) })
		return v.log.String()
	}
	v := start(t, "", "--webhook-addr", "0.0.0.0:"+port)
	if !strings.Contains(started(v), warning) {
		t.Errorf("no warning about a webhook open to any client:\n%s", v.log)
	}
	v.kill()
	if err := os.Chmod(v.dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	v.log.Reset()
	v.launch()
	if st, err := os.Stat(v.dataDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data directory after start: %v, %v; want mode 0700", st.Mode().Perm(), err)
	}

	caPEM, _ := clientCA(t)
	caFile := filepath.Join(t.TempDir(), "client-ca.pem")
	os.WriteFile(caFile, caPEM, 0o644)
	_, port, _ = strings.Cut(freeAddr(t), ":")
	if v := start(t, "", "--webhook-addr", "0.0.0.0:"+port, "--webhook-client-ca-file", caFile); strings.Contains(started(v), warning) {
		t.Errorf("warned with mTLS on:\n%s", v.log)
	}
	if v := start(t, ""); strings.Contains(started(v), warning) {
		t.Errorf("warned about a loopback webhook:\n%s", v.log)
	}
}
