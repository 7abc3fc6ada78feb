package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// ownedTable is the sessions this node takes for, by id.
type ownedTable struct {
	seed   maphash.Seed
	shards [64]ownedShard
}

type ownedShard struct {
	mu sync.Mutex
	m  map[string]*osession
}

func (t *ownedTable) init() {
	t.seed = maphash.MakeSeed()
	for i := range t.shards {
		t.shards[i].m = make(map[string]*osession)
	}
}

func (t *ownedTable) shard(id string) *ownedShard {
	return &t.shards[maphash.String(t.seed, id)%uint64(len(t.shards))]
}

func (t *ownedTable) get(id string) *osession {
	sh := t.shard(id)
	sh.mu.Lock()
	s := sh.m[id]
	sh.mu.Unlock()
	return s
}

// getOrAdd returns the session's entry, adding a new (unclaimed) one.
func (t *ownedTable) getOrAdd(e *Engine, id string) *osession {
	sh := t.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s := sh.m[id]; s != nil {
		return s
	}
	s := &osession{e: e, id: id}
	s.lastUse.Store(time.Now().UnixNano())
	sh.m[id] = s
	return s
}

// remove removes s if it is the session's entry.
func (t *ownedTable) remove(s *osession) bool {
	sh := t.shard(s.id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[s.id] != s {
		return false
	}
	delete(sh.m, s.id)
	return true
}

func (t *ownedTable) each(f func(*osession)) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		all := make([]*osession, 0, len(sh.m))
		for _, s := range sh.m {
			all = append(all, s)
		}
		sh.mu.Unlock()
		for _, s := range all {
			f(s)
		}
	}
}

func (t *ownedTable) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// osession is a session this node takes for: it holds the session's
// position in memory and commits it to Redis before sending a batch.
type osession struct {
	e  *Engine
	id string

	// takeMu serialises Takes and the node's own subscription changes;
	// the fields below it are used under it.
	takeMu  sync.Mutex
	info    *server.SessionInfo
	st      state             // as last committed (or claimed)
	subs    map[string]cursor // subscription -> where it started
	streams map[string]*stream
	direct  []*entry  // the direct queue as last read
	dtop    uint64    // sequence number of the newest direct message read
	ddrops  [3]uint64 // direct messages dropped, not yet reported: dl, db, dq
	recent  *midRing  // message ids delivered, with overlapping subscriptions

	loaded   atomic.Bool   // claimed: info, st, subs are set
	epoch    atomic.Uint64 // the claim number this node holds
	rival    atomic.Uint64 // the newest claim number of another node heard of
	dead     atomic.Bool   // dropped: no longer taken for here
	watching atomic.Bool   // a Take with Watch found nothing: wake on news
	dstale   atomic.Bool   // a direct message arrived: read the queue again
	sstale   atomic.Bool   // subscriptions changed elsewhere: read them again
	lastUse  atomic.Int64  // unix nanoseconds of the last Take
	// deadline is the Deadline SetDeadline gave since the claim, if any.
	deadline server.DeadlineOverride
	// landed is closed when the newest commit queued without waiting for
	// it (a take without ack) is written or failed; nil before any. Set
	// under takeMu.
	landed chan struct{}

	expMu      sync.Mutex
	expWant    time.Time // the expiry the server asked for last
	expTouched time.Time // when it asked
	expWritten time.Time // the expiry written last (zero: none yet)
	expNever   bool      // expWant is "never" (the zero time)
	expDirty   bool      // expWant was not written
}

// live reports whether the session is claimed and not dropped: its info
// can be answered from memory.
func (s *osession) live() bool { return s.loaded.Load() && !s.dead.Load() }

// touch records the expiry the server wants; a commit writes it (see
// takeExpiry).
func (s *osession) touch(expires time.Time) {
	s.expMu.Lock()
	s.expWant, s.expNever, s.expTouched, s.expDirty = expires, expires.IsZero(), time.Now(), true
	s.expMu.Unlock()
}

