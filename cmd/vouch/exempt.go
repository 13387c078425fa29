package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/vouch-dev/vouch/exempt"
)

const exemptHelp = `Usage:
  vouch exempt --environment ENV (--image NAME | --digest DIGEST) --reason "…" --expires 24h
  vouch exemptions list [--all]
  vouch exemptions revoke ID

An exemption admits an image — every version of a name ('*' matches any
characters: registry.example.com/vendor/*) or one digest — in one
environment until it expires (at most 30 days), whatever the policy says.
Creating, using and revoking one is journaled; every use raises an alert.

Token scope: approvals:write (list: audit:read too).

Examples:
  vouch exempt --environment prod --image registry.example.com/vendor/agent --reason "INC-4711: vendor hotfix, no SBOM yet" --expires 48h
  vouch exemptions list -o json
  vouch exemptions revoke 1234
`

func exemptCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("vouch exempt")
	var cf clientFlags
	cf.register(fs)
	var r exempt.Request
	fs.StringVar(&r.Environment, "environment", os.Getenv("VOUCH_ENVIRONMENT"), "environment")
	fs.StringVar(&r.Image, "image", "", "image name or pattern")
	fs.StringVar(&r.Digest, "digest", "", "artifact digest (sha256:…)")
	fs.StringVar(&r.Reason, "reason", "", "why: an incident, a change ticket")
	expires := fs.String("expires", "", "how long: 24h, 7d (at most 30d)")
	if err := parseFlagsHelp(fs, args, exemptHelp); err != nil {
		return err
	}
	if r.Environment == "" || r.Reason == "" || *expires == "" || (r.Image == "") == (r.Digest == "") || fs.NArg() > 0 {
		return usageError{"exempt needs --environment, --image or --digest, --reason and --expires"}
	}
	d, err := lifetime("--expires", *expires, "") // at most exempt.MaxDuration: the server says so
	if err != nil {
		return err
	}
	r.ExpiresAt = time.Now().Add(d)
	c, err := cf.client(stderr)
	if err != nil {
		return err
	}
	var e exempt.Exemption
	if _, err := c.Do(ctx, http.MethodPost, "/api/v1/exemptions", r, &e); err != nil {
		return err
	}
	if cf.output == "json" {
		return writeJSON(stdout, e)
	}
	fmt.Fprintf(stdout, "exemption %d: %s in %s until %s (%s)\n", e.ID, subjectOf(e), e.Environment, e.ExpiresAt.Format(time.RFC3339), e.Reason)
	return nil
}

func exemptionsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return errHelp{exemptHelp}
	}
	fs := newFlagSet("vouch exemptions " + args[0])
	var cf clientFlags
	cf.register(fs)
	all := fs.Bool("all", false, "list: expired and revoked ones too")
	if err := parseFlagsHelp(fs, args[1:], exemptHelp); err != nil {
		return err
	}
	c, err := cf.client(stderr)
	if err != nil {
		return err
	}
	switch args[0] {
	case "list":
		var out struct{ Exemptions []exempt.Exemption }
		if _, err := c.Do(ctx, http.MethodGet, "/api/v1/exemptions?all="+strconv.FormatBool(*all), nil, &out); err != nil {
			return err
		}
		if cf.output == "json" {
			return writeJSON(stdout, out.Exemptions)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tENVIRONMENT\tIMAGE OR DIGEST\tEXPIRES\tBY\tSTATE\tREASON")
		for _, e := range out.Exemptions {
			state := "active"
			switch {
			case e.RevokedAt != nil:
				state = "revoked by " + e.RevokedBy
			case !time.Now().Before(e.ExpiresAt):
				state = "expired"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Environment, subjectOf(e), e.ExpiresAt.Format(time.RFC3339), e.CreatedBy, state, e.Reason)
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return usageError{"exemptions revoke needs one ID"}
		}
		id, err := strconv.ParseUint(fs.Arg(0), 10, 63)
		if err != nil {
			return usageError{fmt.Sprintf("%q is not an exemption id", fs.Arg(0))}
		}
		var e exempt.Exemption
		if _, err := c.Do(ctx, http.MethodDelete, "/api/v1/exemptions/"+strconv.FormatUint(id, 10), nil, &e); err != nil {
			return err
		}
		if cf.output == "json" {
			return writeJSON(stdout, e)
		}
		fmt.Fprintf(stdout, "exemption %d revoked\n", e.ID)
		return nil
	}
	return usageError{fmt.Sprintf("unknown exemptions command %q\n\n%s", args[0], exemptHelp)}
}

func subjectOf(e exempt.Exemption) string {
	if e.Digest != "" {
		return e.Digest
	}
	return e.Image
}
