package ratelimit_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vouch-dev/vouch/ratelimit"
	"github.com/vouch-dev/vouch/rediscache"
	"github.com/vouch-dev/vouch/test/redistest"
)

func TestMemory(t *testing.T) {
	m := ratelimit.NewMemory(3)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if ok, _ := m.Allow(ctx, "ci"); !ok {
			t.Fatalf("request %d refused", i+1)
		}
	}
	ok, retry := m.Allow(ctx, "ci")
	if ok || retry <= 0 || retry > time.Minute {
		t.Errorf("4th request: ok=%v retry=%s", ok, retry)
	}
	if ok, _ := m.Allow(ctx, "other"); !ok {
		t.Error("another token shares the count")
	}
}

func TestRedisSharesTheCountAndSurvivesRedis(t *testing.T) {
	srv := redistest.ForTest(t)
	opts, _ := redis.ParseURL(srv.URL())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := ratelimit.NewRedis(redis.NewClient(opts), 5, log)
	b := ratelimit.NewRedis(redis.NewClient(opts), 5, log)
	ctx := context.Background()
	allowed := 0
	for key := 0; ; key++ { // again, should a minute begin in the middle
		start := time.Now().Truncate(ratelimit.Window)
		allowed = 0
		for i := 0; i < 8; i++ {
			l := a
			if i%2 == 1 {
				l = b
			}
			if ok, _ := l.Allow(ctx, fmt.Sprint("token-", key)); ok {
				allowed++
			}
		}
		if time.Now().Truncate(ratelimit.Window).Equal(start) {
			break
		}
	}
	if allowed != 5 {
		t.Errorf("%d of 8 requests over two replicas allowed, want 5", allowed)
	}
	srv.Kill()
	if ok, _ := a.Allow(ctx, "after"); !ok {
		t.Error("with Redis down, a request was refused")
	}
}

// TestRedisHung: with Redis hung (SIGSTOP), one request waits for the
// deadline and the limiter counts in memory for a while, without asking
// Redis again.
func TestRedisHung(t *testing.T) {
	l, sent := hung(t, 100)
	ctx := context.Background()
	before := sent.n.Load()
	start := time.Now()
	for i := 0; i < 20; i++ {
		if ok, _ := l.Allow(ctx, "ci"); !ok {
			t.Fatalf("request %d refused with Redis hung", i)
		}
	}
	took := time.Since(start)
	if n := sent.n.Load() - before; n != 1 {
		t.Errorf("%d transactions sent to a hung Redis for 20 requests, want 1", n)
	}
	// Before, each request waited for go-redis's 5 s read timeout.
	if took > time.Second {
		t.Errorf("20 requests with Redis hung took %s", took)
	}
	t.Logf("20 requests with Redis hung: %s", took)
}

// TestRedisHungOneProbe: once the pause after a failure is over, one of
// many concurrent requests probes the hung Redis; the others count in
// memory without asking it.
func TestRedisHungOneProbe(t *testing.T) {
	l, sent := hung(t, 1000)
	ctx := context.Background()
	l.Allow(ctx, "ci") // times out and opens the breaker
	time.Sleep(1100 * time.Millisecond)
	before := sent.n.Load()
	const requests = 20
	var wg sync.WaitGroup
	var refused atomic.Int64
	start := make(chan struct{})
	for range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if ok, _ := l.Allow(ctx, "ci"); !ok {
				refused.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := refused.Load(); n != 0 {
		t.Errorf("%d of %d requests refused with Redis hung", n, requests)
	}
	// Before, each of them sent its transaction and waited for the deadline.
	// A second probe only if the run stalled for a whole pause.
	if n := sent.n.Load() - before; n < 1 || n > 2 {
		t.Errorf("%d transactions sent to a hung Redis by %d concurrent requests after the pause, want 1 (the probe)", n, requests)
	}
}

// hung returns a limiter of limit requests per minute that has counted one
// request in Redis, and what its client sends; Redis is hung (SIGSTOP)
// until the test ends.
func hung(t *testing.T, limit int) (*ratelimit.Redis, *calls) {
	t.Helper()
	srv := redistest.ForTest(t)
	opts, err := rediscache.ClientOptions(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	sent := &calls{}
	rdb.AddHook(sent)
	l := ratelimit.NewRedis(rdb, limit, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if ok, _ := l.Allow(context.Background(), "ci"); !ok {
		t.Fatal("refused")
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Resume() })
	return l, sent
}

// calls counts the pipelines and commands a client sends.
type calls struct{ n atomic.Int64 }

func (c *calls) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *calls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *calls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(1); return next(ctx, cmds) }
}
