package kube

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/vouch-dev/vouch/certs"
)

// Secret keys of the webhook certificate bundle (the first two are the
// standard kubernetes.io/tls keys).
const (
	keyCert   = "tls.crt"
	keyKey    = "tls.key"
	keyCACert = "ca.crt"
	keyCAKey  = "ca.key"
)

func metaFor(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}

// CertRotator keeps the webhook's CA and serving certificate in a Secret,
// renews them before they expire, and makes the webhook configuration trust
// the CA. Run it on the leader.
type CertRotator struct {
	Client        kubernetes.Interface
	Namespace     string
	Secret        string
	Webhook       string // ValidatingWebhookConfiguration name
	DNSNames      []string
	Logger        *slog.Logger
	Now           func() time.Time
	CheckInterval time.Duration // how often to check; DefaultCertCheckInterval when 0
}

// Ensure makes the Secret hold a valid bundle and every webhook of the
// configuration trust its CA.
func (r *CertRotator) Ensure(ctx context.Context) error {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	secrets := r.Client.CoreV1().Secrets(r.Namespace)
	s, err := secrets.Get(ctx, r.Secret, metav1.GetOptions{})
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("webhook certificate secret: %w", err)
	}
	var b certs.Bundle
	if exists {
		b = certs.Bundle{CACert: s.Data[keyCACert], CAKey: s.Data[keyCAKey], Cert: s.Data[keyCert], Key: s.Data[keyKey]}
	}
	nb, changed, err := certs.Renew(b, r.DNSNames, now())
	if err != nil {
		return err
	}
	if changed {
		data := map[string][]byte{keyCert: nb.Cert, keyKey: nb.Key, keyCACert: nb.CACert, keyCAKey: nb.CAKey}
		if exists {
			s.Data, s.Type = data, corev1.SecretTypeTLS
			_, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
		} else {
			_, err = secrets.Create(ctx, &corev1.Secret{ObjectMeta: metaFor(r.Namespace, r.Secret), Type: corev1.SecretTypeTLS, Data: data}, metav1.CreateOptions{})
		}
		if err != nil {
			return fmt.Errorf("store webhook certificate: %w", err)
		}
		r.Logger.Info("renewed the webhook certificate", "secret", r.Namespace+"/"+r.Secret, "names", r.DNSNames)
	}
	return r.patchCABundle(ctx, nb.CACert, now())
}

// patchCABundle makes every webhook of the configuration trust the CA
// (caBundle: the CA, then the previous one while it is valid).
func (r *CertRotator) patchCABundle(ctx context.Context, ca []byte, now time.Time) error {
	if r.Webhook == "" {
		return nil
	}
	api := r.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	cfg, err := api.Get(ctx, r.Webhook, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("webhook configuration %s: %w", r.Webhook, err)
	}
	type hook struct {
		Name         string `json:"name"`
		ClientConfig struct {
			CABundle []byte `json:"caBundle"`
		} `json:"clientConfig"`
	}
	var patch struct {
		Webhooks []hook `json:"webhooks"`
	}
	stale := false
	for _, w := range cfg.Webhooks {
		h := hook{Name: w.Name}
		h.ClientConfig.CABundle = caBundle(ca, w.ClientConfig.CABundle, now)
		patch.Webhooks = append(patch.Webhooks, h)
		stale = stale || !bytes.Equal(w.ClientConfig.CABundle, h.ClientConfig.CABundle)
	}
	if !stale {
		return nil
	}
	body, _ := json.Marshal(patch)
	// Webhooks merge by name (strategic merge patch), so only caBundle changes.
	if _, err := api.Patch(ctx, r.Webhook, types.StrategicMergePatchType, body, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("patch caBundle of %s: %w", r.Webhook, err)
	}
	r.Logger.Info("webhook configuration now trusts the CA", "webhook", r.Webhook)
	return nil
}

// caBundle is ca followed by the first CA of the current bundle that is
// another and still valid: after a new CA (the old one expiring, or the
// Secret deleted), replicas serve the old CA's certificate until they
// read the Secret again, and the apiserver must go on trusting it.
func caBundle(ca, current []byte, now time.Time) []byte {
	out := slices.Clone(ca)
	var own []byte
	if block, _ := pem.Decode(ca); block != nil {
		own = block.Bytes
	}
	for rest := current; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return out
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil || !c.IsCA || now.After(c.NotAfter) || bytes.Equal(block.Bytes, own) {
			continue
		}
		return append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes})...)
	}
}

// DefaultCertCheckInterval is how often the certificate and the webhook's
// caBundle are checked: a webhook configuration recreated without its
// caBundle (kubectl replace, a GitOps sync) fails every call until then.
// A check is two reads from the apiserver.
const DefaultCertCheckInterval = 30 * time.Second

// Run ensures the certificate now and every CheckInterval until ctx ends.
func (r *CertRotator) Run(ctx context.Context) {
	interval := r.CheckInterval
	if interval <= 0 {
		interval = DefaultCertCheckInterval
	}
	for {
		wait := interval
		if err := r.Ensure(ctx); err != nil && ctx.Err() == nil {
			r.Logger.Error("webhook certificate", "error", err)
			wait = min(interval, 10*time.Second) // retry sooner
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// SecretCertSource serves the certificate a CertRotator keeps in the
// Secret: every replica reads it, the leader writes it.
type SecretCertSource struct {
	Client    kubernetes.Interface
	Namespace string
	Secret    string
	Logger    *slog.Logger
	mem       certs.Memory
	last      []byte
}

// GetCertificate fits tls.Config.GetCertificate.
func (s *SecretCertSource) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.mem.GetCertificate(hello)
}

// Load reads the Secret once; it fails until the leader has created it.
func (s *SecretCertSource) Load(ctx context.Context) error {
	sec, err := s.Client.CoreV1().Secrets(s.Namespace).Get(ctx, s.Secret, metav1.GetOptions{})
	if err != nil {
		return err
	}
	cert, key := sec.Data[keyCert], sec.Data[keyKey]
	if len(cert) == 0 || len(key) == 0 {
		return errors.New("secret has no tls.crt and tls.key yet")
	}
	if bytes.Equal(cert, s.last) {
		return nil
	}
	if err := s.mem.Set(cert, key); err != nil {
		return err
	}
	s.last = cert
	s.Logger.Info("serving the webhook certificate from its secret", "secret", s.Namespace+"/"+s.Secret)
	return nil
}

// Run reloads the Secret until ctx ends: every 2 s until there is a
// certificate, then every 30 s (renewals happen a month before expiry).
func (s *SecretCertSource) Run(ctx context.Context) {
	for {
		err := s.Load(ctx)
		wait := 30 * time.Second
		if s.last == nil {
			wait = 2 * time.Second
			if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
				s.Logger.Warn("webhook certificate secret", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
