package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/policy"
	vrego "github.com/vouch-dev/vouch/rego"
	"github.com/vouch-dev/vouch/replay"
	"github.com/vouch-dev/vouch/webhook"
)

const policyReplayHelp = `Usage:
  vouch policy replay --policy-dir DIR [--since 7d] [--until TIME] [--environment ENV]
                      [--limit N] [--fail-on-flips] [-o table|json]
                      [--local [--config vouch.yaml] [--data-dir DIR | --database-url URL]]

Impact before rollout: decides the journaled admissions again with a
candidate policy — the built-in policy and the modules of DIR, as
"vouch serve --policy-dir DIR" would load them — with the evidence as it
was at each decision and Rego's clock at the decision's time, and reports
the decisions that would flip (admit→deny, deny→admit), by rule and by
workload. DIR is read here and its modules sent to the server, which
replays (POST /api/v1/policy/replay). Progress goes to stderr.

With --local, no server is involved: the store is opened read-only
(--data-dir's SQLite database, or --database-url) and the server's
configuration file gives the environments and, with its policy_dir, the
policy in use (--config, VOUCH_* variables as for vouch serve).

TIME is RFC 3339 (2026-11-20T10:00:00Z) or a duration back from now (24h, 7d).
Exit status: 0, also with flips; 1 with --fail-on-flips when a decision
that was admitted would be denied, or on an error; 2 usage error.
Token scope: audit:read (not with --local).

Examples:
  vouch policy replay --policy-dir policies/ --since 7d --environment prod
  vouch policy replay --policy-dir policies/ --since 30d -o json > impact.json
  vouch policy replay --policy-dir policies/ --local --config /etc/vouch/vouch.yaml \
      --database-url postgres://vouch_reader@db/vouch
`

func policyReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("vouch policy replay")
	var cf clientFlags
	cf.register(fs)
	dir := fs.String("policy-dir", "", "the candidate's Rego modules (required; an empty directory replays the built-in policy alone)")
	since := fs.String("since", "7d", "first decision time: RFC 3339 or a duration back from now")
	until := fs.String("until", "", "end of the decision times (default now)")
	env := fs.String("environment", os.Getenv("VOUCH_ENVIRONMENT"), "only this environment's decisions (default all)")
	limit := fs.Int("limit", replay.DefaultLimit, fmt.Sprintf("most decisions to replay (at most %d)", replay.MaxLimit))
	failOnFlips := fs.Bool("fail-on-flips", false, "exit 1 when a decision that was admitted would be denied")
	local := fs.Bool("local", false, "replay here, reading the store directly (read-only), not on the server")
	configFile := fs.String("config", os.Getenv("VOUCH_CONFIG"), "--local: the server's YAML configuration (environments, policy_dir)")
	databaseURL := fs.String("database-url", os.Getenv("VOUCH_DATABASE_URL"), "--local: the PostgreSQL store (default: the SQLite database in --data-dir)")
	if err := parseFlagsHelp(fs, args, policyReplayHelp); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() > 0 {
		return usageError{"policy replay needs --policy-dir DIR (and no other arguments)"}
	}
	if *limit < 1 || *limit > replay.MaxLimit {
		return usageError{fmt.Sprintf("--limit %d: want 1 to %d", *limit, replay.MaxLimit)}
	}
	modules, err := policy.ReadDir(*dir)
	if err != nil {
		return err
	}
	req := api.ReplayRequest{Modules: modules, Since: *since, Until: *until, Environment: *env, Limit: *limit}
	var last time.Time
	progress := func(p replay.Progress) {
		if p.Index >= p.To || time.Since(last) < time.Second {
			return // the server sends it about once a second; so do local replays
		}
		last = time.Now()
		fmt.Fprintf(stderr, "replaying: %d decisions so far (journal index %d of %d to %d)\n", p.Decisions, p.Index, p.From, p.To)
	}
	var rep *replay.Report
	if *local {
		if cf.output != "table" && cf.output != "json" {
			return usageError{fmt.Sprintf("-o %q: want table or json", cf.output)}
		}
		r, err := localReplay(ctx, req, *configFile, cf.dataDir, *databaseURL, progress)
		if err != nil {
			return err
		}
		rep = &r
	} else if rep, err = serverReplay(ctx, cf, req, progress, stderr); err != nil {
		return err
	}
	if rep == nil {
		return errors.New("replay: the server's answer ended without a report")
	}
	if cf.output == "json" {
		err = writeJSON(stdout, rep)
	} else {
		printReplay(stdout, *rep)
	}
	if err == nil && *failOnFlips && rep.Totals.AdmitToDeny > 0 {
		fmt.Fprintf(stderr, "vouch: %d admitted decisions would be denied by the candidate policy\n", rep.Totals.AdmitToDeny)
		return errDenied
	}
	return err
}

