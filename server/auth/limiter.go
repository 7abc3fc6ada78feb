package auth

import (
	"sync"
	"time"
)

// FailureLimiter counts failed logins per key (a user name, an IP
// address) in a sliding window and blocks a key that failed too often.
type FailureLimiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu       sync.Mutex
	failures map[string][]time.Time
}

// NewFailureLimiter blocks a key after max failures within window.
func NewFailureLimiter(max int, window time.Duration) *FailureLimiter {
	return &FailureLimiter{max: max, window: window, now: time.Now, failures: map[string][]time.Time{}}
}

// Blocked reports whether key must wait, and until when.
func (l *FailureLimiter) Blocked(key string) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fs := l.prune(key)
	if len(fs) >= l.max {
		// Blocked until enough failures leave the window.
		return true, fs[len(fs)-l.max].Add(l.window)
	}
	return false, time.Time{}
}

// Fail records a failure of key.
func (l *FailureLimiter) Fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures[key] = append(l.prune(key), l.now())
	if len(l.failures) > 100000 {
		// Bound memory under a flood of distinct keys: forget the oldest half.
		for k := range l.failures {
			delete(l.failures, k)
			if len(l.failures) <= 50000 {
				break
			}
		}
	}
}

// Reset forgets the failures of key (after a success).
func (l *FailureLimiter) Reset(key string) {
	l.mu.Lock()
	delete(l.failures, key)
	l.mu.Unlock()
}

func (l *FailureLimiter) prune(key string) []time.Time {
	fs := l.failures[key]
	cut := l.now().Add(-l.window)
	i := 0
	for i < len(fs) && fs[i].Before(cut) {
		i++
	}
	if i == len(fs) {
		delete(l.failures, key)
		return nil
	}
	fs = fs[i:]
	l.failures[key] = fs
	return fs
}
