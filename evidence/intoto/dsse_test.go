package intoto_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vouch-dev/vouch/evidence/intoto"
)

func TestPAE(t *testing.T) {
	tests := []struct {
		payloadType, payload, want string
	}{
		// The test vector of the DSSE protocol.
		{"http://example.com/HelloWorld", "hello world", "DSSEv1 29 http://example.com/HelloWorld 11 hello world"},
		{"", "", "DSSEv1 0  0 "},
		{intoto.PayloadType, `{"a":1}`, `DSSEv1 28 application/vnd.in-toto+json 7 {"a":1}`},
		// Lengths are in bytes, not characters.
		{"tÿpe", "päylöad", "DSSEv1 5 tÿpe 9 päylöad"},
		{"t", "12 spaces and\nnewlines ", "DSSEv1 1 t 23 12 spaces and\nnewlines "},
	}
	for _, tt := range tests {
		if got := string(intoto.PAE(tt.payloadType, []byte(tt.payload))); got != tt.want {
			t.Errorf("PAE(%q, %q) = %q, want %q", tt.payloadType, tt.payload, got, tt.want)
		}
	}
}

// signer signs as cosign and the DSSE reference implementations do.
type signer struct {
	priv crypto.Signer
	pub  intoto.PublicKey
}

func newECDSA(t *testing.T) signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{k, parsePEM(t, &k.PublicKey)}
}

func newEd25519(t *testing.T) signer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{priv, parsePEM(t, pub)}
}

