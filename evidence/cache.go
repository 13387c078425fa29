package evidence

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/journal"
)

// Lookuper finds the evidence for digests.
type Lookuper interface {
	Lookup(ctx context.Context, digests []string) (map[string]Evidence, error)
}

// storeTimeoutWhileDown bounds a store lookup while the change feed is
// down, so that a hanging database leaves time to answer from the cache.
const storeTimeoutWhileDown = time.Second

// DefaultCacheSize is the default number of digests a Cache holds.
const DefaultCacheSize = 100000

// Cache is a bounded in-process cache of Lookup results, negative ones
// included (a digest without evidence is remembered too).
//
// A cache is only as good as what it hears about changes. Writes through
// this process's journal invalidate it once committed (WrapJournal). Writes
// by other processes must arrive through a change feed that calls
// Invalidate for each changed digest, and SetLive(false) while the feed is
// down: a cache that is not live asks the store first, and answers from
// what it held only when the store fails too — the feed and the store are
// usually down together, and then nobody can change evidence either, so
// admissions go on from the cache through a database outage. The admission
// webhook re-checks every denial against the store, so a stale entry can
// never deny a change; it can at most admit one for the few milliseconds a
// change takes to reach a replica. In front of a store that may itself
// answer stale (a shared Redis cache), SetMaxAge bounds how long an answer
// is kept.
type Cache struct {
	store  Lookuper
	max    int
	maxAge time.Duration // 0: entries live until invalidated
	epoch  time.Time     // entries are born at a monotonic offset from it

	mu      sync.Mutex
	items   map[string]entry
	flights map[string]*flight // store lookups under way, by digest
	gen     uint64             // advanced by every invalidation, to drop fills that raced one
	live    bool
}

// entry is a cached answer and when it was filled.
type entry struct {
	ev   Evidence
	born time.Duration
}

// flight is one store lookup that concurrent misses of the same digests
// wait for instead of asking the store again.
type flight struct {
	done  chan struct{}
	found map[string]Evidence // set before done is closed
	err   error
}

// NewCache returns a cache of at most size digests in front of store. A
// cache that starts not live serves nothing until SetLive(true).
func NewCache(store Lookuper, size int, live bool) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &Cache{store: store, max: size, epoch: time.Now(), items: map[string]entry{}, flights: map[string]*flight{}, live: live}
}

// SetMaxAge makes lookups ask the store again for entries older than age
// (0, the default: never). Call it before the cache is used.
func (c *Cache) SetMaxAge(age time.Duration) { c.maxAge = age }

// Lookup implements Lookuper. The returned evidence is shared: callers must
// not modify it. Concurrent misses of a digest are coalesced into one store
// lookup; a lookup that starts after an Invalidate of a digest never joins
// one that started before it.
func (c *Cache) Lookup(ctx context.Context, digests []string) (map[string]Evidence, error) {
	out := make(map[string]Evidence, len(digests))
	var (
		missing []string // looked up here
		waits   []*flight
		own     *flight
	)
	var now time.Duration
	if c.maxAge > 0 {
		now = time.Since(c.epoch)
	}
	c.mu.Lock()
	live, gen := c.live, c.gen
	if live {
		for _, d := range digests {
			if e, ok := c.items[d]; ok && (c.maxAge == 0 || now-e.born <= c.maxAge) {
				if !e.ev.Empty() {
					out[d] = e.ev
				}
				continue
			}
			if f, ok := c.flights[d]; ok {
				if !slices.Contains(waits, f) {
					waits = append(waits, f)
				}
				continue
			}
			if own == nil {
				own = &flight{done: make(chan struct{})}
			}
			c.flights[d] = own
			missing = append(missing, d)
		}
	}
	c.mu.Unlock()
	if !live {
		sctx, cancel := context.WithTimeout(ctx, storeTimeoutWhileDown)
		found, err := c.store.Lookup(sctx, digests)
		cancel()
		if err != nil {
			if held, ok := c.held(digests); ok {
				return held, nil
			}
		}
		return found, err
	}
	if own != nil {
		own.found, own.err = c.store.Lookup(ctx, missing)
		c.mu.Lock()
		for _, d := range missing {
			if c.flights[d] == own {
				delete(c.flights, d)
			}
		}
		if own.err == nil && c.live && c.gen == gen {
			if len(c.items)+len(missing) > c.max {
				clear(c.items) // crude, but rare: the working set of a cluster is small
			}
			for _, d := range missing {
				c.items[d] = entry{own.found[d], now} // the zero Evidence for none; aged from before the lookup
			}
		}
		c.mu.Unlock()
		close(own.done)
		if own.err != nil {
			return nil, own.err
		}
		for d, ev := range own.found {
			out[d] = ev
		}
	}
	for _, f := range waits {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.err != nil {
			// The flight failed, perhaps only because its caller gave up:
			// ask the store for this caller.
			return c.retry(ctx, digests, out)
		}
		for _, d := range digests {
			if ev, ok := f.found[d]; ok {
				out[d] = ev
			}
		}
	}
	return out, nil
}

