// Package rediscache shares evidence between Vouch replicas through Redis:
// a cache of evidence lookups that every replica fills and reads, and a
// pub/sub channel on which a replica that records evidence tells the others
// to forget the digest.
//
// Redis is an accelerator, never a dependency: every Redis call has a short
// deadline (ClientOptions makes go-redis honour it), any failure falls back
// to the store, and after a failure Redis is left alone for a backoff of
// one to five seconds before one call probes it again (redisbreaker), so
// that a hung Redis costs one deadline, not one per lookup.
//
// A failed invalidation never leaves a stale entry in use. Every replica
// that hears of a change (its own write through Invalidate, the pub/sub
// channel, the store's change feed through Forget) holds the digest as
// pending: lookups of a pending digest skip Redis and ask the store until
// this replica has deleted the key twice, the second time Settle later
// (against a replica that read the store just before the commit and wrote
// the old evidence back). Maintain retries the deletes until they succeed.
// Past MaxPending digests, and when a replica starts (it cannot know what
// deletes the process before it left undone), the replica bypasses Redis
// until it has deleted every key of the cache.
//
// A Redis that loses deletes it acknowledged — a failover to a replica that
// had not received them, a restart from an older save file — is another
// server: Connected, the client's OnConnect hook (Open), sees its run_id
// change on the first new connection to it, and each read asks ROLE on
// its own connection, which a pooled connection to a primary demoted
// behind one address answers as a replica; either way the replica
// bypasses Redis until every key has been deleted again.
//
// What remains: a server whose run_id Vouch cannot read (INFO refused)
// is not watched, nor one behind a proxy that switches open client
// connections to another primary; either can serve what it held until
// the entries expire (TTL). The webhook decides every denial again from
// the store, so such an entry can admit, never deny.
package rediscache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/redisbreaker"
)

// Keys and channel. KeyPrefix names the version of what is cached: v4
// entries carry change requests' payloads (v3: keyless attestations'
// signing times; v2: code reviews' payloads), which decisions read, so
// replicas of the release before, during a rolling upgrade, do not share
// theirs.
const (
	KeyPrefix = "vouch:evidence:v4:"
	Channel   = "vouch:evidence-changed"
)

// Options tune a Cache.
type Options struct {
	// TTL bounds how long an entry lives (DefaultTTL when 0).
	TTL time.Duration
	// Timeout bounds each Redis call on the decision path (DefaultTimeout
	// when 0); past it the store answers.
	Timeout time.Duration
	// MaxPending bounds the digests whose deletes are pending
	// (DefaultMaxPending when 0); past it Redis is bypassed until flushed.
	MaxPending int
	Logger     *slog.Logger
}

// Defaults.
const (
	DefaultTTL        = 10 * time.Minute
	DefaultTimeout    = 50 * time.Millisecond
	DefaultMaxPending = 10000
	// Settle is the wait before a digest's second delete.
	Settle = 500 * time.Millisecond
	// minBackoff and maxBackoff bound how long Redis is left alone after
	// a failure.
	minBackoff = time.Second
	maxBackoff = 5 * time.Second
	// batch bounds the keys of one DEL or SCAN.
	batch = 1000
)

// ClientOptions parses a redis:// or rediss:// URL into options for a
// client that fails fast: context deadlines honoured, and unless the URL
// sets them, 500 ms dial, read and write timeouts, one retry, and a second
// to wait for a pooled connection. go-redis's defaults (5 s, three retries,
// deadlines ignored) would hold an admission past the webhook's timeout.
func ClientOptions(rawURL string) (*redis.Options, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	var q url.Values
	if u, err := url.Parse(rawURL); err == nil {
		q = u.Query()
	}
	set := func(name string, d *time.Duration, v time.Duration) {
		if !q.Has(name) {
			*d = v
		}
	}
	set("dial_timeout", &opts.DialTimeout, 500*time.Millisecond)
	set("read_timeout", &opts.ReadTimeout, 500*time.Millisecond)
	set("write_timeout", &opts.WriteTimeout, 500*time.Millisecond)
	set("pool_timeout", &opts.PoolTimeout, time.Second)
	// Connections are renewed, so that none outlives a failover for long.
	set("conn_max_lifetime", &opts.ConnMaxLifetime, 5*time.Minute)
	if !q.Has("max_retries") {
		opts.MaxRetries = 1
	}
	opts.ContextTimeoutEnabled = true
	return opts, nil
}