// parsePEM encodes pub as cosign writes cosign.pub and reads it back.
func parsePEM(t *testing.T, pub crypto.PublicKey) intoto.PublicKey {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	k, err := intoto.ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign signs msg: ECDSA over its SHA-256, ASN.1 DER; Ed25519 over msg.
func (s signer) sign(t *testing.T, msg []byte) []byte {
	t.Helper()
	var (
		sig []byte
		err error
	)
	switch k := s.priv.(type) {
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(msg)
		sig, err = ecdsa.SignASN1(rand.Reader, k, h[:])
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, msg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// envelope signs payload with each signer, naming the key when hint is set.
func envelope(t *testing.T, payload string, hint bool, signers ...signer) intoto.Envelope {
	t.Helper()
	e := intoto.Envelope{PayloadType: intoto.PayloadType, Payload: []byte(payload)}
	for _, s := range signers {
		sig := intoto.Signature{Sig: s.sign(t, intoto.PAE(e.PayloadType, e.Payload))}
		if hint {
			sig.KeyID = s.pub.ID
		}
		e.Signatures = append(e.Signatures, sig)
	}
	return e
}

func TestVerify(t *testing.T) {
	ec, ed, other := newECDSA(t), newEd25519(t), newECDSA(t)
	const payload = `{"_type":"https://in-toto.io/Statement/v1"}`
	tests := []struct {
		name     string
		envelope func() intoto.Envelope
		trusted  []intoto.PublicKey
		want     string // ID of the key that verifies
		wantErr  error
	}{
		{
			name:     "ECDSA P-256",
			envelope: func() intoto.Envelope { return envelope(t, payload, false, ec) },
			trusted:  []intoto.PublicKey{ec.pub}, want: ec.pub.ID,
		},
		{
			name:     "Ed25519 among several trusted keys",
			envelope: func() intoto.Envelope { return envelope(t, payload, true, ed) },
			trusted:  []intoto.PublicKey{other.pub, ec.pub, ed.pub}, want: ed.pub.ID,
		},
		{
			name:     "a good signature after a bad one",
			envelope: func() intoto.Envelope { return envelope(t, payload, true, other, ec) },
			trusted:  []intoto.PublicKey{ec.pub}, want: ec.pub.ID,
		},
		{
			name: "a misleading keyid does not decide",
			envelope: func() intoto.Envelope {
				e := envelope(t, payload, false, ec)
				e.Signatures[0].KeyID = ed.pub.ID
				return e
			},
			trusted: []intoto.PublicKey{ed.pub, ec.pub}, want: ec.pub.ID,
		},
		{
			name:     "unsigned",
			envelope: func() intoto.Envelope { return envelope(t, payload, false) },
			trusted:  []intoto.PublicKey{ec.pub}, wantErr: intoto.ErrUnsigned,
		},
		{
			name: "tampered payload, keyid of a trusted key",
			envelope: func() intoto.Envelope {
				e := envelope(t, payload, true, ec)
				e.Payload = []byte(strings.Replace(payload, "v1", "v2", 1))
				return e
			},
			trusted: []intoto.PublicKey{ec.pub}, wantErr: intoto.ErrBadSignature,
		},
		{
			name: "tampered payload, no keyid",
			envelope: func() intoto.Envelope {
				e := envelope(t, payload, false, ed)
				e.Payload = append(e.Payload, ' ')
				return e
			},
			trusted: []intoto.PublicKey{ed.pub}, wantErr: intoto.ErrBadSignature,
		},
		{
			name: "tampered payload type",
			envelope: func() intoto.Envelope {
				e := envelope(t, payload, true, ec)
				e.PayloadType = "application/json"
				return e
			},
			trusted: []intoto.PublicKey{ec.pub}, wantErr: intoto.ErrBadSignature,
		},
		{
			name:     "wrong key, named",
			envelope: func() intoto.Envelope { return envelope(t, payload, true, other) },
			trusted:  []intoto.PublicKey{ec.pub, ed.pub}, wantErr: intoto.ErrUnknownKey,
		},
		{
			name:     "wrong key, not named",
			envelope: func() intoto.Envelope { return envelope(t, payload, false, other) },
			trusted:  []intoto.PublicKey{ec.pub}, wantErr: intoto.ErrBadSignature,
		},
		{
			name: "signature for another PAE: same payload, other type",
			envelope: func() intoto.Envelope {
				e := envelope(t, payload, true)
				e.Signatures = []intoto.Signature{{KeyID: ec.pub.ID, Sig: ec.sign(t, intoto.PAE("application/json", e.Payload))}}
				return e
			},
			trusted: []intoto.PublicKey{ec.pub}, wantErr: intoto.ErrBadSignature,
		},
		{
			name: "signature for another PAE: Ed25519 over another payload",
			envelope: func() intoto.Envelope {
				e := envelope(t, payload, true)
				e.Signatures = []intoto.Signature{{KeyID: ed.pub.ID, Sig: ed.sign(t, intoto.PAE(intoto.PayloadType, []byte("{}")))}}
				return e
			},
			trusted: []intoto.PublicKey{ed.pub}, wantErr: intoto.ErrBadSignature,
		},
		{
			name: "signature of the bare payload, not its PAE",
			envelope: func() intoto.Envelope {
				e := envelope(t, payload, true)
				e.Signatures = []intoto.Signature{{KeyID: ec.pub.ID, Sig: ec.sign(t, e.Payload)}}
				return e
			},
			trusted: []intoto.PublicKey{ec.pub}, wantErr: intoto.ErrBadSignature,
		},
		{
			name: "ECDSA signature as r||s rather than DER",
			envelope: func() intoto.Envelope {
				e := envelope(t, payload, true)
				h := sha256.Sum256(intoto.PAE(e.PayloadType, e.Payload))
				r, s, err := ecdsa.Sign(rand.Reader, ec.priv.(*ecdsa.PrivateKey), h[:])
				if err != nil {
					t.Fatal(err)
				}
				e.Signatures = []intoto.Signature{{KeyID: ec.pub.ID, Sig: append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)}}
				return e
			},
			trusted: []intoto.PublicKey{ec.pub}, wantErr: intoto.ErrBadSignature,
		},
		{
			name: "an empty signature",
			envelope: func() intoto.Envelope {
				e := envelope(t, payload, true)
				e.Signatures = []intoto.Signature{{KeyID: ed.pub.ID}}
				return e
			},
			trusted: []intoto.PublicKey{ed.pub}, wantErr: intoto.ErrBadSignature,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.envelope()
			k, err := e.Verify(tt.trusted...)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Verify() = %v, %v; want %v", k.ID, err, tt.wantErr)
				}
				for _, other := range []error{intoto.ErrUnsigned, intoto.ErrUnknownKey, intoto.ErrBadSignature} {
					if other != tt.wantErr && errors.Is(err, other) {
						t.Errorf("Verify() = %v, which is also %v", err, other)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify(): %v", err)
			}
			if k.ID != tt.want {
				t.Errorf("Verify() = key %s, want %s", k.ID, tt.want)
			}
			// The envelope survives its JSON form.
			raw, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			e2, err := intoto.ParseEnvelope(raw)
			if err != nil {
				t.Fatalf("ParseEnvelope(%s): %v", raw, err)
			}
			if k2, err := e2.Verify(tt.trusted...); err != nil || k2.ID != tt.want {
				t.Errorf("Verify() after a JSON round trip = %s, %v; want %s", k2.ID, err, tt.want)
			}
		})
	}
	if _, err := envelope(t, payload, false, ec).Verify(); err == nil {
		t.Errorf("Verify() with no trusted keys = nil error")
	}
}

// TestOpenSSLVectors verifies envelopes signed by OpenSSL (see
// testdata/README.md).
func TestOpenSSLVectors(t *testing.T) {
	for _, name := range []string{"ecdsa-p256", "ed25519"} {
		t.Run(name, func(t *testing.T) {
			k, err := intoto.ParsePublicKey(readFile(t, "testdata/"+name+".pub"))
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimSpace(string(readFile(t, "testdata/"+name+".keyid"))); k.ID != want {
				t.Errorf("ParsePublicKey(%s.pub).ID = %s, want %s as computed by openssl", name, k.ID, want)
			}
			raw := readFile(t, "testdata/openssl-"+name+".dsse.json")
			s, got, err := intoto.Open(raw, newECDSA(t).pub, k)
			if err != nil {
				t.Fatalf("Open(openssl-%s.dsse.json): %v", name, err)
			}
			if got.ID != k.ID || s.PredicateType != intoto.SLSAProvenanceV1 {
				t.Errorf("Open() = %s statement, key %s; want SLSA v1, key %s", s.PredicateType, got.ID, k.ID)
			}
			// One flipped bit anywhere in the payload fails.
			e, err := intoto.ParseEnvelope(raw)
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range []int{0, len(e.Payload) / 2, len(e.Payload) - 1} {
				bad := e
				bad.Payload = append([]byte(nil), e.Payload...)
				bad.Payload[i] ^= 1
				if _, err := bad.Verify(k); !errors.Is(err, intoto.ErrBadSignature) {
					t.Errorf("Verify() with bit 0 of byte %d flipped = %v, want ErrBadSignature", i, err)
				}
			}
		})
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePublicKey(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	wantID := hex.EncodeToString(sum[:])[:16]
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }
	mustDER := func(k crypto.PublicKey) []byte {
		b, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		in      string
		wantID  string
		wantErr string
	}{
		{name: "PEM", in: pemOf("PUBLIC KEY", der), wantID: wantID},
		{name: "PEM with white space", in: "\n  " + pemOf("PUBLIC KEY", der) + "\n", wantID: wantID},
		{name: "raw", in: string(pub), wantID: wantID},
		{name: "hex", in: hex.EncodeToString(pub) + "\n", wantID: wantID},
		{name: "base64", in: base64.StdEncoding.EncodeToString(pub), wantID: wantID},
		{name: "private key", in: pemOf("PRIVATE KEY", privDER), wantErr: "this is a PRIVATE KEY; give the public key"},
		{name: "EC private key", in: pemOf("EC PRIVATE KEY", []byte{1}), wantErr: "give the public key"},
		{name: "certificate", in: pemOf("CERTIFICATE", []byte{1}), wantErr: `PEM type "CERTIFICATE"`},
		{name: "P-384", in: pemOf("PUBLIC KEY", mustDER(&p384.PublicKey)), wantErr: "ECDSA key on P-384; only P-256"},
		{name: "RSA", in: pemOf("PUBLIC KEY", mustDER(&rsaKey.PublicKey)), wantErr: "*rsa.PublicKey keys are not supported"},
		{name: "bad PEM", in: "-----BEGIN PUBLIC KEY-----\nnot base64\n", wantErr: "bad PEM"},
		{name: "bad DER", in: pemOf("PUBLIC KEY", []byte("junk")), wantErr: "public key:"},
		{name: "31 bytes", in: string(pub[:31]), wantErr: "neither a PEM public key nor a raw Ed25519 key"},
		{name: "empty", in: "", wantErr: "neither"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := intoto.ParsePublicKey([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParsePublicKey(%q) = %v, want an error containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePublicKey(%q): %v", tt.in, err)
			}
			if k.ID != tt.wantID {
				t.Errorf("ParsePublicKey(%q).ID = %s, want %s", tt.in, k.ID, tt.wantID)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	s := newEd25519(t)
	der, err := x509.MarshalPKIXPublicKey(s.pub.Key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	full := hex.EncodeToString(sum[:])
	named := s.pub
	named.ID = "awskms:///arn:aws:kms:eu-west-1:111122223333:key/ci"
	tests := []struct {
		key   intoto.PublicKey
		keyid string
		want  bool
	}{
		{s.pub, s.pub.ID, true},
		{s.pub, full, true},
		{s.pub, full[:16], true},
		{named, named.ID, true},
		{named, full[:16], true},
		{s.pub, "", false},
		{s.pub, full[:15], false},
		{s.pub, "someone-else", false},
	}
	for _, tt := range tests {
		if got := tt.key.Matches(tt.keyid); got != tt.want {
			t.Errorf("PublicKey{ID: %q}.Matches(%q) = %v, want %v", tt.key.ID, tt.keyid, got, tt.want)
		}
	}

	// A key renamed to the keyid the envelopes carry is found by it.
	e := envelope(t, "{}", false, s)
	e.Signatures[0].KeyID = named.ID
	if k, err := e.Verify(named); err != nil || k.ID != named.ID {
		t.Errorf("Verify() = %s, %v; want %s", k.ID, err, named.ID)
	}
}

func TestParseEnvelope(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		name    string
		in      string
		want    intoto.Envelope
		wantErr string
	}{
		{
			name: "standard base64",
			in:   fmt.Sprintf(`{"payloadType":"t","payload":%q,"signatures":[{"keyid":"k","sig":%q}]}`, b64([]byte("hi>?")), b64([]byte{0xfb, 0xff})),
			want: intoto.Envelope{PayloadType: "t", Payload: []byte("hi>?"), Signatures: []intoto.Signature{{KeyID: "k", Sig: []byte{0xfb, 0xff}}}},
		},
		{
			name: "URL-safe base64 without padding",
			in:   `{"payloadType":"t","payload":"aGk-Pw","signatures":[{"sig":"-_8"}]}`,
			want: intoto.Envelope{PayloadType: "t", Payload: []byte("hi>?"), Signatures: []intoto.Signature{{Sig: []byte{0xfb, 0xff}}}},
		},
		{
			name: "no signatures",
			in:   `{"payloadType":"t","payload":""}`,
			want: intoto.Envelope{PayloadType: "t", Payload: []byte{}},
		},
		{name: "not JSON", in: `payload`, wantErr: "intoto: envelope: invalid character"},
		{name: "no payloadType", in: `{"payload":"e30="}`, wantErr: "payloadType is required"},
		{name: "no payload", in: `{"payloadType":"t"}`, wantErr: "payload is required"},
		{name: "payload not base64", in: `{"payloadType":"t","payload":"e30*"}`, wantErr: "payload: not base64"},
		{name: "mixed alphabets", in: `{"payloadType":"t","payload":"+_8"}`, wantErr: "payload: not base64"},
		{name: "sig missing", in: `{"payloadType":"t","payload":"","signatures":[{"keyid":"k"}]}`, wantErr: "signature 0: sig is required"},
		{name: "sig not base64", in: `{"payloadType":"t","payload":"","signatures":[{"sig":"!!"}]}`, wantErr: "signature 0: not base64"},
		{name: "too many signatures", in: `{"payloadType":"t","payload":"","signatures":[` + strings.Repeat(`{"sig":"AA=="},`, 16) + `{"sig":"AA=="}]}`, wantErr: "17 signatures, more than 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := intoto.ParseEnvelope([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseEnvelope(%s) = %v, want an error containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseEnvelope(%s): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseEnvelope(%s) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestMarshalJSON(t *testing.T) {
	e := intoto.Envelope{PayloadType: intoto.PayloadType, Payload: []byte(`{}`), Signatures: []intoto.Signature{{KeyID: "k", Sig: []byte{1, 2}}}}
	got, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"k","sig":"AQI="}]}`
	if string(got) != want {
		t.Errorf("json.Marshal(%+v) = %s, want %s", e, got, want)
	}
}