// retry completes out from the store after a coalesced lookup failed.
func (c *Cache) retry(ctx context.Context, digests []string, out map[string]Evidence) (map[string]Evidence, error) {
	var rest []string
	for _, d := range digests {
		if _, ok := out[d]; !ok {
			rest = append(rest, d)
		}
	}
	found, err := c.store.Lookup(ctx, rest)
	if err != nil {
		return nil, err
	}
	maps.Copy(out, found)
	return out, nil
}

// held answers from the entries kept, if it holds every digest.
func (c *Cache) held(digests []string) (map[string]Evidence, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]Evidence, len(digests))
	for _, d := range digests {
		e, ok := c.items[d]
		if !ok {
			return nil, false
		}
		if !e.ev.Empty() {
			out[d] = e.ev
		}
	}
	return out, true
}

// Invalidate forgets the given digests.
func (c *Cache) Invalidate(digests ...string) {
	c.mu.Lock()
	c.gen++
	for _, d := range digests {
		delete(c.items, d)
		delete(c.flights, d) // lookups from now on must not join one that began before
	}
	c.mu.Unlock()
}

// SetLive turns the cache on or off. Turned on, it starts empty, since
// changes may have been missed while the feed was down; turned off, it
// keeps what it holds for when the store fails too, and adds nothing.
func (c *Cache) SetLive(live bool) {
	c.mu.Lock()
	c.gen++
	clear(c.flights)
	if live && !c.live {
		clear(c.items)
	}
	c.live = live
	c.mu.Unlock()
}

// WrapJournal returns store with AppendBatch invalidating, before it
// returns, the digests of every evidence entry in the batch, so that
// evidence is visible to the next lookup as soon as its append resolves.
func (c *Cache) WrapJournal(store journal.Store) journal.Store {
	return InvalidateAfter(store, func(digests []string) { c.Invalidate(digests...) })
}

// InvalidateAfter returns store with AppendBatch calling forget, before it
// returns, with the digests of the evidence entries of the batch.
func InvalidateAfter(store journal.Store, forget func(digests []string)) journal.Store {
	return invalidating{Store: store, forget: forget}
}

type invalidating struct {
	journal.Store
	forget func(digests []string)
}

func (s invalidating) AppendBatch(ctx context.Context, entries []journal.Entry) ([]journal.Appended, error) {
	res, err := s.Store.AppendBatch(ctx, entries)
	// Even after an error the batch may have committed (a lost COMMIT reply).
	var digests []string
	for _, e := range entries {
		if d := EntryDigest(e); d != "" {
			digests = append(digests, d)
		}
	}
	if len(digests) > 0 {
		s.forget(digests)
	}
	return res, err
}

// EntryDigest returns the digest an evidence entry is about, or "" for
// other entries.
func EntryDigest(e journal.Entry) string {
	switch e.Kind {
	case KindArtifact, KindAttestation, KindApproval:
		var b struct {
			Digest string `json:"digest"`
		}
		if json.Unmarshal(e.Body, &b) == nil {
			return b.Digest
		}
	}
	return ""
}
