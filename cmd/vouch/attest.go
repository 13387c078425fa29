package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/junit"
	"github.com/vouch-dev/vouch/evidence/sarif"
	"github.com/vouch-dev/vouch/evidence/sbom"
)

const attestHelp = `Usage:
  vouch attest junit   --name NAME SUBJECT [--url URL] results.xml…
      JUnit XML reports (Surefire, Gradle, pytest, go-junit-report, …),
      merged: totals of tests, failures, errors and skipped; passed when
      no test failed and none had an error, and at least one ran
      (--allow-empty passes a report without tests)
  vouch attest sarif   --name NAME SUBJECT [--fail-on error|warning|note|none] scan.sarif
      a SARIF 2.1.0 log: findings counted by level; passed when none
      reaches --fail-on (default error)
  vouch attest sbom    --name NAME SUBJECT bom.json
      a CycloneDX or SPDX 2 JSON SBOM: format, components, tools (always
      passed: an SBOM records, it does not judge)
  vouch attest generic --name NAME SUBJECT --passed=true|false [--type T] [--file DOC] [--payload JSON]
      any other evidence: a manual review, a pen-test report, a sign-off
  vouch attest pr      --name NAME SUBJECT [--min-approvals N] [--commit SHA] [--repository R]
      code review, from the forge: the pull requests (GitHub, Azure DevOps)
      or merge requests (GitLab) that brought the commit in, and who approved them;
      passed when one was merged (into the branch CI builds, or --base)
      with N approvals (default 1) by people other than its author — on GitHub, approvals of its final commit
      (--allow-stale-approvals counts earlier ones). The forge's token:
      GITHUB_TOKEN or GH_TOKEN; VOUCH_GITLAB_TOKEN or GITLAB_TOKEN (read_api);
      SYSTEM_ACCESSTOKEN or AZURE_DEVOPS_EXT_PAT. --server-side has Vouch ask
      the forge itself, with its own token (forges), about the build's
      reported repository and commit: the review is verified
  vouch attest change  NUMBER SUBJECT [--system NAME]
      a change request (CHG0030001) that Vouch reads from the change system
      itself (ServiceNow: change_systems), with its state, approval and
      planned window: see "vouch attest change --help"
  vouch attest intoto ENVELOPE
      a signed in-toto statement (DSSE) or Sigstore bundle, verified against
      trusted keys or identities: see "vouch attest intoto --help"

SUBJECT is the artifact: --digest D (sha256:… or IMAGE@sha256:…), or
--file F, --dir D, --oci DIR [--oci-ref R], fingerprinted here as
"vouch fingerprint" does. In attest generic, --file is the evidence
document and --subject-file the artifact file.

The documents are uploaded as blobs (GET /api/v1/blobs/DIGEST serves
them) and the attestation names them in "blob": the report itself for
sarif, sbom and generic --file; for junit, every input file is uploaded,
the payload lists them ("files": [{"name", "blob"}]) and "blob" names
the first. --upload=false records the summary alone.

--url defaults to the CI build's URL (docs/ci.md); for pr, the merged
request's. --commit and --repository default to the CI build's. The command prints
what it recorded; a failed attestation is recorded too, and prints
"recorded: FAILED …" with exit status 0 — give --exit-code to exit 1
when the attestation failed (to stop the pipeline there). Repeating the
latest attestation of its name prints "already recorded"; with -o json,
the attestation's fields and "created": true, or false for a repeat.

Flags: --server (VOUCH_SERVER), --token (VOUCH_TOKEN; scope
evidence:write), -o table|json.

Examples:
  vouch attest junit --oci image-layout/ --name unit-tests target/surefire-reports/*.xml
  vouch attest sarif --digest "$DIGEST" --name security-scan --fail-on error trivy.sarif
  vouch attest sbom --digest "$DIGEST" --name sbom bom.cdx.json
  vouch attest generic --digest "$DIGEST" --name pen-test --passed=true --file pentest-2026-q4.pdf
  GITHUB_TOKEN=… vouch attest pr --digest "$DIGEST" --name code-review --min-approvals 2
  vouch attest change CHG0030001 --digest "$DIGEST"
`

// document is a file to upload as a blob.
type document struct {
	path      string
	mediaType string
	content   []byte
}

// attestation is what an attest command recorded or will record.
type attestation struct {
	report  evidence.AttestationReport
	docs    []document
	summary string // e.g. "412 tests, 0 failures, 0 errors, 3 skipped"
}

func attestCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return errHelp{attestHelp}
	}
	format := args[0]
	switch format {
	case "intoto":
		return attestIntoto(ctx, args[1:], stdout, stderr)
	case "change":
		return attestChange(ctx, args[1:], stdout, stderr)
	case "junit", "sarif", "sbom", "generic", "pr":
	default:
		return usageError{fmt.Sprintf("unknown attest format %q\n\n%s", format, attestHelp)}
	}
	fs := newFlagSet("vouch attest " + format)
	var cf clientFlags
	cf.register(fs)
	var subj subject
	fileFlag := "file"
	if format == "generic" {
		fileFlag = "subject-file"
	}
	subj.register(fs, fileFlag)
	name := fs.String("name", "", "the attestation's name, as environments require it (e.g. unit-tests)")
	link := fs.String("url", "", "a link to the evidence (default: the CI build's URL)")
	exitCode := fs.Bool("exit-code", false, "exit 1 when the attestation failed")
	upload := fs.Bool("upload", true, "upload the documents as blobs")
	var failOn, passed, typ, doc, payload string
	var allowEmpty bool
	var rf reviewFlags
	switch format {
	case "pr":
		rf.register(fs)
	case "junit":
		fs.BoolVar(&allowEmpty, "allow-empty", false, "pass a report in which no test ran (by default it fails: a test glob that matched nothing must not pass a gate)")
	case "sarif":
		fs.StringVar(&failOn, "fail-on", string(sarif.DefaultFailOn), "the level from which findings fail: error, warning, note or none")
	case "generic":
		fs.StringVar(&passed, "passed", "", "true or false (required)")
		fs.StringVar(&typ, "type", "generic", "the attestation type, a lower-case word (e.g. review, pentest)")
		fs.StringVar(&doc, "file", "", "the evidence document, uploaded as a blob")
		fs.StringVar(&payload, "payload", "", "a JSON object recorded as the payload")
	}
	if err := parseFlagsHelp(fs, args[1:], attestHelp); err != nil {
		return err
	}
	if *name == "" {
		return usageError{fmt.Sprintf("attest %s needs --name: the name environments require, e.g. unit-tests", format)}
	}
	if (format == "generic" || format == "pr") && fs.NArg() > 0 {
		hint := ""
		if format == "generic" {
			hint = " (the document goes in --file)"
		}
		return usageError{fmt.Sprintf("attest %s takes no arguments%s, got %q", format, hint, fs.Arg(0))}
	}
	if format != "generic" && format != "pr" && fs.NArg() == 0 {
		return usageError{fmt.Sprintf("attest %s needs the report file(s) to read", format)}
	}
	if format != "junit" && format != "generic" && fs.NArg() > 1 {
		return usageError{fmt.Sprintf("attest %s reads one file, got %d", format, fs.NArg())}
	}
	c, err := cf.client(stderr)
	if err != nil {
		return err
	}
	digest, err := subj.resolve()
	if err != nil {
		return err
	}
	if format == "pr" && rf.serverSide {
		return serverSideReview(ctx, c, digest, *name, cf.output, *exitCode, stdout)
	}
	var at attestation
	switch format {
	case "junit":
		at, err = junitAttestation(digest, *name, fs.Args(), allowEmpty)
	case "sarif":
		at, err = sarifAttestation(digest, *name, failOn, fs.Arg(0))
	case "sbom":
		at, err = sbomAttestation(digest, *name, fs.Arg(0))
	case "generic":
		at, err = genericAttestation(digest, *name, typ, passed, doc, payload)
	case "pr":
		at, err = reviewAttestation(ctx, digest, *name, rf, os.Getenv)
	}
	if err != nil {
		return err
	}
	at.report.URL = first(*link, at.report.URL, detectCI(os.Getenv).BuildURL)
	if *upload {
		if err := at.nameBlobs(); err != nil {
			return err
		}
		if err := at.upload(ctx, c); err != nil {
			return err
		}
	}
	var a evidence.Attestation
	code, err := c.Do(ctx, http.MethodPost, "/api/v1/attestations", at.report, &a)
	if err != nil {
		return err
	}
	if err := answerFor("attestation", at.report.Digest, a.Digest); err != nil {
		return err
	}
	created := code == http.StatusCreated
	if cf.output == "json" {
		err = writeJSON(stdout, attestationAnswer{a, created})
	} else {
		what := "recorded"
		if !created {
			what = "already recorded"
		}
		fmt.Fprintf(stdout, "%s: %s %s (%s) for %s", what, passedWord(a.Passed), a.Name, a.Type, a.Digest)
		if at.summary != "" {
			fmt.Fprintf(stdout, ": %s", at.summary)
		}
		fmt.Fprintf(stdout, " (journal entry %d)\n", a.ID)
		if *upload { // else there is no blob to name
			for _, d := range at.docs {
				fmt.Fprintf(stdout, "  %s: blob %s\n", d.path, evidence.BlobDigest(d.content))
			}
		}
	}
	if err == nil && *exitCode && !a.Passed {
		return exitStatus(1)
	}
	return err
}

// nameBlobs names the first document in the attestation and, when there
// are several, lists them all in the payload, by the digests of their
// content: before any upload, so that a list too long fails before
// anything is sent.
func (at *attestation) nameBlobs() error {
	if len(at.docs) == 0 {
		return nil
	}
	at.report.Blob = evidence.BlobDigest(at.docs[0].content)
	if len(at.docs) < 2 {
		return nil
	}
	files := make([]map[string]string, 0, len(at.docs))
	for _, d := range at.docs {
		files = append(files, map[string]string{"name": filepath.ToSlash(d.path), "blob": evidence.BlobDigest(d.content)})
	}
	p, err := withMember(at.report.Payload, "files", files)
	if err != nil {
		return err
	}
	if len(p) > evidence.MaxPayload {
		return usageError{fmt.Sprintf("the list of the %d files does not fit in the attestation's payload (%d bytes, at most %d); nothing was uploaded: name fewer files (merge the reports first), or give --upload=false to record the summary alone", len(files), len(p), evidence.MaxPayload)}
	}
	at.report.Payload = p
	return nil
}