// serverReplay asks the server to replay, printing its progress.
func serverReplay(ctx context.Context, cf clientFlags, req api.ReplayRequest, progress func(replay.Progress), stderr io.Writer) (*replay.Report, error) {
	c, err := cf.client(stderr)
	if err != nil {
		return nil, err
	}
	var rep *replay.Report
	err = c.Lines(ctx, "/api/v1/policy/replay", req, func(line []byte) error {
		var msg struct {
			Progress *replay.Progress `json:"progress"`
			Report   *replay.Report   `json:"report"`
			Error    *struct {
				Title, Detail string
			} `json:"error"`
		}
		if err := json.Unmarshal(line, &msg); err != nil {
			return fmt.Errorf("replay answer: %w", err)
		}
		switch {
		case msg.Progress != nil:
			progress(*msg.Progress)
		case msg.Report != nil:
			rep = msg.Report
		case msg.Error != nil:
			return fmt.Errorf("replay failed: %s: %s", msg.Error.Title, msg.Error.Detail)
		}
		return nil
	})
	return rep, err
}

// localReplay replays here, on the store opened read-only, with the
// environments and the policy in use of the server's configuration.
func localReplay(ctx context.Context, req api.ReplayRequest, configFile, dataDir, databaseURL string, progress func(replay.Progress)) (replay.Report, error) {
	opts, err := req.Options(time.Now())
	if err != nil {
		return replay.Report{}, err
	}
	opts.Progress = progress
	args := []string{"--data-dir", dataDir}
	if configFile != "" {
		args = append(args, "--config", configFile)
	}
	if databaseURL != "" {
		args = append(args, "--database-url", databaseURL)
	}
	cfg, err := loadConfig(args, os.Getenv)
	if err != nil {
		return replay.Report{}, err
	}
	envs, _ := cfg.environments() // validated by loadConfig
	st, err := openReadOnlyStore(ctx, cfg.DataDir, cfg.DatabaseURL)
	if err != nil {
		return replay.Report{}, err
	}
	defer st.Close()
	quiet := slog.New(slog.DiscardHandler)
	current, err := policy.New(ctx, policy.Config{Builtin: vrego.FS, Dir: cfg.PolicyDir, Logger: quiet})
	if err != nil {
		return replay.Report{}, fmt.Errorf("the policy in use (policy_dir %s): %w", cfg.PolicyDir, err)
	}
	hook, err := webhook.New(webhook.Config{Policy: current, Evidence: st, Journal: readOnlyJournal{}, Environments: envs, Logger: quiet})
	if err != nil {
		return replay.Report{}, err
	}
	r := &replay.Replayer{Journal: st, Evidence: st, Webhook: hook, Current: current, Builtin: vrego.FS, Environments: envs.Names()}
	cand, err := r.Candidate(ctx, req.Modules)
	if err != nil {
		return replay.Report{}, err
	}
	return r.Replay(ctx, cand, opts)
}

// readOnlyJournal refuses appends: a local replay records nothing.
type readOnlyJournal struct{}

