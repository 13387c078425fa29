package drift

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	neturl "net/url"
	"sort"
	"time"

	"github.com/vouch-dev/vouch/journal"
)

// Journal entry kinds of compliance monitoring.
const (
	KindNotification journal.Kind = "notification"
	KindDelivery     journal.Kind = "notification-delivery"
)

// Notification tells people that an environment's compliance changed.
type Notification struct {
	Environment string    `json:"environment"`
	Time        time.Time `json:"time"`
	Event       string    `json:"event"` // compliance-changed, break-glass, exemption-used
	// Summary says what happened, for events other than compliance-changed.
	Summary string `json:"summary,omitempty"`
	// Decision is the journal index of the admission an alert is about.
	Decision       uint64           `json:"decision,omitempty"`
	Counts         map[string]int   `json:"counts"`
	Previous       map[string]int   `json:"previous,omitempty"`
	NewProblems    []ArtifactStatus `json:"new_problems,omitempty"` // artifacts that became undocumented, unknown, non-compliant or failed
	JournalIndex   uint64           `json:"journal_index,omitempty"`
	DeliveryTarget string           `json:"-"`
}

// NotifierConfig is one destination under `notifications:` in the config.
type NotifierConfig struct {
	Name string `json:"name"`
	Type string `json:"type"` // webhook (JSON) or slack (incoming webhook)
	URL  string `json:"url"`
	// URLFile names a file holding the URL instead (a mounted Secret): a
	// Slack webhook URL is a credential.
	URLFile string `json:"url_file,omitempty"`
}

// Monitor evaluates every environment's compliance periodically (on the
// leader), publishes the counts (gauges) and notifies when they change or
// a new problem appears. Every notification is journaled, and so is every
// delivery.
type Monitor struct {
	Service   *Service
	Journal   Appender
	Notifiers []NotifierConfig
	Interval  time.Duration // 30s when 0
	Logger    *slog.Logger
	Gauges    func(env string, counts map[string]int)
	Client    *http.Client
	// RetryFor bounds how long a delivery is retried (10m when 0).
	RetryFor time.Duration

	last map[string]Report
}

// Run evaluates until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	interval := m.Interval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	for {
		m.Evaluate(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Evaluate checks every environment once.
func (m *Monitor) Evaluate(ctx context.Context) {
	if m.last == nil {
		m.last = map[string]Report{}
	}
	sums, err := m.Service.Summaries(ctx)
	if err != nil {
		m.Logger.Error("compliance", "error", err)
		return
	}
	for _, sum := range sums {
		if sum.LastSnapshot == nil {
			continue
		}
		rep, err := m.Service.Compliance(ctx, sum.Environment)
		if err != nil {
			m.Logger.Error("compliance", "environment", sum.Environment, "error", err)
			continue
		}
		if m.Gauges != nil {
			m.Gauges(rep.Environment, rep.Counts)
		}
		if rep.Environment == ExemptEnvironment {
			continue // not evaluated: its changes are in the journal and its timeline, not news
		}
		prev, seen := m.last[rep.Environment]
		m.last[rep.Environment] = rep
		problems := newProblems(prev, rep)
		if seen && sameCounts(prev.Counts, rep.Counts) && len(problems) == 0 {
			continue
		}
		if !seen && rep.Counts[StatusCompliant] == len(rep.Artifacts) {
			continue // a clean start is not news
		}
		n := Notification{Environment: rep.Environment, Time: time.Now().UTC(), Event: "compliance-changed", Counts: rep.Counts, NewProblems: problems}
		if seen {
			n.Previous = prev.Counts
		}
		m.notify(ctx, n)
	}
}

func sameCounts(a, b map[string]int) bool {
	for _, s := range Statuses {
		if a[s] != b[s] {
			return false
		}
	}
	return true
}

// newProblems lists artifacts with a problem that they did not have before.
func newProblems(prev, cur Report) []ArtifactStatus {
	had := map[string]bool{}
	for _, a := range prev.Artifacts {
		had[a.Namespace+"/"+a.Workload+"/"+a.Container+"/"+a.Digest+"/"+a.Status] = true
	}
	var out []ArtifactStatus
	for _, a := range cur.Artifacts {
		if a.Status != StatusCompliant && !had[a.Namespace+"/"+a.Workload+"/"+a.Container+"/"+a.Digest+"/"+a.Status] {
			out = append(out, a)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i].Status) < rank(out[j].Status) })
	return out
}