// upload stores the documents as blobs, each under its digest.
func (at *attestation) upload(ctx context.Context, c *client.Client) error {
	for _, d := range at.docs {
		var b api.BlobAnswer
		if _, err := c.Upload(ctx, "/api/v1/blobs", d.mediaType, d.content, &b); err != nil {
			return fmt.Errorf("upload %s: %w", d.path, err)
		}
		if want := evidence.BlobDigest(d.content); b.Digest != want {
			return fmt.Errorf("upload %s: the server stored it as %s, not as its digest %s", d.path, b.Digest, want)
		}
	}
	return nil
}

// withMember adds a member to a JSON object.
func withMember(obj json.RawMessage, name string, v any) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(obj) > 0 {
		if err := json.Unmarshal(obj, &m); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m[name] = b
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// parseDocument reads a report file and parses it; errors name the file.
func parseDocument[T any](path string, parse func(io.Reader) (T, error)) (T, []byte, error) {
	var v T
	b, err := readDocument(path)
	if err != nil {
		return v, nil, err
	}
	if v, err = parse(bytes.NewReader(b)); err != nil {
		return v, nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, b, nil
}

func junitAttestation(digest, name string, paths []string, allowEmpty bool) (attestation, error) {
	var at attestation
	var reports []junit.Report
	for _, p := range paths {
		r, b, err := parseDocument(p, junit.Parse)
		if err != nil {
			return at, err
		}
		reports = append(reports, r)
		at.docs = append(at.docs, document{p, "application/xml", b})
	}
	r := junit.Merge(reports...)
	at.report = r.Attestation(digest, name)
	t := r.Totals
	at.summary = fmt.Sprintf("%d tests, %d failures, %d errors, %d skipped", t.Tests, t.Failures, t.Errors, t.Skipped)
	if len(paths) > 1 {
		at.summary += fmt.Sprintf(" in %d files", len(paths))
	}
	if t.Tests == 0 && !allowEmpty {
		no := false
		at.report.Passed = &no
		at.summary += ": no test ran, which fails (--allow-empty passes it)"
	}
	return at, nil
}

func sarifAttestation(digest, name, failOn, path string) (attestation, error) {
	var at attestation
	f, err := sarif.ParseFailOn(failOn)
	if err != nil {
		return at, usageError{"--fail-on: " + strings.TrimPrefix(err.Error(), "sarif: ")}
	}
	r, b, err := parseDocument(path, sarif.Parse)
	if err != nil {
		return at, err
	}
	at.report = r.Attestation(digest, name, f)
	at.docs = []document{{path, "application/sarif+json", b}}
	t := r.Totals
	at.summary = fmt.Sprintf("findings: %d error, %d warning, %d note, %d none (fails on %s)", t.Error, t.Warning, t.Note, t.None, f)
	return at, nil
}

func sbomAttestation(digest, name, path string) (attestation, error) {
	var at attestation
	s, b, err := parseDocument(path, sbom.Parse)
	if err != nil {
		return at, err
	}
	at.report = s.Attestation(digest, name)
	mediaType := "application/vnd.cyclonedx+json"
	if s.Format == sbom.SPDX {
		mediaType = "application/spdx+json"
	}
	at.docs = []document{{path, mediaType, b}}
	at.summary = fmt.Sprintf("%s %s, %d components", s.Format, s.SpecVersion, s.Components)
	return at, nil
}

func genericAttestation(digest, name, typ, passed, doc, payload string) (attestation, error) {
	var at attestation
	if typ == evidence.TypePullRequest {
		return at, usageError{"--type pull-request is what vouch attest pr records from the forge: use it"}
	}
	if typ == evidence.TypeChangeRequest {
		return at, usageError{"--type change-request is what Vouch records as it reads a change from the change system: use vouch attest change"}
	}
	ok, err := strconv.ParseBool(passed)
	if err != nil {
		return at, usageError{"attest generic needs --passed=true or --passed=false"}
	}
	at.report = evidence.AttestationReport{Digest: digest, Name: name, Type: typ, Passed: &ok}
	if payload != "" {
		if !json.Valid([]byte(payload)) || !strings.HasPrefix(strings.TrimSpace(payload), "{") {
			return at, usageError{"--payload must be a JSON object"}
		}
		at.report.Payload = json.RawMessage(payload)
	}
	if doc != "" {
		b, err := readDocument(doc)
		if err != nil {
			return at, err
		}
		at.docs = []document{{doc, documentType(doc, b), b}}
	}
	return at, nil
}

// documentType guesses a document's media type from its name, else from
// its first bytes.
func documentType(path string, content []byte) string {
	if t := mime.TypeByExtension(filepath.Ext(path)); t != "" {
		return t
	}
	return http.DetectContentType(content)
}
