// Package metrics defines the Prometheus metrics Vouch exports at /metrics.
// Every metric name is here, in one place.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vouch-dev/vouch/journal"
)

// Metrics holds Vouch's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	admissions       *prometheus.CounterVec
	throttled        prometheus.Counter
	admissionLatency *prometheus.HistogramVec
	evidence         *prometheus.CounterVec
	journalAppends   *prometheus.CounterVec
	journalBatch     prometheus.Histogram
	journalCommit    prometheus.Histogram
	spoolEntries     prometheus.Gauge
	spoolRefused     prometheus.Counter
	checkpointSize   prometheus.Gauge
	checkpointRefuse prometheus.Gauge
	compliance       *prometheus.GaugeVec
	publishErrors    prometheus.Counter
	integrityChecks  *prometheus.CounterVec
	integrityOK      prometheus.Gauge
	leader           prometheus.Gauge
}

// New registers Vouch's metrics, and the Go and process collectors, in a
// new registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_admissions_total",
			Help: "Admission reviews answered, by environment and decision: allowed, denied (by the policy), error (refused: Vouch could not decide), unrecorded (refused: the decision could not be journaled); dry runs are counted with dry_run=\"true\".",
		}, []string{"environment", "decision", "dry_run"}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vouch_admissions_throttled_total",
			Help: "Admission reviews answered 429 at once, unread, because the webhook's in-flight limit was reached.",
		}),
		admissionLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vouch_admission_duration_seconds",
			Help:    "Time from receiving an admission request to answering it, journal commit included.",
			Buckets: []float64{.0005, .001, .002, .003, .005, .0075, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"environment"}),
		evidence: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_evidence_ingested_total",
			Help: "Evidence records accepted, by kind (artifact, attestation, approval) and result (created, existing).",
		}, []string{"kind", "result"}),
		journalAppends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_journal_appends_total",
			Help: "Journal entries submitted for appending, by result (committed, failed).",
		}, []string{"result"}),
		journalBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vouch_journal_batch_entries",
			Help:    "Entries per journal batch (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		journalCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vouch_journal_commit_duration_seconds",
			Help:    "Time to durably commit one journal batch.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1},
		}),
		spoolEntries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vouch_journal_spool_entries",
			Help: "Decisions waiting in this replica's spool for the journal store (spooled while it was unreachable).",
		}),
		spoolRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vouch_journal_spool_refused_total",
			Help: "Spooled entries the journal store refused on draining, set aside in refused-<date>.jsonl in the data directory.",
		}),
		checkpointSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vouch_journal_checkpoint_size",
			Help: "Tree size of the latest signed journal checkpoint.",
		}),
		checkpointRefuse: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vouch_journal_checkpoint_refused",
			Help: "1 while the leader refuses to sign: the stored journal does not extend a checkpoint signed before (rewritten, or restored from an older backup).",
		}),
		compliance: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vouch_compliance_artifacts",
			Help: "Running artifacts by environment and compliance status (compliant, non-compliant, unknown, undocumented, failed).",
		}, []string{"environment", "status"}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vouch_journal_checkpoint_publish_errors_total",
			Help: "Checkpoints that could not be published to a configured destination.",
		}),
		integrityChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_integrity_checks_total",
			Help: "Scheduled checks of the stored journal and evidence, by result (passed, failed, error: the check could not run).",
		}, []string{"result"}),
		integrityOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vouch_integrity_check_last_passed_timestamp_seconds",
			Help: "When the stored journal and evidence last passed the scheduled check (Unix time).",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vouch_leader",
			Help: "1 while this replica does the leader's work (snapshots, compliance, checkpoints, integrity checks), else 0.",
		}),
	}
	reg.MustRegister(m.admissions, m.throttled, m.admissionLatency, m.evidence, m.journalAppends, m.journalBatch, m.journalCommit,
		m.spoolEntries, m.spoolRefused, m.checkpointSize, m.checkpointRefuse, m.publishErrors, m.compliance, m.integrityChecks, m.integrityOK, m.leader,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveAdmission records one answered admission review; decision is
// one of webhook's Decision values.
func (m *Metrics) ObserveAdmission(environment, decision string, dryRun bool, took time.Duration) {
	dry := "false"
	if dryRun {
		dry = "true"
	}
	m.admissions.WithLabelValues(environment, decision, dry).Inc()
	m.admissionLatency.WithLabelValues(environment).Observe(took.Seconds())
}

// ObserveThrottled records a review answered 429 by the in-flight limit.
func (m *Metrics) ObserveThrottled() { m.throttled.Inc() }

// ObserveEvidence records one accepted evidence record.
func (m *Metrics) ObserveEvidence(kind journal.Kind, created bool) {
	result := "existing"
	if created {
		result = "created"
	}
	m.evidence.WithLabelValues(string(kind), result).Inc()
}

// ObserveJournalBatch records one journal batch commit; it fits
// journal.AppenderOptions.Observe.
func (m *Metrics) ObserveJournalBatch(entries int, took time.Duration, err error) {
	if err != nil {
		m.journalAppends.WithLabelValues("failed").Add(float64(entries))
		return
	}
	m.journalAppends.WithLabelValues("committed").Add(float64(entries))
	m.journalBatch.Observe(float64(entries))
	m.journalCommit.Observe(took.Seconds())
}

// ObserveSpool records the spool's depth and the entries just set aside;
// it fits journal.SpoolOptions.Observe.
func (m *Metrics) ObserveSpool(pending, setAside int) {
	m.spoolEntries.Set(float64(pending))
	m.spoolRefused.Add(float64(setAside))
}

// ObserveCheckpoint records a signed checkpoint and any publish error; it
// fits journal.CheckpointerOptions.Observe.
func (m *Metrics) ObserveCheckpoint(c journal.Checkpoint, publishErr error) {
	m.checkpointSize.Set(float64(c.Size))
	m.checkpointRefuse.Set(0)
	if publishErr != nil {
		m.publishErrors.Inc()
	}
}

// CheckpointRefused records that the leader refuses to sign checkpoints,
// until the next one it signs.
func (m *Metrics) CheckpointRefused() { m.checkpointRefuse.Set(1) }

// SetCompliance publishes an environment's compliance counts.
func (m *Metrics) SetCompliance(environment string, counts map[string]int) {
	for status, n := range counts {
		m.compliance.WithLabelValues(environment, status).Set(float64(n))
	}
}

// Lead marks this replica the leader until ctx ends (leadership lost, or
// shutdown); then the compliance gauges, which only the leader sets, are
// cleared, so that a former leader does not go on reporting old counts.
func (m *Metrics) Lead(ctx context.Context) {
	m.leader.Set(1)
	<-ctx.Done()
	m.leader.Set(0)
	m.compliance.Reset()
}

// ObserveIntegrityCheck records a scheduled integrity check: "passed",
// "failed" (the store does not verify) or "error" (it could not be read).
func (m *Metrics) ObserveIntegrityCheck(result string, at time.Time) {
	m.integrityChecks.WithLabelValues(result).Inc()
	if result == "passed" {
		m.integrityOK.Set(float64(at.Unix()))
	}
}
