package server

import (
	"hash/maphash"
	"sync"
)

// ipLimiter counts concurrent requests per IP address.
type ipLimiter struct {
	max    int
	seed   maphash.Seed
	shards [memShards]struct {
		mu sync.Mutex
		m  map[string]int
	}
}

func (l *ipLimiter) init(max int) {
	l.max = max
	l.seed = maphash.MakeSeed()
	for i := range l.shards {
		l.shards[i].m = make(map[string]int)
	}
}

func (l *ipLimiter) acquire(ip string) bool {
	if l.max <= 0 {
		return true
	}
	sh := &l.shards[maphash.String(l.seed, ip)%memShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[ip] >= l.max {
		return false
	}
	sh.m[ip]++
	return true
}

func (l *ipLimiter) release(ip string) {
	if l.max <= 0 {
		return
	}
	sh := &l.shards[maphash.String(l.seed, ip)%memShards]
	sh.mu.Lock()
	if sh.m[ip] <= 1 {
		delete(sh.m, ip)
	} else {
		sh.m[ip]--
	}
	sh.mu.Unlock()
}
