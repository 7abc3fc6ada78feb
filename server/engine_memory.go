package server

import (
	"cmp"
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

const memShards = 64

var (
	_ Engine           = (*MemoryEngine)(nil)
	_ SessionLister    = (*MemoryEngine)(nil)
	_ SubscriberLister = (*MemoryEngine)(nil)
	_ Historian        = (*MemoryEngine)(nil)
)

// MemoryEngineOptions configures NewMemoryEngine.
type MemoryEngineOptions struct {
	// Budgets bound the queues and histories (zero fields: defaults).
	// MaxQueuedBytes counts each message once however many queues hold
	// it: the queues share one copy.
	Budgets
	// SweepInterval is how often expired sessions are looked for. Zero
	// means 997 ms (CometD's period).
	SweepInterval time.Duration
	// History keeps the channel histories. Default: a MemoryHistory
	// bounded by Budgets.MaxHistoryChannels; the bolthistory package
	// keeps them on disk. The engine closes it.
	History HistoryStore
}

// MemoryEngine is the in-process Engine. Sessions and channel subscriber
// lists are kept in sharded maps; a publish reads an immutable snapshot of
// each matching subscriber list, so publishers never block each other or
// subscribers beyond a per-shard read lock.
type MemoryEngine struct {
	opts     MemoryEngineOptions
	seed     maphash.Seed
	sessions [memShards]memSessionShard
	channels [memShards]memChannelShard
	history  HistoryStore
	hlocks   historyLocks
	count    atomic.Int64
	hooks    EngineHooks
	// removed holds, for a while, the ids of sessions destroyed while a
	// Take watched them (to unix nanoseconds): their next Take says
	// ErrSessionRemoved.
	removed sync.Map
	stop    chan struct{}
	done    chan struct{}
	closed  atomic.Bool

	// queued is the bytes of the messages held by any queue, each counted
	// once (see memPayload); shedding is set while one goroutine brings
	// it back under Budgets.MaxQueuedBytes.
	queued   atomic.Int64
	shedding atomic.Bool
}

type memSessionShard struct {
	mu sync.RWMutex
	m  map[string]*memSession
}

type memChannelShard struct {
	mu sync.RWMutex
	m  map[string]*memChannel
}

// memChannel is the subscriber list of one channel name or pattern.
// Publishers read an immutable snapshot; a change only marks it stale and
// the next publish rebuilds it once, so 10 000 subscribes cost O(n), not
// a copy of the whole list each.
type memChannel struct {
	mu    sync.Mutex
	set   map[*memSession]struct{}
	snap  atomic.Pointer[[]*memSession]
	stale atomic.Bool
}

// snapshot returns the current subscribers, rebuilding a stale list.
func (c *memChannel) snapshot() []*memSession {
	if c.stale.Load() {
		c.mu.Lock()
		if c.stale.Load() {
			s := make([]*memSession, 0, len(c.set))
			for ms := range c.set {
				s = append(s, ms)
			}
			c.snap.Store(&s)
			c.stale.Store(false)
		}
		c.mu.Unlock()
	}
	if p := c.snap.Load(); p != nil {
		return *p
	}
	return nil
}

// memPayload is a published message as the queues hold it: one for all
// the queues it went to, so that its bytes count once in the engine's
// total while any queue holds it.
type memPayload struct {
	p    *Payload
	refs atomic.Int32 // queues holding it
}

func (mp *memPayload) size() int64 { return int64(len(mp.p.JSON)) }

// enqueueHold is the count a payload starts with while it is being
// queued: no take can bring it to zero meanwhile, and the publisher
// replaces it with the number of queues it went to once, instead of an
// atomic add per queue.
const enqueueHold = 1 << 30

// hold starts queueing mp: its bytes count until release.
func (e *MemoryEngine) hold(mp *memPayload) {
	mp.refs.Store(enqueueHold)
	e.queued.Add(mp.size())
}

// release ends queueing mp, which went to n queues.
func (e *MemoryEngine) release(mp *memPayload, n int) {
	if mp.refs.Add(int32(n)-enqueueHold) == 0 {
		e.queued.Add(-mp.size())
	}
}

// unref counts one queue less holding mp: the last takes its bytes off.
func (e *MemoryEngine) unref(mp *memPayload) {
	if mp.refs.Add(-1) == 0 {
		e.queued.Add(-mp.size())
	}
}

// queued is a message in a session queue with its sequence number.
type queued struct {
	seq uint64
	mp  *memPayload
}

// drops counts the messages one enqueue dropped, by reason.
type drops struct{ length, bytes int }

func (d *drops) add(o drops) { d.length += o.length; d.bytes += o.bytes }

type memSession struct {
	info    *SessionInfo
	expires atomic.Int64 // unix nanoseconds
	// deadline is the Deadline SetDeadline gave, if any.
	deadline DeadlineOverride

	mu      sync.Mutex
	queue   []queued
	head    int    // queue[head:] are pending
	seq     uint64 // sequence number of the newest queued message
	bytes   int64  // of the pending messages
	dropped int
	subs    []string // a slice: most sessions have a few, and a map costs 200+ bytes
	closed  bool
	// watch is set by a Take with Watch that found nothing: the next
	// enqueue (or the session's end) calls the Ready hook and clears it.
	watch bool
}

// NewMemoryEngine returns an in-memory Engine.
func NewMemoryEngine(opts MemoryEngineOptions) *MemoryEngine {
	opts.Budgets = opts.Budgets.WithDefaults()
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = 997 * time.Millisecond
	}
	e := &MemoryEngine{opts: opts, seed: maphash.MakeSeed(), stop: make(chan struct{}), done: make(chan struct{})}
	for i := range e.sessions {
		e.sessions[i].m = make(map[string]*memSession)
		e.channels[i].m = make(map[string]*memChannel)
	}
	e.history = opts.History
	if e.history == nil {
		e.history = NewMemoryHistory(opts.MaxHistoryChannels)
	}
	return e
}

