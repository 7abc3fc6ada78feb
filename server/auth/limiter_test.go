package auth

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable time source for FailureLimiter.now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestLimiter(max int, window time.Duration) (*FailureLimiter, *fakeClock) {
	clock := newFakeClock()
	l := NewFailureLimiter(max, window)
	l.now = clock.now
	return l, clock
}

func TestFailureLimiter(t *testing.T) {
	const window = time.Minute
	type step struct {
		advance time.Duration
		fail    int    // failures of key "k" recorded after advancing
		reset   bool   // Reset("k") after the failures
		blocked bool   // want Blocked("k")
		until   string // want the end of the block, as an offset from the start ("" = not checked)
	}
	type testCase struct {
		name  string
		max   int
		steps []step
	}
	for _, tc := range []testCase{
		{name: "below max is not blocked", max: 3, steps: []step{
			{fail: 2, blocked: false},
		}},
		{name: "blocked at max until the first failure leaves the window", max: 3, steps: []step{
			{fail: 3, blocked: true, until: "1m0s"},
			{advance: 59 * time.Second, blocked: true},
			{advance: 2 * time.Second, blocked: false},
		}},
		{name: "sliding window: failures spread out", max: 3, steps: []step{
			{fail: 1},
			{advance: 30 * time.Second, fail: 1},
			{advance: 20 * time.Second, fail: 1, blocked: true, until: "1m0s"},
			// The first failure expires at 60s; two remain.
			{advance: 11 * time.Second, blocked: false},
			{fail: 1, blocked: true, until: "1m30s"},
			{advance: 30 * time.Second, blocked: false},
		}},
		{name: "old failures do not count", max: 2, steps: []step{
			{fail: 1},
			{advance: 2 * time.Minute, fail: 1, blocked: false},
		}},
		{name: "reset unblocks", max: 2, steps: []step{
			{fail: 2, blocked: true},
			{reset: true, blocked: false},
			{fail: 1, blocked: false},
			{fail: 1, blocked: true},
		}},
		{name: "until counts failures beyond max", max: 2, steps: []step{
			// Failures at 0s, 10s and 20s: the key stays blocked until
			// fewer than max remain, that is until the one at 10s
			// leaves the window (70s), not the one at 0s (60s).
			{fail: 1},
			{advance: 10 * time.Second, fail: 1, blocked: true, until: "1m0s"},
			{advance: 10 * time.Second, fail: 1, blocked: true, until: "1m10s"},
			{advance: 41 * time.Second, blocked: true},
			{advance: 10 * time.Second, blocked: false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, clock := newTestLimiter(tc.max, window)
			start := clock.now()
			for i, s := range tc.steps {
				clock.advance(s.advance)
				for range s.fail {
					l.Fail("k")
				}
				if s.reset {
					l.Reset("k")
				}
				blocked, until := l.Blocked("k")
				if blocked != s.blocked {
					t.Fatalf("step %d (at %v): Blocked = %v, want %v", i, clock.now().Sub(start), blocked, s.blocked)
				}
				if !blocked && !until.IsZero() {
					t.Errorf("step %d: not blocked but until = %v", i, until)
				}
				if s.until != "" {
					if got := until.Sub(start).String(); got != s.until {
						t.Errorf("step %d: blocked until start+%s, want start+%s", i, got, s.until)
					}
				}
			}
		})
	}
}

func TestFailureLimiterKeysAreIndependent(t *testing.T) {
	l, _ := newTestLimiter(2, time.Minute)
	l.Fail("a")
	l.Fail("a")
	l.Fail("b")
	if blocked, _ := l.Blocked("a"); !blocked {
		t.Error("a not blocked after 2 failures")
	}
	if blocked, _ := l.Blocked("b"); blocked {
		t.Error("b blocked after 1 failure")
	}
	if blocked, _ := l.Blocked("c"); blocked {
		t.Error("c blocked without failures")
	}
	l.Reset("a")
	l.Reset("never-failed") // harmless
	if blocked, _ := l.Blocked("a"); blocked {
		t.Error("a still blocked after Reset")
	}
}

func TestFailureLimiterConcurrent(t *testing.T) {
	l := NewFailureLimiter(1000, time.Minute)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			key := "k" + string(rune('0'+g%2))
			for range 100 {
				l.Fail(key)
				l.Blocked(key)
			}
			l.Reset("other")
		})
	}
	wg.Wait()
	for _, k := range []string{"k0", "k1"} {
		l.mu.Lock()
		n := len(l.failures[k])
		l.mu.Unlock()
		if n != 400 {
			t.Errorf("%s has %d failures recorded, want 400", k, n)
		}
	}
}
