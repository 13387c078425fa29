package ratelimit

import "sync"

// Concurrency bounds how many of one kind of request a key (a token) may
// have running at once: heavy streams such as journal exports, which a
// per-minute limit counts as one request however long they run.
type Concurrency struct {
	max     int
	mu      sync.Mutex
	running map[string]int
}

// NewConcurrency allows max requests at once per key.
func NewConcurrency(max int) *Concurrency {
	return &Concurrency{max: max, running: map[string]int{}}
}

// Acquire reports whether key may start one more request; if so, release
// must be called when it ends.
func (c *Concurrency) Acquire(key string) (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running[key] >= c.max {
		return nil, false
	}
	c.running[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.running[key]--; c.running[key] == 0 {
				delete(c.running, key)
			}
		})
	}, true
}

// Max is how many requests a key may have running at once.
func (c *Concurrency) Max() int { return c.max }
