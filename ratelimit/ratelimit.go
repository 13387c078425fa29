// Package ratelimit limits API requests per token: a fixed window of one
// minute, counted in Redis so that all replicas share the count, or in
// memory for a single replica. When Redis fails the limiter counts in
// memory meanwhile, and leaves Redis alone for a second before one request
// tries it again (redisbreaker): a broken limiter must not stop CI
// pipelines, nor slow them.
package ratelimit

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vouch-dev/vouch/redisbreaker"
)

// Window is the counting period.
const Window = time.Minute

// Limiter allows at most a number of requests per key and window.
type Limiter interface {
	// Allow counts a request for key and reports whether it is within the
	// limit; if not, retryAfter says when the window ends.
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration)
}

// Memory counts in this process.
type Memory struct {
	Limit int
	now   func() time.Time

	mu     sync.Mutex
	window int64
	counts map[string]int
}

// NewMemory returns an in-process limiter of limit requests per minute.
func NewMemory(limit int) *Memory { return &Memory{Limit: limit, now: time.Now} }

// Allow implements Limiter.
func (m *Memory) Allow(_ context.Context, key string) (bool, time.Duration) {
	now := m.now()
	w := now.Unix() / int64(Window.Seconds())
	m.mu.Lock()
	defer m.mu.Unlock()
	if w != m.window || m.counts == nil {
		m.window, m.counts = w, map[string]int{}
	}
	m.counts[key]++
	if m.counts[key] <= m.Limit {
		return true, 0
	}
	return false, untilNextWindow(now)
}

// Redis counts in Redis, shared by every replica.
type Redis struct {
	rdb      redis.UniversalClient
	limit    int
	fallback *Memory
	log      *slog.Logger
	breaker  *redisbreaker.Breaker
}

// retryAfterFailure is how long a failed Redis is left alone, the same
// after every failure.
const retryAfterFailure = time.Second

// NewRedis returns a limiter of limit requests per minute counted in rdb.
func NewRedis(rdb redis.UniversalClient, limit int, log *slog.Logger) *Redis {
	return &Redis{rdb: rdb, limit: limit, fallback: NewMemory(limit), log: log,
		breaker: redisbreaker.New(retryAfterFailure, retryAfterFailure, time.Now)}
}

// Allow implements Limiter.
func (r *Redis) Allow(ctx context.Context, key string) (bool, time.Duration) {
	now := time.Now()
	if !r.breaker.Allow() {
		return r.fallback.Allow(ctx, key)
	}
	k := "vouch:ratelimit:" + key + ":" + strconv.FormatInt(now.Unix()/int64(Window.Seconds()), 10)
	ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	pipe := r.rdb.TxPipeline()
	incr := pipe.Incr(ctx, k)
	pipe.Expire(ctx, k, 2*Window)
	if _, err := pipe.Exec(ctx); err != nil {
		if opened, _ := r.breaker.Failure(); opened {
			r.log.Warn("redis unavailable; rate limits are counted per replica meanwhile", "error", err)
		}
		return r.fallback.Allow(ctx, key)
	}
	if r.breaker.Success() {
		r.log.Info("redis available again; rate limits are shared")
	}
	if incr.Val() <= int64(r.limit) {
		return true, 0
	}
	return false, untilNextWindow(now)
}

func untilNextWindow(now time.Time) time.Duration {
	return now.Truncate(Window).Add(Window).Sub(now)
}
