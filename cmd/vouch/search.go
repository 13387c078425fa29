package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
)

const searchHelp = `Usage:
  vouch search COMMIT_OR_DIGEST_PREFIX

Finds artifacts by digest (sha256:…, or its start) or by git commit (at
least 7 hex characters; a hex prefix matches both), newest first, at most
50, and says for each: its attestations, its release decisions, and where
it went — the environments it was admitted into by the webhook, ran in
(seen in a snapshot) and runs in now.

Exit status 1 when nothing matches.

Flags: --server (VOUCH_SERVER), --token (VOUCH_TOKEN; scope audit:read),
-o table|json.

Examples:
  vouch search 4b825dc
  vouch search sha256:2c26b46b
`

func searchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		return errHelp{searchHelp}
	}
	fs := newFlagSet("vouch search")
	var cf clientFlags
	cf.register(fs)
	if err := parseFlagsHelp(fs, args, searchHelp); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"search needs one COMMIT_OR_DIGEST_PREFIX\n\n" + searchHelp}
	}
	c, err := cf.client(stderr)
	if err != nil {
		return err
	}
	var out api.SearchAnswer
	if _, err := c.Do(ctx, http.MethodGet, "/api/v1/search?q="+url.QueryEscape(fs.Arg(0)), nil, &out); err != nil {
		return err
	}
	if cf.output == "json" {
		err = writeJSON(stdout, out.Results)
	} else if len(out.Results) > 0 {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ARTIFACT\tDIGEST\tCOMMIT\tREPORTED\tATTESTATIONS\tAPPROVALS\tENVIRONMENTS")
		for _, r := range out.Results {
			a := r.Artifact
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Digest, dash(a.GitCommit), a.ReportedAt.Format(time.RFC3339),
				dash(attestationSummary(r.Attestations)), dash(approvalSummary(r.Approvals)), dash(sightingSummary(r.Environments)))
		}
		err = tw.Flush()
	}
	if err == nil && len(out.Results) == 0 {
		fmt.Fprintf(stderr, "no artifact matches %q\n", fs.Arg(0))
		return exitStatus(1)
	}
	return err
}

// attestationSummary names the latest attestation of each name and its
// result: "unit-tests:passed security-scan:FAILED".
func attestationSummary(list []evidence.Attestation) string {
	latest := map[string]evidence.Attestation{}
	var order []string
	for _, a := range list { // oldest first
		if _, seen := latest[a.Name]; !seen {
			order = append(order, a.Name)
		}
		latest[a.Name] = a
	}
	parts := make([]string, len(order))
	for i, n := range order {
		parts[i] = n + ":passed"
		if !latest[n].Passed {
			parts[i] = n + ":FAILED"
		}
	}
	return strings.Join(parts, " ")
}

// approvalSummary gives the latest decision per environment:
// "prod:approved staging:rejected".
func approvalSummary(list []evidence.Approval) string {
	latest := map[string]string{}
	var order []string
	for _, a := range list {
		if _, seen := latest[a.Environment]; !seen {
			order = append(order, a.Environment)
		}
		latest[a.Environment] = a.Decision
	}
	parts := make([]string, len(order))
	for i, e := range order {
		parts[i] = e + ":" + latest[e]
	}
	return strings.Join(parts, " ")
}

// sightingSummary says where an artifact went: "prod(running) staging(ran)
// qa(admitted)".
func sightingSummary(list []drift.Sighting) string {
	parts := make([]string, len(list))
	for i, s := range list {
		state := "admitted"
		switch {
		case s.RunningNow:
			state = "running"
		case s.FirstRan != nil:
			state = "ran"
		}
		parts[i] = s.Environment + "(" + state + ")"
	}
	return strings.Join(parts, " ")
}
