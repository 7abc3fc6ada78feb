package auth

import (
	"sync"
	"time"
)

// TokenLimiter bounds the invalid tokens one client address may present:
// an address that presented Max invalid tokens within a window is refused
// without verifying anything until its window ends. Verifying an RSA or
// ECDSA signature costs tens of microseconds, so a flood of forged tokens
// is cut off cheaply.
//
// Every attempt is counted before its token is verified (Reserve) and a
// valid token gives its count back (Release), so concurrent requests from
// one address cannot get more than Max invalid tokens verified. It is safe
// for concurrent use; it remembers at most 100 000 addresses.
type TokenLimiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu sync.Mutex
	m  map[string]*tokenWindow
}

type tokenWindow struct {
	start time.Time
	n     int
}

const maxLimiterKeys = 100000

// NewTokenLimiter allows max invalid tokens per address within window
// (default 5m). max <= 0 means no limit.
func NewTokenLimiter(max int, window time.Duration) *TokenLimiter {
	if window <= 0 {
		window = 5 * time.Minute
	}
	return &TokenLimiter{max: max, window: window, now: time.Now, m: map[string]*tokenWindow{}}
}

// Reserve counts an attempt from addr and reports whether it may be
// verified. A false return is a refusal: nothing was counted.
func (l *TokenLimiter) Reserve(addr string) bool {
	if l == nil || l.max <= 0 {
		return true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.m[addr]
	if w == nil || now.Sub(w.start) >= l.window {
		if w == nil && len(l.m) >= maxLimiterKeys {
			l.prune(now)
		}
		w = &tokenWindow{start: now}
		l.m[addr] = w
	}
	if w.n >= l.max {
		return false
	}
	w.n++
	return true
}

// Release gives back the attempt Reserve counted, for a valid token.
func (l *TokenLimiter) Release(addr string) {
	if l == nil || l.max <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.m[addr]; w != nil {
		if w.n--; w.n <= 0 {
			delete(l.m, addr)
		}
	}
}

// prune forgets ended windows, and half of the others when that is not
// enough (a flood of distinct addresses must not grow memory).
func (l *TokenLimiter) prune(now time.Time) {
	for k, w := range l.m {
		if now.Sub(w.start) >= l.window {
			delete(l.m, k)
		}
	}
	for k := range l.m {
		if len(l.m) < maxLimiterKeys/2 {
			break
		}
		delete(l.m, k)
	}
}
