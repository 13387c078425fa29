package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/evidence/change"
)

const attestChangeHelp = `Usage:
  vouch attest change NUMBER SUBJECT [--system NAME] [--name NAME] [--exit-code]

Has Vouch read change request NUMBER (CHG0030001) from the change system
in its configuration (change_systems: ServiceNow), with its own account,
and record it for the artifact as it stands now: its state, approval and
planned window. The attestation (type change-request) is verified — a
pipeline cannot write one — and passed when the change is approved.
Environments that require change_request admit the artifact only while
the change is approved, in an allowed state (default scheduled or
implement) and inside its window; read it again after it moves on.

SUBJECT is the artifact: --digest D (sha256:… or IMAGE@sha256:…), or
--file F, --dir D, --oci DIR [--oci-ref R].

--system names the change system when Vouch has several; --name is the
attestation's name (default change-request). --exit-code exits 1 when the
change is not approved.

Flags: --server (VOUCH_SERVER), --token (VOUCH_TOKEN; scope
evidence:write), -o table|json.

Example:
  vouch attest change CHG0030001 --digest "$DIGEST"
`

func attestChange(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("vouch attest change")
	var cf clientFlags
	cf.register(fs)
	var subj subject
	subj.register(fs, "file")
	system := fs.String("system", "", "the change system, when Vouch has several (change_systems)")
	name := fs.String("name", "change-request", "the attestation's name, as environments require it")
	exitCode := fs.Bool("exit-code", false, "exit 1 when the change is not approved")
	if err := parseFlagsHelp(fs, args, attestChangeHelp); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"attest change needs the change request's number, e.g. CHG0030001"}
	}
	number := fs.Arg(0)
	if !change.NumberRE.MatchString(number) {
		return usageError{fmt.Sprintf("%q is not a change number such as CHG0030001", number)}
	}
	c, err := cf.client(stderr)
	if err != nil {
		return err
	}
	digest, err := subj.resolve()
	if err != nil {
		return err
	}
	var a attestationAnswer
	code, err := c.Do(ctx, http.MethodPost, "/api/v1/changes", map[string]string{"digest": digest, "number": number, "system": *system, "name": *name}, &a.Attestation)
	if err != nil {
		return err
	}
	if err := answerFor("change request", digest, a.Digest); err != nil {
		return err
	}
	a.Created = code == http.StatusCreated
	if cf.output == "json" {
		err = writeJSON(stdout, a)
	} else {
		var ch change.Change
		json.Unmarshal(a.Payload, &ch)
		what := "recorded"
		if !a.Created {
			what = "already recorded"
		}
		cis := "no configuration item"
		if len(ch.ConfigurationItems) > 0 {
			cis = "for " + strings.Join(ch.ConfigurationItems, ", ")
		}
		fmt.Fprintf(stdout, "%s: %s %s (change-request, read by Vouch from %s) for %s: %s, %s, approval %s, %s, %s (journal entry %d)\n",
			what, passedWord(a.Passed), a.Name, strings.TrimPrefix(a.KeyID, "change:"), a.Digest, ch.Number, ch.State, ch.Approval, window(ch), cis, a.ID)
	}
	if err == nil && *exitCode && !a.Passed {
		return exitStatus(1)
	}
	return err
}

// window is a change's planned window in words.
func window(ch change.Change) string {
	if ch.PlannedStart.IsZero() {
		return "no planned window"
	}
	return fmt.Sprintf("window %s to %s", ch.PlannedStart.UTC().Format(time.RFC3339), ch.PlannedEnd.UTC().Format(time.RFC3339))
}
