package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/yaml"

	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/policy"
	vrego "github.com/vouch-dev/vouch/rego"
	"github.com/vouch-dev/vouch/webhook"
)

const policyHelp = `Usage:
  vouch policy test [DIR] [--builtin] [-v] [--coverage]
  vouch policy check [DIR]
  vouch policy fmt [--check] [PATH…]
  vouch policy eval --input REVIEW [--evidence FILE | --server URL] [--policy-dir DIR] [--config vouch.yaml] [--environment ENV]
  vouch policy replay --policy-dir DIR [--since 7d] [--until TIME] [--environment ENV] [--fail-on-flips]

Authoring tools for Rego rules in package vouch.admission (docs/policy.md).
Every command loads Vouch's built-in rules next to yours, as the server does.

  test   runs the Rego unit tests (*_test.rego) in DIR (default .) with OPA's
         test runner: each failure names the expression that was false;
         --coverage lists the lines of your rules no test reaches;
         --builtin runs the built-in library's tests too.
  check  parses and compiles every module and type-checks the references to
         input against the input document's schema (a typo such as
         input.workload.label is an error); for a pre-commit hook.
  fmt    formats .rego files as opa fmt does; --check lists the files that
         need it and fails instead of writing.
  eval   decides an AdmissionReview (or a bare Kubernetes object, JSON or
         YAML) as the webhook would, with evidence from a file (vouch
         artifact get -o json output, a list of them, or a map by digest)
         or from a server, and prints the decision, every deny and warn
         message, and the input document Vouch built.
  replay the journaled admissions decided again with the built-in rules and
         DIR's: the decisions that would flip, by rule and by workload
         ("vouch policy replay --help").

Exit status: 0 passed, formatted, admitted; 1 failures, problems, denied;
2 usage error.

Examples:
  vouch policy test policies/ --coverage
  vouch policy check policies/ && vouch policy fmt --check policies/
  vouch policy eval --input review.json --server https://vouch.example.com --policy-dir policies/
`

func policyCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return errHelp{policyHelp}
	}
	switch args[0] {
	case "test":
		return policyTest(ctx, args[1:], stdout, stderr)
	case "check":
		return policyCheck(args[1:], stdout, stderr)
	case "fmt":
		return policyFmt(args[1:], stdout, stderr)
	case "eval":
		return policyEval(ctx, args[1:], stdout, stderr)
	case "replay":
		return policyReplay(ctx, args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("unknown policy command %q\n\n%s", args[0], policyHelp)}
}

// policyDirArg is the one optional DIR argument, "." by default.
func policyDirArg(args []string) (string, error) {
	switch len(args) {
	case 0:
		return ".", nil
	case 1:
		return args[0], nil
	}
	return "", usageError{"give one policy directory"}
}

func policyTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("vouch policy test")
	builtin := fs.Bool("builtin", false, "run the built-in library's tests too")
	verbose := fs.Bool("v", false, "list every test")
	coverage := fs.Bool("coverage", false, "list the lines no test covers")
	output := fs.String("o", "table", "output: table or json")
	if err := parseFlagsHelp(fs, args, policyHelp); err != nil {
		return err
	}
	dir, err := policyDirArg(fs.Args())
	if err != nil {
		return err
	}
	src, err := policy.LoadSources(vrego.FS, dir)
	if err != nil {
		return err
	}
	include := func(name string) bool { return *builtin || !policy.Builtin(name) }
	rep, err := src.Test(ctx, include)
	if err != nil {
		return err
	}
	if *output == "json" {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		for _, r := range rep.Results {
			switch {
			case r.Skip:
				if *verbose {
					fmt.Fprintf(stdout, "SKIP  %s:%d %s\n", r.File, r.Row, r.Name)
				}
			case r.Pass:
				if *verbose {
					fmt.Fprintf(stdout, "PASS  %s:%d %s (%.1f ms)\n", r.File, r.Row, r.Name, r.Millis)
				}
			default:
				fmt.Fprintf(stdout, "FAIL  %s:%d %s\n", r.File, r.Row, r.Name)
				if r.Error != "" {
					fmt.Fprintf(stdout, "        error: %s\n", r.Error)
				}
				if r.FailedAt != "" {
					fmt.Fprintf(stdout, "        false: %s\n", r.FailedAt)
				}
				if r.Output != "" {
					fmt.Fprintf(stdout, "        print: %s\n", strings.ReplaceAll(strings.TrimSpace(r.Output), "\n", "\n               "))
				}
			}
		}
		if *coverage {
			for name, f := range rep.Files {
				fmt.Fprintf(stdout, "coverage %5.1f%%  %s", f.Coverage, name)
				if len(f.NotCovered) > 0 {
					fmt.Fprintf(stdout, "  not covered: lines %s", lineList(f.NotCovered))
				}
				fmt.Fprintln(stdout)
			}
		}
		fmt.Fprintf(stdout, "%d passed, %d failed, %d skipped; coverage %.1f%%\n", rep.Passed, rep.Failed, rep.Skipped, rep.Coverage)
	}
	if rep.Passed+rep.Failed == 0 {
		return fmt.Errorf("no Rego tests (test_* rules in *_test.rego files) under %s", dir)
	}
	if rep.Failed > 0 {
		return errDenied
	}
	return nil
}

