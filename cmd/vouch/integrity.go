package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
)

// integrityCheck does on a schedule what `vouch journal verify` does on a
// store: it verifies every leaf, tree node and stored checkpoint of the
// journal, then checks each evidence record the webhook reads against the
// journal entry of its id. It runs on the leader. A store that does not
// verify is logged, journaled and sent to every notifier
// ("integrity-check-failed"); a check that cannot run (the store is
// unreachable) is logged and retried at the next interval.
type integrityCheck struct {
	store interface {
		journal.StoreSource
		evidence.AuditSource
		drift.ProjectionSource
	}
	verifier note.Verifier
	interval time.Duration
	alert    func(context.Context, drift.Notification)
	observe  func(result string, at time.Time)
	log      *slog.Logger

	known *journal.Checkpoint // the latest checkpoint seen by a check that passed
}

// firstIntegrityCheck is how long after Run starts the first check comes
// (unless the interval is shorter): not at once, so that a restart does not
// add a full read of the journal to its start, but soon, so that a leader
// that changes more often than the interval still checks.
const firstIntegrityCheck = 5 * time.Minute

// Run checks the store every interval until ctx ends.
func (c *integrityCheck) Run(ctx context.Context) {
	wait := min(c.interval, firstIntegrityCheck)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		c.checkOnce(ctx)
		wait = c.interval
	}
}

// checkOnce runs one check and reports it.
func (c *integrityCheck) checkOnce(ctx context.Context) {
	start := time.Now()
	size, records, err := c.check(ctx)
	var verr *journal.VerifyError
	var merr *journal.MismatchError
	switch {
	case err == nil:
		c.observe("passed", time.Now())
		c.log.Info("integrity check passed", "entries", size, "evidence_records", records, "took", time.Since(start).Round(time.Millisecond))
	case errors.As(err, &verr), errors.As(err, &merr):
		c.observe("failed", time.Now())
		c.log.Error("integrity check failed: the stored journal or evidence was changed outside Vouch", "error", err)
		c.alert(ctx, drift.Notification{Event: "integrity-check-failed", Summary: err.Error()})
	case ctx.Err() != nil: // leadership lost or shutting down
	default:
		c.observe("error", time.Now())
		c.log.Warn("integrity check could not run; retrying at the next interval", "error", err)
	}
}

// check verifies the journal and audits the evidence; it returns the
// journal's size and the number of evidence records checked.
func (c *integrityCheck) check(ctx context.Context) (uint64, int, error) {
	rep, err := journal.VerifyStore(ctx, c.store, c.verifier, journal.VerifyOptions{Known: c.known}, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("journal: %w", err)
	}
	n, err := evidence.Audit(ctx, c.store, c.store, nil)
	if err != nil {
		return rep.Size, n, fmt.Errorf("evidence: %w", err)
	}
	p, err := drift.AuditProjections(ctx, c.store, c.store)
	if err != nil {
		return rep.Size, n + p, fmt.Errorf("decisions and snapshots: %w", err)
	}
	n += p
	if cp, err := c.store.LatestCheckpoint(ctx); err == nil && cp.Size <= rep.Size {
		c.known = &cp // the next check must find the journal grown from it
	}
	return rep.Size, n, nil
}
