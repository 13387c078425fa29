package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"

	k8syaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/webhook"
)

// errDenied is a check that ran and said no: exit status 1, the reasons
// printed already.
var errDenied = errors.New("denied")

const assertHelp = `Usage:
  vouch assert IMAGE_OR_DIGEST --environment ENV [--namespace NS] [--configuration-item CI]

Would IMAGE (registry/app@sha256:…) — or the artifact with DIGEST
(sha256:…) — be admitted in ENV now? Vouch evaluates the environment's
policy exactly as the admission webhook would, for a Pod running it,
records nothing, and prints each requirement as met or missing.
--namespace is the Pod's (default: the environment's first), whose labels
and vouch.dev/ annotations the policy sees; --configuration-item is the
workload's vouch.dev/configuration-item, which change requests must be for
where the environment matches them (unless the namespace names one).

Exit status: 0 admitted, 1 denied (or an error), 2 usage error, 3 the server
unreachable or failing.
Token scope: evidence:write or audit:read.

Examples:
  vouch assert registry.example.com/shop/web@sha256:2c26… --environment prod
  vouch assert "$(vouch fingerprint dist/app.tar)" --environment prod -o json
`

var sha256DigestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

func assertCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("vouch assert")
	var cf clientFlags
	cf.register(fs)
	env := fs.String("environment", os.Getenv("VOUCH_ENVIRONMENT"), "environment to assert against (env VOUCH_ENVIRONMENT)")
	namespace := fs.String("namespace", "", "the workload's namespace (default: the environment's first)")
	ci := fs.String("configuration-item", "", "the workload's configuration item (its vouch.dev/configuration-item annotation)")
	if err := parseFlagsHelp(fs, args, assertHelp); err != nil {
		return err
	}
	if fs.NArg() != 1 || *env == "" {
		return usageError{"assert needs one IMAGE or DIGEST and --environment"}
	}
	c, err := cf.client(stderr)
	if err != nil {
		return err
	}
	req := api.AssertRequest{Environment: *env, Image: fs.Arg(0), Namespace: *namespace, ConfigurationItem: *ci}
	if sha256DigestRE.MatchString(req.Image) {
		req.Digest, req.Image = req.Image, ""
	}
	var a webhook.Assertion
	if _, err := c.Do(ctx, http.MethodPost, "/api/v1/assert", req, &a); err != nil {
		return err
	}
	if cf.output == "json" {
		if err := writeJSON(stdout, a); err != nil {
			return err
		}
	} else {
		verdict := "ADMITTED"
		if !a.Allowed {
			verdict = "DENIED"
		}
		fmt.Fprintf(stdout, "%s in %s: %s\n", a.Image, a.Environment, verdict)
		for _, r := range a.Requirements {
			mark := "met    "
			if !r.Met {
				mark = "MISSING"
			}
			fmt.Fprintf(stdout, "  %s  %s\n", mark, r.Requirement)
			for _, m := range r.Messages {
				fmt.Fprintf(stdout, "           %s\n", m)
			}
		}
		if len(a.Requirements) == 0 {
			fmt.Fprintf(stdout, "  (%s requires nothing)\n", a.Environment)
		}
		for _, w := range a.Warnings {
			fmt.Fprintf(stdout, "  warning: %s\n", w)
		}
	}
	if !a.Allowed {
		return errDenied
	}
	return nil
}

const reviewHelp = `Usage:
  vouch review -f MANIFEST [-f MANIFEST…] [--environment ENV] [--namespace NS]

Evaluates every workload of a multi-document YAML or JSON manifest — helm
template or kustomize build output, "-" for stdin — as the admission
webhook would decide its creation now, for a pre-merge check. Objects that
are not workloads, and those in exempt namespaces, are listed as skipped.
Without --environment each object's namespace picks its environment, as at
admission; objects without a namespace are in --namespace (default
"default").

Exit status: 0 all admitted, 1 any denied (or an error), 2 usage error, 3 the
server unreachable or failing.
Token scope: evidence:write or audit:read.

Examples:
  helm template shop charts/shop -f prod.yaml | vouch review -f - --environment prod
  kustomize build overlays/prod | vouch review -f - --namespace shop
`

// repeated collects a flag given more than once.
type repeated []string

func (m *repeated) String() string     { return strings.Join(*m, ",") }
func (m *repeated) Set(v string) error { *m = append(*m, v); return nil }

func reviewCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("vouch review")
	var cf clientFlags
	cf.register(fs)
	var files repeated
	fs.Var(&files, "f", "manifest file, or - for stdin (repeatable)")
	env := fs.String("environment", os.Getenv("VOUCH_ENVIRONMENT"), "decide every object in this environment")
	namespace := fs.String("namespace", "default", "namespace of objects that name none")
	if err := parseFlagsHelp(fs, args, reviewHelp); err != nil {
		return err
	}
	if len(files) == 0 || fs.NArg() > 0 {
		return usageError{"review needs -f MANIFEST (and no other arguments)"}
	}
	var objects []json.RawMessage
	for _, f := range files {
		objs, err := readManifest(f, stdin)
		if err != nil {
			return err
		}
		objects = append(objects, objs...)
	}
	if len(objects) == 0 {
		return usageError{fmt.Sprintf("%s: no Kubernetes objects found", strings.Join(files, ", "))}
	}
	c, err := cf.client(stderr)
	if err != nil {
		return err
	}
	var out struct {
		Allowed bool             `json:"allowed"`
		Reviews []webhook.Review `json:"reviews"`
	}
	if _, err := c.Do(ctx, http.MethodPost, "/api/v1/review", api.ReviewRequest{Environment: *env, Namespace: *namespace, Objects: objects}, &out); err != nil {
		return err
	}
	if cf.output == "json" {
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DECISION\tKIND\tNAMESPACE\tNAME\tENVIRONMENT")
		denied := 0
		for _, r := range out.Reviews {
			decision := "admitted"
			switch {
			case r.Skipped != "":
				decision = "skipped (" + r.Skipped + ")"
			case !r.Allowed:
				decision = "DENIED"
				denied++
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", decision, r.Kind, r.Namespace, r.Name, r.Environment)
		}
		tw.Flush()
		for _, r := range out.Reviews {
			for _, m := range r.Messages {
				fmt.Fprintf(stdout, "%s %s/%s: %s\n", r.Kind, r.Namespace, r.Name, m)
			}
			for _, w := range r.Warnings {
				fmt.Fprintf(stdout, "%s %s/%s: warning: %s\n", r.Kind, r.Namespace, r.Name, w)
			}
		}
		fmt.Fprintf(stdout, "%d objects, %d denied\n", len(out.Reviews), denied)
	}
	if !out.Allowed {
		return errDenied
	}
	return nil
}

// readManifest reads the objects of a YAML or JSON stream; List objects
// (kubectl get -o yaml) are unpacked.
func readManifest(name string, stdin io.Reader) ([]json.RawMessage, error) {
	var r io.Reader = stdin
	if name != "-" {
		b, err := readDocument(name)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	dec := k8syaml.NewYAMLOrJSONDecoder(r, 64<<10)
	var out []json.RawMessage
	for i := 1; ; i++ {
		var obj map[string]any
		err := dec.Decode(&obj)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, usageError{fmt.Sprintf("%s: document %d: %v", name, i, err)}
		}
		if obj == nil {
			continue // an empty document
		}
		items := []any{obj}
		if list, ok := obj["items"].([]any); ok && strings.HasSuffix(fmt.Sprint(obj["kind"]), "List") {
			items = list
		}
		for _, it := range items {
			b, err := json.Marshal(it)
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		}
	}
}
