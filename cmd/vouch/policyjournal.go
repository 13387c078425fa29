package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/policy"
)

// policyJournal journals the policy state (bundle files, environments'
// definitions and modes) whenever it differs from the last journaled one:
// at start, and after every reload.
type policyJournal struct {
	appender *journal.Appender
	store    journal.Store
	engine   *policy.Engine
	envs     *policy.Environments
	log      *slog.Logger

	mu       sync.Mutex
	last     *policy.State
	lastIdx  uint64
	haveLast bool
}

// record compares the current state with the last journaled one and
// appends a policy entry when it changed. The entry's key names the
// previous entry, so replicas starting together record a change once.
func (p *policyJournal) record(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.haveLast {
		if err := p.loadLast(ctx); err != nil {
			return err
		}
	}
	cur := policy.CurrentState(p.engine, p.envs)
	change, changed := policy.Compare(p.last, cur)
	if !changed {
		return nil
	}
	body, err := json.Marshal(change)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	key := fmt.Sprintf("policy:%d:%s", p.lastIdx, hex.EncodeToString(sum[:8]))
	res, err := p.appender.Append(ctx, journal.Entry{Kind: policy.KindPolicy, Key: key, Body: body})
	if err != nil {
		return fmt.Errorf("journal the policy change: %w", err)
	}
	p.last, p.lastIdx = &cur, res.Index+1
	p.log.Info("policy change journaled", "version", cur.Version, "journal_index", res.Index,
		"added", change.Added, "removed", change.Removed, "modified", change.Modified, "mode_changes", change.ModeChanges, "environment_changes", change.EnvironmentChanges)
	return nil
}

// loadLast reads the latest policy entry of the journal.
func (p *policyJournal) loadLast(ctx context.Context) error {
	from := uint64(0)
	for {
		page, err := p.store.Entries(ctx, journal.Query{From: from, Limit: journal.MaxLimit, Kind: policy.KindPolicy})
		if err != nil {
			return fmt.Errorf("read the last policy change: %w", err)
		}
		for _, e := range page {
			var st policy.State
			if err := json.Unmarshal(e.Body, &st); err != nil {
				return fmt.Errorf("journal entry %d: %w", e.Index, err)
			}
			p.last, p.lastIdx = &st, e.Index+1
		}
		if len(page) < journal.MaxLimit {
			p.haveLast = true
			return nil
		}
		from = page[len(page)-1].Index + 1
	}
}
