package console

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/policy"
	"github.com/vouch-dev/vouch/webhook"
)

// explanation says in plain words why an admission was allowed or denied:
// the verdict, the environment's definition as the journal held it then,
// and for each image the evidence the decision used, each fact citing its
// journal entry. It shows what was recorded; the verdict is the policy's.
type explanation struct {
	Record   webhook.Record
	Headline string
	State    string // ok, bad or warn: the headline's badge
	// Policy is the policy entry in force; nil when the journal has none
	// before the decision.
	Policy *policyInForce
	// Defined is the environment's definition in words; nil when the
	// policy entry does not record it (journaled by an older Vouch).
	Defined []string
	Images  []imageFacts
	// Damaged lists what the decision cites that the journal does not
	// hold as evidence.
	Damaged []string
}

// policyInForce is the policy entry a decision was made under.
type policyInForce struct {
	Index   uint64
	Version string
	Env     *policy.Environment
}

// imageFacts is one image of a decision and what the journal held about it.
type imageFacts struct {
	policy.ArtifactInput
	Exemption uint64
	Rows      []factRow
}

// factRow is one requirement, or one piece of evidence no requirement
// names, with what the decision had for it.
type factRow struct {
	What     string
	Required string // "required", "not required", or "" when the definition is not recorded
	Fact     string
	State    string // ok, bad, warn or "": the fact's badge
	Badge    string
	Entries  []uint64
}

// MaxExplainedEvidence bounds the evidence entries an explanation reads.
const MaxExplainedEvidence = 1000

// explain builds the explanation of admission entry e.
func (c *Console) explain(ctx context.Context, e journal.Entry) (*explanation, error) {
	var rec webhook.Record
	if err := json.Unmarshal(e.Body, &rec); err != nil {
		return nil, fmt.Errorf("decode admission entry %d: %w", e.Index, err)
	}
	x := &explanation{Record: rec}
	x.Headline, x.State = verdict(rec)
	found, damaged, err := c.evidenceAt(ctx, rec.Evidence)
	if err != nil {
		return nil, err
	}
	x.Damaged = damaged
	if x.Policy, err = c.policyAt(ctx, e.Index, rec); err != nil {
		return nil, err
	}
	var env *policy.Environment
	if x.Policy != nil {
		env = x.Policy.Env
	}
	if env != nil {
		x.Defined = definition(*env)
	}
	for i, a := range rec.Artifacts(found, e.Time) {
		x.Images = append(x.Images, imageFacts{ArtifactInput: a, Exemption: rec.Images[i].Exemption, Rows: rows(a, env, rec, e.Time)})
	}
	return x, nil
}

// verdict is the decision's outcome in words, with its badge.
func verdict(rec webhook.Record) (string, string) {
	mode := cmp.Or(rec.Mode, policy.ModeEnforce)
	switch {
	case rec.Error != "" && rec.Allowed:
		return fmt.Sprintf("Admitted without a decision: Vouch could not decide, and %s is in %s mode", rec.Environment, mode), "warn"
	case rec.Error != "":
		return "Refused: Vouch could not decide", "bad"
	case rec.BreakGlass != "":
		return "Admitted by break-glass, whatever the policy said", "warn"
	case rec.PolicyDenied:
		return fmt.Sprintf("Admitted in %s mode, although the policy denied it", mode), "warn"
	case rec.Allowed:
		return "Allowed: the policy denied nothing", "ok"
	}
	return "Denied", "bad"
}