// takeExpiry returns the expiry to write now, or "". Connects touch a
// session twice each (the end of the hold, then the end of the reply), so
// an expiry is written only when it moves: later by more than slack, or
// earlier by more than slack and then left so for slack (a client that
// went away, not one between two connects). A session that stays on a
// node thus costs Redis an expiry write about once per slack, not twice
// per connect; one that goes away expires up to a poll timeout later
// than it would on one node.
func (s *osession) takeExpiry(slack time.Duration) string {
	s.expMu.Lock()
	defer s.expMu.Unlock()
	if !s.expDirty {
		return ""
	}
	w := s.expWritten
	switch {
	case s.expNever:
		if !w.IsZero() && w.Equal(never) {
			s.expDirty = false
			return ""
		}
		s.expWritten = never
	case w.IsZero(), w.Equal(never), s.expWant.After(w.Add(slack)):
		s.expWritten = s.expWant
	case s.expWant.Before(w.Add(-slack)) && time.Since(s.expTouched) >= slack:
		s.expWritten = s.expWant
	case s.expWant.Before(w.Add(-slack)):
		return "" // maybe a connect in between: decide at a later tick
	default:
		s.expDirty = false // close enough to what is written
		return ""
	}
	s.expDirty = false
	if s.expNever {
		return "inf"
	}
	return expiryDelay(s.expWant)
}

// never is expWritten for a session that never expires.
var never = time.Unix(1<<62, 0)

// restoreExpiry marks an expiry that was not written as pending again.
func (s *osession) restoreExpiry() {
	s.expMu.Lock()
	s.expDirty, s.expWritten = true, time.Time{}
	s.expMu.Unlock()
}

// wake calls Ready if a Take watches the session.
func (e *Engine) wake(s *osession) {
	if s.watching.CompareAndSwap(true, false) {
		e.ready(s.id)
	}
}

// directChanged is a direct message for the session.
func (s *osession) directChanged() {
	s.dstale.Store(true)
	s.e.wake(s)
}

// subscribed records a subscription this node made for the session.
func (s *osession) subscribed(pattern string, c cursor) {
	s.takeMu.Lock()
	defer s.takeMu.Unlock()
	if !s.loaded.Load() || s.dead.Load() {
		return
	}
	if _, ok := s.subs[pattern]; !ok {
		s.subs[pattern] = c
		s.streams[pattern] = s.e.streams.acquire(s.e, pattern)
	}
	if s.watching.Load() {
		s.streams[pattern].addWatcher(s)
	}
}

// unsubscribed removes a subscription this node removed.
func (s *osession) unsubscribed(pattern string) {
	s.takeMu.Lock()
	defer s.takeMu.Unlock()
	if !s.loaded.Load() {
		return
	}
	delete(s.subs, pattern)
	if st := s.streams[pattern]; st != nil {
		delete(s.streams, pattern)
		s.e.streams.release(st, s)
	}
}

// dropOwned stops taking for session id on this node (it was removed or
// claimed by another node, or Redis lost it): the next Take with Resume
// gets reason. A Take that waits is woken.
func (e *Engine) dropOwned(id string, reason error) {
	s := e.owned.get(id)
	if s == nil {
		return
	}
	e.drop(s, reason)
}

func (e *Engine) drop(s *osession, reason error) {
	if !e.owned.remove(s) {
		return
	}
	s.dead.Store(true)
	e.goneMu.Lock()
	e.gone[s.id] = goneReason{err: reason, at: time.Now()}
	e.goneMu.Unlock()
	e.wake(s)
	go func() {
		// Under takeMu: a Take under way keeps its streams until it ends.
		s.takeMu.Lock()
		for _, st := range s.streams {
			e.streams.release(st, s)
		}
		s.streams = nil
		s.takeMu.Unlock()
	}()
}

