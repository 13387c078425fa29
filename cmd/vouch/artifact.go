package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/fingerprint"
)

const fingerprintHelp = `Usage:
  vouch fingerprint FILE|DIR|OCI-LAYOUT-DIR [--oci-ref NAME] [-o json]

Prints the digest that identifies an artifact (sha256:…), computed here:
  a file             the SHA-256 of its content, as sha256sum computes it;
  a directory        the SHA-256 of its canonical manifest (vouch-dir-v1:
                     sorted relative paths, kinds, contents, the execute bit
                     and symlink targets; not times or owners), the same on
                     every machine;
  an OCI image layout (a directory with an oci-layout file, as
                     "docker buildx build --output type=oci,tar=false" or
                     "skopeo copy … oci:DIR" write) the digest of its image
                     manifest or index: the digest the image has once pushed.
                     --oci-ref picks an image by ref name or platform when
                     the layout holds several.

-o json prints {"digest", "kind": "file|dir|oci-layout", "path"}.

Examples:
  vouch fingerprint dist/app.tar.gz
  vouch fingerprint build/site/
  DIGEST=$(vouch fingerprint image-layout/)
`

func fingerprintCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		return errHelp{fingerprintHelp}
	}
	fs := newFlagSet("vouch fingerprint")
	output := fs.String("o", "table", "output format: table (the digest alone) or json")
	ociRef := fs.String("oci-ref", "", "OCI layout: the image's ref name or platform, when the layout holds several")
	if err := parseFlagsHelp(fs, args, fingerprintHelp); err != nil {
		return err
	}
	if *output != "table" && *output != "json" {
		return usageError{fmt.Sprintf("-o %q: want table or json", *output)}
	}
	if fs.NArg() != 1 {
		return usageError{"fingerprint needs one file, directory or OCI image layout\n\n" + fingerprintHelp}
	}
	path := fs.Arg(0)
	d, kind, err := fingerprintPath(path, *ociRef)
	if err != nil {
		return err
	}
	if *output == "json" {
		return writeJSON(stdout, struct {
			Digest string `json:"digest"`
			Kind   string `json:"kind"`
			Path   string `json:"path"`
		}{d, kind, path})
	}
	fmt.Fprintln(stdout, d)
	return nil
}

// fingerprintPath returns the digest of a file, a directory, or the image
// in an OCI image layout (a directory holding an oci-layout file).
func fingerprintPath(path, ociRef string) (digest, kind string, err error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", usageError{fmt.Sprintf("%s: no such file or directory", path)} // as for a report file: the command line is wrong
	}
	if err != nil {
		return "", "", err
	}
	switch {
	case !info.IsDir():
		if ociRef != "" {
			return "", "", usageError{"--oci-ref applies to an OCI image layout directory, not to a file"}
		}
		digest, err = fingerprint.File(path)
		return digest, "file", err
	case isOCILayout(path):
		digest, err = ociLayout(path, ociRef)
		return digest, "oci-layout", err
	case ociRef != "":
		return "", "", usageError{fmt.Sprintf("--oci-ref: %s is not an OCI image layout (it has no oci-layout file)", path)}
	}
	digest, err = fingerprint.Dir(path)
	return digest, "dir", err
}

// ociLayout is fingerprint.OCILayout, its errors saying how to choose
// among several images.
func ociLayout(dir, ref string) (string, error) {
	d, err := fingerprint.OCILayout(dir, ref)
	if err != nil && ref == "" && strings.Contains(err.Error(), "choose one") {
		err = fmt.Errorf("%w; give it with --oci-ref", err)
	}
	return d, err
}

func isOCILayout(dir string) bool {
	info, err := os.Stat(filepath.Join(dir, "oci-layout"))
	return err == nil && info.Mode().IsRegular()
}

// subject is the artifact a command is about: a digest given, or a file,
// directory or OCI image layout fingerprinted here.
type subject struct {
	digest, file, dir, oci, ociRef string
}

// register adds --digest, --dir, --oci and --oci-ref, and the file flag
// under fileFlag ("file", or "subject-file" where --file means something
// else).
func (s *subject) register(fs *flag.FlagSet, fileFlag string) {
	fs.StringVar(&s.digest, "digest", "", "the artifact's digest: sha256:…, or IMAGE@sha256:…")
	fs.StringVar(&s.file, fileFlag, "", "the artifact is this file (fingerprinted)")
	fs.StringVar(&s.dir, "dir", "", "the artifact is this directory tree (fingerprinted)")
	fs.StringVar(&s.oci, "oci", "", "the artifact is the image in this OCI image layout (fingerprinted)")
	fs.StringVar(&s.ociRef, "oci-ref", "", "with --oci: the image's ref name or platform, when the layout holds several")
}