// lineList prints 3,4,5,9 as 3-5, 9.
func lineList(rows []int) string {
	var parts []string
	for i := 0; i < len(rows); {
		j := i
		for j+1 < len(rows) && rows[j+1] == rows[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, fmt.Sprint(rows[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", rows[i], rows[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

func policyCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("vouch policy check")
	if err := parseFlagsHelp(fs, args, policyHelp); err != nil {
		return err
	}
	dir, err := policyDirArg(fs.Args())
	if err != nil {
		return err
	}
	src, err := policy.LoadSources(vrego.FS, dir)
	if err != nil {
		return err
	}
	if err := src.Check(); err != nil {
		fmt.Fprintln(stdout, err)
		return errDenied
	}
	n := 0
	for name := range src {
		if !policy.Builtin(name) {
			n++
		}
	}
	fmt.Fprintf(stdout, "OK: %d files in %s compile and their references to input match the input schema\n", n, dir)
	return nil
}

func policyFmt(args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet("vouch policy fmt")
	check := flags.Bool("check", false, "list the files that need formatting and fail; write nothing")
	if err := parseFlagsHelp(flags, args, policyHelp); err != nil {
		return err
	}
	paths := flags.Args()
	if len(paths) == 0 {
		paths = []string{"."}
	}
	var unformatted, failed int
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != root && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(p, ".rego") {
				return nil
			}
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out, err := policy.Format(p, src)
			if err != nil {
				fmt.Fprintln(stderr, err)
				failed++
				return nil
			}
			if bytes.Equal(out, src) {
				return nil
			}
			unformatted++
			if *check {
				fmt.Fprintln(stdout, p)
				return nil
			}
			fmt.Fprintln(stdout, "formatted", p)
			return os.WriteFile(p, out, 0o644)
		})
		if err != nil {
			return err
		}
	}
	if failed > 0 || (*check && unformatted > 0) {
		return errDenied
	}
	return nil
}

func policyEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("vouch policy eval")
	var cf clientFlags
	cf.register(fs)
	inputFile := fs.String("input", "", "AdmissionReview or Kubernetes object (JSON or YAML; - for stdin)")
	evidenceFile := fs.String("evidence", "", "evidence JSON file (instead of --server)")
	policyDir := fs.String("policy-dir", "", "directory of your Rego modules (default: the config's policy_dir)")
	configFile := fs.String("config", "", "vouch.yaml with the environments (default: the built-in default environment)")
	environment := fs.String("environment", "", "decide in this environment instead of the namespace's")
	namespace := fs.String("namespace", "default", "namespace of a bare object that names none")
	noInput := fs.Bool("no-input", false, "do not print the input document")
	if err := parseFlagsHelp(fs, args, policyHelp); err != nil {
		return err
	}
	serverSet := false
	fs.Visit(func(f *flag.Flag) { serverSet = serverSet || f.Name == "server" })
	if *inputFile == "" || fs.NArg() > 0 {
		return usageError{"policy eval needs --input REVIEW (and no other arguments)"}
	}
	if *evidenceFile != "" && serverSet {
		return usageError{"give --evidence or --server, not both"}
	}
	req, err := readReview(*inputFile, *namespace)
	if err != nil {
		return err
	}
	cfg := defaultConfig()
	if *configFile != "" {
		if cfg, err = loadConfig([]string{"--config", *configFile}, func(string) string { return "" }); err != nil {
			return err
		}
	}
	if *policyDir == "" {
		*policyDir = cfg.PolicyDir
	}
	envs, err := cfg.environments()
	if err != nil {
		return err
	}
	var lookup webhook.EvidenceLookup = staticEvidence{}
	switch {
	case *evidenceFile != "":
		if lookup, err = readEvidence(*evidenceFile); err != nil {
			return err
		}
	case serverSet || os.Getenv("VOUCH_SERVER") != "":
		c, err := cf.client(stderr)
		if err != nil {
			return err
		}
		lookup = serverEvidence{c}
	}
	engine, err := policy.New(ctx, policy.Config{Builtin: vrego.FS, Dir: *policyDir, Logger: discardLogger()})
	if err != nil {
		return err
	}
	h, err := webhook.New(webhook.Config{Policy: engine, Evidence: lookup, Journal: noJournal{}, Environments: envs,
		ExemptNamespaces: append([]string{cfg.Namespace}, cfg.ExemptNamespaces...), Logger: discardLogger()})
	if err != nil {
		return err
	}
	rec, in, err := h.Explain(ctx, req, *environment)
	if err != nil && in == nil {
		return err
	}
	out := struct {
		Allowed       bool          `json:"allowed"`
		Environment   string        `json:"environment"`
		Mode          string        `json:"mode,omitempty"`
		PolicyDenied  bool          `json:"policy_denied,omitempty"`
		Error         string        `json:"error,omitempty"`
		Deny          []string      `json:"deny"`
		Warn          []string      `json:"warn"`
		PolicyVersion string        `json:"policy_version"`
		Input         *policy.Input `json:"input,omitempty"`
	}{rec.Allowed, rec.Environment, rec.Mode, rec.PolicyDenied, rec.Error, rec.Messages, rec.Warnings, rec.PolicyVersion, in}
	if err != nil {
		out.Allowed, out.Error = false, err.Error()
	}
	if *noInput {
		out.Input = nil
	}
	if cf.output == "json" {
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	} else {
		verdict := "ADMITTED"
		switch {
		case !out.Allowed:
			verdict = "DENIED"
		case out.PolicyDenied:
			verdict = "ADMITTED (" + out.Mode + " mode; the policy denies)"
		}
		fmt.Fprintf(stdout, "%s in %s (policy %s)\n", verdict, out.Environment, out.PolicyVersion)
		if out.Error != "" {
			fmt.Fprintf(stdout, "error: %s\n", out.Error)
		}
		for _, m := range out.Deny {
			fmt.Fprintf(stdout, "deny: %s\n", m)
		}
		for _, m := range out.Warn {
			fmt.Fprintf(stdout, "warn: %s\n", m)
		}
		if out.Input != nil {
			fmt.Fprintln(stdout, "\ninput:")
			if err := writeJSON(stdout, out.Input); err != nil {
				return err
			}
		}
	}
	if !out.Allowed || out.PolicyDenied {
		return errDenied
	}
	return nil
}

