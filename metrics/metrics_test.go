package metrics_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/metrics"
)

// value returns the value of the series name{labels} (labels as
// `a="x",b="y"`, sorted by name), or -1 when there is none.
func value(t *testing.T, m *metrics.Metrics, name, labels string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			var ls []string
			for _, l := range s.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if strings.Join(ls, ",") != labels {
				continue
			}
			switch {
			case s.Counter != nil:
				return s.Counter.GetValue()
			case s.Gauge != nil:
				return s.Gauge.GetValue()
			}
		}
	}
	return -1
}

// TestSpool: the spool's depth is a gauge, the entries it set aside a
// counter.
func TestSpool(t *testing.T) {
	m := metrics.New()
	if v := value(t, m, "vouch_journal_spool_entries", ""); v != 0 {
		t.Errorf("spool depth before any spooling = %v, want 0 (exported)", v)
	}
	m.ObserveSpool(3, 0)
	if v := value(t, m, "vouch_journal_spool_entries", ""); v != 3 {
		t.Errorf("spool depth = %v, want 3", v)
	}
	m.ObserveSpool(1, 1)
	m.ObserveSpool(0, 1)
	if v := value(t, m, "vouch_journal_spool_entries", ""); v != 0 {
		t.Errorf("spool depth after draining = %v, want 0", v)
	}
	if v := value(t, m, "vouch_journal_spool_refused_total", ""); v != 2 {
		t.Errorf("entries set aside = %v, want 2", v)
	}
}

// TestAdmissions: each decision the webhook reports is its own label
// value; 429s are counted apart.
func TestAdmissions(t *testing.T) {
	m := metrics.New()
	for _, d := range []string{"allowed", "denied", "error", "unrecorded", "unrecorded"} {
		m.ObserveAdmission("prod", d, false, time.Millisecond)
	}
	m.ObserveAdmission("prod", "denied", true, time.Millisecond)
	m.ObserveThrottled()
	for labels, want := range map[string]float64{
		`decision="allowed",dry_run="false",environment="prod"`:    1,
		`decision="denied",dry_run="false",environment="prod"`:     1,
		`decision="error",dry_run="false",environment="prod"`:      1,
		`decision="unrecorded",dry_run="false",environment="prod"`: 2,
		`decision="denied",dry_run="true",environment="prod"`:      1,
	} {
		if got := value(t, m, "vouch_admissions_total", labels); got != want {
			t.Errorf("vouch_admissions_total{%s} = %v, want %v", labels, got, want)
		}
	}
	if got := value(t, m, "vouch_admissions_throttled_total", ""); got != 1 {
		t.Errorf("vouch_admissions_throttled_total = %v, want 1", got)
	}
}

// TestLead: the leader gauge follows leadership, and a former leader no
// longer reports compliance counts.
func TestLead(t *testing.T) {
	m := metrics.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Lead(ctx); close(done) }()
	m.SetCompliance("prod", map[string]int{"compliant": 3})
	for value(t, m, "vouch_leader", "") != 1 {
		time.Sleep(time.Millisecond)
	}
	if got := value(t, m, "vouch_compliance_artifacts", `environment="prod",status="compliant"`); got != 3 {
		t.Fatalf("compliant in prod = %v, want 3", got)
	}
	cancel()
	<-done
	if got := value(t, m, "vouch_leader", ""); got != 0 {
		t.Errorf("vouch_leader after leadership ended = %v, want 0", got)
	}
	if got := value(t, m, "vouch_compliance_artifacts", `environment="prod",status="compliant"`); got != -1 {
		t.Errorf("compliance after leadership ended = %v, want no series", got)
	}
}

// TestCheckpointRefused: the gauge is 1 from a refusal until the next
// checkpoint signed.
func TestCheckpointRefused(t *testing.T) {
	m := metrics.New()
	if got := value(t, m, "vouch_journal_checkpoint_refused", ""); got != 0 {
		t.Fatalf("at start = %v, want 0", got)
	}
	m.CheckpointRefused()
	if got := value(t, m, "vouch_journal_checkpoint_refused", ""); got != 1 {
		t.Errorf("after a refusal = %v, want 1", got)
	}
	m.ObserveCheckpoint(journal.Checkpoint{Size: 9}, nil)
	if got := value(t, m, "vouch_journal_checkpoint_refused", ""); got != 0 {
		t.Errorf("after a signed checkpoint = %v, want 0", got)
	}
}
