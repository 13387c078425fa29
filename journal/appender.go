package journal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("journal: appender closed")

// Default appender options.
const (
	DefaultMaxBatch = 512
	DefaultMaxDelay = 0 // commit as soon as the previous batch is done
)

// CommitTimeout bounds one batch transaction.
const CommitTimeout = 30 * time.Second

// AppenderOptions tune an Appender. The zero value uses the defaults.
type AppenderOptions struct {
	// MaxBatch is the most entries committed in one transaction.
	MaxBatch int
	// MaxDelay is how long the first entry of a batch may wait for more to
	// join it. With 0, a batch is whatever queued while the previous one
	// committed: lowest latency when idle, large batches under load.
	MaxDelay time.Duration
	// Now is the clock used to time entries; time.Now when nil.
	Now func() time.Time
	// Observe, when set, is called after each committed batch.
	Observe func(entries int, took time.Duration, err error)
}

// Future resolves to the result of an append. It blocks until the entry's
// batch is durably committed (or failed), or ctx given to Add is done.
type Future func() (Appended, error)

type pending struct {
	entry Entry
	done  chan struct{}
	res   Appended
	err   error
}

// BatchAppender is the part of a Store an Appender writes through.
type BatchAppender interface {
	AppendBatch(ctx context.Context, entries []Entry) ([]Appended, error)
}

// Appender groups concurrent appends into batches and commits each batch in
// one Store transaction (group commit). It is safe for concurrent use.
type Appender struct {
	store BatchAppender
	opts  AppenderOptions
	queue chan *pending

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	done   chan struct{}
}

// NewAppender starts an appender writing to store. Call Close to flush and
// stop it.
func NewAppender(store BatchAppender, opts AppenderOptions) *Appender {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &Appender{store: store, opts: opts, queue: make(chan *pending, 4*opts.MaxBatch), done: make(chan struct{})}
	go a.run()
	return a
}

// Add queues e for appending and returns a future for its result. A zero
// e.Time is set to the current time. The entry is sealed here, on the
// caller's goroutine, so that hashing runs in parallel.
func (a *Appender) Add(ctx context.Context, e Entry) Future {
	if e.Time.IsZero() {
		e.Time = a.opts.Now()
	}
	if err := e.Seal(); err != nil {
		return func() (Appended, error) { return Appended{}, err }
	}
	p := &pending{entry: e, done: make(chan struct{})}
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		return func() (Appended, error) { return Appended{}, ErrClosed }
	}
	select {
	case a.queue <- p:
		a.mu.RUnlock()
	case <-ctx.Done():
		a.mu.RUnlock()
		return func() (Appended, error) { return Appended{}, ctx.Err() }
	}
	return func() (Appended, error) {
		select {
		case <-p.done:
			return p.res, p.err
		case <-ctx.Done():
			return Appended{}, fmt.Errorf("append %s: %w", e.Kind, ctx.Err())
		}
	}
}

// Append adds e and waits until it is durable.
func (a *Appender) Append(ctx context.Context, e Entry) (Appended, error) {
	return a.Add(ctx, e)()
}

// Close stops accepting entries, commits everything already queued and
// returns when done or when ctx ends.
func (a *Appender) Close(ctx context.Context) error {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.queue)
	}
	a.mu.Unlock()
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close journal appender: %w", ctx.Err())
	}
}

func (a *Appender) run() {
	defer close(a.done)
	batch := make([]*pending, 0, a.opts.MaxBatch)
	for {
		p, ok := <-a.queue // after Close, queued entries still arrive first
		if !ok {
			return
		}
		batch = append(batch[:0], p)
		a.fill(&batch)
		a.commit(batch)
	}
}

// fill adds queued entries to batch until it is full, the queue is empty
// (and MaxDelay has passed since the batch began), or the queue is closed.
func (a *Appender) fill(batch *[]*pending) {
	var timeout <-chan time.Time
	if a.opts.MaxDelay > 0 {
		t := time.NewTimer(a.opts.MaxDelay)
		defer t.Stop()
		timeout = t.C
	}
	for len(*batch) < a.opts.MaxBatch {
		select {
		case p, ok := <-a.queue:
			if !ok {
				return
			}
			*batch = append(*batch, p)
			continue
		default:
		}
		if timeout == nil {
			return
		}
		select {
		case p, ok := <-a.queue:
			if !ok {
				return
			}
			*batch = append(*batch, p)
		case <-timeout:
			return
		}
	}
}

func (a *Appender) commit(batch []*pending) {
	entries := make([]Entry, len(batch))
	for i, p := range batch {
		entries[i] = p.entry
	}
	start := time.Now()
	// The batch is committed even if every caller has given up waiting: a
	// caller's context only bounds its wait, never what gets recorded.
	ctx, cancel := context.WithTimeout(context.Background(), CommitTimeout)
	res, err := a.store.AppendBatch(ctx, entries)
	cancel()
	if err == nil && len(res) != len(batch) {
		err = fmt.Errorf("journal store returned %d results for %d entries", len(res), len(batch))
	}
	if a.opts.Observe != nil {
		a.opts.Observe(len(batch), time.Since(start), err)
	}
	if errors.Is(err, ErrRefused) && len(batch) > 1 {
		// One entry's content spoiled the batch: the others go in alone.
		for _, p := range batch {
			a.commit([]*pending{p})
		}
		return
	}
	for i, p := range batch {
		if err != nil {
			p.err = fmt.Errorf("append %s: %w", p.entry.Kind, err)
		} else {
			p.res = res[i]
		}
		close(p.done)
	}
}