func (e *MemoryEngine) shard(key string) int {
	return int(maphash.String(e.seed, key) % memShards)
}

// Start implements Engine.
func (e *MemoryEngine) Start(hooks EngineHooks) error {
	e.hooks = hooks
	if err := e.history.Start(e.report); err != nil {
		return err
	}
	go e.sweeper()
	return nil
}

// Close implements Engine.
func (e *MemoryEngine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	close(e.stop)
	<-e.done
	herr := e.history.Close()
	for i := range e.sessions {
		sh := &e.sessions[i]
		sh.mu.RLock()
		for _, s := range sh.m {
			s.mu.Lock()
			s.closed = true
			watched := s.watch
			s.watch = false
			s.mu.Unlock()
			if watched {
				e.ready(s.info.ID)
			}
		}
		sh.mu.RUnlock()
	}
	return herr
}

func (e *MemoryEngine) sweeper() {
	defer close(e.done)
	t := time.NewTicker(e.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case now := <-t.C:
			e.sweep(now)
		}
	}
}

func (e *MemoryEngine) sweep(now time.Time) {
	n := now.UnixNano()
	var expired []string
	for i := range e.sessions {
		sh := &e.sessions[i]
		sh.mu.RLock()
		for id, s := range sh.m {
			if x := s.expires.Load(); x > 0 && x < n {
				expired = append(expired, id)
			}
		}
		sh.mu.RUnlock()
	}
	for _, id := range expired {
		if rs := e.destroy(id, n); rs != nil && e.hooks.Expired != nil {
			e.hooks.Expired(rs)
		}
	}
	// Forget removals no Take asked about within a minute.
	e.removed.Range(func(k, v any) bool {
		if v.(int64) < n-int64(time.Minute) {
			e.removed.Delete(k)
		}
		return true
	})
}

