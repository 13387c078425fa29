// Package webhook is Vouch's validating admission webhook: AdmissionReview
// in, AdmissionReview out.
//
// ServeHTTP handles the transport (method, content type, body size,
// decoding) and always answers with a valid AdmissionReview. Handle holds
// the decision: it extracts the workload's images, looks up their evidence,
// asks the policy engine, and journals the decision durably before
// answering. Dry-run requests are decided but not journaled, and a request
// retried with the same UID is answered from the journal.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/exempt"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/policy"
)

// Decider evaluates the admission policy.
type Decider interface {
	Decide(ctx context.Context, in *policy.Input, at time.Time) (policy.Decision, error)
}

// EvidenceLookup finds the evidence recorded for digests.
type EvidenceLookup interface {
	Lookup(ctx context.Context, digests []string) (map[string]evidence.Evidence, error)
}

// Appender appends a journal entry and waits until it is durable.
type Appender interface {
	Append(ctx context.Context, e journal.Entry) (journal.Appended, error)
}

// Observer is told about every answered review (for metrics).
type Observer interface {
	// ObserveAdmission is told each decision: one of the Decision values.
	ObserveAdmission(environment, decision string, dryRun bool, took time.Duration)
	// ObserveThrottled is told each review answered 429 at once because
	// MaxInFlight reviews were being decided.
	ObserveThrottled()
}

// The decisions an Observer is told. A change is refused on each but
// DecisionAllowed: by the policy (denied), because Vouch could not decide
// (error), or because it could not record its decision (unrecorded).
const (
	DecisionAllowed    = "allowed"
	DecisionDenied     = "denied"
	DecisionError      = "error"
	DecisionUnrecorded = "unrecorded"
)

// Config wires a Handler.
type Config struct {
	Policy   Decider
	Evidence EvidenceLookup
	// FreshEvidence, when set, is the store behind a caching Evidence: a
	// denial is decided again from it, so a stale cache entry can never
	// deny a change.
	FreshEvidence EvidenceLookup
	Journal       Appender
	Environments  *policy.Environments
	// ExemptNamespaces are never evaluated (kube-system, Vouch's own).
	ExemptNamespaces []string
	// MaxBodyBytes limits request bodies; DefaultMaxBodyBytes when 0.
	MaxBodyBytes int64
	// MaxInFlight limits the reviews read and decided at once;
	// DefaultMaxInFlight when 0. More are answered 429 at once.
	MaxInFlight int
	Logger      *slog.Logger
	Observer    Observer
	Now         func() time.Time
	// Exemptions, when set, admits the images exempted in an environment.
	Exemptions Exemptions
	// Alerts, when set, is told about break-glass admissions and
	// exemptions used (after they are journaled).
	Alerts Alerter
	// Namespaces, when set, gives decisions their namespace's labels and
	// vouch.dev/ annotations (input.namespace).
	Namespaces NamespaceLookup
}

// NamespaceLookup reads a namespace's labels and vouch.dev/ annotations; a
// namespace that does not exist has none.
type NamespaceLookup interface {
	Namespace(ctx context.Context, name string) (labels, annotations map[string]string, err error)
}

// Exemptions lists the exemptions in force.
type Exemptions interface {
	Active(env string, t time.Time) []exempt.Exemption
}

// Alerter raises alerts.
type Alerter interface {
	Alert(ctx context.Context, event string, rec Record, index uint64, summary string)
}

// DefaultMaxBodyBytes is the default request size limit: the apiserver's
// own limit for objects is 3 MiB, and a review can carry two of them.
const DefaultMaxBodyBytes = 7 << 20

// DefaultMaxInFlight bounds the memory many connections that each send a
// large body can take: far above what an apiserver sends at once (one
// review per change, each answered in milliseconds).
const DefaultMaxInFlight = 512

