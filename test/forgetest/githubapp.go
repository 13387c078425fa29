package forgetest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// App is a GitHub App installed where the forge's repository is: the
// forge names the installation at GET /repos/{repo}/installation and
// issues installation tokens at POST
// /app/installations/{InstallationID}/access_tokens for a JWT the app's
// key signed, as GitHub does, and accepts the latest one besides its own
// token (a pipeline's).
type App struct {
	ClientID       string
	InstallationID int64
	KeyFile        string        // the app's private key, PEM (PKCS #1, as GitHub issues it)
	TTL            time.Duration // of the tokens it issues; an hour by default
	Issued         int           // installation tokens issued so far
	// Account, when set, is the owner GitHub names for the installation
	// instead of the repository's (a repository moved to another owner).
	Account string
	// Permissions are the installation's (pull_requests, contents and
	// metadata read by default); Asked is what the latest token purchase
	// asked for (nil: all of them).
	Permissions    map[string]string
	Asked          map[string]string
	key            *rsa.PublicKey
	token, revoked string // the latest issued; one refused
}

// InstallApp makes the GitHub forge an app's installation.
func (f *Forge) InstallApp(t testing.TB) *App {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &App{ClientID: "Iv23liForgetest", InstallationID: 4711, KeyFile: p, TTL: time.Hour, key: &key.PublicKey,
		Permissions: map[string]string{"pull_requests": "read", "contents": "read", "metadata": "read"}}
	f.mu.Lock()
	f.app = a
	f.mu.Unlock()
	return a
}

// RevokeAppToken makes the forge refuse the installation token it issued
// last.
func (f *Forge) RevokeAppToken() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.app.revoked = f.app.token
}

// appAPI answers what the app asks with its JWT: GET
// /repos/{repo}/installation, GET /app/installations/{id} and POST
// /app/installations/{id}/access_tokens (permissions no more than the
// installation's, as GitHub checks them). It reports false for other
// requests.
func (f *Forge) appAPI(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.app
	installation := r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/repos/") && strings.HasSuffix(r.URL.Path, "/installation")
	if a == nil || !installation && !strings.HasPrefix(r.URL.Path, "/app/") {
		return false
	}
	jwt, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if problem := a.check(jwt, time.Now()); !ok || problem != "" {
		write(w, 401, map[string]string{"message": "A JSON web token could not be decoded: " + problem, "documentation_url": "https://docs.github.com/rest"})
		return true
	}
	if installation && r.URL.Path != "/repos/"+f.repo+"/installation" {
		write(w, 404, map[string]string{"message": "Not Found", "documentation_url": "https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app"})
		return true
	}
	self := fmt.Sprintf("/app/installations/%d", a.InstallationID)
	if installation || r.Method == http.MethodGet && r.URL.Path == self {
		owner, _, _ := strings.Cut(f.repo, "/")
		if a.Account != "" {
			owner = a.Account
		}
		write(w, 200, map[string]any{"id": a.InstallationID, "app_slug": "vouch", "target_type": "Organization", "account": map[string]any{"login": owner, "type": "Organization"},
			"permissions": a.Permissions})
		return true
	}
	if r.Method != http.MethodPost || r.URL.Path != self+"/access_tokens" {
		write(w, 404, map[string]string{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
		return true
	}
	var body struct {
		Permissions map[string]string `json:"permissions"`
	}
	json.NewDecoder(r.Body).Decode(&body)
	granted := a.Permissions
	for name, level := range body.Permissions {
		if have := a.Permissions[name]; have == "" || have == "read" && level != "read" {
			write(w, 422, map[string]string{"message": "The permissions requested are not granted to this installation.", "documentation_url": "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"})
			return true
		}
		granted = body.Permissions
	}
	a.Asked = body.Permissions
	a.Issued++
	a.token = fmt.Sprintf("ghs_forgetestInstallation%d", a.Issued)
	write(w, 201, map[string]any{"token": a.token, "expires_at": time.Now().Add(a.TTL).UTC().Format(time.RFC3339),
		"permissions": granted, "repository_selection": "selected"})
	return true
}

// check verifies an app JWT as GitHub does: RS256 by the app's key, its
// issuer, issued in the past and expiring at most ten minutes ahead.
func (a *App) check(jwt string, now time.Time) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "not a JWT"
	}
	dec := base64.RawURLEncoding
	var header struct{ Alg string }
	var claims struct {
		Iat, Exp int64
		Iss      string
	}
	h, err1 := dec.DecodeString(parts[0])
	c, err2 := dec.DecodeString(parts[1])
	sig, err3 := dec.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(h, &header) != nil || json.Unmarshal(c, &claims) != nil {
		return "malformed"
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch {
	case header.Alg != "RS256":
		return "alg " + header.Alg
	case rsa.VerifyPKCS1v15(a.key, crypto.SHA256, sum[:], sig) != nil:
		return "signature"
	case claims.Iss != a.ClientID:
		return "issuer " + claims.Iss
	case claims.Iat > now.Unix() || claims.Exp <= now.Unix() || claims.Exp-now.Unix() > 600:
		return "'Expiration time' claim ('exp') is too far in the future, or the token expired"
	}
	return ""
}