// goneErr is why session id is no longer taken for here (ErrSuperseded
// when the node does not know).
func (e *Engine) goneErr(id string) error {
	e.goneMu.Lock()
	defer e.goneMu.Unlock()
	if g, ok := e.gone[id]; ok {
		delete(e.gone, id)
		return g.err
	}
	return server.ErrSuperseded
}

// forgetGone drops reasons older than a minute (nobody asked).
func (e *Engine) forgetGone(now time.Time) {
	e.goneMu.Lock()
	for id, g := range e.gone {
		if now.Sub(g.at) > time.Minute {
			delete(e.gone, id)
		}
	}
	e.goneMu.Unlock()
}

// Take implements server.Engine. A Take without Resume claims the session
// for this node unless it takes for it already (no round trip then). A
// Take that finds something commits the session's new position, in one
// round trip shared with the other sessions that commit at the same
// moment: with ack it waits for the commit before it returns, without ack
// it does not (see claim for how another node then waits for it).
func (e *Engine) Take(ctx context.Context, id string, o server.TakeOptions) (server.Batch, error) {
	if e.closed.Load() {
		return server.Batch{}, server.ErrEngineClosed
	}
	for attempt := 0; ; attempt++ {
		s := e.owned.get(id)
		if s == nil || s.dead.Load() {
			if o.Resume {
				return server.Batch{}, e.goneErr(id)
			}
			s = e.owned.getOrAdd(e, id)
		}
		b, retry, err := s.takeOnce(ctx, o)
		if !retry || attempt > 0 {
			return b, err
		}
	}
}

// takeOnce claims the session if needed and takes. retry is true when the
// session was claimed by another node meanwhile and a new claim may
// succeed (a Take without Resume).
func (s *osession) takeOnce(ctx context.Context, o server.TakeOptions) (b server.Batch, retry bool, err error) {
	e := s.e
	s.takeMu.Lock()
	defer s.takeMu.Unlock()
	if s.dead.Load() {
		if o.Resume {
			return b, false, e.goneErr(s.id)
		}
		return b, true, nil
	}
	if !s.loaded.Load() {
		if o.Resume {
			e.drop(s, server.ErrSuperseded)
			return b, false, server.ErrSuperseded
		}
		if err := s.claim(ctx); err != nil {
			if errors.Is(err, protocol.ErrSessionUnknown) {
				e.owned.remove(s)
				s.dead.Store(true)
			}
			return b, false, err
		}
	}
	s.lastUse.Store(time.Now().UnixNano())
	b, res, err := s.take(ctx, o)
	switch {
	case err != nil:
		return b, false, err
	case res == commitClaimedAway:
		e.drop(s, server.ErrSuperseded)
		if o.Resume {
			return server.Batch{}, false, server.ErrSuperseded
		}
		return server.Batch{}, true, nil
	case res == commitUnknown:
		e.drop(s, protocol.ErrSessionUnknown)
		return server.Batch{}, false, e.goneErr(s.id)
	}
	return b, false, nil
}