// Handler is the admission webhook.
type Handler struct {
	cfg      Config
	allow    map[string][]string // normalised allow-list per environment
	inFlight chan struct{}
}

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Policy == nil || cfg.Evidence == nil || cfg.Journal == nil || cfg.Environments == nil {
		return nil, errors.New("webhook: Policy, Evidence, Journal and Environments are required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{cfg: cfg, allow: map[string][]string{}, inFlight: make(chan struct{}, cfg.MaxInFlight)}
	for _, env := range cfg.Environments.All() {
		for _, p := range env.Allow {
			h.allow[env.Name] = append(h.allow[env.Name], normalizePattern(p))
		}
	}
	return h, nil
}

// Handle decides one admission request.
func (h *Handler) Handle(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	return h.handle(ctx, req, nil)
}

// decoded holds a request's object and old object when ServeHTTP decoded
// them along with the review; nil fields are decoded from the request.
type decoded struct{ object, old *object }

func (h *Handler) handle(ctx context.Context, req *admissionv1.AdmissionRequest, objs *decoded) *admissionv1.AdmissionResponse {
	start := h.cfg.Now()
	dryRun := req.DryRun != nil && *req.DryRun

	if skip := h.skipReason(req); skip != "" {
		if h.cfg.Logger.Enabled(ctx, slog.LevelDebug) {
			h.requestLogger(req, "").Debug("admitted without evaluation", "reason", skip)
		}
		return allowed(req.UID, nil)
	}
	env := h.cfg.Environments.For(req.Namespace)
	// The request's logger is made on first use: with info messages off,
	// most decisions log nothing.
	var logger *slog.Logger
	log := func() *slog.Logger {
		if logger == nil {
			logger = h.requestLogger(req, env.Name)
		}
		return logger
	}
	rec, err := h.decide(ctx, req, env, start, h.cfg.Evidence, objs)
	if err == nil && !rec.Allowed && h.cfg.FreshEvidence != nil {
		rec, err = h.decide(ctx, req, env, start, h.cfg.FreshEvidence, objs)
	}
	if err != nil {
		// Fail closed, and journal the refusal when the journal is up.
		rec.Allowed, rec.Error = false, err.Error()
		log().Error("could not decide; refusing the change", "error", err)
	}
	if settle(&rec, env.EffectiveMode()) {
		log().Warn("break-glass: admitted whatever the policy said", "reason", rec.BreakGlass, "messages", rec.Messages, "error", rec.Error)
	}
	if !dryRun {
		stored, index, retried, err := h.journal(ctx, rec, start)
		if err != nil {
			log().Error("could not journal the decision; refusing the change", "error", err)
			h.observe(env.Name, DecisionUnrecorded, dryRun, h.cfg.Now().Sub(start))
			return errored(req.UID, http.StatusInternalServerError,
				fmt.Errorf("vouch could not record the decision in its journal, so the change is refused: %w", err))
		}
		if retried {
			log().Info("retried request answered with the journaled decision")
		} else {
			h.alert(ctx, stored, index)
		}
		rec = stored
	}
	took := h.cfg.Now().Sub(start)
	decision := DecisionAllowed
	switch {
	case rec.Error != "" && !rec.Allowed:
		decision = DecisionError
	case !rec.Allowed:
		decision = DecisionDenied
	}
	h.observe(env.Name, decision, dryRun, took)
	if h.cfg.Logger.Enabled(ctx, slog.LevelInfo) {
		log().Info("admission decided", "allowed", rec.Allowed, "dry_run", dryRun, "images", len(rec.Images),
			"policy_version", rec.PolicyVersion, "duration_ms", float64(took.Microseconds())/1000)
	}
	switch {
	case decision == DecisionError:
		return errored(req.UID, http.StatusInternalServerError, fmt.Errorf("vouch could not decide, so the change is refused: %s", rec.Error))
	case decision == DecisionDenied:
		return denied(req.UID, rec.Messages, rec.Warnings)
	case rec.PolicyDenied && (rec.Mode == policy.ModeWarn || rec.BreakGlass != ""):
		return allowed(req.UID, warnWith(rec))
	}
	return allowed(req.UID, rec.Warnings)
}

// observe tells the Observer, if any, about an answered review.
func (h *Handler) observe(env, decision string, dryRun bool, took time.Duration) {
	if h.cfg.Observer != nil {
		h.cfg.Observer.ObserveAdmission(env, decision, dryRun, took)
	}
}

// requestLogger returns the logger with the request's attributes, and the
// environment's when env is set.
func (h *Handler) requestLogger(req *admissionv1.AdmissionRequest, env string) *slog.Logger {
	l := h.cfg.Logger.With("uid", req.UID, "operation", req.Operation, "kind", req.Kind.Kind,
		"namespace", req.Namespace, "name", req.Name, "user", req.UserInfo.Username)
	if env != "" {
		l = l.With("environment", env)
	}
	return l
}

// alert tells the Alerter about a break-glass admission and about the
// exemptions a decision used.
func (h *Handler) alert(ctx context.Context, rec Record, index uint64) {
	if h.cfg.Alerts == nil {
		return
	}
	if rec.BreakGlass != "" {
		h.cfg.Alerts.Alert(ctx, "break-glass", rec, index, fmt.Sprintf("%s %s/%s was admitted for %s with break-glass: %q", rec.Kind, rec.Namespace, rec.Name, rec.User, rec.BreakGlass))
	}
	for _, img := range rec.Images {
		if img.Exemption != 0 {
			h.cfg.Alerts.Alert(ctx, "exemption-used", rec, index, fmt.Sprintf("%s %s/%s: image %s admitted for %s by exemption %d", rec.Kind, rec.Namespace, rec.Name, img.Image, rec.User, img.Exemption))
		}
	}
}

// settle admits a denied (or undecided) change when break-glass was
// honoured, or in warn and audit mode, marking the record so the journal
// says what would have been refused. It reports whether break-glass let
// the change in.
func settle(rec *Record, mode string) (brokeGlass bool) {
	if mode != policy.ModeEnforce {
		rec.Mode = mode
	}
	if rec.Allowed || (rec.BreakGlass == "" && rec.Mode == "") {
		return false
	}
	rec.Allowed, rec.PolicyDenied = true, true
	return rec.BreakGlass != ""
}

// warnWith returns the warnings of a change admitted in warn mode: what
// would have been refused first, as kubectl prints them.
func warnWith(rec Record) []string {
	out := make([]string, 0, len(rec.Messages)+len(rec.Warnings)+1)
	if rec.Error != "" {
		out = append(out, fmt.Sprintf("vouch could not decide (%s); admitted because %s is in warn mode", rec.Error, rec.Environment))
	}
	prefix := "would be denied in enforce mode: "
	if rec.BreakGlass != "" {
		out = append(out, fmt.Sprintf("admitted with break-glass (%s); this is journaled and alerted", rec.BreakGlass))
		prefix = "would be denied: "
	}
	for _, m := range rec.Messages {
		out = append(out, prefix+m)
	}
	return append(out, rec.Warnings...)
}

// ErrUnknownEnvironment is returned by Assess for an environment the
// configuration does not define.
var ErrUnknownEnvironment = errors.New("unknown environment")

// Assess decides, as the webhook would now and without recording
// anything, whether a workload object of the given kind would be admitted
// in the named environment. It serves `vouch assert`, `vouch review` and
// continuous compliance.
func (h *Handler) Assess(ctx context.Context, environment, kind string, object []byte) (Record, error) {
	env, ok := h.cfg.Environments.Named(environment)
	if !ok {
		return Record{}, fmt.Errorf("%w %q (configured: %s)", ErrUnknownEnvironment, environment, strings.Join(h.cfg.Environments.Names(), ", "))
	}
	group, ok := workloadGroup(kind)
	if !ok {
		return Record{}, fmt.Errorf("kind %q is not a workload kind Vouch evaluates", kind)
	}
	var meta struct {
		Metadata struct{ Name, Namespace string } `json:"metadata"`
	}
	json.Unmarshal(object, &meta)
	req := &admissionv1.AdmissionRequest{
		UID: "assess", Kind: metav1.GroupVersionKind{Group: group, Version: "v1", Kind: kind}, Operation: admissionv1.Create,
		Namespace: meta.Metadata.Namespace, Name: meta.Metadata.Name, Object: runtime.RawExtension{Raw: object},
	}
	now := h.cfg.Now()
	rec, err := h.decide(ctx, req, env, now, h.cfg.Evidence, nil)
	if err == nil && !rec.Allowed && h.cfg.FreshEvidence != nil {
		rec, err = h.decide(ctx, req, env, now, h.cfg.FreshEvidence, nil)
	}
	return rec, err
}

// skipReason says why a request is admitted without evaluation, or "".
func (h *Handler) skipReason(req *admissionv1.AdmissionRequest) string {
	switch {
	case slices.Contains(h.cfg.ExemptNamespaces, req.Namespace):
		return "exempt namespace"
	case req.Operation != admissionv1.Create && req.Operation != admissionv1.Update:
		return "operation " + string(req.Operation)
	case !IsWorkload(req.Kind.Group, req.Kind.Kind):
		return "not a workload kind"
	case req.SubResource != "" && !(req.Kind.Kind == "Pod" && req.SubResource == "ephemeralcontainers"):
		return "subresource " + req.SubResource
	case req.SubResource == "" && workloadControllers[req.UserInfo.Username]:
		return "made by " + req.UserInfo.Username + " from its owner's template"
	}
	return ""
}

// workloadControllers are the kube-controller-manager's identities that
// create and update workloads from other workloads' templates: the
// ReplicaSets of a Deployment, the Pods of a ReplicaSet, StatefulSet,
// DaemonSet or Job, the Jobs of a CronJob. Their requests are not changes
// anyone made (the template they copy was evaluated when someone changed
// it): evaluating them would let a change freeze or an aged scan stop
// self-healing and autoscaling. Drift snapshots still check what runs.
// Only the apiserver sets a request's user; impersonating these needs the
// cluster-admin right to impersonate service accounts.
var workloadControllers = map[string]bool{
	"system:kube-controller-manager":                              true, // without --use-service-account-credentials
	"system:serviceaccount:kube-system:deployment-controller":     true,
	"system:serviceaccount:kube-system:replicaset-controller":     true,
	"system:serviceaccount:kube-system:replication-controller":    true,
	"system:serviceaccount:kube-system:statefulset-controller":    true,
	"system:serviceaccount:kube-system:daemon-set-controller":     true,
	"system:serviceaccount:kube-system:job-controller":            true,
	"system:serviceaccount:kube-system:cronjob-controller":        true,
	"system:serviceaccount:kube-system:generic-garbage-collector": true,
}

const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// decide builds the policy input and evaluates it, from the objects in
// objs when set. The record it returns is filled as far as the decision
// got, also on error.
func (h *Handler) decide(ctx context.Context, req *admissionv1.AdmissionRequest, env policy.Environment, at time.Time, lookup EvidenceLookup, objs *decoded) (Record, error) {
	rec := Record{
		UID: string(req.UID), Operation: string(req.Operation), APIVersion: groupVersion(req.Kind.Group, req.Kind.Version),
		Kind: req.Kind.Kind, SubResource: req.SubResource, Namespace: req.Namespace, Name: req.Name,
		User: req.UserInfo.Username, Environment: env.Name, Images: []RecordImage{}, Evidence: []uint64{},
	}
	var w Workload
	var err error
	if objs != nil && objs.object != nil {
		w, err = objs.object.workload(req.Kind.Kind)
	} else {
		w, err = ExtractWorkload(req.Kind.Kind, req.Object.Raw)
	}
	if err != nil {
		return rec, err
	}
	if rec.Name == "" {
		rec.Name = w.Name
	}
	rec.Groups, rec.Labels, rec.ConfigurationItem = req.UserInfo.Groups, w.Labels, w.ConfigurationItem
	if w.BreakGlass != "" {
		if env.BreakGlass {
			rec.BreakGlass = w.BreakGlass
		} else {
			rec.Warnings = append(rec.Warnings, fmt.Sprintf("the %s annotation is ignored: %s does not allow break-glass", BreakGlassAnnotation, env.Name))
		}
	}
	for k, v := range w.Annotations {
		if k == lastApplied {
			continue // the whole object again
		}
		if rec.Annotations == nil {
			rec.Annotations = map[string]string{}
		}
		rec.Annotations[k] = v
	}
	containers := w.Containers
	if req.SubResource == "ephemeralcontainers" {
		var old Workload
		if objs != nil && objs.old != nil {
			old, err = objs.old.workload(req.Kind.Kind)
		} else {
			old, err = ExtractWorkload(req.Kind.Kind, req.OldObject.Raw)
		}
		if err != nil {
			return rec, fmt.Errorf("old object: %w", err)
		}
		containers = addedEphemeral(w, old)
	}
	// After break-glass: a namespace Vouch cannot read is an error, which
	// break-glass admits as any other. Reported environments' namespaces
	// are another cluster's.
	if h.cfg.Namespaces != nil && req.Namespace != "" && h.cfg.Environments.Admitted(env.Name) {
		if rec.NamespaceLabels, rec.NamespaceAnnotations, err = h.cfg.Namespaces.Namespace(ctx, req.Namespace); err != nil {
			return rec, fmt.Errorf("namespace %s could not be read: %w", req.Namespace, err)
		}
	}

	in := recordInput(rec, env)
	in.Request.DryRun = req.DryRun != nil && *req.DryRun
	in.Workload.Annotations = nonNilMap(w.Annotations) // all of them; the record leaves last-applied out
	exemption := func(_ int, img Image) uint64 { return h.exemption(env.Name, img, at) }
	err = h.evaluate(ctx, h.cfg.Policy, &rec, in, containers, env, at, lookup, exemption)
	return rec, err
}

// evaluate completes a decision from its containers: it parses their
// images into rec and in, exempts those on the allow-list or with an
// exemption (by the index of the container and its image), adds the
// evidence lookup finds for the other digests, and fills rec with the
// outcome of p's decision as of time at. decide and Redecide share it.
func (h *Handler) evaluate(ctx context.Context, p Decider, rec *Record, in *policy.Input, containers []Container, env policy.Environment, at time.Time,
	lookup EvidenceLookup, exemption func(i int, img Image) uint64) error {
	in.Artifacts = make([]policy.ArtifactInput, 0, len(containers))
	var invalid []string
	var digests []string
	for i, c := range containers {
		img, err := parseImageCached(c.Image)
		rec.Images = append(rec.Images, RecordImage{Container: c.Name, ContainerType: c.Type, Image: c.Image, Digest: img.Digest})
		if err != nil {
			invalid = append(invalid, fmt.Sprintf("%s: %v", containerSubject(c), err))
			continue
		}
		a := policy.ArtifactInput{
			Container: c.Name, ContainerType: c.Type, Image: c.Image, Name: img.Name, Tag: img.Tag, Digest: img.Digest,
			Allowed: h.allowed(env, img.Name), Attestations: []policy.AttestationInput{}, Approvals: []policy.ApprovalInput{},
		}
		ri := &rec.Images[len(rec.Images)-1]
		if !a.Allowed {
			if id := exemption(i, img); id != 0 {
				a.Allowed, ri.Exemption = true, id
			}
		}
		ri.Allowed = a.Allowed
		in.Artifacts = append(in.Artifacts, a)
		if img.Digest != "" && !a.Allowed {
			digests = append(digests, img.Digest)
		}
	}
	if len(digests) > 0 {
		found, err := lookup.Lookup(ctx, digests)
		if err != nil {
			return fmt.Errorf("look up evidence: %w", err)
		}
		for i := range in.Artifacts {
			if ev, ok := found[in.Artifacts[i].Digest]; ok && !in.Artifacts[i].Allowed {
				addEvidence(&in.Artifacts[i], ev, env.Name)
			}
		}
	}
	rec.input = in
	d, err := p.Decide(ctx, in, at)
	rec.PolicyVersion = d.Version
	rec.Evidence = append(rec.Evidence, in.EvidenceIDs()...)
	if err != nil {
		return err
	}
	rec.Messages = append(invalid, d.Deny...)
	for _, m := range invalid {
		rec.Violations = append(rec.Violations, policy.Violation{Msg: m, Rule: "image", Requirement: "valid image reference"})
	}
	rec.Violations = append(rec.Violations, d.Violations...)
	rec.Warnings = append(rec.Warnings, d.Warn...)
	rec.Allowed = len(rec.Messages) == 0
	return nil
}

// exemption returns the id of an exemption in force for img in env, or 0.
func (h *Handler) exemption(env string, img Image, at time.Time) uint64 {
	if h.cfg.Exemptions == nil {
		return 0
	}
	for _, e := range h.cfg.Exemptions.Active(env, at) {
		if (e.Digest != "" && e.Digest == img.Digest) || (e.Image != "" && globMatch(normalizePattern(e.Image), img.Name)) {
			return e.ID
		}
	}
	return 0
}

// allowed reports whether an image name is on env's allow-list.
func (h *Handler) allowed(env policy.Environment, name string) bool {
	for _, p := range h.allow[env.Name] {
		if globMatch(p, name) {
			return true
		}
	}
	return false
}

// journal records the decision and returns the journaled record: for a
// retried UID, the one recorded first, with retried set.
func (h *Handler) journal(ctx context.Context, rec Record, at time.Time) (stored Record, index uint64, retried bool, err error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return rec, 0, false, err
	}
	res, err := h.cfg.Journal.Append(ctx, journal.Entry{
		Kind: journal.KindAdmission, Time: at, Environment: rec.Environment, Key: "admission:" + rec.UID, Body: body,
	})
	if err != nil || !res.Existing {
		return rec, res.Index, false, err
	}
	if err := json.Unmarshal(res.Body, &stored); err != nil {
		return rec, res.Index, false, fmt.Errorf("decode journaled decision %d: %w", res.Index, err)
	}
	return stored, res.Index, true, nil
}