func (e *MemoryEngine) lookup(id string) *memSession {
	sh := &e.sessions[e.shard(id)]
	sh.mu.RLock()
	s := sh.m[id]
	sh.mu.RUnlock()
	return s
}

// CreateSession implements Engine.
func (e *MemoryEngine) CreateSession(_ context.Context, info *SessionInfo) error {
	if e.closed.Load() {
		return ErrEngineClosed
	}
	s := &memSession{info: info}
	sh := &e.sessions[e.shard(info.ID)]
	sh.mu.Lock()
	sh.m[info.ID] = s
	sh.mu.Unlock()
	e.count.Add(1)
	return nil
}

// Session implements Engine.
func (e *MemoryEngine) Session(_ context.Context, id string) (*SessionInfo, bool, error) {
	if s := e.lookup(id); s != nil {
		return s.deadline.Apply(s.info), true, nil
	}
	return nil, false, nil
}

// DestroySession implements Engine.
func (e *MemoryEngine) DestroySession(_ context.Context, id string) (*RemovedSession, error) {
	return e.destroy(id, 0), nil
}

// destroy removes the session; with onlyExpiredBefore > 0 it removes it
// only if it is still expired at that time (a connect may have arrived).
func (e *MemoryEngine) destroy(id string, onlyExpiredBefore int64) *RemovedSession {
	sh := &e.sessions[e.shard(id)]
	sh.mu.Lock()
	s := sh.m[id]
	if s == nil || (onlyExpiredBefore > 0 && (s.expires.Load() == 0 || s.expires.Load() >= onlyExpiredBefore)) {
		sh.mu.Unlock()
		return nil
	}
	delete(sh.m, id)
	sh.mu.Unlock()
	e.count.Add(-1)

	s.mu.Lock()
	s.closed = true
	subs := s.subs
	s.subs = nil
	for _, q := range s.queue[s.head:] {
		e.unref(q.mp)
	}
	s.queue, s.head, s.bytes = nil, 0, 0
	watched := s.watch
	s.watch = false
	s.mu.Unlock()
	rs := &RemovedSession{Info: s.info, Subscriptions: make([]string, 0, len(subs))}
	for _, pattern := range subs {
		e.removeSub(pattern, s)
		rs.Subscriptions = append(rs.Subscriptions, pattern)
	}
	if watched {
		e.removed.Store(id, time.Now().UnixNano())
		e.ready(id)
	}
	return rs
}

// Touch implements Engine.
func (e *MemoryEngine) Touch(_ context.Context, id string, expires time.Time) error {
	s := e.lookup(id)
	if s == nil {
		return protocol.ErrSessionUnknown
	}
	if expires.IsZero() {
		s.expires.Store(0)
	} else {
		s.expires.Store(expires.UnixNano())
	}
	return nil
}

// Pending returns how many messages wait in session queues and in how many
// sessions.
func (e *MemoryEngine) Pending() (messages, sessions int) {
	for i := range e.sessions {
		sh := &e.sessions[i]
		sh.mu.RLock()
		for _, s := range sh.m {
			s.mu.Lock()
			if n := len(s.queue) - s.head; n > 0 {
				messages += n
				sessions++
			}
			s.mu.Unlock()
		}
		sh.mu.RUnlock()
	}
	return messages, sessions
}

// ListSessions implements SessionLister.
func (e *MemoryEngine) ListSessions(context.Context) ([]*SessionInfo, error) {
	out := make([]*SessionInfo, 0, e.count.Load())
	for i := range e.sessions {
		sh := &e.sessions[i]
		sh.mu.RLock()
		for _, s := range sh.m {
			out = append(out, s.info)
		}
		sh.mu.RUnlock()
	}
	return out, nil
}

// QueuedBytes returns the bytes of the messages waiting in all queues,
// each message counted once however many queues hold it (for operators).
func (e *MemoryEngine) QueuedBytes() int64 { return e.queued.Load() }