func (readOnlyJournal) Append(context.Context, journal.Entry) (journal.Appended, error) {
	return journal.Appended{}, errors.New("a replay records nothing")
}

var changeLabel = map[string]string{replay.AdmitToDeny: "admit→deny", replay.DenyToAdmit: "deny→admit"}

// printReplay prints a replay report for people.
func printReplay(w io.Writer, rep replay.Report) {
	t := rep.Totals
	envs := "all environments"
	if rep.Environment != "" {
		envs = rep.Environment
	}
	fmt.Fprintf(w, "Replayed %d of %d admission decisions in %s, %s to %s, with policy %s (in use: %s).\n\n",
		t.Replayed, t.Decisions, envs, rep.Since.Format(time.RFC3339), rep.Until.Format(time.RFC3339), short(rep.PolicyVersion), short(rep.CurrentPolicyVersion))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  unchanged\t%d\t", t.Unchanged)
	if t.ReasonsChanged > 0 {
		fmt.Fprintf(tw, "(%d still denied, for other reasons)", t.ReasonsChanged)
	}
	fmt.Fprintf(tw, "\n  admit→deny\t%d\t\n  deny→admit\t%d\t", t.AdmitToDeny, t.DenyToAdmit)
	if t.AlreadyFlipped > 0 {
		fmt.Fprintf(tw, "(%d of the flips the policy in use makes too: not the candidate's doing)", t.AlreadyFlipped)
	}
	fmt.Fprintf(tw, "\n  skipped\t%d\t\n", t.Skipped)
	for _, s := range rep.Skips {
		fmt.Fprintf(tw, "  \t%d\t%s\n", s.Count, s.Reason)
	}
	tw.Flush()
	if rep.Truncated {
		fmt.Fprintf(w, "\nOnly the first %d decisions were replayed (--limit); continue with --since %s.\n", t.Decisions, rep.ResumeSince.Format(time.RFC3339Nano))
	}
	if len(rep.Rules) == 0 {
		fmt.Fprintln(w, "\nNo decision would flip.")
		return
	}
	fmt.Fprintln(w, "\nBy rule:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANGE\tRULE\tREQUIREMENT\tDECISIONS")
	for _, g := range rep.Rules {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", changeLabel[g.Change], g.Rule, g.Requirement, g.Decisions)
	}
	tw.Flush()
	for _, g := range rep.Rules {
		fmt.Fprintf(w, "\n%s %s, e.g.:\n", changeLabel[g.Change], g.Rule)
		for _, ex := range g.Examples {
			printExample(w, ex)
		}
	}
	fmt.Fprintln(w, "\nBy workload:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENVIRONMENT\tNAMESPACE\tWORKLOAD\tADMIT→DENY\tDENY→ADMIT")
	for _, g := range rep.Workloads {
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%d\t%d\n", g.Environment, g.Namespace, g.Kind, g.Name, g.AdmitToDeny, g.DenyToAdmit)
	}
	tw.Flush()
	if rep.WorkloadsOmitted > 0 {
		fmt.Fprintf(w, "… and %d more workloads (-o json lists the first %d).\n", rep.WorkloadsOmitted, len(rep.Workloads))
	}
}

func printExample(w io.Writer, ex replay.Example) {
	note := ""
	if ex.AlreadyFlipped {
		note = " (the policy in use decides so too)"
	}
	fmt.Fprintf(w, "  journal %d, %s, %s %s/%s by %s (uid %s)%s\n", ex.Index, ex.Time.Format(time.RFC3339), ex.Kind, ex.Namespace, ex.Name, ex.User, ex.UID, note)
	outcome(w, "was", ex.Before)
	outcome(w, "now", ex.After)
}

// outcome prints a decision's messages, or that it admitted.
func outcome(w io.Writer, when string, messages []string) {
	if len(messages) == 0 {
		fmt.Fprintf(w, "      %s admitted\n", when)
	}
	for _, m := range messages {
		fmt.Fprintf(w, "      %s denied: %s\n", when, m)
	}
}