// resolve returns the subject's digest.
func (s subject) resolve() (string, error) {
	n := 0
	for _, v := range []string{s.digest, s.file, s.dir, s.oci} {
		if v != "" {
			n++
		}
	}
	switch {
	case n == 0:
		return "", usageError{"name the artifact with one of --digest, --file, --dir or --oci"}
	case n > 1:
		return "", usageError{"name the artifact once: give only one of --digest, --file, --dir or --oci"}
	}
	if s.ociRef != "" && s.oci == "" {
		return "", usageError{"--oci-ref goes with --oci"}
	}
	var d string
	var err error
	switch {
	case s.digest != "":
		var ok bool
		if d, ok = digestArg(s.digest); !ok {
			return "", usageError{fmt.Sprintf("--digest %q: want sha256: and 64 hex characters (or IMAGE@sha256:…)", s.digest)}
		}
	case s.file != "":
		d, err = fingerprint.File(s.file)
	case s.dir != "":
		var info os.FileInfo
		if info, err = os.Stat(s.dir); err == nil && !info.IsDir() {
			return "", usageError{fmt.Sprintf("--dir %s is not a directory", s.dir)}
		}
		d, err = fingerprint.Dir(s.dir)
	default:
		d, err = ociLayout(s.oci, s.ociRef)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "", usageError{err.Error()} // a path on the command line that is not there
	}
	return d, err
}

// digestArg reads a digest given on the command line: sha256:<hex>, the
// 64 hex characters alone, or an image reference IMAGE@sha256:<hex>.
func digestArg(s string) (string, bool) {
	if i := strings.LastIndex(s, "@"); i >= 0 {
		s = s[i+1:]
	}
	return evidence.ParseDigest(s)
}

const artifactHelp = `Usage:
  vouch artifact report NAME (--digest D | --file F | --dir D | --oci DIR [--oci-ref R])
                             [--commit SHA] [--author EMAIL] [--repository URL] [--build-url URL] [--pipeline NAME]
      report a build: the artifact NAME (e.g. registry.example.com/team/app)
      with the digest given or fingerprinted here, and its provenance
  vouch artifact get DIGEST
      the artifact and all its evidence: attestations, approvals

In GitHub Actions, GitLab CI, Jenkins and Azure Pipelines, --commit,
--author, --repository, --build-url and --pipeline default to the build's
own values (docs/ci.md lists the variables); flags given win. The author
is what four-eyes checks compare with the approver. Reporting a digest
again prints "already recorded" (the first report stands); with -o json,
the artifact's fields and "created": true, or false for a repeat.

Flags: --server (VOUCH_SERVER), --token (VOUCH_TOKEN; report needs
evidence:write, get audit:read), -o table|json.

Examples:
  vouch artifact report registry.example.com/shop/web --oci image-layout/
  vouch artifact report shop-web-bundle --file dist/web.tar.gz --commit "$(git rev-parse HEAD)"
  vouch artifact get registry.example.com/shop/web@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
`

func artifactCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return errHelp{artifactHelp}
	}
	fs := newFlagSet("vouch artifact " + args[0])
	var cf clientFlags
	cf.register(fs)
	var subj subject
	var r evidence.ArtifactReport
	if args[0] == "report" {
		subj.register(fs, "file")
		fs.StringVar(&r.GitCommit, "commit", "", "full git commit hash of the build (default: from CI)")
		fs.StringVar(&r.Author, "author", "", "the commit's author, email or login, for four-eyes checks (default: from CI)")
		fs.StringVar(&r.Repository, "repository", "", "the source repository's URL (default: from CI)")
		fs.StringVar(&r.BuildURL, "build-url", "", "URL of the build (default: from CI)")
		fs.StringVar(&r.Pipeline, "pipeline", "", "name of the pipeline (default: from CI)")
	}
	if err := parseFlagsHelp(fs, args[1:], artifactHelp); err != nil {
		return err
	}
	switch args[0] {
	case "report":
		if fs.NArg() != 1 {
			return usageError{"artifact report needs one artifact NAME, e.g. registry.example.com/team/app"}
		}
		c, err := cf.client(stderr)
		if err != nil {
			return err
		}
		if r.Digest, err = subj.resolve(); err != nil {
			return err
		}
		ci := detectCI(os.Getenv)
		r.Name = fs.Arg(0)
		r.GitCommit, r.Repository, r.Author = first(r.GitCommit, ci.Commit), first(r.Repository, ci.Repository), first(r.Author, ci.Author)
		r.BuildURL, r.Pipeline = first(r.BuildURL, ci.BuildURL), first(r.Pipeline, ci.Pipeline)
		var a evidence.Artifact
		code, err := c.Do(ctx, http.MethodPost, "/api/v1/artifacts", r, &a)
		if err != nil {
			return err
		}
		if err := answerFor("artifact", r.Digest, a.Digest); err != nil {
			return err
		}
		created := code == http.StatusCreated
		if cf.output == "json" {
			return writeJSON(stdout, artifactAnswer{a, created})
		}
		what := "recorded"
		if !created {
			what = "already recorded (the first report of this digest stands)"
		}
		fmt.Fprintf(stdout, "%s: artifact %s %s\n", what, a.Name, a.Digest)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		printProvenance(tw, a)
		if ci.System != "" {
			fmt.Fprintf(tw, "  defaults from\t%s\n", ci.System)
		}
		return tw.Flush()
	case "get":
		if fs.NArg() != 1 {
			return usageError{"artifact get needs one DIGEST (sha256:… or IMAGE@sha256:…)"}
		}
		d, ok := digestArg(fs.Arg(0))
		if !ok {
			return usageError{fmt.Sprintf("%q: want sha256: and 64 hex characters (or IMAGE@sha256:…)", fs.Arg(0))}
		}
		c, err := cf.client(stderr)
		if err != nil {
			return err
		}
		var ev evidence.Evidence
		if _, err := c.Do(ctx, http.MethodGet, "/api/v1/artifacts/"+d, nil, &ev); err != nil {
			return err
		}
		if cf.output == "json" {
			return writeJSON(stdout, ev)
		}
		printEvidence(stdout, ev)
		return nil
	}
	return usageError{fmt.Sprintf("unknown artifact command %q\n\n%s", args[0], artifactHelp)}
}