// QueueBytes returns the bytes of the messages waiting in the session's
// queue (for operators).
func (e *MemoryEngine) QueueBytes(_ context.Context, id string) (int64, error) {
	s := e.lookup(id)
	if s == nil {
		return 0, protocol.ErrSessionUnknown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes, nil
}

// QueueLen returns how many messages wait in the session's queue (for
// operators).
func (e *MemoryEngine) QueueLen(_ context.Context, id string) (int, error) {
	s := e.lookup(id)
	if s == nil {
		return 0, protocol.ErrSessionUnknown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) - s.head, nil
}

// SessionCount implements SessionLister.
func (e *MemoryEngine) SessionCount(context.Context) (int, error) { return int(e.count.Load()), nil }

// Subscribe implements Engine.
func (e *MemoryEngine) Subscribe(_ context.Context, id, pattern string, limit int) error {
	s := e.lookup(id)
	if s == nil {
		return protocol.ErrSessionUnknown
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return protocol.ErrSessionUnknown
	}
	if slices.Contains(s.subs, pattern) {
		s.mu.Unlock()
		return nil
	}
	if limit > 0 && len(s.subs) >= limit {
		s.mu.Unlock()
		return protocol.ErrSubscriptionLimit
	}
	s.subs = append(s.subs, pattern)
	// Add to the channel while holding s.mu so that a concurrent destroy
	// (which takes s.subs under s.mu) cannot miss this subscription.
	e.addSub(pattern, s)
	s.mu.Unlock()
	return nil
}

func (e *MemoryEngine) addSub(pattern string, s *memSession) {
	sh := &e.channels[e.shard(pattern)]
	sh.mu.Lock()
	c := sh.m[pattern]
	if c == nil {
		c = &memChannel{set: make(map[*memSession]struct{})}
		sh.m[pattern] = c
	}
	c.mu.Lock()
	c.set[s] = struct{}{}
	c.stale.Store(true)
	c.mu.Unlock()
	sh.mu.Unlock()
}

func (e *MemoryEngine) removeSub(pattern string, s *memSession) {
	sh := &e.channels[e.shard(pattern)]
	sh.mu.Lock()
	if c := sh.m[pattern]; c != nil {
		c.mu.Lock()
		delete(c.set, s)
		if len(c.set) == 0 {
			delete(sh.m, pattern)
		}
		c.stale.Store(true)
		c.mu.Unlock()
	}
	sh.mu.Unlock()
}

// Unsubscribe implements Engine.
func (e *MemoryEngine) Unsubscribe(_ context.Context, id, pattern string) (bool, error) {
	s := e.lookup(id)
	if s == nil {
		return false, protocol.ErrSessionUnknown
	}
	s.mu.Lock()
	i := slices.Index(s.subs, pattern)
	ok := i >= 0
	if ok {
		s.subs = slices.Delete(s.subs, i, i+1)
		e.removeSub(pattern, s)
	}
	s.mu.Unlock()
	return ok, nil
}

// Subscriptions implements SessionLister.
func (e *MemoryEngine) Subscriptions(_ context.Context, id string) ([]string, error) {
	s := e.lookup(id)
	if s == nil {
		return nil, protocol.ErrSessionUnknown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.subs), nil
}

// Subscribers implements SubscriberLister.
func (e *MemoryEngine) Subscribers(_ context.Context, channel string) ([]*SessionInfo, error) {
	subs := e.subscribers(channel)
	out := make([]*SessionInfo, len(subs))
	for i, s := range subs {
		out[i] = s.info
	}
	return out, nil
}

func (e *MemoryEngine) subscribers(name string) []*memSession {
	sh := &e.channels[e.shard(name)]
	sh.mu.RLock()
	c := sh.m[name]
	sh.mu.RUnlock()
	if c == nil {
		return nil
	}
	return c.snapshot()
}

// Publish implements Engine. A message kept in a history is stored, then
// fanned out, under its channel's lock: its channel's subscribers get
// the messages in the order of their positions.
func (e *MemoryEngine) Publish(_ context.Context, p *Payload) (int, error) {
	if e.closed.Load() {
		return 0, ErrEngineClosed
	}
	if p.History != nil {
		mu := e.historyLock(p.Channel)
		mu.Lock()
		defer mu.Unlock()
		var encErr error
		_, stored, err := e.history.Append(p.Channel, *p.History, func(pos protocol.Position) []byte {
			encErr = p.SetPosition(pos)
			return p.JSON
		})
		if err == nil {
			err = encErr
		}
		if err != nil {
			return 0, err
		}
		p.Stored = stored
	}
	return e.fanOut(p), nil
}

func (e *MemoryEngine) historyLock(channel string) *sync.Mutex {
	return &e.hlocks[maphash.String(e.seed, channel)%historyStripes]
}

// fanOut queues p for the sessions subscribed to its channel and
// returns how many.
func (e *MemoryEngine) fanOut(p *Payload) int {
	var buf [16]string
	names := append(buf[:0], p.Channel)
	names = protocol.Wilds(names, p.Channel)
	var lists [16][]*memSession
	found := lists[:0]
	for _, n := range names {
		if subs := e.subscribers(n); len(subs) > 0 {
			found = append(found, subs)
		}
	}
	count := 0
	if len(found) == 0 {
		return 0
	}
	mp := &memPayload{p: p}
	e.hold(mp)
	var d drops
	var rb readyBatch
	if len(found) == 1 {
		for _, s := range found[0] {
			if ok, sd, watched := s.enqueue(e, mp); ok {
				count++
				d.add(sd)
				if watched {
					e.addReady(&rb, s.info.ID)
				}
			}
		}
		e.release(mp, count)
		e.endReady(&rb)
		e.afterEnqueue(d)
		return count
	}
	// Several lists may hold the same session (/a/*, /a/b): deliver once.
	seen := make(map[*memSession]struct{}, len(found[0]))
	for _, list := range found {
		for _, s := range list {
			if _, dup := seen[s]; dup {
				continue
			}
			seen[s] = struct{}{}
			if ok, sd, watched := s.enqueue(e, mp); ok {
				count++
				d.add(sd)
				if watched {
					e.addReady(&rb, s.info.ID)
				}
			}
		}
	}
	e.release(mp, count)
	e.endReady(&rb)
	e.afterEnqueue(d)
	return count
}

// readyChunk is how many sessions a fan-out gathers before it reports
// them to EngineHooks.ReadyBatch: the first ones are woken while the
// fan-out goes on, and the buffer stays small.
const readyChunk = 64

// readyBatch gathers the watching sessions a fan-out made ready.
type readyBatch struct{ ids *[]string }

var readyBufs = sync.Pool{New: func() any {
	b := make([]string, 0, readyChunk)
	return &b
}}

// addReady reports that session id is ready: to Ready at once when the
// hooks do not batch, else into b, reported a chunk at a time.
func (e *MemoryEngine) addReady(b *readyBatch, id string) {
	if e.hooks.ReadyBatch == nil {
		e.ready(id)
		return
	}
	if b.ids == nil {
		b.ids = readyBufs.Get().(*[]string)
	}
	*b.ids = append(*b.ids, id)
	if len(*b.ids) >= readyChunk {
		e.flushReady(b)
	}
}

// flushReady reports the sessions gathered in b.
func (e *MemoryEngine) flushReady(b *readyBatch) {
	ids := *b.ids
	switch len(ids) {
	case 0:
		return
	case 1:
		e.ready(ids[0])
	default:
		e.hooks.ReadyBatch(ids)
	}
	clear(ids)
	*b.ids = ids[:0]
}

// endReady reports what b still holds and gives its buffer back.
func (e *MemoryEngine) endReady(b *readyBatch) {
	if b.ids == nil {
		return
	}
	e.flushReady(b)
	readyBufs.Put(b.ids)
	b.ids = nil
}

// Deliver implements Engine.
func (e *MemoryEngine) Deliver(_ context.Context, id string, p *Payload) error {
	s := e.lookup(id)
	if s == nil {
		return protocol.ErrSessionUnknown
	}
	mp := &memPayload{p: p}
	e.hold(mp)
	ok, d, watched := s.enqueue(e, mp)
	if !ok {
		e.release(mp, 0)
		return protocol.ErrSessionUnknown
	}
	e.release(mp, 1)
	if watched {
		e.ready(id)
	}
	e.afterEnqueue(d)
	return nil
}

// afterEnqueue reports an enqueue's drops and keeps all queues within
// their budget.
func (e *MemoryEngine) afterEnqueue(d drops) {
	e.report(DropQueueLength, d.length)
	e.report(DropQueueBytes, d.bytes)
	if max := e.opts.MaxQueuedBytes; max > 0 && e.queued.Load() > max {
		e.shed()
	}
}

func (e *MemoryEngine) report(reason string, n int) {
	if n > 0 && e.hooks.Dropped != nil {
		e.hooks.Dropped(reason, n)
	}
}

// enqueue appends mp to the session's queue and drops the oldest messages
// beyond its bounds (the newest always stays). ok is false when the
// session is closed; watched is true when a Take watched the session:
// the caller calls the Ready hook for it. The caller holds mp (hold) and
// counts the queues it went to (release).
func (s *memSession) enqueue(e *MemoryEngine, mp *memPayload) (ok bool, d drops, watched bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false, d, false
	}
	if len(s.queue)-s.head >= e.opts.MaxQueue {
		s.dropHead(e)
		d.length++
	}
	if s.head > 0 && s.head >= len(s.queue)/2 && len(s.queue) == cap(s.queue) {
		n := copy(s.queue, s.queue[s.head:])
		clear(s.queue[n:])
		s.queue = s.queue[:n]
		s.head = 0
	}
	s.seq++
	s.queue = append(s.queue, queued{s.seq, mp})
	s.bytes += mp.size()
	if max := e.opts.MaxQueueBytes; max > 0 {
		for s.bytes > max && len(s.queue)-s.head > 1 {
			s.dropHead(e)
			d.bytes++
		}
	}
	watched = s.watch
	s.watch = false
	s.mu.Unlock()
	return true, d, watched
}

