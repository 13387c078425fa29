package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/console"
	"github.com/vouch-dev/vouch/drift"
)

// pausingDecisions is the real decisions log, whose reads wait until
// release is closed: downloads held in flight.
type pausingDecisions struct {
	drift.DecisionStore
	reading chan struct{}
	release chan struct{}
}

func (p pausingDecisions) Decisions(ctx context.Context, q drift.DecisionQuery) (drift.DecisionPage, error) {
	p.reading <- struct{}{}
	<-p.release
	return p.DecisionStore.Decisions(ctx, q)
}

// TestConcurrentDownloadsPerToken: a signed-in token runs at most
// MaxConcurrentDownloads heavy downloads at once; one more is a 429 page.
func TestConcurrentDownloadsPerToken(t *testing.T) {
	f := newFixture(t, false)
	f.seed()
	paused := pausingDecisions{DecisionStore: f.cfg.Decisions, reading: make(chan struct{}, 16), release: make(chan struct{})}
	f.cfg.Decisions = paused
	srv := f.replica(nil)
	c := f.client()
	f.signIn(c, "auditor", "/")
	done := make(chan int, console.MaxConcurrentDownloads)
	for range console.MaxConcurrentDownloads {
		go func() {
			resp, _ := f.getFrom(c, srv, "/decisions/export?format=jsonl")
			done <- resp.StatusCode
		}()
		<-paused.reading
	}
	resp, body := f.getFrom(c, srv, "/decisions/export?format=csv")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "You have 2 downloads running") {
		t.Errorf("a third download = %d (Retry-After %q):\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	close(paused.release)
	for range console.MaxConcurrentDownloads {
		if code := <-done; code != http.StatusOK {
			t.Errorf("a held download ended with %d, want 200", code)
		}
	}
	if resp, _ := f.getFrom(c, srv, "/decisions/export?format=csv"); resp.StatusCode != http.StatusOK {
		t.Errorf("a download after the others ended = %d, want 200", resp.StatusCode)
	}
}