// Cache is an evidence.Lookuper backed by Redis in front of a store.
type Cache struct {
	rdb   redis.UniversalClient
	store evidence.Lookuper
	opts  Options
	wake  chan struct{} // tells Maintain of new work
	// breaker leaves Redis alone after a failure.
	breaker *redisbreaker.Breaker

	mu       sync.Mutex
	pending  map[string]pendingDelete
	seq      uint64 // numbers Forget calls, so that an older delete does not settle a newer change
	flushing bool   // Redis bypassed until every key is deleted
	flushGen uint64 // advanced by every demand for a flush
	server   string // the run_id of the Redis server last connected to
	// said records the once-only warnings given (keys: "no run_id",
	// "no role"), and "replica" until the next flush ends.
	said map[string]bool
}

// pendingDelete is a digest whose key this replica must delete from Redis.
type pendingDelete struct {
	seq     uint64
	deleted time.Time // of the first successful delete; zero before it
}

// Open returns a cache in front of store with a client of opts (from
// ClientOptions) whose new connections check the server (Connected). The
// caller closes the client.
func Open(opts *redis.Options, store evidence.Lookuper, o Options) (*Cache, *redis.Client) {
	var c *Cache
	own := *opts
	own.OnConnect = func(ctx context.Context, cn *redis.Conn) error { return c.Connected(ctx, cn) }
	rdb := redis.NewClient(&own)
	c = New(rdb, store, o)
	return c, rdb
}

// New returns a cache using rdb in front of store. It bypasses Redis until
// Maintain, which must run, has deleted the keys a previous process may
// have left stale.
func New(rdb redis.UniversalClient, store evidence.Lookuper, opts Options) *Cache {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Cache{rdb: rdb, store: store, opts: opts, wake: make(chan struct{}, 1),
		breaker: redisbreaker.New(minBackoff, maxBackoff, time.Now),
		pending: map[string]pendingDelete{}, flushing: true, flushGen: 1, said: map[string]bool{}}
}

// Lookup implements evidence.Lookuper: what Redis holds, the rest from the
// store (and written to Redis for the other replicas). Pending digests, and
// every digest while Redis is bypassed or failing, come from the store.
func (c *Cache) Lookup(ctx context.Context, digests []string) (map[string]evidence.Evidence, error) {
	if len(digests) == 0 {
		return map[string]evidence.Evidence{}, nil
	}
	start := time.Now()
	var ask, pending []string
	c.mu.Lock()
	gen := c.flushGen
	if !c.flushing {
		for _, d := range digests {
			if _, ok := c.pending[d]; ok {
				pending = append(pending, d)
			} else {
				ask = append(ask, d)
			}
		}
	}
	c.mu.Unlock()
	if len(ask) == 0 || !c.breaker.Allow() {
		return c.store.Lookup(ctx, digests)
	}
	keys := make([]string, len(ask))
	for i, d := range ask {
		keys[i] = KeyPrefix + d
	}
	// ROLE on the same connection: a pooled connection to a primary that
	// a failover made a replica answers from what it holds now, without
	// a new connection that Connected would see.
	rctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	pipe := c.rdb.Pipeline()
	mget := pipe.MGet(rctx, keys...)
	role := pipe.Do(rctx, "ROLE")
	pipe.Exec(rctx) // each command's error is its own: a refused ROLE (ACL) is not a failed read
	cancel()
	err := mget.Err()
	if err != nil {
		c.failed(ctx, "read", err)
		return c.store.Lookup(ctx, digests)
	}
	c.recovered()
	if !c.primary(role) {
		// A demoted server's connections: the store answers. The new
		// primary is emptied once a connection to it sees its run_id
		// (writes here fail, and connections are renewed).
		c.once("replica", "a redis replica answered (a failover behind the same address?); lookups over its connections come from the store")
		return c.store.Lookup(ctx, digests)
	}
	vals := mget.Val()
	c.mu.Lock()
	changed := c.flushGen != gen // MGet may have connected to another server
	c.mu.Unlock()
	if changed {
		return c.store.Lookup(ctx, digests)
	}
	out := make(map[string]evidence.Evidence, len(digests))
	var missing []string
	for i, v := range vals {
		s, ok := v.(string)
		var ev evidence.Evidence
		if !ok || json.Unmarshal([]byte(s), &ev) != nil {
			missing = append(missing, ask[i])
			continue
		}
		if !ev.Empty() {
			out[ask[i]] = ev
		}
	}
	if len(missing)+len(pending) == 0 {
		return out, nil
	}
	asked := append(missing, pending...)
	found, err := c.store.Lookup(ctx, asked)
	if err != nil {
		return nil, err
	}
	for _, d := range asked {
		if ev, ok := found[d]; ok {
			out[d] = ev
		}
	}
	// What the store said may be older than a change heard meanwhile: not
	// written for a digest pending now, nor at all after a slow lookup,
	// which may have outlasted a change's two deletes.
	if len(missing) == 0 || time.Since(start) > Settle/2 {
		return out, nil
	}
	pipe = c.rdb.Pipeline()
	c.mu.Lock()
	for _, d := range missing {
		if _, ok := c.pending[d]; ok || c.flushing {
			continue
		}
		b, err := json.Marshal(found[d]) // the zero Evidence records "none"
		if err != nil {
			continue
		}
		pipe.Set(ctx, KeyPrefix+d, b, c.opts.TTL)
	}
	c.mu.Unlock()
	if pipe.Len() == 0 {
		return out, nil
	}
	wctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	if _, err := pipe.Exec(wctx); err != nil {
		c.failed(ctx, "write", err)
	}
	cancel()
	return out, nil
}