// addEvidence copies the evidence for one digest into the policy input,
// keeping only the approvals for the environment.
func addEvidence(a *policy.ArtifactInput, ev evidence.Evidence, env string) {
	if p := ev.Artifact; p != nil {
		a.Provenance = &policy.Provenance{
			ID: p.ID, Name: p.Name, Digest: p.Digest, GitCommit: p.GitCommit, Author: p.Author, Repository: p.Repository,
			BuildURL: p.BuildURL, Pipeline: p.Pipeline, ReportedBy: p.ReportedBy, ReportedAt: p.ReportedAt,
		}
	}
	for _, x := range ev.Attestations {
		in := policy.AttestationInput{
			ID: x.ID, Name: x.Name, Type: x.Type, Passed: x.Passed, URL: x.URL, Blob: x.Blob, Verified: x.Verified, KeyID: x.KeyID,
			ReportedBy: x.ReportedBy, ReportedAt: x.ReportedAt,
		}
		if x.SignedAt != nil {
			in.SignedAt = *x.SignedAt
		}
		switch x.Type {
		case evidence.TypePullRequest:
			f, err := reviews.of(x)
			in.Approvals, in.MergedInto = f.Approvals, f.MergedInto
			if in.ReviewProblem = f.Of(ev.Artifact); err != nil {
				in.ReviewProblem = err.Error()
			}
		case evidence.TypeChangeRequest:
			in.Change, _ = changes.of(x)
		}
		a.Attestations = append(a.Attestations, in)
	}
	for _, x := range ev.Approvals {
		if x.Environment != env {
			continue
		}
		a.Approvals = append(a.Approvals, policy.ApprovalInput{
			ID: x.ID, Environment: x.Environment, Decision: x.Decision, Reason: x.Reason,
			ExpiresAt: x.ExpiresAt, Approver: x.Approver, ApproverIdentities: x.ApproverIdentities, ApprovedAt: x.ApprovedAt, Emergency: x.Emergency,
		})
	}
}