// claim makes this node the session's taker and loads what it needs.
// When another node takes for the session, that node is first asked to
// hand it over (see handOver) and the claim waits for its answer, for up
// to Options.HandoverTimeout: the batches it sent may have commits not
// yet written, and a claim that read the position before them would send
// those messages again. s.takeMu is held.
func (s *osession) claim(ctx context.Context) error {
	e := s.e
	// The info read next has every deadline set before; the ones set
	// after come as notices (this node is the session's from then on).
	s.deadline.Reset()
	answer := e.handovers.expect(s.id)
	defer e.handovers.forget(s.id, answer)
	v, err := claimScript.Run(ctx, e.client, e.sessionKeys(s.id), e.opts.NodeID, e.k.nodeChan(), s.id, "1").Slice()
	if err == nil && len(v) == 2 && v[0] == int64(-2) {
		// Asked. On a single Redis, a notice nobody received (the node is
		// gone, or lost its pub/sub connection) has no answer to wait
		// for; on a Redis Cluster the count covers one shard only.
		if n, _ := v[1].(int64); n > 0 || e.cluster {
			if err := e.awaitHandover(ctx, s.id, answer); err != nil {
				return err
			}
		}
		v, err = claimScript.Run(ctx, e.client, e.sessionKeys(s.id), e.opts.NodeID, e.k.nodeChan(), s.id, "0").Slice()
	}
	if err != nil {
		return e.fail("claim", err)
	}
	if h := e.claimHook.Load(); h != nil {
		(*h)(s.id)
	}
	e.stats.claims.Add(1)
	if len(v) == 1 {
		return protocol.ErrSessionUnknown
	}
	if len(v) < 7 {
		return e.fail("claim", errors.New("short reply"))
	}
	ep, _ := v[0].(int64)
	info, err := decodeInfo(v[1])
	if err != nil {
		return fmt.Errorf("bayeux/redis: session %s: %w", s.id, err)
	}
	raw, _ := v[2].(string)
	st, err := decodeState(raw)
	if err != nil {
		return fmt.Errorf("bayeux/redis: session %s state: %w", s.id, err)
	}
	var dh uint64
	fmt.Sscan(str(v[3]), &dh)
	s.setDrops(v[4])
	flat, _ := v[5].([]any)
	subs := make(map[string]cursor, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		c, err := parseCursor(str(flat[i+1]))
		if err != nil {
			return fmt.Errorf("bayeux/redis: session %s subscription: %w", s.id, err)
		}
		subs[str(flat[i])] = c
	}
	q, _ := v[6].([]any)
	if err := s.setDirect(dh, q); err != nil {
		return err
	}
	s.info, s.st, s.subs = info, st, subs
	s.streams = make(map[string]*stream, len(subs))
	for p := range subs {
		s.streams[p] = e.streams.acquire(e, p)
	}
	s.epoch.Store(uint64(ep))
	s.loaded.Store(true)
	// dstale and sstale stay as notices set them: one that arrived after
	// the script ran but before its reply was read (they come on
	// different connections) is news the reply does not have. One that
	// arrived before costs a read the first Take did not need.
	e.goneMu.Lock()
	delete(e.gone, s.id)
	e.goneMu.Unlock()
	if s.rival.Load() > uint64(ep) {
		// Another node claimed after this one, and said so while this
		// claim was under way (see claimedElsewhere).
		e.drop(s, server.ErrSuperseded)
		return server.ErrSuperseded
	}
	return nil
}

