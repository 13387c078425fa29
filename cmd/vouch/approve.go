package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/policy"
)

const approveHelp = `Usage:
  vouch approve DIGEST --environment ENV --reason REASON [--expires 72h] [--reject | --emergency]
      record a release decision for the artifact DIGEST (sha256:… or
      IMAGE@sha256:…) in ENV: approved, or with --reject rejected (a
      rejection needs a reason). Every call is a new decision: a later
      approval renews, a later rejection revokes. The approver recorded is
      the token's name.
  vouch approvals list [--digest D] [--environment ENV] [--limit N]
      release decisions, newest first

--expires is a duration (72h, 7d) or an RFC 3339 time; without it the
approval does not expire. approve -o json prints the decision's fields
and "created": true, as the other commands that record evidence do (a
decision is never a repeat).

Flags: --server (VOUCH_SERVER), --token (VOUCH_TOKEN; approve needs
approvals:write, list audit:read), -o table|json.

Examples:
  vouch approve "$DIGEST" --environment prod --reason "CAB-1234" --expires 72h
  vouch approve "$DIGEST" --environment prod --reject --reason "CVE-2026-0001 found after approval"
  vouch approvals list --environment prod
`

func approveCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		return errHelp{approveHelp}
	}
	fs := newFlagSet("vouch approve")
	var cf clientFlags
	cf.register(fs)
	env := fs.String("environment", "", "the environment the decision is for (required)")
	reason := fs.String("reason", "", "why: a change ticket, a CAB decision (required with --reject)")
	expires := fs.String("expires", "", "when the approval lapses: a duration (72h, 7d) or an RFC 3339 time")
	reject := fs.Bool("reject", false, "record a rejection instead of an approval")
	emergency := fs.Bool("emergency", false, "an emergency approval: it lets the change through a change freeze (needs --reason)")
	if err := parseFlagsHelp(fs, args, approveHelp); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"approve needs one DIGEST (sha256:… or IMAGE@sha256:…)\n\n" + approveHelp}
	}
	r := evidence.ApprovalRequest{Environment: *env, Reason: *reason, Decision: evidence.Approved, Emergency: *emergency}
	var ok bool
	if r.Digest, ok = digestArg(fs.Arg(0)); !ok {
		return usageError{fmt.Sprintf("%q: want sha256: and 64 hex characters (or IMAGE@sha256:…)", fs.Arg(0))}
	}
	if *env == "" {
		return usageError{"approve needs --environment"}
	}
	if *emergency && (*reject || *reason == "") {
		return usageError{"an emergency approval needs --reason (the incident or change) and cannot be a rejection"}
	}
	if *reject {
		r.Decision = evidence.Rejected
		if *reason == "" {
			return usageError{"a rejection needs --reason"}
		}
	}
	if *expires != "" {
		t, err := expiry(*expires, time.Now())
		if err != nil {
			return err
		}
		r.ExpiresAt = &t
	}
	c, err := cf.client(stderr)
	if err != nil {
		return err
	}
	var a evidence.Approval
	code, err := c.Do(ctx, http.MethodPost, "/api/v1/approvals", r, &a)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		return writeJSON(stdout, approvalAnswer{a, code == http.StatusCreated})
	}
	decision := a.Decision
	if a.Emergency {
		decision = "emergency " + decision
	}
	fmt.Fprintf(stdout, "%s: %s for %s by %s", decision, a.Digest, a.Environment, a.Approver)
	if len(a.ApproverIdentities) > 0 {
		fmt.Fprintf(stdout, " (%s)", strings.Join(a.ApproverIdentities, ", "))
	}
	if a.Reason != "" {
		fmt.Fprintf(stdout, " (%s)", a.Reason)
	}
	if a.ExpiresAt != nil {
		fmt.Fprintf(stdout, ", expires %s", a.ExpiresAt.Format(time.RFC3339))
	}
	fmt.Fprintf(stdout, " (journal entry %d)\n", a.ID)
	return nil
}

// expiry reads --expires: a duration from now (also in days, "7d") or an
// RFC 3339 time.
func expiry(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := lifetime("--expires", v, ", or an RFC 3339 time")
	if err != nil {
		return time.Time{}, err
	}
	return now.Add(d).UTC().Truncate(time.Second), nil
}

// lifetime reads a flag's positive duration, also in days ("7d"); what
// else the flag accepts is named by alternatives in the error.
func lifetime(flag, v, alternatives string) (time.Duration, error) {
	d, err := policy.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, usageError{fmt.Sprintf("%s %q: want a positive duration such as 72h or 7d%s", flag, v, alternatives)}
	}
	return d, nil
}

func approvalsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return errHelp{approveHelp}
	}
	if args[0] != "list" {
		return usageError{fmt.Sprintf("unknown approvals command %q\n\n%s", args[0], approveHelp)}
	}
	fs := newFlagSet("vouch approvals list")
	var cf clientFlags
	cf.register(fs)
	d := fs.String("digest", "", "only decisions about this artifact (sha256:… or IMAGE@sha256:…)")
	env := fs.String("environment", "", "only decisions for this environment")
	limit := fs.Int("limit", 100, "at most this many (1-1000)")
	if err := parseFlagsHelp(fs, args[1:], approveHelp); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("approvals list takes no arguments, got %q (use --digest)", fs.Arg(0))}
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *d != "" {
		digest, ok := digestArg(*d)
		if !ok {
			return usageError{fmt.Sprintf("--digest %q: want sha256: and 64 hex characters (or IMAGE@sha256:…)", *d)}
		}
		q.Set("digest", digest)
	}
	if *env != "" {
		q.Set("environment", *env)
	}
	c, err := cf.client(stderr)
	if err != nil {
		return err
	}
	var out struct{ Approvals []evidence.Approval }
	if _, err := c.Do(ctx, http.MethodGet, "/api/v1/approvals?"+q.Encode(), nil, &out); err != nil {
		return err
	}
	if cf.output == "json" {
		if out.Approvals == nil {
			out.Approvals = []evidence.Approval{}
		}
		return writeJSON(stdout, out.Approvals)
	}
	printApprovals(tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0), out.Approvals, true)
	return nil
}

// printApprovals writes approvals as a table, with their digests when
// withDigest is set.
func printApprovals(tw *tabwriter.Writer, list []evidence.Approval, withDigest bool) {
	digestCol := ""
	if withDigest {
		digestCol = "DIGEST\t"
	}
	fmt.Fprintln(tw, "ID\tTIME\t"+digestCol+"ENVIRONMENT\tDECISION\tAPPROVER\tEXPIRES\tREASON")
	for _, a := range list {
		exp := "never"
		if a.ExpiresAt != nil {
			exp = a.ExpiresAt.Format(time.RFC3339)
		}
		if withDigest {
			digestCol = a.Digest + "\t"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s%s\t%s\t%s\t%s\t%s\n", a.ID, a.ApprovedAt.Format(time.RFC3339), digestCol, a.Environment, a.Decision, a.Approver, exp, a.Reason)
	}
	tw.Flush()
}
