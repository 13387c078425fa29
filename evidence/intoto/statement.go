package intoto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Types of payloads, statements and predicates.
const (
	PayloadType       = "application/vnd.in-toto+json"
	StatementV1       = "https://in-toto.io/Statement/v1"
	StatementV01      = "https://in-toto.io/Statement/v0.1"
	SLSAProvenanceV1  = "https://slsa.dev/provenance/v1"
	SLSAProvenanceV02 = "https://slsa.dev/provenance/v0.2"
)

// ErrNotStatement means a payload is not an in-toto Statement.
var ErrNotStatement = errors.New("not an in-toto statement")

// Statement is an in-toto Statement: a predicate about subjects.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate,omitempty"`
}

// Subject is an artifact a statement is about.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// SHA256 returns the subject's digest in the form Vouch identifies
// artifacts by: "sha256:" and 64 lower-case hex characters.
func (s Subject) SHA256() (string, error) {
	d, ok := s.Digest["sha256"]
	if !ok {
		return "", fmt.Errorf("intoto: subject %q has no sha256 digest", s.Name)
	}
	if d = strings.ToLower(d); !sha256RE.MatchString(d) {
		return "", fmt.Errorf("intoto: subject %q: sha256 digest %q is not 64 hex characters", s.Name, d)
	}
	return "sha256:" + d, nil
}

// ParseStatement reads an in-toto Statement v1 or v0.1.
func ParseStatement(data []byte) (Statement, error) {
	var s Statement
	if err := json.Unmarshal(data, &s); err != nil {
		return Statement{}, fmt.Errorf("intoto: %w: %w", ErrNotStatement, err)
	}
	switch {
	case s.Type != StatementV1 && s.Type != StatementV01:
		return Statement{}, fmt.Errorf("intoto: %w: _type is %q, want %q or %q", ErrNotStatement, s.Type, StatementV1, StatementV01)
	case len(s.Subject) == 0:
		return Statement{}, errors.New("intoto: statement: no subject")
	case s.PredicateType == "":
		return Statement{}, errors.New("intoto: statement: no predicateType")
	}
	for i, sub := range s.Subject {
		if len(sub.Digest) == 0 {
			return Statement{}, fmt.Errorf("intoto: statement: subject %d (%q) has no digest", i, sub.Name)
		}
	}
	if p := bytes.TrimSpace(s.Predicate); len(p) > 0 && p[0] != '{' && string(p) != "null" {
		return Statement{}, errors.New("intoto: statement: predicate is not an object")
	}
	return s, nil
}

// Statement reads the envelope's payload as an in-toto Statement. It does
// not verify the envelope: call Verify first, or use Open.
func (e Envelope) Statement() (Statement, error) {
	if e.PayloadType != PayloadType {
		return Statement{}, fmt.Errorf("intoto: %w: payloadType is %q, want %q", ErrNotStatement, e.PayloadType, PayloadType)
	}
	return ParseStatement(e.Payload)
}

// Open reads a DSSE envelope in its JSON form, verifies it against the
// trusted keys, and returns its statement and the key that verified it.
func Open(envelope []byte, trusted ...PublicKey) (Statement, PublicKey, error) {
	e, err := ParseEnvelope(envelope)
	if err != nil {
		return Statement{}, PublicKey{}, err
	}
	k, err := e.Verify(trusted...)
	if err != nil {
		return Statement{}, PublicKey{}, err
	}
	s, err := e.Statement()
	if err != nil {
		return Statement{}, PublicKey{}, err
	}
	return s, k, nil
}
