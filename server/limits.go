package server

import (
	"hash/maphash"
	"slices"
	"sync"
	"time"
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

// ipSessions holds the ids of the sessions created on this server from
// each IP address, for Options.MaxSessionsPerIP. A handshake reserves its
// id before any work is done for it (add); the reservation is pending
// until the session exists in the engine (created) and is dropped if the
// handshake fails (remove). A session leaves when the server learns it
// was removed (Server.removed). With an engine shared by several nodes
// another node may remove it (its disconnect or its expiry arrived
// there): an address at its limit therefore has its created sessions
// looked up in the engine, at most once a second, and those gone are
// forgotten; a pending reservation is never judged gone, so handshakes
// that arrive together cannot pass the limit. The count is per node.
// Safe for concurrent use.
type ipSessions struct {
	max    int
	seed   maphash.Seed
	shards [memShards]ipSessionShard
}

type ipSessionShard struct {
	mu sync.Mutex
	m  map[string]*ipSessionList
}

type ipSessionList struct {
	ids     []ipSession // at most max: a slice is smaller than a map
	checked time.Time
}

type ipSession struct {
	id      string
	pending bool // reserved by a handshake, not yet in the engine
}

// ipRecheck is how often the sessions of an address at its limit are
// looked up in the engine.
const ipRecheck = time.Second

func (l *ipSessions) init(max int) {
	l.max = max
	l.seed = maphash.MakeSeed()
	for i := range l.shards {
		l.shards[i].m = make(map[string]*ipSessionList)
	}
}

func (l *ipSessions) shard(ip string) *ipSessionShard {
	return &l.shards[maphash.String(l.seed, ip)%memShards]
}

// add reserves session id for ip and reports whether ip was under its
// limit. exists tells whether a created session still lives in the
// engine (called without locks held).
func (l *ipSessions) add(ip, id string, exists func(id string) bool) bool {
	if l.max <= 0 {
		return true
	}
	sh := l.shard(ip)
	sh.mu.Lock()
	list := sh.m[ip]
	if list == nil {
		list = &ipSessionList{}
		sh.m[ip] = list
	}
	if len(list.ids) < l.max {
		list.ids = append(list.ids, ipSession{id: id, pending: true})
		sh.mu.Unlock()
		return true
	}
	if time.Since(list.checked) < ipRecheck {
		sh.mu.Unlock()
		return false
	}
	list.checked = time.Now()
	var created []string
	for _, e := range list.ids {
		if !e.pending {
			created = append(created, e.id)
		}
	}
	sh.mu.Unlock()
	var gone []string
	for _, id := range created {
		if !exists(id) {
			gone = append(gone, id)
		}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	list.ids = slices.DeleteFunc(list.ids, func(e ipSession) bool { return !e.pending && slices.Contains(gone, e.id) })
	if len(list.ids) >= l.max {
		return false
	}
	list.ids = append(list.ids, ipSession{id: id, pending: true})
	return true
}

// created marks the reservation of session id for ip as a session that
// exists in the engine.
func (l *ipSessions) created(ip, id string) {
	if l.max <= 0 {
		return
	}
	sh := l.shard(ip)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if list := sh.m[ip]; list != nil {
		if i := slices.IndexFunc(list.ids, func(e ipSession) bool { return e.id == id }); i >= 0 {
			list.ids[i].pending = false
		}
	}
}

// remove forgets session id of ip, if counted here.
func (l *ipSessions) remove(ip, id string) {
	if l.max <= 0 {
		return
	}
	sh := l.shard(ip)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	list := sh.m[ip]
	if list == nil {
		return
	}
	if i := slices.IndexFunc(list.ids, func(e ipSession) bool { return e.id == id }); i >= 0 {
		list.ids = slices.Delete(list.ids, i, i+1)
	}
	if len(list.ids) == 0 {
		delete(sh.m, ip)
	}
}