// evidenceAt reads the evidence entries a decision names, by digest, in
// journal order; damaged says which of them are not evidence.
func (c *Console) evidenceAt(ctx context.Context, ids []uint64) (map[string]evidence.Evidence, []string, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	var damaged []string
	if len(ids) > MaxExplainedEvidence {
		damaged = append(damaged, fmt.Sprintf("the decision names %d evidence entries; the first %d are shown", len(ids), MaxExplainedEvidence))
		ids = ids[:MaxExplainedEvidence]
	}
	found := map[string]evidence.Evidence{}
	for len(ids) > 0 {
		n := 1 // a run of consecutive indices is one read
		for n < len(ids) && n < journal.MaxLimit && ids[n] == ids[0]+uint64(n) {
			n++
		}
		leaves, err := c.cfg.Journal.Leaves(ctx, ids[0], n)
		if err != nil {
			return nil, nil, err
		}
		for _, i := range ids[:n] {
			k := slices.IndexFunc(leaves, func(l journal.Leaf) bool { return l.Index == i })
			if k < 0 {
				damaged = append(damaged, fmt.Sprintf("entry %d, cited as evidence, is not in the journal", i))
				continue
			}
			if msg := addEntry(found, i, leaves[k].Data); msg != "" {
				damaged = append(damaged, msg)
			}
		}
		ids = ids[n:]
	}
	return found, damaged, nil
}

// addEntry adds evidence leaf i to found; it says what is wrong when the
// leaf is not an evidence record.
func addEntry(found map[string]evidence.Evidence, i uint64, data []byte) string {
	e, err := journal.ParseLeaf(i, data)
	if err != nil {
		return fmt.Sprintf("entry %d, cited as evidence, cannot be read: %v", i, err)
	}
	d := evidence.EntryDigest(e)
	ev := found[d]
	ev.Digest = d
	switch e.Kind {
	case evidence.KindArtifact:
		var a evidence.Artifact
		err = evidence.DecodeEntry(e, &a)
		ev.Artifact = &a
	case evidence.KindAttestation:
		var a evidence.Attestation
		err = evidence.DecodeEntry(e, &a)
		ev.Attestations = append(ev.Attestations, a)
	case evidence.KindApproval:
		var a evidence.Approval
		err = evidence.DecodeEntry(e, &a)
		ev.Approvals = append(ev.Approvals, a)
	default:
		return fmt.Sprintf("entry %d, cited as evidence, is of kind %s", i, e.Kind)
	}
	if err != nil {
		return fmt.Sprintf("entry %d, cited as evidence, cannot be read: %v", i, err)
	}
	found[d] = ev
	return ""
}

// policyAt finds the policy entry a decision at index was made under: the
// latest before it of the decision's policy version, else the latest
// before it. Policy entries are few: one per change.
func (c *Console) policyAt(ctx context.Context, index uint64, rec webhook.Record) (*policyInForce, error) {
	var best, latest *journal.Entry
	for from := uint64(0); from < index; {
		page, err := c.cfg.Journal.Entries(ctx, journal.Query{From: from, Limit: journal.MaxLimit, Kind: policy.KindPolicy})
		if err != nil {
			return nil, err
		}
		for i := range page {
			if page[i].Index >= index {
				break
			}
			latest = &page[i]
			var v struct {
				Version string `json:"version"`
			}
			if json.Unmarshal(page[i].Body, &v) == nil && v.Version == rec.PolicyVersion {
				best = &page[i]
			}
		}
		if len(page) < journal.MaxLimit {
			break
		}
		from = page[len(page)-1].Index + 1
	}
	if best == nil {
		best = latest
	}
	if best == nil {
		return nil, nil
	}
	var st policy.State
	if err := json.Unmarshal(best.Body, &st); err != nil {
		return nil, fmt.Errorf("decode policy entry %d: %w", best.Index, err)
	}
	p := &policyInForce{Index: best.Index, Version: st.Version}
	if env, ok := st.Environments[rec.Environment]; ok {
		p.Env = &env
	}
	return p, nil
}

