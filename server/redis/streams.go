package redis

import (
	"errors"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// streamTable is the streams this node reads for its sessions, by name
// (a channel or pattern).
type streamTable struct {
	mu sync.Mutex
	m  map[string]*stream
}

func (t *streamTable) init() { t.m = make(map[string]*stream) }

// stream is a node's view of one Redis stream: a window of its newest
// entries, kept up to date by the stream's notices (each carries its
// entry), from which the node serves its sessions. Entries are contiguous
// by sequence number: a notice that does not follow the window (missed
// notices, a pub/sub reconnect) makes the node read the stream again.
type stream struct {
	e       *Engine
	name    string
	channel string // the notice channel

	// refs counts the sessions reading the stream; idle is when it fell to
	// zero. Both under the table's mu.
	refs int
	idle time.Time

	mu      sync.RWMutex
	win     []*entry // entries start+1 .. start+len(win)
	start   uint64
	bytes   int64    // of the window's entries
	lastID  string   // the id of the newest entry seen
	synced  bool     // the window follows the stream
	syncing bool     // a read of the stream is under way
	pending []*entry // notices that came while not synced
	watched map[*osession]struct{}
}

// acquire returns the stream name for a session that reads it, starting
// to watch it (subscribing to its notices) if the node did not yet.
func (t *streamTable) acquire(e *Engine, name string) *stream {
	t.mu.Lock()
	st := t.m[name]
	if st == nil {
		st = &stream{e: e, name: name, channel: e.k.notice(name), watched: make(map[*osession]struct{}), refs: 1}
		t.m[name] = st
		t.mu.Unlock()
		e.ps.subscribe(st.channel)
		return st
	}
	st.refs++
	t.mu.Unlock()
	return st
}

// release is acquire undone. A stream nobody reads is dropped by sweep
// after a while.
func (t *streamTable) release(st *stream, s *osession) {
	t.mu.Lock()
	st.refs--
	if st.refs <= 0 {
		st.idle = time.Now()
	}
	t.mu.Unlock()
	st.mu.Lock()
	delete(st.watched, s)
	st.mu.Unlock()
}

func (t *streamTable) get(name string) *stream {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[name]
}

func (t *streamTable) all() []*stream {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*stream, 0, len(t.m))
	for _, st := range t.m {
		out = append(out, st)
	}
	return out
}

// sweep stops watching the streams nobody read for idleFor.
func (t *streamTable) sweep(e *Engine, idleFor time.Duration) {
	t.mu.Lock()
	var drop []string
	for name, st := range t.m {
		if st.refs <= 0 && time.Since(st.idle) > idleFor {
			delete(t.m, name)
			drop = append(drop, st.channel)
		}
	}
	t.mu.Unlock()
	if len(drop) > 0 {
		e.ps.unsubscribe(drop...)
	}
}

// addWatcher makes the next entry wake s (if it watches then).
func (st *stream) addWatcher(s *osession) {
	st.mu.Lock()
	st.watched[s] = struct{}{}
	st.mu.Unlock()
}

// after returns the entries after c from the window, and false when the
// window does not reach back to c (the caller reads the stream). The
// slice shares the window's array (the window never writes over what it
// handed out) and is not to be appended to.
func (st *stream) after(c cursor) ([]*entry, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if !st.synced || st.syncing || c.seq < st.start {
		return nil, false
	}
	last := st.start + uint64(len(st.win))
	if c.seq >= last {
		return nil, true
	}
	es := st.win[c.seq-st.start : len(st.win) : len(st.win)]
	if !newerID(es[0].id, c.id) {
		// The window is of an earlier life of the stream (deleted when its
		// last subscriber left, its sequence numbers started again): the
		// caller reads the stream.
		return nil, false
	}
	return es, true
}

// notice adds an entry from the stream's notice channel.
func (st *stream) notice(en *entry) {
	st.mu.Lock()
	if !st.synced || st.syncing {
		st.pending = append(st.pending, en)
		st.mu.Unlock()
		return
	}
	last := st.start + uint64(len(st.win))
	switch {
	case en.seq == last+1:
		st.push(en)
	case en.seq <= last && !newerID(en.id, st.lastID):
		// Seen already (this node published it and added it at once).
		st.mu.Unlock()
		return
	case en.seq <= last:
		// The stream started again from 1 (it was deleted when its last
		// subscriber left, or Redis lost it): read it again.
		st.synced = false
		st.pending = append(st.pending[:0], en)
		st.mu.Unlock()
		st.sync()
		return
	default:
		// Notices were missed: read what is missing.
		st.pending = append(st.pending, en)
		st.mu.Unlock()
		st.sync()
		return
	}
	woken := st.takeWatched()
	st.mu.Unlock()
	for _, s := range woken {
		st.e.wake(s)
	}
}

