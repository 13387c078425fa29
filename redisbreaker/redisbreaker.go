// Package redisbreaker is the circuit breaker in front of Redis, shared by
// the evidence cache (rediscache) and the rate limiter (ratelimit): after a
// failure Redis is left alone for a pause, then one call probes it.
//
// Closed, every call goes to Redis. A failure opens the breaker for a pause
// (New's minPause). When the pause is over, exactly one caller is let
// through as the probe and the others keep skipping Redis: the probe's
// success closes the breaker, its failure opens it again for twice the
// pause, up to maxPause. A probe that never reports back (its caller gave
// up, say) holds the half-open breaker for one pause; then the next caller
// probes. Any success closes the breaker (a call that was in flight when it
// opened included), and any failure while open counts as a failed probe.
package redisbreaker

import (
	"sync"
	"sync/atomic"
	"time"
)

// Breaker decides when to call Redis. It is safe for concurrent use; while
// closed, Allow and Success are one atomic load each.
type Breaker struct {
	minPause, maxPause time.Duration
	now                func() time.Time
	start              time.Time // times are kept as nanoseconds since, on the monotonic clock

	open  atomic.Bool
	until atomic.Int64 // while open, Redis is skipped until then
	pause atomic.Int64 // the pause of the last failure

	mu sync.Mutex // orders Failure and the closing in Success
}

// New returns a closed breaker that pauses for minPause after a failure,
// doubling with each failed probe up to maxPause. now is its clock
// (time.Now when nil).
func New(minPause, maxPause time.Duration, now func() time.Time) *Breaker {
	if now == nil {
		now = time.Now
	}
	return &Breaker{minPause: minPause, maxPause: max(minPause, maxPause), now: now, start: now()}
}

// elapsed is the time since New, in nanoseconds.
func (b *Breaker) elapsed() int64 { return int64(b.now().Sub(b.start)) }

// Allow reports whether to call Redis: always while closed; while open,
// never before the pause is over, and then for one caller, the probe, until
// it reports back or one more pause has passed.
func (b *Breaker) Allow() bool {
	if !b.open.Load() {
		return true
	}
	until := b.until.Load()
	now := b.elapsed()
	if now < until {
		return false
	}
	// Of the callers that saw the same end of pause, one moves it on.
	return b.until.CompareAndSwap(until, now+b.pause.Load())
}

// Success records a call that Redis answered, and reports whether it closed
// the breaker.
func (b *Breaker) Success() (closed bool) {
	if !b.open.Load() {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open.Swap(false)
}

// Failure records a call that Redis failed, and reports whether it opened
// the breaker and for how long Redis is left alone now.
func (b *Breaker) Failure() (opened bool, pause time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pause = b.minPause
	if b.open.Load() {
		pause = min(2*time.Duration(b.pause.Load()), b.maxPause)
	}
	b.pause.Store(int64(pause))
	b.until.Store(b.elapsed() + int64(pause)) // before open, which Allow reads first
	return !b.open.Swap(true), pause
}

// Open reports whether the breaker is open: Redis failed and has not
// answered since.
func (b *Breaker) Open() bool { return b.open.Load() }

// RetryIn is how long until Allow lets a probe through: 0 while closed or
// once the pause is over.
func (b *Breaker) RetryIn() time.Duration {
	if !b.open.Load() {
		return 0
	}
	return max(time.Duration(b.until.Load()-b.elapsed()), 0)
}