// definition is an environment's definition in words.
func definition(env policy.Environment) []string {
	r := env.Require
	var out []string
	add := func(ok bool, s string, args ...any) {
		if ok {
			out = append(out, fmt.Sprintf(s, args...))
		}
	}
	add(r.Digest, "images pinned by digest")
	add(len(r.Registries) > 0, "images from %s", strings.Join(r.Registries, ", "))
	add(r.NoLatest, "no image tagged :latest")
	add(r.Provenance, "provenance: a build of the digest reported by CI")
	add(r.Source, "source: the build report names its repository and commit")
	add(len(r.Attestations) > 0, "attestations whose latest report passed: %s", strings.Join(r.Attestations, ", "))
	add(len(r.VerifiedAttestations) > 0, "attestations whose latest report passed and is signed by a trusted key: %s", strings.Join(r.VerifiedAttestations, ", "))
	for _, name := range slices.Sorted(maps.Keys(r.MaxAge)) {
		add(true, "%s reported (or, keyless, signed) at most %s before the change", name, time.Duration(r.MaxAge[name]))
	}
	add(r.Approval, "a release approval for %s in force: approved, unexpired, not followed by a rejection", env.Name)
	add(r.FourEyes, "four eyes: the approver is not the commit's author")
	if cr := r.CodeReview; cr != nil {
		into := ""
		if len(cr.Branches) > 0 {
			into = " into " + strings.Join(cr.Branches, " or ")
		}
		by := ""
		if cr.Verified {
			by = ", as Vouch read it from the forge"
		}
		add(true, "code review: merged%s through a pull or merge request approved by at least %d person(s) other than its author (%s%s)", into, cr.MinApprovals, cr.Attestation, by)
	}
	if c := r.ChangeRequest; c != nil {
		forCI := ""
		if c.MatchConfigurationItem {
			forCI = ", and which is for the configuration item the namespace, or else the workload, names (" + policy.ConfigurationItemAnnotation + ")"
		}
		add(true, "change request: an approved change request (%s) in state %s, read by Vouch from the change system, whose planned window holds the time of the change%s", c.Attestation, strings.Join(c.States, " or "), forCI)
	}
	add(len(env.Allow) > 0, "exempt from these: images named %s (allow-list)", strings.Join(env.Allow, ", "))
	for _, f := range env.Freeze {
		add(true, "change freeze: %s", f.Reason)
	}
	add(env.BreakGlass, "break-glass honoured (vouch.dev/break-glass)")
	add(len(out) == 0, "nothing: every image is admitted")
	return out
}