// dropHead drops the oldest pending message and counts it for the next
// take. s.mu is held and a message is pending.
func (s *memSession) dropHead(e *MemoryEngine) {
	s.removeHead(e)
	s.dropped++
}

// removeHead removes the oldest pending message. s.mu is held and a
// message is pending.
func (s *memSession) removeHead(e *MemoryEngine) {
	q := s.queue[s.head]
	s.queue[s.head] = queued{}
	s.head++
	s.bytes -= q.mp.size()
	e.unref(q.mp)
}

// shed brings all queues together back under 7/8 of MaxQueuedBytes by
// dropping the oldest messages of the biggest queues: the biggest is
// trimmed down to the size of the next, then both to the size of the
// third, and so on (water-filling), so that small queues, those of the
// clients that keep up, are the last to lose anything. One goroutine
// sheds at a time; the others carry on meanwhile.
func (e *MemoryEngine) shed() {
	if !e.shedding.CompareAndSwap(false, true) {
		return
	}
	defer e.shedding.Store(false)
	max := e.opts.MaxQueuedBytes
	if e.queued.Load() <= max {
		return
	}
	target := max - max/8
	type queueSize struct {
		s     *memSession
		bytes int64
	}
	var qs []queueSize
	for i := range e.sessions {
		sh := &e.sessions[i]
		sh.mu.RLock()
		for _, s := range sh.m {
			s.mu.Lock()
			if s.bytes > 0 {
				qs = append(qs, queueSize{s, s.bytes})
			}
			s.mu.Unlock()
		}
		sh.mu.RUnlock()
	}
	slices.SortFunc(qs, func(a, b queueSize) int { return cmp.Compare(b.bytes, a.bytes) })
	dropped := 0
	for k := 1; k <= len(qs) && e.queued.Load() > target; k++ {
		level := int64(0)
		if k < len(qs) {
			level = qs[k].bytes
		}
		for _, q := range qs[:k] {
			if e.queued.Load() <= target {
				break
			}
			s := q.s
			s.mu.Lock()
			for s.bytes > level && s.head < len(s.queue) && e.queued.Load() > target {
				s.dropHead(e)
				dropped++
			}
			s.mu.Unlock()
		}
	}
	e.report(DropQueuedBytes, dropped)
}

