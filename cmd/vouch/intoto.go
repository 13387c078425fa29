package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/vouch-dev/vouch/evidence"
)

const attestIntotoHelp = `Usage:
  vouch attest intoto ENVELOPE.json [--name NAME]

Records a DSSE envelope holding an in-toto Statement (v1 or v0.1): an
attestation for each subject, bound by its sha256 digest. Vouch checks the
signatures against the keys it trusts for NAME (trusted_keys in its
configuration); the attestation is "verified" only if one of them signed
it, and is refused when NAME requires a signature (require_signatures).
SLSA provenance (v1, v0.2) also records each subject's provenance (commit,
repository, build URL); its NAME defaults to slsa-provenance. An in-toto
test-result predicate passes unless its result is FAILED; other predicates
pass. "-" reads the envelope from stdin.

Token scope: evidence:write. Exit status: 0 recorded, 1 refused or an
error, 2 usage error (an envelope file that does not exist, too), 3 the
server unreachable or failing.

Examples:
  vouch attest intoto provenance.intoto.jsonl.dsse.json
  cosign attest … && vouch attest intoto --name unit-tests test-result.dsse.json
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
	if !json.Valid(body) {
		return usageError{fmt.Sprintf("%s is not JSON: want a DSSE envelope ({\"payloadType\", \"payload\", \"signatures\"})", fs.Arg(0))}
	}
	c, err := cf.client(stderr)
	if err != nil {
		return err
	}
	path := "/api/v1/envelopes"
	if *name != "" {
		path += "?name=" + url.QueryEscape(*name)
	}
	var res struct {
		PredicateType    string                 `json:"predicate_type"`
		Name             string                 `json:"name"`
		Verified         bool                   `json:"verified"`
		KeyID            string                 `json:"key_id,omitempty"`
		SignatureProblem string                 `json:"signature_problem,omitempty"`
		Attestations     []evidence.Attestation `json:"attestations"`
		Artifacts        []evidence.Artifact    `json:"artifacts"`
		Warnings         []string               `json:"warnings"`
	}
	if _, err := c.Do(ctx, http.MethodPost, path, json.RawMessage(body), &res); err != nil {
		return err
	}
	if cf.output == "json" {
		// Lists are lists, empty or not: [] and never null.
		res.Attestations = nonNil(res.Attestations)
		res.Artifacts = nonNil(res.Artifacts)
		res.Warnings = nonNil(res.Warnings)
		return writeJSON(stdout, res)
	}
	signed := "verified: signed by trusted key " + res.KeyID
	if !res.Verified {
		signed = "NOT verified: " + res.SignatureProblem
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
	return nil
}

// nonNil returns s, or an empty slice for nil: JSON [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
