package keyrate

import (
	"fmt"
	"testing"
	"time"
)

func TestAllow(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		name      string
		perSecond float64
		burst     int
		takes     int // at now, for one key
		allowed   int
		wait      time.Duration // told to the first refused
	}{
		{"off", 0, 1, 50, 50, 0},
		{"burst then refused", 2, 3, 5, 3, 500 * time.Millisecond},
		{"burst at least one", 1, 0, 3, 1, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(tc.perSecond, tc.burst)
			allowed := 0
			var wait time.Duration
			for range tc.takes {
				ok, d := l.Allow("a", now)
				if ok {
					allowed++
				} else if wait == 0 {
					wait = d
				}
			}
			if allowed != tc.allowed || wait != tc.wait {
				t.Errorf("allowed %d (first refusal: wait %v), want %d (%v)", allowed, wait, tc.allowed, tc.wait)
			}
			if ok, _ := l.Allow("b", now); !ok {
				t.Error("another key refused: buckets are per key")
			}
		})
	}
}

// TestRefillAndForget: a bucket refills at the rate, and full buckets are
// forgotten as new keys come, so that the map holds the recent keys only.
func TestRefillAndForget(t *testing.T) {
	l := New(10, 1)
	now := time.Unix(1000, 0)
	if ok, _ := l.Allow("a", now); !ok {
		t.Fatal("first token refused")
	}
	if ok, _ := l.Allow("a", now.Add(50*time.Millisecond)); ok {
		t.Error("second token within 100 ms allowed")
	}
	if ok, _ := l.Allow("a", now.Add(100*time.Millisecond)); !ok {
		t.Error("token after 100 ms refused")
	}
	for i := range 100_000 {
		l.Allow(fmt.Sprint(i), now.Add(time.Duration(i)*time.Second))
	}
	if n := l.Len(); n > 4*shards*minSweep {
		t.Errorf("%d buckets kept for keys that all refilled, want at most %d", n, 4*shards*minSweep)
	}
}