// takeLocked returns what is queued, the oldest first, up to
// MaxFetchBytes (at least one message). Without ack mode it removes what
// it returns; in ack mode it removes the messages with sequence <= ack and
// returns the next ones without removing them. ok is false when the
// session is closed. s.mu is held.
func (s *memSession) takeLocked(e *MemoryEngine, ackMode bool, ack uint64) (b Batch, ok bool) {
	if s.closed {
		return b, false
	}
	if ackMode {
		for s.head < len(s.queue) && s.queue[s.head].seq <= ack {
			s.removeHead(e)
		}
		// An ack beyond what was ever queued acknowledges everything; the
		// client goes on from the newest number, not from its own.
		b.Last = min(ack, s.seq)
	}
	pending := s.queue[s.head:]
	n, size, max := 0, int64(0), e.opts.MaxFetchBytes
	for n < len(pending) {
		sz := pending[n].mp.size()
		if n > 0 && max > 0 && size+sz > max {
			break
		}
		size += sz
		n++
	}
	if n > 0 {
		b.Payloads = make([]*Payload, n)
		for i, q := range pending[:n] {
			b.Payloads[i] = q.mp.p
		}
		b.Last = pending[n-1].seq
		if !ackMode {
			for range n {
				s.removeHead(e)
			}
		}
	}
	if s.head == len(s.queue) && s.head > 0 {
		s.queue = s.queue[:0]
		s.head = 0
	}
	b.Dropped, s.dropped = s.dropped, 0
	return b, true
}

