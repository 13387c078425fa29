// Package rediscache shares evidence between Vouch replicas through Redis:
// a cache of evidence lookups that every replica fills and reads, and a
// pub/sub channel on which a replica that records evidence tells the others
// to forget the digest.
//
// Redis is an accelerator, never a dependency: every Redis call has a short
// deadline, and any failure falls back to the store. A stale entry can at
// worst admit a change for the moments an invalidation takes: the webhook
// decides every denial again from the store, and entries expire after TTL.
package rediscache

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vouch-dev/vouch/evidence"
)

// Keys and channel.
const (
	keyPrefix = "vouch:evidence:"
	Channel   = "vouch:evidence-changed"
)

// Options tune a Cache.
type Options struct {
	// TTL bounds how long an entry lives (DefaultTTL when 0).
	TTL time.Duration
	// Timeout bounds each Redis call on the decision path (DefaultTimeout
	// when 0); past it the store answers.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Defaults.
const (
	DefaultTTL     = 10 * time.Minute
	DefaultTimeout = 50 * time.Millisecond
)

// Cache is an evidence.Lookuper backed by Redis in front of a store.
type Cache struct {
	rdb   redis.UniversalClient
	store evidence.Lookuper
	opts  Options
	// down is set while Redis fails, to log the change once.
	down atomic.Bool
}

// New returns a cache using rdb in front of store.
func New(rdb redis.UniversalClient, store evidence.Lookuper, opts Options) *Cache {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Cache{rdb: rdb, store: store, opts: opts}
}

// Lookup implements evidence.Lookuper: what Redis holds, the rest from the
// store (and written to Redis for the other replicas).
func (c *Cache) Lookup(ctx context.Context, digests []string) (map[string]evidence.Evidence, error) {
	if len(digests) == 0 {
		return map[string]evidence.Evidence{}, nil
	}
	keys := make([]string, len(digests))
	for i, d := range digests {
		keys[i] = keyPrefix + d
	}
	rctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	vals, err := c.rdb.MGet(rctx, keys...).Result()
	cancel()
	if err != nil {
		c.failed("read", err)
		return c.store.Lookup(ctx, digests)
	}
	c.recovered()
	out := make(map[string]evidence.Evidence, len(digests))
	var missing []string
	for i, v := range vals {
		s, ok := v.(string)
		var ev evidence.Evidence
		if !ok || json.Unmarshal([]byte(s), &ev) != nil {
			missing = append(missing, digests[i])
			continue
		}
		if !ev.Empty() {
			out[digests[i]] = ev
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	found, err := c.store.Lookup(ctx, missing)
	if err != nil {
		return nil, err
	}
	pipe := c.rdb.Pipeline()
	for _, d := range missing {
		ev := found[d] // the zero Evidence records "none"
		b, err := json.Marshal(ev)
		if err != nil {
			continue
		}
		pipe.Set(ctx, keyPrefix+d, b, c.opts.TTL)
		if !ev.Empty() {
			out[d] = ev
		}
	}
	wctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	if _, err := pipe.Exec(wctx); err != nil {
		c.failed("write", err)
	}
	cancel()
	return out, nil
}

// Invalidate forgets digests in Redis and tells every replica, once the
// evidence is committed. The keys are deleted again a moment later: a
// replica that read the store just before the commit may have written the
// old evidence back in between.
func (c *Cache) Invalidate(ctx context.Context, digests ...string) {
	if len(digests) == 0 {
		return
	}
	keys := make([]string, len(digests))
	for i, d := range digests {
		keys[i] = keyPrefix + d
	}
	ctx = context.WithoutCancel(ctx)
	rctx, cancel := context.WithTimeout(ctx, 4*c.opts.Timeout)
	defer cancel()
	pipe := c.rdb.Pipeline()
	pipe.Del(rctx, keys...)
	pipe.Publish(rctx, Channel, strings.Join(digests, ","))
	if _, err := pipe.Exec(rctx); err != nil {
		c.failed("invalidate", err)
	}
	time.AfterFunc(500*time.Millisecond, func() {
		rctx, cancel := context.WithTimeout(ctx, 4*c.opts.Timeout)
		defer cancel()
		c.rdb.Del(rctx, keys...)
	})
}

// Subscribe calls forget with the digests any replica changed, until ctx
// ends, reconnecting after failures. Between a failure and the reconnect a
// change can be missed here; the store's own change feed (PostgreSQL
// LISTEN) keeps each replica's in-process cache exact regardless.
func (c *Cache) Subscribe(ctx context.Context, forget func(digests ...string)) {
	for ctx.Err() == nil {
		ps := c.rdb.Subscribe(ctx, Channel)
		if _, err := ps.Receive(ctx); err == nil {
			c.opts.Logger.Info("listening for evidence changes on Redis", "channel", Channel)
			for {
				msg, err := ps.ReceiveMessage(ctx)
				if err != nil {
					break
				}
				forget(strings.Split(msg.Payload, ",")...)
			}
		} else if ctx.Err() == nil {
			c.failed("subscribe", err)
		}
		ps.Close()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (c *Cache) failed(op string, err error) {
	if !c.down.Swap(true) {
		c.opts.Logger.Warn("redis unavailable; evidence comes from the store", "op", op, "error", err)
	}
}

func (c *Cache) recovered() {
	if c.down.Swap(false) {
		c.opts.Logger.Info("redis available again")
	}
}