// printProvenance writes an artifact's provenance as indented rows.
func printProvenance(tw *tabwriter.Writer, a evidence.Artifact) {
	for _, row := range [][2]string{{"commit", a.GitCommit}, {"author", a.Author}, {"repository", a.Repository}, {"build", a.BuildURL}, {"pipeline", a.Pipeline}} {
		if row[1] != "" {
			fmt.Fprintf(tw, "  %s\t%s\n", row[0], row[1])
		}
	}
	fmt.Fprintf(tw, "  reported\tby %s at %s (journal entry %d)\n", a.ReportedBy, a.ReportedAt.Format(time.RFC3339), a.ID)
}

// printEvidence writes everything known about a digest.
func printEvidence(w io.Writer, ev evidence.Evidence) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if a := ev.Artifact; a != nil {
		fmt.Fprintf(tw, "artifact %s %s\n", a.Name, a.Digest)
		printProvenance(tw, *a)
	} else {
		fmt.Fprintf(tw, "%s: no build reported (provenance unknown)\n", ev.Digest)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nattestations (%d):\n", len(ev.Attestations))
	if len(ev.Attestations) > 0 {
		fmt.Fprintln(tw, "ID\tNAME\tTYPE\tRESULT\tVERIFIED\tBLOB\tURL\tREPORTED")
		for _, a := range ev.Attestations {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s by %s\n", a.ID, a.Name, a.Type, passedWord(a.Passed), verifiedWord(a),
				dash(short(a.Blob)), dash(a.URL), a.ReportedAt.Format(time.RFC3339), a.ReportedBy)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\napprovals (%d):\n", len(ev.Approvals))
	if len(ev.Approvals) > 0 {
		printApprovals(tw, ev.Approvals, false)
	}
}

func passedWord(passed bool) string {
	if passed {
		return "PASSED"
	}
	return "FAILED"
}

func verifiedWord(a evidence.Attestation) string {
	if !a.Verified {
		return "no"
	}
	if a.KeyID != "" {
		return "yes (" + a.KeyID + ")"
	}
	return "yes"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readDocument reads a file named on the command line; a directory or a
// missing file is a usage error.
func readDocument(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usageError{fmt.Sprintf("%s: no such file", path)}
	}
	return b, err
}

// The answers of the commands that record evidence, as -o json prints
// them: the record's fields, and "created", false when the server
// answered with the record it already kept (HTTP 200: a repeat, printed
// "already recorded") rather than a new one (HTTP 201).
type (
	artifactAnswer struct {
		evidence.Artifact
		Created bool `json:"created"`
	}
	attestationAnswer struct {
		evidence.Attestation
		Created bool `json:"created"`
	}
	approvalAnswer struct {
		evidence.Approval
		Created bool `json:"created"`
	}
)

// answerFor checks that the record the server answered with is of the
// digest sent: an answer of something else (an HTML page, a list) decodes
// to an empty record, and must not pass for "recorded".
func answerFor(what, sent, answered string) error {
	if answered == sent {
		return nil
	}
	return fmt.Errorf("the server answered, but not with the %s of %s (it named %q): it may not have been recorded; check that --server (VOUCH_SERVER) is the address of Vouch's API", what, sent, answered)
}