// Alert journals and sends a notification about an event other than a
// compliance change (a break-glass admission, an exemption used). Any
// replica may alert, not only the leader.
func (m *Monitor) Alert(ctx context.Context, n Notification) {
	if n.Time.IsZero() {
		n.Time = time.Now().UTC()
	}
	m.notify(ctx, n)
}

// notify journals a notification and delivers it to every notifier, each
// in the background with retries.
func (m *Monitor) notify(ctx context.Context, n Notification) {
	body, _ := json.Marshal(n)
	res, err := m.Journal.Append(ctx, journal.Entry{Kind: KindNotification, Environment: n.Environment, Key: "notification:" + randomID(), Body: body})
	if err != nil {
		m.Logger.Error("notification not journaled", "environment", n.Environment, "error", err)
		return
	}
	n.JournalIndex = res.Index
	m.Logger.Info("notification", "event", n.Event, "environment", n.Environment, "counts", n.Counts, "new_problems", len(n.NewProblems), "summary", n.Summary, "journal_index", res.Index)
	for _, target := range m.Notifiers {
		go m.deliver(context.WithoutCancel(ctx), target, n)
	}
}

// deliver sends n to one target, retrying with backoff for RetryFor, and
// journals the outcome.
func (m *Monitor) deliver(ctx context.Context, target NotifierConfig, n Notification) {
	client := m.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	retryFor := m.RetryFor
	if retryFor <= 0 {
		retryFor = 10 * time.Minute
	}
	payload, err := notificationPayload(target.Type, n)
	if err != nil {
		m.Logger.Error("notification", "target", target.Name, "error", err)
		return
	}
	deadline := time.Now().Add(retryFor)
	attempts := 0
	var lastErr error
	for wait := time.Second; ; wait = min(2*wait, time.Minute) {
		attempts++
		lastErr = post(ctx, client, target.URL, payload)
		if lastErr == nil || time.Now().Add(wait).After(deadline) {
			break
		}
		m.Logger.Warn("notification delivery failed; retrying", "target", target.Name, "attempt", attempts, "retry_in", wait.String(), "error", lastErr)
		time.Sleep(wait)
	}
	outcome := map[string]any{"notification": n.JournalIndex, "target": target.Name, "type": target.Type, "attempts": attempts, "delivered": lastErr == nil}
	if lastErr != nil {
		outcome["error"] = lastErr.Error()
		m.Logger.Error("notification not delivered", "target", target.Name, "attempts", attempts, "error", lastErr)
	}
	body, _ := json.Marshal(outcome)
	if _, err := m.Journal.Append(ctx, journal.Entry{Kind: KindDelivery, Environment: n.Environment, Key: "delivery:" + randomID(), Body: body}); err != nil {
		m.Logger.Error("delivery not journaled", "error", err)
	}
}

func post(ctx context.Context, c *http.Client, url string, payload []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return errors.New("invalid notification URL") // the URL may be a credential (Slack's is): never repeat it
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	var uerr *neturl.Error
	if errors.As(err, &uerr) {
		return fmt.Errorf("%s %s://%s: %w", uerr.Op, req.URL.Scheme, req.URL.Host, uerr.Err)
	}
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// notificationPayload renders a notification for a target type: the JSON
// notification itself, or a Slack message.
func notificationPayload(kind string, n Notification) ([]byte, error) {
	switch kind {
	case "webhook", "":
		return json.Marshal(n)
	case "slack":
		if n.Summary != "" {
			return json.Marshal(map[string]string{"text": fmt.Sprintf("*Vouch: %s in %s* — %s", n.Event, n.Environment, n.Summary)})
		}
		text := fmt.Sprintf("*Vouch: compliance of %s changed* — ", n.Environment)
		for _, s := range Statuses {
			text += fmt.Sprintf("%s %d  ", s, n.Counts[s])
		}
		for i, p := range n.NewProblems {
			if i == 10 {
				text += fmt.Sprintf("\n… and %d more", len(n.NewProblems)-10)
				break
			}
			text += fmt.Sprintf("\n• %s %s/%s %s: %s", p.Status, p.Namespace, p.Workload, p.Image, firstReason(p))
		}
		return json.Marshal(map[string]string{"text": text})
	}
	return nil, fmt.Errorf("notification type %q: want webhook or slack", kind)
}

func firstReason(a ArtifactStatus) string {
	if len(a.Reasons) > 0 {
		return a.Reasons[0]
	}
	return ""
}
