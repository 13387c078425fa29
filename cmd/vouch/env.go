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

	"github.com/vouch-dev/vouch/drift"
)

const envHelp = `Usage:
  vouch env list                              environments and their compliance
  vouch env state ENV[@TIME]                  what ran in ENV (now, or at TIME)
  vouch env diff ENV@FROM [ENV@TO]            what started, stopped and changed between two times
  vouch env log ENV [--since 7d]              the changes, oldest first
  vouch env compliance ENV                    every running artifact and its compliance

TIME is RFC 3339 (2026-11-20T10:00:00Z) or a duration back from now (24h, 7d).
Flags: --server, --token (scope audit:read), -o table|json.

What ran in prod last Thursday at 10:00 UTC?
  vouch env state prod@2026-11-19T10:00:00Z
`

func envCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return errHelp{envHelp}
	}
	fs := newFlagSet("vouch env " + args[0])
	var cf clientFlags
	cf.register(fs)
	since := fs.String("since", "7d", "env log: how far back")
	if err := parseFlagsHelp(fs, args[1:], envHelp); err != nil {
		return err
	}
	c, err := cf.client(stderr)
	if err != nil {
		return err
	}
	get := func(path string, out any) error {
		_, err := c.Do(ctx, http.MethodGet, path, nil, out)
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch args[0] {
	case "list":
		var out struct{ Environments []drift.Summary }
		if err := get("/api/v1/environments", &out); err != nil {
			return err
		}
		if cf.output == "json" {
			return writeJSON(stdout, out.Environments)
		}
		fmt.Fprintln(tw, "ENVIRONMENT\tLAST SNAPSHOT\tWORKLOADS\tCOMPLIANT\tNON-COMPLIANT\tUNKNOWN\tUNDOCUMENTED\tFAILED\tEXEMPT")
		for _, s := range out.Environments {
			last := "never"
			if s.LastSnapshot != nil {
				last = s.LastSnapshot.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", s.Environment, last, s.Workloads, s.Counts[drift.StatusCompliant],
				s.Counts[drift.StatusNonCompliant], s.Counts[drift.StatusUnknown], s.Counts[drift.StatusUndocumented], s.Counts[drift.StatusFailed],
				s.Counts[drift.StatusExempt])
		}
	case "state":
		env, at, err := envAt(fs.Arg(0), true)
		if err != nil {
			return err
		}
		var snap drift.Snapshot
		if err := get("/api/v1/environments/"+url.PathEscape(env)+"/state?"+timeQuery("at", at), &snap); err != nil {
			return err
		}
		if cf.output == "json" {
			return writeJSON(stdout, snap)
		}
		fmt.Fprintf(stdout, "%s as of %s: %d workloads\n", env, snap.Time.Format(time.RFC3339), len(snap.Workloads))
		fmt.Fprintln(tw, "NAMESPACE\tWORKLOAD\tPODS\tCONTAINER\tIMAGE\tDIGEST\tFAILED")
		for _, w := range snap.Workloads {
			for _, ct := range w.Containers {
				fmt.Fprintf(tw, "%s\t%s/%s\t%d\t%s\t%s\t%s\t%s\n", w.Namespace, w.Kind, w.Name, w.Pods, ct.Name, ct.Image, short(ct.Digest), w.Failed)
			}
		}
	case "diff":
		env, from, err := envAt(fs.Arg(0), false)
		if err != nil {
			return err
		}
		q := timeQuery("from", from)
		if fs.NArg() > 1 {
			env2, to, err := envAt(fs.Arg(1), false)
			if err != nil {
				return err
			}
			if env2 != env {
				return usageError{fmt.Sprintf("env diff compares one environment at two times, not %s and %s", env, env2)}
			}
			q += "&" + timeQuery("to", to)
		}
		var out struct{ Diff drift.Diff }
		if err := get("/api/v1/environments/"+url.PathEscape(env)+"/diff?"+q, &out); err != nil {
			return err
		}
		if cf.output == "json" {
			return writeJSON(stdout, out.Diff)
		}
		fmt.Fprintln(tw, "CHANGE\tNAMESPACE\tWORKLOAD\tIMAGES")
		for _, w := range out.Diff.Started {
			fmt.Fprintf(tw, "started\t%s\t%s/%s\t%s\n", w.Namespace, w.Kind, w.Name, images(w))
		}
		for _, w := range out.Diff.Stopped {
			fmt.Fprintf(tw, "stopped\t%s\t%s/%s\t%s\n", w.Namespace, w.Kind, w.Name, images(w))
		}
		for _, ch := range out.Diff.Changed {
			fmt.Fprintf(tw, "changed\t%s\t%s/%s\t%s -> %s\n", ch.After.Namespace, ch.After.Kind, ch.After.Name, images(ch.Before), images(ch.After))
		}
	case "log":
		if fs.NArg() != 1 {
			return usageError{"env log needs one environment"}
		}
		var out struct{ Events []drift.Event }
		if err := get("/api/v1/environments/"+url.PathEscape(fs.Arg(0))+"/events?since="+url.QueryEscape(*since), &out); err != nil {
			return err
		}
		if cf.output == "json" {
			return writeJSON(stdout, out.Events)
		}
		fmt.Fprintln(tw, "TIME\tCHANGE\tNAMESPACE\tWORKLOAD\tDETAIL\tJOURNAL")
		for _, e := range out.Events {
			ns, workload, detail := "", "", ""
			switch {
			case e.Workload != nil:
				ns, workload, detail = e.Workload.Namespace, e.Workload.Kind+"/"+e.Workload.Name, images(*e.Workload)
			case e.Compliance != nil:
				detail = counts(e.Compliance.Counts)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", e.Time.Format(time.RFC3339), e.Type, ns, workload, detail, e.Journal)
		}
	case "compliance":
		if fs.NArg() != 1 {
			return usageError{"env compliance needs one environment"}
		}
		var rep drift.Report
		if err := get("/api/v1/environments/"+url.PathEscape(fs.Arg(0))+"/compliance", &rep); err != nil {
			return err
		}
		if cf.output == "json" {
			return writeJSON(stdout, rep)
		}
		fmt.Fprintln(tw, "STATUS\tNAMESPACE\tWORKLOAD\tCONTAINER\tIMAGE\tWHY")
		for _, a := range rep.Artifacts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Status, a.Namespace, a.Workload, a.Container, a.Image, strings.Join(a.Reasons, "; "))
		}
	default:
		return usageError{fmt.Sprintf("unknown env command %q\n\n%s", args[0], envHelp)}
	}
	return nil
}

// envAt splits ENV@TIME; the time is optional when optional is set.
func envAt(arg string, optional bool) (string, string, error) {
	env, at, found := strings.Cut(arg, "@")
	if env == "" || (!found && !optional) {
		return "", "", usageError{fmt.Sprintf("%q: want ENV@TIME, e.g. prod@2026-11-20T10:00:00Z or prod@7d", arg)}
	}
	return env, at, nil
}

func timeQuery(name, v string) string {
	if v == "" {
		return ""
	}
	return name + "=" + url.QueryEscape(v)
}

func images(w drift.Workload) string {
	var out []string
	for _, c := range w.Containers {
		out = append(out, c.Image)
	}
	return strings.Join(out, ",")
}

// counts prints the non-zero compliance counts, worst first.
func counts(c map[string]int) string {
	var out []string
	for _, st := range drift.Statuses {
		if c[st] > 0 {
			out = append(out, fmt.Sprintf("%s=%d", st, c[st]))
		}
	}
	return strings.Join(out, " ")
}

func short(digest string) string {
	if len(digest) > 19 {
		return digest[:19] + "…"
	}
	return digest
}