// readReview reads an AdmissionReview, or a bare object to be created.
func readReview(name, namespace string) (*admissionv1.AdmissionRequest, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, err
	}
	if data, err = yaml.YAMLToJSON(data); err != nil {
		return nil, usageError{fmt.Sprintf("%s: not JSON or YAML: %v", name, err)}
	}
	var probe struct {
		APIVersion string                           `json:"apiVersion"`
		Kind       string                           `json:"kind"`
		Request    *admissionv1.AdmissionRequest    `json:"request"`
		Metadata   struct{ Name, Namespace string } `json:"metadata"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, usageError{fmt.Sprintf("%s: %v", name, err)}
	}
	if probe.Kind == "AdmissionReview" {
		if probe.Request == nil {
			return nil, usageError{fmt.Sprintf("%s: an AdmissionReview without a request", name)}
		}
		return probe.Request, nil
	}
	if probe.Kind == "" || probe.APIVersion == "" {
		return nil, usageError{fmt.Sprintf("%s: want an AdmissionReview or a Kubernetes object (apiVersion and kind)", name)}
	}
	group, version, found := strings.Cut(probe.APIVersion, "/")
	if !found {
		group, version = "", probe.APIVersion
	}
	if probe.Metadata.Namespace != "" {
		namespace = probe.Metadata.Namespace
	}
	req := &admissionv1.AdmissionRequest{UID: "policy-eval", Operation: admissionv1.Create, Namespace: namespace, Name: probe.Metadata.Name}
	req.Kind.Group, req.Kind.Version, req.Kind.Kind = group, version, probe.Kind
	req.Object.Raw = data
	req.UserInfo.Username = "vouch-policy-eval"
	return req, nil
}

// staticEvidence is evidence read from a file, by digest.
type staticEvidence map[string]evidence.Evidence

func (s staticEvidence) Lookup(_ context.Context, digests []string) (map[string]evidence.Evidence, error) {
	out := map[string]evidence.Evidence{}
	for _, d := range digests {
		if ev, ok := s[d]; ok {
			out[d] = ev
		}
	}
	return out, nil
}

// readEvidence reads one Evidence object, a list of them, or a map by
// digest.
func readEvidence(name string) (staticEvidence, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	out := staticEvidence{}
	var list []evidence.Evidence
	if err := json.Unmarshal(data, &list); err == nil {
		for _, ev := range list {
			out[ev.Digest] = ev
		}
		return out, nil
	}
	var one evidence.Evidence
	if err := json.Unmarshal(data, &one); err == nil && one.Digest != "" {
		out[one.Digest] = one
		return out, nil
	}
	var byDigest map[string]evidence.Evidence
	if err := json.Unmarshal(data, &byDigest); err != nil {
		return nil, usageError{fmt.Sprintf("%s: want evidence as vouch artifact get -o json prints it, a list of those, or a map by digest: %v", name, err)}
	}
	for d, ev := range byDigest {
		ev.Digest = d
		out[d] = ev
	}
	return out, nil
}

// serverEvidence fetches evidence from a Vouch server.
type serverEvidence struct{ c *client.Client }

func (s serverEvidence) Lookup(ctx context.Context, digests []string) (map[string]evidence.Evidence, error) {
	out := map[string]evidence.Evidence{}
	for _, d := range digests {
		var ev evidence.Evidence
		_, err := s.c.Do(ctx, http.MethodGet, "/api/v1/artifacts/"+url.PathEscape(d), nil, &ev)
		var p *client.Problem
		if errors.As(err, &p) && p.Status == http.StatusNotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		ev.Digest = d
		out[d] = ev
	}
	return out, nil
}

// noJournal refuses to record: eval decides without journaling.
type noJournal struct{}

func (noJournal) Append(context.Context, journal.Entry) (journal.Appended, error) {
	return journal.Appended{}, errors.New("policy eval records nothing")
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