// Invalidate forgets digests in Redis and tells every replica, once the
// evidence is committed. Until the deletes have succeeded, this replica
// reads the digests from the store (Forget).
func (c *Cache) Invalidate(ctx context.Context, digests ...string) {
	if len(digests) == 0 {
		return
	}
	seq := c.Forget(digests...)
	if !c.breaker.Allow() {
		return // Maintain deletes them once Redis answers; the store's feed tells the replicas
	}
	keys := make([]string, len(digests))
	for i, d := range digests {
		keys[i] = KeyPrefix + d
	}
	ctx = context.WithoutCancel(ctx)
	rctx, cancel := context.WithTimeout(ctx, 4*c.opts.Timeout)
	defer cancel()
	pipe := c.rdb.Pipeline()
	pipe.Del(rctx, keys...)
	pipe.Publish(rctx, Channel, strings.Join(digests, ","))
	if _, err := pipe.Exec(rctx); err != nil {
		c.failed(ctx, "invalidate", err)
		return
	}
	c.recovered()
	done := make([]due, len(digests))
	for i, d := range digests {
		done[i] = due{d, seq}
	}
	c.deleted(done)
}

// Forget marks digests changed: this replica reads them from the store,
// not Redis, until Maintain has deleted their keys from Redis. Call it for
// every change the store's change feed announces, before the in-process
// cache forgets them. It returns the number of this change.
func (c *Cache) Forget(digests ...string) uint64 {
	c.mu.Lock()
	c.seq++
	seq := c.seq
	for _, d := range digests {
		c.pending[d] = pendingDelete{seq: seq}
	}
	if len(c.pending) > c.opts.MaxPending {
		if !c.flushing {
			c.opts.Logger.Warn("too many evidence changes wait to be deleted from redis; evidence comes from the store until the redis cache is emptied",
				"pending", len(c.pending))
		}
		clear(c.pending)
		c.flushLocked()
	}
	c.mu.Unlock()
	c.kick()
	return seq
}

// flushLocked bypasses Redis until Maintain has deleted every key. c.mu is
// held.
func (c *Cache) flushLocked() {
	c.flushing = true
	c.flushGen++
}

