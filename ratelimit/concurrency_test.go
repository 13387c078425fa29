package ratelimit

import "testing"

func TestConcurrency(t *testing.T) {
	c := NewConcurrency(2)
	r1, ok1 := c.Acquire("a")
	r2, ok2 := c.Acquire("a")
	if !ok1 || !ok2 {
		t.Fatal("the first two requests of a key were refused")
	}
	if _, ok := c.Acquire("a"); ok {
		t.Error("a third request of a key running two was allowed")
	}
	if r, ok := c.Acquire("b"); !ok {
		t.Error("another key was refused")
	} else {
		r()
	}
	r1()
	r1() // a second release of the same request changes nothing
	if _, ok := c.Acquire("a"); !ok {
		t.Error("a request after one ended was refused")
	}
	if _, ok := c.Acquire("a"); ok {
		t.Error("a double release freed two slots")
	}
	r2()
	if len(c.running) != 1 {
		t.Errorf("running = %v, want only a's remaining request", c.running)
	}
}