// claimedElsewhere handles another node's claim notice, with its claim
// number: a claim of this node older than it has lost. A claim still
// under way here has no number yet to compare; the notice may be that of
// an older claim arriving late (the claim waits for a handover, and on a
// Redis Cluster notices go through the cluster bus), so the claim decides
// once it has its number.
func (s *osession) claimedElsewhere(claim uint64) {
	for {
		old := s.rival.Load()
		if claim <= old || s.rival.CompareAndSwap(old, claim) {
			break
		}
	}
	if s.loaded.Load() && s.epoch.Load() < claim {
		s.e.drop(s, server.ErrSuperseded)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// setDrops reads the direct queue's drop counts {dl, db, dq}.
func (s *osession) setDrops(v any) {
	a, _ := v.([]any)
	for i := range s.ddrops {
		s.ddrops[i] = 0
		if i < len(a) {
			fmt.Sscan(str(a[i]), &s.ddrops[i])
		}
	}
}

// setDirect replaces the direct queue as read: its head has sequence
// number dh+1.
func (s *osession) setDirect(dh uint64, items []any) error {
	s.direct = s.direct[:0]
	for i, it := range items {
		d, err := parseDirect(dh+1+uint64(i), str(it))
		if err != nil {
			return fmt.Errorf("bayeux/redis: session %s direct message: %w", s.id, err)
		}
		s.direct = append(s.direct, d)
	}
	s.dtop = dh + uint64(len(items))
	return nil
}

// refresh reads again what notices said changed: the direct queue, the
// subscriptions. s.takeMu is held.
func (s *osession) refresh(ctx context.Context) error {
	e := s.e
	dstale, sstale := s.dstale.Swap(false), s.sstale.Swap(false)
	if !dstale && !sstale {
		return nil
	}
	var calls []*call
	var direct, subs *call
	if dstale {
		direct = newCall(directScript, []string{e.k.sess(s.id), e.k.queue(s.id)})
		calls = append(calls, direct)
	}
	if sstale {
		subs = newCall(subscriptionsScript, []string{e.k.sess(s.id), e.k.subs(s.id)}, "all")
		calls = append(calls, subs)
	}
	if err := e.run(ctx, calls...); err != nil {
		s.dstale.Store(s.dstale.Load() || dstale)
		s.sstale.Store(s.sstale.Load() || sstale)
		return e.fail("read session", err)
	}
	if dstale {
		v, _ := direct.cmd.Slice()
		if len(v) == 3 {
			var head uint64
			fmt.Sscan(str(v[0]), &head)
			s.setDrops(v[1])
			items, _ := v[2].([]any)
			if err := s.setDirect(head, items); err != nil {
				return err
			}
		}
	}
	if sstale {
		v, _ := subs.cmd.Slice()
		now := map[string]string{}
		if len(v) == 2 {
			flat, _ := v[1].([]any)
			for i := 0; i+1 < len(flat); i += 2 {
				now[str(flat[i])] = str(flat[i+1])
			}
		}
		for p := range s.subs {
			if _, ok := now[p]; !ok {
				delete(s.subs, p)
				if st := s.streams[p]; st != nil {
					delete(s.streams, p)
					e.streams.release(st, s)
				}
			}
		}
		for p, raw := range now {
			if _, ok := s.subs[p]; ok {
				continue
			}
			c, err := parseCursor(raw)
			if err != nil {
				return fmt.Errorf("bayeux/redis: session %s subscription: %w", s.id, err)
			}
			s.subs[p] = c
			s.streams[p] = e.streams.acquire(e, p)
		}
	}
	return nil
}

// watch arranges for a Ready call on news for the session. s.takeMu is
// held.
func (s *osession) watch() {
	s.watching.Store(true)
	for _, st := range s.streams {
		st.addWatcher(s)
	}
}

// Results of a commit.
const (
	commitOK          = 1
	commitClaimedAway = 0
	commitUnknown     = -1
)

// source is a run of entries of one stream (name) or of the direct queue
// (name ""), read from the cursor from.
type source struct {
	name    string
	from    cursor
	entries []*entry
	trimmed string // why the stream lost entries (see luaTrim)

	first *entry // the first returned
	last  *entry // the newest consumed
}

// item is an entry in a take's merge of its sources.
type item struct {
	src  *source
	e    *entry
	copy bool // taken through another subscription
	drop bool // over the session's bounds
}

// itemPool holds the merge buffers of takes.
var itemPool = sync.Pool{New: func() any { return new([]item) }}

// drops counts messages dropped, by reason.
type drops struct{ length, bytes, queued int }

func (d drops) total() int { return d.length + d.bytes + d.queued }

// report tells the Dropped hook.
func (d drops) report(e *Engine) {
	if e.hooks.Dropped == nil {
		return
	}
	for _, r := range []struct {
		reason string
		n      int
	}{{server.DropQueueLength, d.length}, {server.DropQueueBytes, d.bytes}, {server.DropQueuedBytes, d.queued}} {
		if r.n > 0 {
			e.hooks.Dropped(r.reason, r.n)
		}
	}
}

// take takes what is queued for the session and commits its new position.
// s.takeMu is held.
func (s *osession) take(ctx context.Context, o server.TakeOptions) (server.Batch, int, error) {
	e := s.e
	if o.Watch {
		// Before reading: notices from now on wake the session; the
		// streams (those refresh adds too) are told before their windows
		// are read.
		s.watching.Store(true)
	}
	if err := s.refresh(ctx); err != nil {
		s.watching.Store(false)
		return server.Batch{}, commitOK, err
	}
	if o.Watch {
		s.watch()
	}
	// The committed positions are never changed in place: a take that
	// moves builds new ones.
	st := s.st
	from := st.sent
	if o.Ack {
		if o.Acked >= st.batch && st.batch > st.acked {
			st.acked, st.base = st.batch, st.sent
		}
		from = st.base
	}

	// What follows the cursors: from the node's windows, else from Redis.
	srcs := make([]*source, 0, len(s.subs)+1)
	var reads []*source
	for p, start := range s.subs {
		c, ok := from.streams[p]
		if !ok {
			c = start
		}
		src := &source{name: p, from: c}
		srcs = append(srcs, src)
		if es, ok := s.streams[p].after(c); ok {
			src.entries = es
		} else {
			reads = append(reads, src)
		}
	}
	dsrc := &source{from: cursor{seq: from.direct}}
	for _, d := range s.direct {
		if d.seq > from.direct {
			dsrc.entries = append(dsrc.entries, d)
		}
	}
	srcs = append(srcs, dsrc)
	var gaps []*source // streams that lost entries the session did not read
	for _, src := range srcs[:len(srcs)-1] {
		if len(src.entries) > 0 && src.entries[0].seq > src.from.seq+1 {
			gaps = append(gaps, src)
		}
	}
	if len(reads) > 0 || len(gaps) > 0 {
		if err := s.read(ctx, reads, &gaps); err != nil {
			if o.Watch {
				s.watching.Store(false)
			}
			return server.Batch{}, commitOK, err
		}
	}

	// Lost before the session read them: trimmed from the streams and the
	// direct queue (they are bounded), for the reasons Redis recorded.
	var dropped drops
	for _, src := range gaps {
		n := int(src.entries[0].seq - src.from.seq - 1)
		switch src.trimmed {
		case "b":
			dropped.bytes += n
		case "q":
			dropped.queued += n
		default:
			dropped.length += n
		}
	}
	var dgap uint64
	if len(dsrc.entries) > 0 {
		dgap = dsrc.entries[0].seq - from.direct - 1
	} else if s.dtop > from.direct {
		dgap = s.dtop - from.direct
	}
	var reported [3]uint64 // of the direct queue's drop counts
	for i := range reported {
		reported[i] = min(dgap, s.ddrops[i])
		dgap -= reported[i]
	}
	dropped.length += int(reported[0] + dgap)
	dropped.bytes += int(reported[1])
	dropped.queued += int(reported[2])

	// Merge by time (each source is in order), once per message id.
	total, nonEmpty := 0, 0
	for _, src := range srcs {
		total += len(src.entries)
		if len(src.entries) > 0 {
			nonEmpty++
		}
	}
	buf := itemPool.Get().(*[]item)
	defer func() {
		clear(*buf)
		*buf = (*buf)[:0]
		itemPool.Put(buf)
	}()
	all := slices.Grow((*buf)[:0], total)
	for _, src := range srcs {
		for _, en := range src.entries {
			all = append(all, item{src: src, e: en})
		}
	}
	*buf = all
	if nonEmpty > 1 {
		slices.SortStableFunc(all, func(a, b item) int { return cmp.Compare(a.e.us, b.e.us) })
	}
	overlap := len(s.subs) > 1
	var seen map[string]bool
	if overlap {
		seen = make(map[string]bool, len(all))
	}
	n := 0
	for i := range all {
		it := &all[i]
		if overlap && it.e.mid != "" {
			if seen[it.e.mid] || s.recent.delivered(it.e.mid, it.src.name, from) {
				it.copy = true
				continue
			}
			seen[it.e.mid] = true
		}
		n++
	}
	// The session's bounds: the newest MaxQueue messages and, of those,
	// the newest that fit in MaxQueueBytes (the newest always).
	budget := e.opts.Budgets
	over := max(n-budget.MaxQueue, 0)
	var size int64
	keep := 0
	for i := len(all) - 1; i >= 0; i-- {
		it := &all[i]
		if it.copy {
			continue
		}
		if keep >= n-over {
			it.drop = true
			dropped.length++
			continue
		}
		size += it.e.size()
		if keep > 0 && budget.MaxQueueBytes > 0 && size > budget.MaxQueueBytes {
			it.drop = true
			dropped.bytes++
			continue
		}
		keep++
	}
	// One batch: the oldest of them within MaxFetchBytes (at least one);
	// the rest stay for the next take.
	var payloads []*server.Payload
	if keep > 0 {
		payloads = make([]*server.Payload, 0, keep)
	}
	end := len(all) // all[:end] is consumed
	size = 0
	for i, it := range all {
		if it.copy || it.drop {
			continue
		}
		size += it.e.size()
		if len(payloads) > 0 && budget.MaxFetchBytes > 0 && size > budget.MaxFetchBytes {
			end = i
			break
		}
		payloads = append(payloads, it.e.p)
		if it.src.first == nil {
			it.src.first = it.e
		}
	}

	// The new position: past everything consumed (returned, dropped or a
	// copy of something returned).
	if len(payloads) == 0 && dropped.total() == 0 {
		s.st = st // an acknowledgement needs no commit: the client repeats it
		// The client goes on acknowledging what it did: this node may know
		// less (another node sent since, and this one has not heard yet).
		return server.Batch{Last: max(st.acked, o.Acked)}, commitOK, nil
	}
	if o.Watch {
		s.watching.Store(false)
	}
	b := server.Batch{Dropped: dropped.total(), Payloads: payloads}
	// Each source's newest entry consumed: one cursor each.
	for _, it := range all[:end] {
		if l := it.src.last; l == nil || it.e.seq > l.seq {
			it.src.last = it.e
		}
	}
	sent := position{direct: from.direct, streams: make(map[string]cursor, len(s.subs))}
	for p := range s.subs { // unsubscribed streams are left out
		if c, ok := from.streams[p]; ok {
			sent.streams[p] = c
		}
	}
	for _, src := range srcs {
		switch {
		case src.last == nil:
		case src.name == "":
			sent.direct = max(sent.direct, src.last.seq)
		default:
			sent.streams[src.name] = cursor{seq: src.last.seq, id: src.last.id}
		}
	}
	st.sent = sent
	trim := sent.direct
	if o.Ack {
		// What was dropped is gone for good: the base moves past it, up to
		// the first message returned from each source.
		base := from.clone()
		for _, it := range all[:end] {
			src := it.src
			if f := src.first; f != nil && it.e.seq >= f.seq {
				continue
			}
			if src.name == "" {
				base.direct = max(base.direct, it.e.seq)
			} else if c, ok := base.streams[src.name]; !ok || it.e.seq > c.seq {
				base.streams[src.name] = cursor{seq: it.e.seq, id: it.e.id}
			}
		}
		for _, src := range srcs {
			f := src.first
			if f == nil {
				continue
			}
			// Past a gap too: up to just before the first returned.
			c := before(f)
			if src.name == "" {
				base.direct = max(base.direct, c.seq)
			} else if bc, ok := base.streams[src.name]; !ok || c.seq > bc.seq {
				base.streams[src.name] = c
			}
		}
		st.base = base
		st.batch = max(st.batch, st.acked, o.Acked) + 1
		b.Last = st.batch
		trim = base.direct
	} else {
		st.base = st.sent
	}
	done := s.st.sent.direct // trimmed up to it already
	if o.Ack {
		done = s.st.base.direct
	}
	if trim <= done {
		trim = 0 // nothing more to trim from the direct queue
	}
	if o.Ack || trim > 0 || reported != [3]uint64{} {
		// The batch leaves once its commit is written: with ack, the
		// client's acknowledgement names the batch, and whichever node
		// the client reaches next must know what the number stands for;
		// direct messages removed free their bytes of MaxQueuedBytes
		// before the next Deliver counts them.
		res, err := e.flush.commit(ctx, s, encodeState(&st, o.Ack), trim, reported)
		if err != nil || res != commitOK {
			return server.Batch{}, res, err
		}
	} else {
		// Otherwise the batch leaves at once and its commit follows in
		// the flusher's next round trip: a node that claims the session
		// first asks this one to hand it over, and waits for its commits.
		e.flush.commitAsync(s, encodeState(&st, false))
	}
	s.st = st
	for i := range reported {
		s.ddrops[i] -= reported[i]
	}
	dropped.report(e)
	if overlap {
		if s.recent == nil {
			s.recent = newMidRing()
		}
		for _, it := range all[:end] {
			if !it.copy && !it.drop && it.src.name != "" && it.e.mid != "" {
				s.recent.add(it.e.mid, it.src.name, it.e.seq)
			}
		}
	}
	for len(s.direct) > 0 && s.direct[0].seq <= trim {
		s.direct = s.direct[1:]
	}
	return b, commitOK, nil
}

// read reads from Redis the entries of sources whose cursor is older than
// the node's window (the newest MaxQueue after the cursor), and why the
// streams with a gap were last trimmed; sources read that show a gap are
// added to gaps.
func (s *osession) read(ctx context.Context, srcs []*source, gaps *[]*source) error {
	e := s.e
	pipe := e.client.Pipeline()
	cmds := make([]*goredis.XMessageSliceCmd, len(srcs))
	for i, src := range srcs {
		cmds[i] = pipe.XRevRangeN(ctx, e.k.stream(src.name), "+", "("+src.from.id, int64(e.opts.MaxQueue))
	}
	if len(srcs) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
			return e.fail("read stream", err)
		}
		e.stats.reads.Add(int64(len(srcs)))
	}
	for i, src := range srcs {
		msgs := cmds[i].Val()
		src.entries = make([]*entry, 0, len(msgs))
		for j := len(msgs) - 1; j >= 0; j-- {
			en, err := streamEntry(msgs[j].ID, msgs[j].Values)
			if err != nil {
				return fmt.Errorf("bayeux/redis: stream %s: %w", src.name, err)
			}
			if en.seq > src.from.seq {
				src.entries = append(src.entries, en)
			}
		}
		if len(src.entries) > 0 && src.entries[0].seq > src.from.seq+1 {
			*gaps = append(*gaps, src)
		}
	}
	if len(*gaps) == 0 {
		return nil
	}
	pipe = e.client.Pipeline()
	why := make([]*goredis.StringCmd, len(*gaps))
	for i, src := range *gaps {
		why[i] = pipe.HGet(ctx, e.k.seq(src.name), "tr")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return e.fail("read stream", err)
	}
	for i, src := range *gaps {
		src.trimmed = why[i].Val()
	}
	return nil
}

// midRing remembers the ids of the latest messages a session took
// through one of several overlapping subscriptions, so that the copy in
// another subscription's stream is not sent again.
type midRing struct {
	ids  [512]string
	next int
	m    map[string]ringRec
}

type ringRec struct {
	stream string
	seq    uint64
}

func newMidRing() *midRing { return &midRing{m: make(map[string]ringRec, 512)} }

func (r *midRing) add(mid, stream string, seq uint64) {
	if old := r.ids[r.next]; old != "" {
		delete(r.m, old)
	}
	r.ids[r.next] = mid
	r.next = (r.next + 1) % len(r.ids)
	r.m[mid] = ringRec{stream, seq}
}

// delivered reports whether message mid, read now from stream name, was
// taken through another stream at a position the session has passed
// (from).
func (r *midRing) delivered(mid, name string, from position) bool {
	if r == nil {
		return false
	}
	rec, ok := r.m[mid]
	if !ok || rec.stream == name {
		return false
	}
	c, ok := from.streams[rec.stream]
	return ok && c.seq >= rec.seq
}