// kick tells Maintain of new work.
func (c *Cache) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Connected is the Redis client's OnConnect hook (Open installs it): it
// asks each new connection's server for its run_id. When that is another
// than the last — a failover, a restart, which may have lost deletes the
// server before acknowledged — lookups bypass Redis until every key of
// the cache has been deleted from the new server. A server that gives no
// run_id (an ACL without +info, some proxies) is logged and not watched;
// a connection that fails fails.
func (c *Cache) Connected(ctx context.Context, cn *redis.Conn) error {
	id, err := runID(ctx, cn)
	if errors.Is(err, errNoRunID) {
		c.once("no run_id", "redis server gives no run_id, so a failover or restart that loses deletes is not noticed", "error", err)
		return nil
	} else if err != nil {
		return err
	}
	c.mu.Lock()
	prev := c.server
	c.server = id
	c.mu.Unlock()
	if prev != "" && id != prev { // the first server is flushed since New
		c.demand("another redis server answers (a failover or restart, which may have lost deletes); evidence comes from the store until the redis cache is emptied",
			"run_id", id, "previous_run_id", prev)
	}
	return nil
}

// once logs a warning the first time only (see Cache.said).
func (c *Cache) once(key, msg string, args ...any) {
	c.mu.Lock()
	said := c.said[key]
	c.said[key] = true
	c.mu.Unlock()
	if !said {
		c.opts.Logger.Warn(msg, args...)
	}
}

// demand bypasses Redis until Maintain has emptied the cache, and logs
// why once per flush.
func (c *Cache) demand(why string, args ...any) {
	c.mu.Lock()
	was := c.flushing
	c.flushLocked()
	c.mu.Unlock()
	if !was {
		c.opts.Logger.Warn(why, args...)
	}
	c.kick()
}

var errNoRunID = errors.New("no run_id")

// runID is the run_id of the server at the other end of cn: another after
// every restart.
func runID(ctx context.Context, cn *redis.Conn) (string, error) {
	info, err := cn.Info(ctx, "server").Result()
	var refused redis.Error
	if errors.As(err, &refused) {
		return "", fmt.Errorf("%w: %w", errNoRunID, err)
	} else if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok && v != "" {
			return v, nil
		}
	}
	return "", fmt.Errorf("%w in INFO server", errNoRunID)
}

// primary reports whether a ROLE answer is a primary's ("master"); an
// answer Redis does not give (ROLE refused by ACL, a proxy) counts as one,
// and is logged once.
func (c *Cache) primary(role *redis.Cmd) bool {
	v, err := role.Slice()
	if err != nil || len(v) == 0 {
		c.once("no role", "redis does not answer ROLE, so a read from a replica after a failover is not noticed", "error", err)
		return true
	}
	r, _ := v[0].(string)
	return r != "slave" && r != "replica"
}

// Maintain deletes from Redis what Forget and New left to delete, retrying
// after failures, until ctx ends.
func (c *Cache) Maintain(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-t.C:
		}
		for {
			wait := c.maintain(ctx)
			if ctx.Err() != nil {
				return
			}
			if wait == 0 {
				continue
			}
			t.Stop()
			if wait > 0 {
				t.Reset(wait)
			}
			break
		}
	}
}

// due is a digest to delete, with the change it was marked for.
type due struct {
	digest string
	seq    uint64
}

// maintain does one round of deletes and returns when to do the next: 0 at
// once, a negative duration when nothing is left to do.
func (c *Cache) maintain(ctx context.Context) time.Duration {
	now := time.Now()
	wait := time.Duration(-1)
	var todo []due
	c.mu.Lock()
	flushing, gen := c.flushing, c.flushGen
	for d, p := range c.pending {
		if at := p.deleted.Add(Settle); !p.deleted.IsZero() && at.After(now) {
			if w := at.Sub(now); wait < 0 || w < wait {
				wait = w
			}
			continue
		}
		if len(todo) == batch {
			wait = 0
			break
		}
		todo = append(todo, due{d, p.seq})
	}
	c.mu.Unlock()
	if !flushing && len(todo) == 0 {
		return wait
	}
	if !c.breaker.Allow() {
		return c.untilRetry()
	}
	if flushing {
		if err := c.flush(ctx); err != nil {
			c.failed(ctx, "flush", err)
			return c.untilRetry()
		}
		c.mu.Lock()
		if c.flushGen == gen {
			c.flushing = false
			delete(c.said, "replica")
			c.opts.Logger.Info("redis evidence cache emptied; lookups use it again")
		}
		c.mu.Unlock()
	}
	if len(todo) > 0 {
		keys := make([]string, len(todo))
		for i, t := range todo {
			keys[i] = KeyPrefix + t.digest
		}
		rctx, cancel := context.WithTimeout(ctx, 4*c.opts.Timeout)
		err := c.rdb.Del(rctx, keys...).Err()
		cancel()
		if err != nil {
			c.failed(ctx, "invalidate", err)
			return c.untilRetry()
		}
		c.deleted(todo)
	}
	c.recovered()
	return 0
}

