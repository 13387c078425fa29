package ratelimit_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vouch-dev/vouch/ratelimit"
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
	if testing.Short() {
		t.Skip("Redis tests do not run with -short; without -short they fail when redis-server is missing")
	}
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
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
