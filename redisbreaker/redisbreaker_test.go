package redisbreaker_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/redisbreaker"
)

// clock is a test clock that moves only when told, safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// newBreaker returns a breaker on a test clock.
func newBreaker(minPause, maxPause time.Duration) (*redisbreaker.Breaker, *clock) {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC).UnixNano())
	return redisbreaker.New(minPause, maxPause, c.now), c
}

func TestPauses(t *testing.T) {
	tests := []struct {
		name               string
		minPause, maxPause time.Duration
		want               []time.Duration // after the failure that opens, then after each failed probe
	}{
		{"evidence cache", time.Second, 5 * time.Second, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"rate limiter", time.Second, time.Second, []time.Duration{time.Second, time.Second, time.Second}},
		{"max below min", 2 * time.Second, time.Second, []time.Duration{2 * time.Second, 2 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, c := newBreaker(tt.minPause, tt.maxPause)
			for round := range 2 { // a success resets the pause
				if !b.Allow() || b.Open() || b.RetryIn() != 0 {
					t.Fatalf("round %d: closed breaker: Allow() = false, Open() = %v or RetryIn() = %s", round, b.Open(), b.RetryIn())
				}
				for i, want := range tt.want {
					opened, pause := b.Failure()
					if opened != (i == 0) || pause != want {
						t.Fatalf("round %d: failure %d: Failure() = %v, %s, want %v, %s", round, i, opened, pause, i == 0, want)
					}
					if got := b.RetryIn(); got != want {
						t.Errorf("round %d: failure %d: RetryIn() = %s, want %s", round, i, got, want)
					}
					c.advance(want - time.Nanosecond)
					if b.Allow() {
						t.Fatalf("round %d: failure %d: Allow() = true a nanosecond before the pause of %s ends", round, i, want)
					}
					c.advance(time.Nanosecond)
					if !b.Allow() {
						t.Fatalf("round %d: failure %d: Allow() = false once the pause of %s is over, want a probe", round, i, want)
					}
					if b.Allow() {
						t.Fatalf("round %d: failure %d: a second probe while the first is out", round, i)
					}
				}
				if !b.Success() {
					t.Fatalf("round %d: the probe's Success() = false, want the breaker closed", round)
				}
				if b.Success() {
					t.Fatalf("round %d: Success() = true on a closed breaker", round)
				}
			}
		})
	}
}

// TestOneProbe: when the pause ends under many concurrent callers, exactly
// one calls Redis; the others skip it until the probe reports.
func TestOneProbe(t *testing.T) {
	b, c := newBreaker(time.Second, 5*time.Second)
	const callers = 64
	for round := range 20 {
		_, pause := b.Failure()
		c.advance(pause)
		if n := herd(b, callers); n != 1 {
			t.Fatalf("round %d: %d of %d concurrent callers probed at the end of the pause, want 1", round, n, callers)
		}
		if n := herd(b, callers); n != 0 {
			t.Fatalf("round %d: %d more probes while the probe is out, want 0", round, n)
		}
		if round%2 == 1 {
			b.Success()
			if n := herd(b, callers); n != callers {
				t.Fatalf("round %d: %d of %d callers allowed after the probe's success, want all", round, n, callers)
			}
		}
	}
}

// herd calls b.Allow from n goroutines at once and returns how many were
// allowed.
func herd(b *redisbreaker.Breaker, n int) int {
	var allowed atomic.Int64
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			if b.Allow() {
				allowed.Add(1)
			}
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	return int(allowed.Load())
}

// TestProbeNeverReports: a probe whose caller never reports back holds the
// breaker half-open for one pause, not forever; then one more caller
// probes, and the pause does not grow for the lost probe.
func TestProbeNeverReports(t *testing.T) {
	b, c := newBreaker(time.Second, 5*time.Second)
	b.Failure()
	b.Failure() // a failed probe: the pause is 2 s
	c.advance(2 * time.Second)
	if !b.Allow() {
		t.Fatal("no probe at the end of the pause")
	}
	// The probe is lost.
	if got := b.RetryIn(); got != 2*time.Second {
		t.Errorf("RetryIn() with a probe out = %s, want 2s (the pause)", got)
	}
	c.advance(2*time.Second - time.Nanosecond)
	if n := herd(b, 16); n != 0 {
		t.Fatalf("%d probes within a pause of the lost one, want 0", n)
	}
	c.advance(time.Nanosecond)
	if n := herd(b, 16); n != 1 {
		t.Fatalf("%d probes a pause after the lost one, want 1", n)
	}
	if opened, pause := b.Failure(); opened || pause != 4*time.Second {
		t.Errorf("Failure() of the second probe = %v, %s, want false, 4s", opened, pause)
	}
	// The lost probe reports late: its success closes the breaker.
	if !b.Success() || b.Open() || !b.Allow() {
		t.Error("a late success left the breaker open")
	}
}

// TestReportsWhileOpen: a call that was in flight when the breaker opened
// reports while it is open: its success closes the breaker (Redis answers),
// its failure counts as a failed probe.
func TestReportsWhileOpen(t *testing.T) {
	b, c := newBreaker(time.Second, 5*time.Second)
	b.Failure()
	c.advance(500 * time.Millisecond)
	if opened, pause := b.Failure(); opened || pause != 2*time.Second {
		t.Errorf("Failure() while open = %v, %s, want false, 2s", opened, pause)
	}
	if got := b.RetryIn(); got != 2*time.Second {
		t.Errorf("RetryIn() = %s, want 2s from the last failure", got)
	}
	if !b.Success() || b.Open() {
		t.Error("a success while open did not close the breaker")
	}
}

// TestConcurrentUse runs every method from many goroutines, for the race
// detector, and checks the breaker still works afterwards.
func TestConcurrentUse(t *testing.T) {
	b, c := newBreaker(time.Millisecond, 5*time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				c.advance(time.Microsecond)
				if b.Allow() {
					if (g+i)%3 == 0 {
						b.Success()
					} else {
						b.Failure()
					}
				}
				b.Open()
				b.RetryIn()
			}
		}()
	}
	wg.Wait()
	b.Success()
	if !b.Allow() || b.Open() {
		t.Error("closed breaker refuses after concurrent use")
	}
}

func TestZeroClockIsTimeNow(t *testing.T) {
	b := redisbreaker.New(time.Hour, time.Hour, nil)
	b.Failure()
	if b.Allow() {
		t.Error("Allow() = true right after a failure with a pause of an hour")
	}
	if got := b.RetryIn(); got <= 59*time.Minute || got > time.Hour {
		t.Errorf("RetryIn() = %s, want about an hour", got)
	}
}

func BenchmarkAllow(b *testing.B) {
	b.Run("closed", func(b *testing.B) {
		br := redisbreaker.New(time.Second, 5*time.Second, nil)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if br.Allow() {
					br.Success()
				}
			}
		})
	})
	b.Run("open", func(b *testing.B) {
		br := redisbreaker.New(time.Hour, time.Hour, nil)
		br.Failure()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				br.Allow()
			}
		})
	})
}

func Example() {
	b := redisbreaker.New(time.Second, 5*time.Second, nil)
	call := func(err error) {
		if !b.Allow() {
			fmt.Println("skip Redis")
			return
		}
		if err != nil {
			opened, pause := b.Failure()
			fmt.Println("failed; opened:", opened, "pause:", pause)
			return
		}
		if b.Success() {
			fmt.Println("Redis answers again")
		}
	}
	call(nil)
	call(fmt.Errorf("i/o timeout"))
	call(nil)
	// Output:
	// failed; opened: true pause: 1s
	// skip Redis
}
