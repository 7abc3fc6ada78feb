// Package keyrate keeps a token bucket per key (an IP address, a user
// name) for rate limits that must not grow without bound: a bucket that
// has refilled is what a new one would be, so full buckets are forgotten
// whenever the map has doubled since the last sweep. Only keys seen
// recently are kept.
package keyrate

import (
	"hash/maphash"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// shards spreads the keys over this many locks.
const shards = 16

// minSweep is the size below which a shard is never swept.
const minSweep = 64

// Limiter is a token bucket of perSecond tokens a second and burst
// tokens per key. A Limiter with a rate of 0 or less allows everything.
// The zero Limiter allows everything too; use New. Safe for concurrent
// use.
type Limiter struct {
	limit  rate.Limit
	burst  int
	seed   maphash.Seed
	shards [shards]shard
}

type shard struct {
	mu   sync.Mutex
	m    map[string]*rate.Limiter
	next int // sweep full buckets when m grows past this
}

// New returns a Limiter of perSecond tokens a second per key, each bucket
// holding at most burst tokens (at least 1).
func New(perSecond float64, burst int) *Limiter {
	l := &Limiter{limit: rate.Limit(perSecond), burst: max(burst, 1), seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = make(map[string]*rate.Limiter)
		l.shards[i].next = minSweep
	}
	return l
}

// Allow takes a token of key's bucket at now. When there is none it
// takes nothing and returns false and how long until there is one.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	if l == nil || l.limit <= 0 {
		return true, 0
	}
	sh := &l.shards[maphash.String(l.seed, key)%shards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	lim := sh.m[key]
	if lim == nil {
		if len(sh.m) >= sh.next {
			for k, v := range sh.m {
				if v.TokensAt(now) >= float64(l.burst) {
					delete(sh.m, k)
				}
			}
			sh.next = max(minSweep, 2*len(sh.m))
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		sh.m[key] = lim
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Len returns how many buckets are kept.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