// payloads memoizes what decisions read of an attestation's payload (a
// code review's, a change request's) by attestation id and a hash of the
// payload (ids are a store's; tests run several stores in one process):
// decisions would otherwise parse each payload every time.
type payloads[T any] struct {
	parse func(json.RawMessage) (T, error)
	mu    sync.Mutex
	m     map[payloadKey]parsed[T]
}

type payloadKey struct{ id, payload uint64 }

type parsed[T any] struct {
	facts T
	err   error
}

var (
	reviews     = payloads[evidence.ReviewFacts]{parse: evidence.ParseReview}
	changes     = payloads[policy.ChangeInput]{parse: changeInput}
	payloadSeed = maphash.MakeSeed()
)

const maxParsedPayloads = 10000

func (p *payloads[T]) of(x evidence.Attestation) (T, error) {
	k := payloadKey{x.ID, maphash.Bytes(payloadSeed, x.Payload)}
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.m[k]; ok {
		return v.facts, v.err
	}
	if p.m == nil || len(p.m) >= maxParsedPayloads {
		p.m = map[payloadKey]parsed[T]{}
	}
	f, err := p.parse(x.Payload)
	p.m[k] = parsed[T]{f, err}
	return f, err
}

// changeInput is what decisions use of a change request's payload; its
// Problem says why the payload could not be read, so it never fails (the
// error is payloads' signature, which code reviews use).
func changeInput(payload json.RawMessage) (policy.ChangeInput, error) {
	f, err := evidence.ParseChange(payload)
	in := policy.ChangeInput{Number: f.Number, State: f.State, Approval: f.Approval, PlannedStart: f.PlannedStart, PlannedEnd: f.PlannedEnd,
		ConfigurationItems: policy.NewNames(f.ConfigurationItems), ConfigurationItemsProblem: f.ConfigurationItemsProblem}
	if err != nil {
		in.Problem = err.Error()
	}
	return in, nil
}

func containerSubject(c Container) string {
	switch c.Type {
	case policy.ContainerInit:
		return fmt.Sprintf("init container %q", c.Name)
	case policy.ContainerEphemeral:
		return fmt.Sprintf("ephemeral container %q", c.Name)
	}
	return fmt.Sprintf("container %q", c.Name)
}

func groupVersion(group, version string) string {
	if group == "" {
		return version
	}
	return group + "/" + version
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