// rows lists, for one image, each requirement with what the decision had
// for it, then the attestations no requirement names. env is nil when the
// definition is not recorded; rec is the decision.
func rows(a policy.ArtifactInput, env *policy.Environment, rec webhook.Record, at time.Time) []factRow {
	if a.Allowed {
		return nil
	}
	var req policy.Requirements
	required := func(ok bool) string {
		switch {
		case env == nil:
			return ""
		case ok:
			return "required"
		}
		return "not required"
	}
	if env != nil {
		req = env.Require
	}
	var out []factRow
	if a.Digest != "" {
		out = append(out, factRow{What: "Pinned by digest", Required: required(req.Digest), Fact: a.Digest, State: "ok", Badge: "pinned"})
	} else {
		out = append(out, factRow{What: "Pinned by digest", Required: required(req.Digest), Fact: "tag " + cmp.Or(a.Tag, "(none)"), State: "bad", Badge: "not pinned"})
	}
	if len(req.Registries) > 0 {
		out = append(out, factRow{What: "Registry", Required: "one of " + strings.Join(req.Registries, ", "), Fact: a.Name})
	}
	if p := a.Provenance; p != nil {
		fact := cmp.Or(p.Name, a.Name)
		if p.Repository != "" || p.GitCommit != "" {
			fact += fmt.Sprintf(" built from %s at commit %s", cmp.Or(p.Repository, "(repository not reported)"), cmp.Or(p.GitCommit, "(not reported)")) + byAuthor(p.Author)
		}
		fact += fmt.Sprintf("; reported by %s at %s", p.ReportedBy, formatTime(p.ReportedAt))
		if p.BuildURL != "" {
			fact += "; build " + p.BuildURL
		}
		out = append(out, factRow{What: "Provenance", Required: required(req.Provenance), Fact: fact, State: "ok", Badge: "reported", Entries: []uint64{p.ID}})
	} else {
		out = append(out, factRow{What: "Provenance", Required: required(req.Provenance), Fact: "no build of this digest was reported", State: "bad", Badge: "none"})
	}
	if req.Source {
		row := factRow{What: "Source", Required: "required", Fact: "no build reported", State: "bad", Badge: "unknown"}
		if p := a.Provenance; p != nil && p.Repository != "" && p.GitCommit != "" {
			row.Fact, row.State, row.Badge, row.Entries = p.Repository+" at "+p.GitCommit, "ok", "named", []uint64{p.ID}
		} else if p != nil {
			row.Fact, row.Entries = "the build report does not name both its repository and its commit", []uint64{p.ID}
		}
		out = append(out, row)
	}
	// Each attestation name once: required, signed, of bounded age, or only reported.
	var names []string
	for _, name := range slices.Concat(req.Attestations, req.VerifiedAttestations, slices.Sorted(maps.Keys(req.MaxAge))) {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	for _, x := range a.Attestations {
		if !slices.Contains(names, x.Name) {
			names = append(names, x.Name)
		}
	}
	for _, name := range names {
		out = append(out, attestationRow(a, name, req, required, at))
	}
	if req.Approval || len(a.Approvals) > 0 || env == nil {
		out = append(out, approvalRow(a, rec.Environment, required(req.Approval)))
	}
	if req.FourEyes {
		out = append(out, fourEyesRow(a))
	}
	if req.CodeReview != nil {
		out = append(out, codeReviewRow(a, *req.CodeReview))
	}
	if req.ChangeRequest != nil {
		out = append(out, changeRequestRow(a, *req.ChangeRequest, rec, at))
	}
	return out
}

func byAuthor(author string) string {
	if author == "" {
		return ""
	}
	return " by " + author
}

// attestationRow says what the latest report of an attestation name was,
// and whether it was too old for the environment's max_age.
func attestationRow(a policy.ArtifactInput, name string, req policy.Requirements, required func(bool) string, at time.Time) factRow {
	signed := slices.Contains(req.VerifiedAttestations, name)
	maxAge, bounded := req.MaxAge[name]
	row := factRow{What: "Attestation " + name, Required: required(signed || bounded || slices.Contains(req.Attestations, name))}
	if signed {
		row.Required += ", signed"
	}
	if bounded {
		row.Required += ", at most " + time.Duration(maxAge).String() + " old"
	}
	x, ok := a.LatestAttestations[name]
	if !ok {
		row.Fact, row.State, row.Badge = "none reported", "bad", "none"
		return row
	}
	row.State, row.Badge = "ok", "passed"
	if !x.Passed {
		row.State, row.Badge = "bad", "failed"
	}
	sig := "unsigned"
	if from, ok := evidence.ReadByVouch(x.KeyID); ok {
		sig = "read by Vouch from " + from + ", not signed"
	} else if x.Verified {
		sig = "signed by " + x.KeyID
	}
	row.Fact = fmt.Sprintf("latest report: %s, %s, by %s at %s (%s before the change)", row.Badge, sig, x.ReportedBy, formatTime(x.ReportedAt), at.Sub(x.ReportedAt).Round(time.Second))
	made := x.MadeAt()
	if !made.Equal(x.ReportedAt) {
		row.Fact += fmt.Sprintf(", signed at %s (%s before)", formatTime(made), at.Sub(made).Round(time.Second))
	}
	if bounded && at.Sub(made) > time.Duration(maxAge) {
		row.State, row.Badge = "bad", "too old"
	}
	row.Entries = []uint64{x.ID}
	if earlier := countName(a.Attestations, name) - 1; earlier > 0 {
		row.Fact += fmt.Sprintf("; %d earlier report(s) superseded", earlier)
	}
	return row
}

func countName(xs []policy.AttestationInput, name string) int {
	n := 0
	for _, x := range xs {
		if x.Name == name {
			n++
		}
	}
	return n
}

// approvalRow says which approval was in force, or what the last one was.
func approvalRow(a policy.ArtifactInput, env, required string) factRow {
	row := factRow{What: "Release approval for " + env, Required: required}
	if p := a.Approval; p != nil {
		row.State, row.Badge, row.Entries = "ok", "in force", []uint64{p.ID}
		row.Fact = "approved by " + approver(*p) + " at " + formatTime(p.ApprovedAt)
		if p.ExpiresAt != nil {
			row.Fact += ", until " + formatTime(*p.ExpiresAt)
		}
		if p.Reason != "" {
			row.Fact += ": " + p.Reason
		}
		if p.Emergency {
			row.Fact += " (emergency)"
		}
		return row
	}
	row.State, row.Badge = "bad", "none in force"
	if len(a.Approvals) == 0 {
		row.Fact = "no approval for " + env + " was recorded"
		return row
	}
	last := a.Approvals[len(a.Approvals)-1]
	row.Fact = fmt.Sprintf("the last, by %s at %s, was %s", approver(last), formatTime(last.ApprovedAt), last.Decision)
	if last.Decision == evidence.Approved && last.ExpiresAt != nil {
		row.Fact += " and expired at " + formatTime(*last.ExpiresAt)
	}
	for _, p := range a.Approvals {
		row.Entries = append(row.Entries, p.ID)
	}
	return row
}

func approver(p policy.ApprovalInput) string {
	if len(p.ApproverIdentities) == 0 {
		return p.Approver
	}
	return p.Approver + " (" + strings.Join(p.ApproverIdentities, ", ") + ")"
}

// codeReviewRow sets the latest code review beside the environment's
// requirement, as the code-review rule compares them.
func codeReviewRow(a policy.ArtifactInput, cr policy.CodeReview) factRow {
	row := factRow{What: "Code review", Required: fmt.Sprintf("required, %d approval(s)", cr.MinApprovals), State: "bad"}
	x, ok := a.LatestAttestations[cr.Attestation]
	if !ok {
		row.Fact, row.Badge = "no "+cr.Attestation+" attestation", "none"
		return row
	}
	row.Entries = []uint64{x.ID}
	reported := fmt.Sprintf(", reported by %s at %s", x.ReportedBy, formatTime(x.ReportedAt))
	approvals := fmt.Sprintf("%d approval(s) by people other than the author", x.Approvals)
	switch {
	case x.Type != policy.ReviewType:
		row.Fact, row.Badge = fmt.Sprintf("the latest %s is of type %s, not a review from the forge", cr.Attestation, x.Type), "not a review"
	case cr.Verified && !strings.HasPrefix(x.KeyID, "forge:"):
		row.Fact, row.Badge = "reported by the pipeline, not read by Vouch from the forge", "unverified"
	case x.ReviewProblem != "":
		row.Fact, row.Badge = x.ReviewProblem, "another build"
	case x.Approvals < cr.MinApprovals:
		row.Fact, row.Badge = approvals, "too few"
	case len(cr.Branches) > 0 && !slices.Contains(cr.Branches, x.MergedInto):
		row.Fact, row.Badge = approvals+", merged into "+x.MergedInto, "another branch"
	default:
		row.Fact, row.State, row.Badge = approvals+", merged into "+x.MergedInto, "ok", "reviewed"
	}
	row.Fact += reported
	return row
}

// changeRequestRow says what the change request rule (change_request.rego)
// found: the change, its state, approval, window at the time of the
// decision and, when they must match, its configuration items beside the
// one the namespace or workload of decision rec named.
func changeRequestRow(a policy.ArtifactInput, cr policy.ChangeRequest, rec webhook.Record, at time.Time) factRow {
	row := factRow{What: "Change request", Required: "required, approved, " + strings.Join(cr.States, " or "), State: "bad"}
	if cr.MatchConfigurationItem {
		row.Required += ", for the configuration item named"
	}
	x, ok := a.LatestAttestations[cr.Attestation]
	if !ok {
		row.Fact, row.Badge = "no "+cr.Attestation+" attestation", "none"
		return row
	}
	row.Entries = []uint64{x.ID}
	c := x.Change
	window := "no planned window"
	if !c.PlannedStart.IsZero() {
		window = "window " + formatTime(c.PlannedStart) + " to " + formatTime(c.PlannedEnd)
	}
	row.Fact = fmt.Sprintf("%s, %s, approval %s, %s; read by Vouch at %s", c.Number, c.State, c.Approval, window, formatTime(x.ReportedAt))
	cis := c.ConfigurationItems.List()
	// As change_request.rego: the namespace's configuration item decides,
	// else the workload's; names compare as Rego's lower() does.
	nsCI := strings.TrimSpace(rec.NamespaceAnnotations[policy.ConfigurationItemAnnotation])
	ci, whose := cmp.Or(nsCI, rec.ConfigurationItem), "the workload"
	if nsCI != "" {
		whose = "the namespace"
	}
	same := func(name string) bool { return strings.ToLower(name) == strings.ToLower(ci) }
	if cr.MatchConfigurationItem {
		named := "names none (" + policy.ConfigurationItemAnnotation + ")"
		if ci != "" {
			named = whose + " names " + strconv.Quote(ci)
		}
		if nsCI != "" && rec.ConfigurationItem != "" {
			named += ", the workload " + strconv.Quote(rec.ConfigurationItem)
		}
		row.Fact += fmt.Sprintf("; for %s; %s", cmp.Or(strings.Join(cis, ", "), "no configuration item"), named)
		if c.ConfigurationItemsProblem != "" {
			row.Fact += "; not all its affected CIs were read: " + c.ConfigurationItemsProblem
		}
	}
	switch {
	case !evidence.IsChangeReadByVouch(x.Type, x.KeyID, x.Verified):
		row.Fact, row.Badge = fmt.Sprintf("the latest %s is not a change request Vouch read from the change system, reported by %s", cr.Attestation, x.ReportedBy), "unverified"
	case c.Problem != "":
		row.Fact, row.Badge = c.Number+": "+c.Problem, "unreadable"
	case c.Approval != "approved":
		row.Badge = "not approved"
	case !slices.Contains(cr.States, c.State):
		row.Badge = c.State
	case c.PlannedStart.IsZero():
		row.Badge = "no window"
	case at.Before(c.PlannedStart):
		row.Badge = "window not open"
	case !at.Before(c.PlannedEnd):
		row.Badge = "window closed"
	case cr.MatchConfigurationItem && ci == "":
		row.Badge = "no CI named"
	case cr.MatchConfigurationItem && nsCI != "" && rec.ConfigurationItem != "" && !same(rec.ConfigurationItem):
		row.Badge = "not the namespace's CI"
	case cr.MatchConfigurationItem && !slices.ContainsFunc(cis, same):
		row.Badge = "for another CI"
	default:
		row.State, row.Badge = "ok", "in window"
	}
	return row
}

// fourEyesRow sets the approvers in force beside the commit's author, as
// the four-eyes rule compares them (identities in lower case).
func fourEyesRow(a policy.ArtifactInput) factRow {
	row := factRow{What: "Four eyes", Required: "required", State: "bad"}
	author := ""
	if a.Provenance != nil {
		author = strings.ToLower(a.Provenance.Author)
	}
	var named []policy.ApprovalInput
	for _, p := range a.ApprovalsInForce {
		if len(p.ApproverIdentities) > 0 {
			named = append(named, p)
		}
	}
	other := slices.IndexFunc(named, func(p policy.ApprovalInput) bool { return !slices.Contains(p.ApproverIdentities, author) })
	switch {
	case len(a.ApprovalsInForce) == 0:
		row.Fact, row.Badge = "no approval in force", "none"
	case author == "":
		row.Fact, row.Badge = "the build did not report the commit's author", "unknown author"
	case len(named) == 0:
		row.Fact, row.Badge = "the approvals in force are by tokens that name no person", "no identity"
	case other < 0:
		row.Fact, row.Badge = "approved only by the commit's author, "+author, "same person"
	default:
		row.Fact, row.State, row.Badge = "approved by "+approver(named[other])+"; commit by "+author, "ok", "two people"
		row.Entries = []uint64{named[other].ID}
	}
	return row
}