// flush deletes every key of the cache, all on one connection (a SCAN
// cursor means nothing on another server) to the primary that new
// connections reach (Connected); on another it fails, to be retried.
func (c *Cache) flush(ctx context.Context) error {
	cmd := redis.Cmdable(c.rdb)
	if pinned, ok := c.rdb.(interface{ Conn() *redis.Conn }); ok {
		cn := pinned.Conn()
		defer cn.Close()
		cmd = cn
		rctx, cancel := context.WithTimeout(ctx, 10*c.opts.Timeout)
		id, err := runID(rctx, cn)
		if err == nil || errors.Is(err, errNoRunID) {
			if role := cn.Do(rctx, "ROLE"); !c.primary(role) {
				err = errors.New("the connection reaches a replica: the cache is emptied on the primary")
			}
		}
		cancel()
		if err == nil {
			c.mu.Lock()
			if c.server == "" {
				c.server = id
			} else if id != c.server { // an old connection: the flush is due on the server new ones reach
				err = fmt.Errorf("the connection reaches redis %s, not %s, the server connected to last", id, c.server)
			}
			c.mu.Unlock()
		}
		if err != nil && !errors.Is(err, errNoRunID) {
			return err
		}
	}
	var cursor uint64
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*c.opts.Timeout)
		keys, next, err := cmd.Scan(rctx, cursor, KeyPrefix+"*", batch).Result()
		if err == nil && len(keys) > 0 {
			err = cmd.Del(rctx, keys...).Err()
		}
		cancel()
		if err != nil {
			return err
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// deleted records successful deletes: a digest's first starts its Settle,
// one after it ends its pending, unless the digest changed again meanwhile.
func (c *Cache) deleted(ds []due) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range ds {
		p, ok := c.pending[d.digest]
		switch {
		case !ok || p.seq != d.seq:
		case p.deleted.IsZero():
			p.deleted = now
			c.pending[d.digest] = p
		case now.Sub(p.deleted) >= Settle:
			delete(c.pending, d.digest)
		}
	}
}

// Subscribe calls forget with the digests any replica changed, until ctx
// ends, reconnecting after failures, once it has marked them with Forget.
// Between a failure and the reconnect a change can be missed here; the
// store's own change feed (PostgreSQL LISTEN) keeps each replica's
// in-process cache exact regardless.
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
				ds := strings.Split(msg.Payload, ",")
				c.Forget(ds...)
				forget(ds...)
			}
		} else if ctx.Err() == nil {
			c.failed(ctx, "subscribe", err)
		}
		ps.Close()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// Active reports whether lookups read Redis now: not while it is bypassed
// until flushed, nor while the breaker leaves it alone after a failure.
func (c *Cache) Active() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.flushing && !c.breaker.Open()
}

// untilRetry is how long the breaker leaves Redis alone.
func (c *Cache) untilRetry() time.Duration {
	return max(c.breaker.RetryIn(), 10*time.Millisecond)
}

// failed opens the breaker, or doubles its backoff, unless the call failed
// only because its caller gave up.
func (c *Cache) failed(ctx context.Context, op string, err error) {
	if ctx.Err() != nil {
		return
	}
	if opened, backoff := c.breaker.Failure(); opened {
		c.opts.Logger.Warn("redis unavailable; evidence comes from the store", "op", op, "error", err, "retry_in", backoff.String())
	}
}

func (c *Cache) recovered() {
	if c.breaker.Success() {
		c.opts.Logger.Info("redis available again")
	}
}