// Take implements Engine. In ack mode batch numbers are the sequence
// numbers of the messages (per session, from 1): Batch.Last is the newest
// one returned, and acknowledging n removes every message up to n. A
// watching session costs a flag, no goroutine and no timer.
func (e *MemoryEngine) Take(_ context.Context, id string, o TakeOptions) (Batch, error) {
	if e.closed.Load() {
		return Batch{}, ErrEngineClosed
	}
	s := e.lookup(id)
	if s == nil {
		if _, ok := e.removed.LoadAndDelete(id); ok {
			return Batch{}, ErrSessionRemoved
		}
		return Batch{}, protocol.ErrSessionUnknown
	}
	s.mu.Lock()
	b, ok := s.takeLocked(e, o.Ack, o.Acked)
	if ok && len(b.Payloads) == 0 && o.Watch {
		s.watch = true
	}
	s.mu.Unlock()
	if !ok {
		return b, protocol.ErrSessionUnknown
	}
	return b, nil
}

// ready calls the Ready hook for a session that watched.
func (e *MemoryEngine) ready(id string) {
	if e.hooks.Ready != nil {
		e.hooks.Ready(id)
	}
}

// SubscribeHistory implements Historian.
func (e *MemoryEngine) SubscribeHistory(ctx context.Context, id, channel string, limit int) (protocol.Position, error) {
	mu := e.historyLock(channel)
	mu.Lock()
	defer mu.Unlock()
	if err := e.Subscribe(ctx, id, channel, limit); err != nil {
		return protocol.Position{}, err
	}
	return e.history.Top(channel), nil
}

// History implements Historian.
func (e *MemoryEngine) History(ctx context.Context, channel string, q HistoryQuery) (HistoryPage, error) {
	if e.closed.Load() {
		return HistoryPage{}, ErrEngineClosed
	}
	return e.history.Read(ctx, channel, q)
}
