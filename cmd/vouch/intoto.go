package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/sigstore"
)

const attestIntotoHelp = `Usage:
  vouch attest intoto ENVELOPE.json|BUNDLE.json|FILE.jsonl [--name NAME]

Records a DSSE envelope holding an in-toto Statement (v1 or v0.1), or a
Sigstore bundle holding one (GitHub artifact attestations, cosign attest
--new-bundle-format): an attestation for each subject, bound by its sha256
digest. Vouch checks the signature against the keys it trusts for NAME
(trusted_keys in its configuration) or, for a bundle signed keyless, the
certificate's CI identity against trusted_identities; the attestation is
"verified" only if one of them signed it, and is refused when NAME
requires a signature (require_signatures).
SLSA provenance (v1, v0.2) also records each subject's provenance (commit,
repository, build URL); its NAME defaults to slsa-provenance. An in-toto
test-result predicate passes unless its result is FAILED; other predicates
pass. A JSON Lines file (.intoto.jsonl, as the SLSA GitHub generator writes;
the .jsonl of bundles gh attestation download writes) holds one envelope or
bundle a line: each is recorded in turn, and the first refused
stops the rest (those before it stay recorded; the message says which line).
"-" reads from stdin.

Token scope: evidence:write. Exit status: 0 recorded, 1 refused or an
error, 2 usage error (an envelope file that does not exist, too), 3 the
server unreachable or failing.

Examples:
  vouch attest intoto provenance.intoto.jsonl.dsse.json
  cosign attest … && vouch attest intoto --name unit-tests test-result.dsse.json
  vouch attest intoto "${{ steps.attest.outputs.bundle-path }}"   # actions/attest-build-provenance
`

func attestIntoto(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("vouch attest intoto")
	var cf clientFlags
	cf.register(fs)
	name := fs.String("name", "", "attestation name (default slsa-provenance for SLSA provenance)")
	if err := parseFlagsHelp(fs, args, attestIntotoHelp); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"attest intoto needs one envelope file"}
	}
	var body []byte
	var err error
	if fs.Arg(0) == "-" {
		body, err = io.ReadAll(os.Stdin)
	} else {
		body, err = readDocument(fs.Arg(0))
	}
	if err != nil {
		return err
	}
	envelopes, err := splitEnvelopes(body)
	if err != nil {
		return usageError{fmt.Sprintf("%s: %v", fs.Arg(0), err)}
	}
	c, err := cf.client(stderr)
	if err != nil {
		return err
	}
	path := "/api/v1/envelopes"
	if *name != "" {
		path += "?name=" + url.QueryEscape(*name)
	}
	var results []envelopeAnswer
	for i, env := range envelopes {
		var res envelopeAnswer
		if _, err := c.Do(ctx, http.MethodPost, path, env, &res); err != nil {
			if len(envelopes) > 1 {
				return fmt.Errorf("line %d of %s (lines before it are recorded): %w", i+1, fs.Arg(0), err)
			}
			return err
		}
		// Lists are lists, empty or not: [] and never null.
		res.Attestations, res.Artifacts, res.Warnings = nonNil(res.Attestations), nonNil(res.Artifacts), nonNil(res.Warnings)
		results = append(results, res)
	}
	switch {
	case cf.output == "json" && len(results) == 1:
		return writeJSON(stdout, results[0])
	case cf.output == "json":
		return writeJSON(stdout, results)
	}
	for i, res := range results {
		if len(results) > 1 {
			fmt.Fprintf(stdout, "line %d: ", i+1)
		}
		res.print(stdout)
	}
	return nil
}

// envelopeAnswer is what POST /envelopes answers.
type envelopeAnswer struct {
	PredicateType    string                 `json:"predicate_type"`
	Name             string                 `json:"name"`
	Verified         bool                   `json:"verified"`
	KeyID            string                 `json:"key_id,omitempty"`
	SignatureProblem string                 `json:"signature_problem,omitempty"`
	Signer           *sigstore.Signer       `json:"signer,omitempty"`
	Attestations     []evidence.Attestation `json:"attestations"`
	Artifacts        []evidence.Artifact    `json:"artifacts"`
	Warnings         []string               `json:"warnings"`
}

// MaxEnvelopes bounds the envelopes of one JSON Lines file.
const MaxEnvelopes = 100

// splitEnvelopes reads one JSON envelope, or JSON Lines of them.
func splitEnvelopes(body []byte) ([]json.RawMessage, error) {
	if json.Valid(body) {
		return []json.RawMessage{body}, nil
	}
	var out []json.RawMessage
	for i, line := range bytes.Split(body, []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) == 0 {
			continue
		}
		if !json.Valid(line) {
			return nil, fmt.Errorf("line %d is not JSON: want a DSSE envelope ({\"payloadType\", \"payload\", \"signatures\"}) or a Sigstore bundle, or one a line", i+1)
		}
		out = append(out, line)
	}
	switch {
	case len(out) == 0:
		return nil, errors.New("no envelope: want a DSSE envelope ({\"payloadType\", \"payload\", \"signatures\"}) or a Sigstore bundle, or one a line")
	case len(out) > MaxEnvelopes:
		return nil, fmt.Errorf("%d envelopes; at most %d a file", len(out), MaxEnvelopes)
	}
	return out, nil
}

// print writes the answer for people.
func (res envelopeAnswer) print(stdout io.Writer) {
	signed := "verified: signed by trusted key " + res.KeyID
	switch {
	case !res.Verified:
		signed = "NOT verified: " + res.SignatureProblem
	case res.Signer != nil:
		signed = fmt.Sprintf("verified: signed keyless by %s (trusted identity %s) at %s, witnessed by %s",
			res.Signer.Subject, res.KeyID, res.Signer.SignedAt.Format(time.RFC3339), strings.Join(res.Signer.Witnesses, ", "))
	}
	fmt.Fprintf(stdout, "recorded %q (%s) for %d subjects; %s\n", res.Name, res.PredicateType, len(res.Attestations), signed)
	for _, a := range res.Attestations {
		result := "passed"
		if !a.Passed {
			result = "FAILED"
		}
		fmt.Fprintf(stdout, "  %s  %s  (journal entry %d)\n", a.Digest, result, a.ID)
	}
	for _, a := range res.Artifacts {
		fmt.Fprintf(stdout, "  provenance of %s@%s\n", a.Name, a.Digest)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(stdout, "  warning: %s\n", w)
	}
}

// nonNil returns s, or an empty slice for nil: JSON [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
