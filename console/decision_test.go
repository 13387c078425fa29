package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/policy"
	"github.com/vouch-dev/vouch/webhook"
)

// TestDecisionExplained opens admission entries and checks that each says
// why it was allowed or denied: the verdict, what the environment required
// as the journal held it then, and for each image the evidence the decision
// used, citing entries — not evidence recorded after it.
func TestDecisionExplained(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	svc := evidence.NewService(f.appender, []string{"prod", "staging"}, nil)
	appendEntry := func(e journal.Entry) uint64 {
		t.Helper()
		res, err := f.appender.Append(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		return res.Index
	}
	journalPolicy := func(envs ...policy.Environment) uint64 {
		st := policy.State{Version: "sha256:" + strings.Repeat("c", 64), Files: map[string]string{"builtin": "sha256:1"}, Modes: map[string]string{}}
		if envs != nil {
			st.Environments = map[string]policy.Environment{}
		}
		for _, e := range envs {
			st.Modes[e.Name], st.Environments[e.Name] = e.EffectiveMode(), e
		}
		change, _ := policy.Compare(nil, st)
		body, _ := json.Marshal(change)
		return appendEntry(journal.Entry{Kind: policy.KindPolicy, Key: fmt.Sprintf("policy:%d", time.Now().UnixNano()), Body: body})
	}
	admit := func(rec webhook.Record) uint64 {
		rec.Operation, rec.Kind, rec.Namespace, rec.Name, rec.User = "CREATE", "Deployment", "prod", "web", "alice@example.com"
		rec.Environment, rec.PolicyVersion = "prod", "sha256:"+strings.Repeat("c", 64)
		body, _ := json.Marshal(rec)
		return appendEntry(journal.Entry{Kind: journal.KindAdmission, Environment: "prod", Key: "admission:" + rec.UID, Body: body})
	}
	get := func(i uint64) string {
		t.Helper()
		c := f.client()
		f.signIn(c, "auditor", "/")
		resp, body := f.get(c, fmt.Sprintf("/journal/entries/%d", i))
		if resp.StatusCode != 200 {
			t.Fatalf("GET entry %d = %d:\n%s", i, resp.StatusCode, body)
		}
		return body
	}
	check := func(name, body string, contains, absent []string) {
		t.Helper()
		for _, s := range contains {
			if !strings.Contains(body, s) {
				t.Errorf("%s: page lacks %q", name, s)
			}
		}
		for _, s := range absent {
			if strings.Contains(body, s) {
				t.Errorf("%s: page has %q", name, s)
			}
		}
	}

	prod := policy.Environment{Name: "prod", Allow: []string{"registry.k8s.io/pause"},
		Require: policy.Requirements{Digest: true, Provenance: true, Source: true, Attestations: []string{"unit-tests"}, VerifiedAttestations: []string{"unit-tests"},
			Approval: true, FourEyes: true, MaxAge: map[string]policy.Duration{"security-scan": policy.Duration(time.Nanosecond), "pen-test": policy.Duration(time.Hour),
				"sbom": policy.Duration(24 * time.Hour)},
			CodeReview:    &policy.CodeReview{Attestation: "code-review", MinApprovals: 2},
			ChangeRequest: &policy.ChangeRequest{Attestation: "change-request", States: []string{"scheduled", "implement"}, MatchConfigurationItem: true}}}
	policyIdx := journalPolicy(policy.BuiltinDefault("default"), prod)

	digest := "sha256:" + strings.Repeat("3c", 32)
	art, _, err := svc.ReportArtifact(ctx, "ci", evidence.ArtifactReport{Name: "registry.example.com/shop/web", Digest: digest,
		Repository: "github.com/shop/web", GitCommit: strings.Repeat("a", 40), Author: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	passed, failed := true, false
	attest := func(name string, ok *bool) evidence.Attestation {
		a, _, err := svc.Attest(ctx, "ci", evidence.AttestationReport{Digest: digest, Name: name, Type: "junit", Passed: ok})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	firstRun, rerun, scan := attest("unit-tests", &failed), attest("unit-tests", &passed), attest("security-scan", &passed)
	// Keyless, signed 30 days ago and reported now: 30 days old.
	signedAt := time.Now().Add(-30 * 24 * time.Hour).UTC()
	sbom, _, err := svc.Attest(ctx, "ci", evidence.AttestationReport{Digest: digest, Name: "sbom", Type: "in-toto", Passed: &passed, Verified: true, KeyID: "ci-workflow", SignedAt: &signedAt})
	if err != nil {
		t.Fatal(err)
	}
	review, _, err := svc.Attest(ctx, "ci", evidence.AttestationReport{Digest: digest, Name: "code-review", Type: evidence.TypePullRequest, Passed: &passed,
		Payload: json.RawMessage(`{"approvals":1,"repository":"shop/web","merged_into":"main","commit":"` + strings.Repeat("a", 40) + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	window := fmt.Sprintf(`"planned_start":%q,"planned_end":%q`, time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	change, _, err := svc.Attest(ctx, "ci", evidence.AttestationReport{Digest: digest, Name: "change-request", Type: evidence.TypeChangeRequest, Passed: &passed,
		Verified: true, KeyID: "change:servicenow", Payload: json.RawMessage(`{"number":"CHG0030001","state":"implement","approval":"approved",` + window + `,"configuration_items":["Payments API","payments-db"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	approval, err := svc.Approve(ctx, "release-manager", evidence.ApprovalRequest{Digest: digest, Environment: "prod", Decision: evidence.Approved,
		Reason: "CAB-7", ApproverIdentities: []string{"bob@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	images := []webhook.RecordImage{
		{Container: "web", ContainerType: "container", Image: "registry.example.com/shop/web@" + digest, Digest: digest},
		{Container: "pause", ContainerType: "init", Image: "registry.k8s.io/pause:3.10", Allowed: true},
	}
	allowed := admit(webhook.Record{UID: "uid-allowed", Images: images, Allowed: true, ConfigurationItem: "payments api",
		Evidence: []uint64{art.ID, firstRun.ID, rerun.ID, scan.ID, sbom.ID, review.ID, change.ID, approval.ID}})
	later := attest("unit-tests", &failed) // after the decision: not what it saw

	body := get(allowed)
	check("allowed", body, []string{
		"Admission decision: <span class=\"badge ok\">Allowed: the policy denied nothing</span>",
		"alice@example.com asked to create Deployment <strong>prod/web</strong>",
		fmt.Sprintf(`journaled in entry <a href="/journal/entries/%d">%d</a>`, policyIdx, policyIdx),
		"<li>images pinned by digest</li>", "<li>source: the build report names its repository and commit</li>",
		"Source</td>\n    <td>required</td>\n    <td><span class=\"badge ok\">named</span></td>\n    <td>github.com/shop/web at " + strings.Repeat("a", 40), "<li>a release approval for prod in force: approved, unexpired, not followed by a rejection</li>",
		"<li>four eyes: the approver is not the commit&#39;s author</li>", "registry.k8s.io/pause (allow-list)",
		"<li>code review: merged through a pull or merge request approved by at least 2 person(s) other than its author (code-review)</li>",
		"<li>change request: an approved change request (change-request) in state scheduled or implement, read by Vouch from the change system, whose planned window holds the time of the change, and which is for the configuration item the namespace, or else the workload, names (vouch.dev/configuration-item)</li>",
		"Change request</td>\n    <td>required, approved, scheduled or implement, for the configuration item named</td>\n    <td><span class=\"badge ok\">in window</span></td>\n    <td>CHG0030001, implement, approval approved, window ",
		"; for Payments API, payments-db; the workload names &#34;payments api&#34;",
		"Code review</td>\n    <td>required, 2 approval(s)</td>\n    <td><span class=\"badge bad\">too few</span></td>\n    <td>1 approval(s) by people other than the author, reported by ci at ",
		"registry.example.com/shop/web built from github.com/shop/web at commit " + strings.Repeat("a", 40) + " by alice@example.com; reported by ci at ",
		"latest report: passed, unsigned, by ci", "1 earlier report(s) superseded",
		fmt.Sprintf(`<a href="/journal/entries/%d">%d</a>`, rerun.ID, rerun.ID),
		"Attestation security-scan</td>\n    <td>required, at most 1ns old</td>\n    <td><span class=\"badge bad\">too old</span>",
		"Attestation pen-test</td>\n    <td>required, at most 1h0m0s old</td>\n    <td><span class=\"badge bad\">none</span>",
		"Attestation sbom</td>\n    <td>required, at most 24h0m0s old</td>\n    <td><span class=\"badge bad\">too old</span>",
		"latest report: passed, signed by ci-workflow, by ci at ", ", signed at " + signedAt.Format("2006-01-02") + " ",
		"Attestation unit-tests</td>\n    <td>required, signed</td>",
		"approved by release-manager (bob@example.com)", ": CAB-7", "two people", "approved by release-manager (bob@example.com); commit by alice@example.com",
		`<span class="badge warn">allow-listed</span>`,
		"<h2>Journal entry " + fmt.Sprint(allowed) + ", as recorded</h2>", "<h3>init container pause:", "<h3>container web:",
	}, []string{
		fmt.Sprintf(`<a href="/journal/entries/%d">%d</a>`, later.ID, later.ID),
		"not recorded", "does not hold everything",
	})

	if n := strings.Count(body, "Attestation unit-tests</td>"); n != 1 {
		t.Errorf("unit-tests, required and signed, has %d rows, want 1", n)
	}

	// The change request is not for the configuration item named, none is
	// named, or the workload names another than its namespace.
	ns := func(ci string) map[string]string { return map[string]string{policy.ConfigurationItemAnnotation: ci} }
	for _, tc := range []struct {
		workload     string
		namespace    map[string]string
		badge, named string
	}{
		{"Ledger", nil, "for another CI", "the workload names &#34;Ledger&#34;"},
		{"", nil, "no CI named", "names none (vouch.dev/configuration-item)"},
		{"", ns("Ledger"), "for another CI", "the namespace names &#34;Ledger&#34;"},
		{"payments-db", ns("Payments API"), "not the namespace&#39;s CI", "the namespace names &#34;Payments API&#34;, the workload &#34;payments-db&#34;"},
		{"", ns("PAYMENTS API"), "in window", "the namespace names &#34;PAYMENTS API&#34;"},
	} {
		body := get(admit(webhook.Record{UID: "uid-ci-" + tc.badge + tc.workload, Images: images[:1], ConfigurationItem: tc.workload, NamespaceAnnotations: tc.namespace,
			Evidence: []uint64{art.ID, change.ID}}))
		state := map[bool]string{true: "ok", false: "bad"}[tc.badge == "in window"]
		check(tc.badge, body, []string{"<span class=\"badge " + state + "\">" + tc.badge + "</span>", "; for Payments API, payments-db; " + tc.named}, nil)
	}

	// A denial, under a policy entry journaled before Vouch recorded
	// environment definitions, citing an entry that is no evidence.
	journalPolicy()
	denied := admit(webhook.Record{UID: "uid-denied", Images: images[:1], Messages: []string{`container "web": image … was approved only by release-manager, who wrote commit aaaa it was built from`},
		Evidence: []uint64{art.ID, allowed}})
	body = get(denied)
	check("denied", body, []string{
		`<span class="badge bad">Denied</span>`, "Why it was denied", "was approved only by release-manager",
		"predates the journaling of environment definitions: what prod required is not recorded",
		fmt.Sprintf("entry %d, cited as evidence, is of kind admission", allowed),
		"no approval for prod was recorded",
	}, []string{"<li>images pinned by digest</li>", "<th scope=\"col\">In prod</th>"})

	// Warn mode: admitted although the policy denied.
	warned := admit(webhook.Record{UID: "uid-warn", Images: images[:1], Allowed: true, Mode: policy.ModeWarn, PolicyDenied: true,
		Messages: []string{"has no release approval for prod"}, Evidence: []uint64{art.ID}})
	check("warn", get(warned), []string{"Admitted in warn mode, although the policy denied it", "What the policy denied"}, nil)

	// Other entries are shown as before.
	check("evidence entry", get(art.ID), []string{fmt.Sprintf("Journal entry %d", art.ID)}, []string{"Admission decision"})
}