// push appends the next entry, keeping at most MaxQueue entries and
// MaxQueueBytes (at least the newest). The entries left behind are not
// cleared: takes may still read them (see after); they go with the array
// when append moves the window to a new one. st.mu is held.
func (st *stream) push(en *entry) {
	st.win = append(st.win, en)
	st.lastID = en.id
	st.bytes += en.size()
	b := st.e.opts.Budgets
	n := 0
	for n < len(st.win)-1 && (len(st.win)-n > b.MaxQueue || b.MaxQueueBytes > 0 && st.bytes > b.MaxQueueBytes) {
		st.bytes -= st.win[n].size()
		n++
	}
	if n > 0 {
		st.win = st.win[n:]
		st.start += uint64(n)
	}
	if cap(st.win) > 2*b.MaxQueue && len(st.win) < cap(st.win)/4 {
		st.win = append([]*entry(nil), st.win...)
	}
}

// takeWatched returns the sessions to wake and forgets them. st.mu is
// held.
func (st *stream) takeWatched() []*osession {
	if len(st.watched) == 0 {
		return nil
	}
	out := make([]*osession, 0, len(st.watched))
	for s := range st.watched {
		out = append(out, s)
	}
	clear(st.watched)
	return out
}

// sync reads the stream (its end, or what follows the window) and applies
// the notices that came meanwhile, on a goroutine of its own; one at a
// time.
func (st *stream) sync() {
	st.mu.Lock()
	if st.syncing {
		st.mu.Unlock()
		return
	}
	st.syncing = true
	st.mu.Unlock()
	go st.doSync()
}

func (st *stream) doSync() {
	e := st.e
	for attempt := 1; e.ctx.Err() == nil; attempt++ {
		err := st.syncOnce()
		if err == nil {
			return
		}
		e.log.Debug("reading a stream failed", "stream", st.name, "err", err)
		select {
		case <-e.ctx.Done():
		case <-time.After(min(time.Duration(attempt)*50*time.Millisecond, time.Second)):
		}
	}
}

func (st *stream) syncOnce() error {
	e := st.e
	ctx := e.ctx
	st.mu.RLock()
	synced, lastID := st.synced, st.lastID
	last := st.start + uint64(len(st.win))
	st.mu.RUnlock()
	var fresh []*entry
	var tail *entry
	if synced {
		msgs, err := e.client.XRevRangeN(ctx, e.k.stream(st.name), "+", "("+lastID, int64(e.opts.MaxQueue)).Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return err
		}
		for j := len(msgs) - 1; j >= 0; j-- {
			en, err := streamEntry(msgs[j].ID, msgs[j].Values)
			if err != nil {
				return err
			}
			fresh = append(fresh, en)
		}
	}
	// The stream's end, to tell a stream that started again.
	msgs, err := e.client.XRevRangeN(ctx, e.k.stream(st.name), "+", "-", 1).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return err
	}
	if len(msgs) > 0 {
		if tail, err = streamEntry(msgs[0].ID, msgs[0].Values); err != nil {
			return err
		}
	}
	e.stats.reads.Add(1)

	st.mu.Lock()
	if !synced || (tail != nil && tail.seq < last) || (tail == nil && last > 0) {
		// New, or the stream started again: the window starts at its end.
		st.win, st.start, st.lastID, st.bytes = nil, 0, "0-0", 0
		if tail != nil {
			st.start, st.lastID = tail.seq, tail.id
		}
	} else {
		for _, en := range fresh {
			st.add(en)
		}
	}
	for _, en := range st.pending {
		st.add(en)
	}
	st.pending = nil
	st.synced, st.syncing = true, false
	woken := st.takeWatched()
	st.mu.Unlock()
	for _, s := range woken {
		e.wake(s)
	}
	return nil
}

// newerID reports whether stream id a comes after b.
func newerID(a, b string) bool {
	x, err1 := parseCursorID(a)
	y, err2 := parseCursorID(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return x.ms > y.ms || x.ms == y.ms && x.n > y.n
}

// add appends en if it follows the window; if it leaves a gap the window
// restarts at en (what is between is read from Redis by the sessions
// that need it). st.mu is held.
func (st *stream) add(en *entry) {
	last := st.start + uint64(len(st.win))
	switch {
	case en.seq <= last:
	case en.seq == last+1:
		st.push(en)
	default:
		st.win, st.bytes = nil, 0 // takes may still read the old one
		st.start = en.seq - 1
		st.push(en)
	}
}

// resync reads every stream again (after a pub/sub reconnect).
func (t *streamTable) resync() {
	for _, st := range t.all() {
		st.sync()
	}
}
