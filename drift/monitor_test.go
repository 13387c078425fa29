package drift

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/journal"
)

type entries []journal.Entry

func (e *entries) Append(_ context.Context, en journal.Entry) (journal.Appended, error) {
	*e = append(*e, en)
	return journal.Appended{Entry: en}, nil
}

// TestFailedDeliveryKeepsTheURLSecret: a Slack webhook URL is a
// credential; a failed delivery's journal entry and logs name its host
// only.
func TestFailedDeliveryKeepsTheURLSecret(t *testing.T) {
	var j entries
	var logs bytes.Buffer
	m := &Monitor{Journal: &j, Logger: slog.New(slog.NewTextHandler(&logs, nil)), RetryFor: 1}
	const secret = "T000/B000/SECRETXYZ"
	m.deliver(context.Background(), NotifierConfig{Name: "slack", Type: "slack", URL: "http://127.0.0.1:1/services/" + secret}, Notification{Event: "test"})
	if len(j) != 1 || !strings.Contains(string(j[0].Body), `"delivered":false`) || !strings.Contains(string(j[0].Body), "127.0.0.1:1") {
		t.Fatalf("journaled %d entries, want one undelivered naming the host: %+v", len(j), j)
	}
	if strings.Contains(string(j[0].Body), secret) || strings.Contains(logs.String(), secret) {
		t.Errorf("the URL's secret path was journaled or logged:\n%s\n%s", j[0].Body, logs.String())
	}
}
