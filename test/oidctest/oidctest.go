// Package oidctest runs an OpenID Connect issuer on loopback for tests, as
// GitHub's and GitLab's publish theirs (a discovery document and a JWKS,
// over TLS), and signs ID tokens with its keys. GitHub's own issuer cannot
// be reached from CI.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Issuer is an OpenID Connect issuer on loopback.
type Issuer struct {
	Server *httptest.Server
	CAFile string
	mu     sync.Mutex
	rsa    map[string]*rsa.PrivateKey
	ec     map[string]*ecdsa.PrivateKey
	Hits   atomic.Int32 // JWKS fetches
	// Fail makes the JWKS answer 500; Hold, when set, holds each JWKS
	// request until the channel is closed.
	Fail atomic.Bool
	Hold atomic.Pointer[chan struct{}]
}

// New starts an issuer with an RSA key "r1" and a P-256 key "e1".
func New(t testing.TB) *Issuer {
	t.Helper()
	is := &Issuer{rsa: map[string]*rsa.PrivateKey{}, ec: map[string]*ecdsa.PrivateKey{}}
	is.AddKeys(t, "r1", "e1")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": is.URL(), "jwks_uri": is.URL() + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		is.Hits.Add(1)
		if hold := is.Hold.Load(); hold != nil {
			<-*hold
		}
		if is.Fail.Load() {
			http.Error(w, "unavailable", http.StatusInternalServerError)
			return
		}
		is.mu.Lock()
		defer is.mu.Unlock()
		var keys []map[string]string
		b := func(v *big.Int) string { return base64.RawURLEncoding.EncodeToString(v.Bytes()) }
		for kid, k := range is.rsa {
			keys = append(keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b(k.N), "e": b(big.NewInt(int64(k.E)))})
		}
		for kid, k := range is.ec {
			x, y := make([]byte, 32), make([]byte, 32)
			k.X.FillBytes(x)
			k.Y.FillBytes(y)
			keys = append(keys, map[string]string{"kty": "EC", "kid": kid, "crv": "P-256",
				"x": base64.RawURLEncoding.EncodeToString(x), "y": base64.RawURLEncoding.EncodeToString(y)})
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	is.Server = httptest.NewTLSServer(mux)
	t.Cleanup(is.Server.Close)
	is.CAFile = filepath.Join(t.TempDir(), "issuer-ca.pem")
	if err := os.WriteFile(is.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.Server.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return is
}

// URL is the issuer (iss).
func (is *Issuer) URL() string { return is.Server.URL }

// RemoveKey withdraws a key from the JWKS.
func (is *Issuer) RemoveKey(kid string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	delete(is.rsa, kid)
	delete(is.ec, kid)
}

// AddKeys publishes new keys: an RSA key for a kid starting with "r", a
// P-256 one otherwise.
func (is *Issuer) AddKeys(t testing.TB, kids ...string) {
	t.Helper()
	is.mu.Lock()
	defer is.mu.Unlock()
	for _, kid := range kids {
		if strings.HasPrefix(kid, "r") {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			is.rsa[kid] = k
		} else {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			is.ec[kid] = k
		}
	}
}

// Sign returns an ID token with claims, signed by key kid with alg as its
// header says (RS256 for RSA keys, ES256 for EC keys unless alg is given).
func (is *Issuer) Sign(t testing.TB, kid, alg string, claims map[string]any) string {
	t.Helper()
	is.mu.Lock()
	defer is.mu.Unlock()
	if alg == "" {
		alg = "ES256"
		if strings.HasPrefix(kid, "r") {
			alg = "RS256"
		}
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": alg, "kid": kid, "typ": "JWT"}) + "." + enc(claims)
	h := sha256.Sum256([]byte(signed))
	var sig []byte
	if k, ok := is.rsa[kid]; ok {
		sig, _ = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
	} else {
		r, s, err := ecdsa.Sign(rand.Reader, is.ec[kid], h[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// GitHubClaims are an Actions job's claims, for the audience "vouch".
func (is *Issuer) GitHubClaims(repo, ref string, exp time.Time) map[string]any {
	return map[string]any{"iss": is.URL(), "aud": "vouch", "sub": "repo:" + repo + ":ref:" + ref, "repository": repo, "ref": ref,
		"iat": exp.Add(-5 * time.Minute).Unix(), "nbf": exp.Add(-5 * time.Minute).Unix(), "exp": exp.Unix()}
}
