package server

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// reorderWait bounds how long a request waits for the messages numbered
// before it (they may never come: a client may give up on a request).
const reorderWait = 50 * time.Millisecond

// maxLanesPerShard bounds the lanes kept (with their sessions' last id)
// per shard; beyond it an idle lane is dropped, and its session's next
// request waits for nothing.
const maxLanesPerShard = 4096

// lanes put each session's requests in order: the sessions' lanes on this
// node, sharded like the held connects. The zero value is ready.
//
// A client may have several requests in flight at once: Faye sends its
// publishes over several HTTP connections without waiting for replies,
// and any client may send while its /meta/connect is held. The messages of
// one session other than /meta/handshake and /meta/connect (publishes,
// subscribes, unsubscribes, disconnects) are processed one request at a
// time, in the session's lane, so that a publisher's messages reach every
// subscriber in the order it sent them. Which request goes first:
//
//   - A request arrives when the server starts to handle it: an HTTP
//     request when its headers have been read, before its body is read; a
//     WebSocket frame when it has been read (a socket's frames are read one
//     after the other, so they arrive in the order they were sent). It
//     takes an arrival ticket then.
//   - That order is not the client's when requests travel on several
//     connections: two connections carry no order between them, and
//     connections that become readable together reach their goroutines in
//     no useful order (Go's poller hands a batch of them over in reverse).
//     So where the client numbers its messages with a counter, as CometD
//     and Faye do ("1", "2" ... in base 10 or 36), the counter decides: a
//     request whose first message is not the next one after the last
//     message of its session the server has seen (connects included)
//     waits for the missing ones, at most reorderWait, and requests
//     waiting for a lane go first-numbered first, then by ticket.
//   - Ids that are not such a counter (UUIDs, none) wait for nothing: those
//     requests go in the order they reach the lane, which for requests in
//     flight at the same time is any order. Nor does a session whose
//     numbers turned out to have holes (a request went on after
//     reorderWait): its client shares its counter or gives requests up.
//
// The lane is held only while the batch's messages are processed: a held
// /meta/connect never holds it (it waits after processing), a lone
// /meta/connect does not take it (it only tells the lane its id), and one
// session's lane never delays another session. Messages that name no
// session (handshakes, anonymous publishes) take no lane, nor do local
// clients: their calls are synchronous, so a caller orders them itself.
// With a shared engine (several nodes) a client's requests may reach
// different nodes, so nothing waits for missing ids there: requests are
// ordered on each node as they reach its lanes.
type lanes struct {
	shards [memShards]laneShard
	// waitGaps is set when requests wait for missing ids (one node), at
	// most wait (reorderWait when 0; tests set it).
	waitGaps bool
	wait     time.Duration
}

type laneShard struct {
	mu sync.Mutex
	m  map[string]*lane
}

// lane is one session's: busy while a request processes its messages,
// with the requests waiting for it, first first. Every session has one
// (about 60 bytes with its map entry), so what only contention needs is
// apart, in more.
type lane struct {
	busy bool
	// noGaps is set once a request went past missing ids: this client's
	// numbers have holes (a counter shared with other sessions, requests
	// given up), so its requests wait for none any more.
	noGaps bool
	// last[:n] is the id of the session's last message seen when it is a
	// counter (n is 0 when unknown or not a counter).
	n    uint8
	last [13]byte
	more *laneMore
}

// laneMore is a lane's part for contention: the requests waiting, and the
// ids seen ahead of last, out of order (a connect may overtake the
// publishes numbered before it).
type laneMore struct {
	waiters []*laneWaiter
	ahead   []protocol.ID
}

// lastID returns last[:n]; it does not escape, so it costs no allocation.
func (l *lane) lastID() protocol.ID { return protocol.ID(l.last[:l.n]) }

func (l *lane) setLast(id protocol.ID) {
	if !isCounter(id) {
		l.n = 0
		return
	}
	l.n = uint8(copy(l.last[:], id))
}

func (l *lane) waiting() int {
	if l.more == nil {
		return 0
	}
	return len(l.more.waiters)
}

func (l *lane) contended() *laneMore {
	if l.more == nil {
		l.more = new(laneMore)
	}
	return l.more
}

type laneWaiter struct {
	key    protocol.ID // the request's first message id for the session
	ticket uint64
	ready  chan struct{} // closed when the lane is handed over
	forced bool          // it goes without the missing ids (reorderWait is over)
}

// before reports whether w goes before o: by key read as a counter, then
// by arrival.
func (w *laneWaiter) before(o *laneWaiter) bool {
	if c := compareCounters(w.key, o.key); c != 0 {
		return c < 0
	}
	return w.ticket < o.ticket
}

// lane returns session id's lane, made when missing; the shard is locked.
func (sh *laneShard) lane(id string) *lane {
	l := sh.m[id]
	if l != nil {
		return l
	}
	if sh.m == nil {
		sh.m = make(map[string]*lane)
	}
	if len(sh.m) >= maxLanesPerShard {
		for k, o := range sh.m {
			if !o.busy && o.waiting() == 0 {
				delete(sh.m, k)
				break
			}
		}
	}
	l = new(lane)
	sh.m[id] = l
	return l
}

// acquire takes the lane of session id for a request whose first message
// for the session has id key, waiting for the requests before it, and with
// gaps for the messages numbered before key (not over WebSocket: a
// socket's frames arrive in order, and the missing ones could only come
// after this one). It returns ctx's error, without the lane, if ctx ends
// first.
func (ls *lanes) acquire(ctx context.Context, s *Server, id string, key protocol.ID, ticket uint64, gaps bool) error {
	sh := &ls.shards[s.shard(id)]
	sh.mu.Lock()
	l := sh.lane(id)
	if !l.busy && l.waiting() == 0 && (!gaps || ls.inOrder(l, key)) {
		l.busy = true
		sh.mu.Unlock()
		return nil
	}
	w := &laneWaiter{key: key, ticket: ticket, ready: make(chan struct{}), forced: !gaps}
	more := l.contended()
	i := len(more.waiters)
	for i > 0 && w.before(more.waiters[i-1]) {
		i--
	}
	more.waiters = slices.Insert(more.waiters, i, w)
	ls.next(l)
	sh.mu.Unlock()
	d := ls.wait
	if d == 0 {
		d = reorderWait
	}
	t := time.NewTimer(d)
	defer t.Stop()
	timeout := t.C
	for {
		select {
		case <-w.ready:
			return nil
		case <-timeout:
			// The missing messages did not come: go on without them.
			timeout = nil
			sh.mu.Lock()
			w.forced = true
			ls.next(l)
			sh.mu.Unlock()
			continue
		case <-ctx.Done():
		}
		break
	}
	sh.mu.Lock()
	if i := slices.Index(more.waiters, w); i >= 0 {
		more.waiters = slices.Delete(more.waiters, i, i+1)
		ls.next(l)
		sh.mu.Unlock()
		return ctx.Err()
	}
	sh.mu.Unlock()
	ls.release(s, id, "") // handed over meanwhile: pass it on
	return ctx.Err()
}

// next hands a free lane to its first waiter if that one may go; the
// shard is locked.
func (ls *lanes) next(l *lane) {
	if l.busy || l.waiting() == 0 {
		return
	}
	w := l.more.waiters[0]
	if !ls.inOrder(l, w.key) {
		if !w.forced {
			return
		}
		// Forced past the missing messages: release makes what it
		// brings last.
		l.noGaps = true
	}
	l.more.waiters = slices.Delete(l.more.waiters, 0, 1)
	l.busy = true
	close(w.ready)
}

// inOrder reports whether a request whose first message has id key may go
// now: it is the next message of the session, or it cannot be told (no
// counter, nothing seen yet), or it is late.
func (ls *lanes) inOrder(l *lane, key protocol.ID) bool {
	if !ls.waitGaps || l.noGaps || l.n == 0 || !isCounter(key) {
		return true
	}
	last := l.lastID()
	return compareCounters(key, last) <= 0 || isNextCounter(last, key)
}

// release frees the lane of session id (after a request whose last message
// for the session had id last) and hands it on.
func (ls *lanes) release(s *Server, id string, last protocol.ID) {
	sh := &ls.shards[s.shard(id)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	l := sh.m[id]
	if l == nil {
		return
	}
	l.busy = false
	if !ls.waitGaps && l.waiting() == 0 {
		delete(sh.m, id) // nothing waits for ids: no history to keep
		return
	}
	l.advance(last)
	ls.next(l)
}

// seen tells session id's lane that a message of the session numbered key
// was handled outside it (a connect, a handshake).
func (ls *lanes) seen(s *Server, id string, key protocol.ID) {
	if key == "" || !ls.waitGaps {
		return // nothing waits for ids: no history to keep
	}
	sh := &ls.shards[s.shard(id)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	l := sh.lane(id)
	l.saw(key)
	ls.next(l)
}

// forget drops the lane of a session that ended, unless a request is in
// it.
func (ls *lanes) forget(s *Server, id string) {
	sh := &ls.shards[s.shard(id)]
	sh.mu.Lock()
	if l := sh.m[id]; l != nil && !l.busy && l.waiting() == 0 {
		delete(sh.m, id)
	}
	sh.mu.Unlock()
}

// saw records that the message numbered key was handled outside the lane:
// it advances last when it follows it, is kept ahead when it comes after a
// gap, and changes nothing when late.
func (l *lane) saw(key protocol.ID) {
	if l.n > 0 && isCounter(key) {
		last := l.lastID()
		if compareCounters(key, last) > 0 && !isNextCounter(last, key) {
			more := l.contended()
			if len(more.ahead) < 8 && !slices.Contains(more.ahead, key) {
				more.ahead = append(more.ahead, key)
			}
			return
		}
	}
	l.advance(key)
}

// advance records that the messages up to key were handled (a request
// that went in the lane, in order or past missing ids): key becomes last
// unless it is late, and so do the ids seen ahead that follow it.
func (l *lane) advance(key protocol.ID) {
	switch {
	case key == "":
		return
	case l.n == 0 || !isCounter(key):
		l.setLast(key)
		if l.more != nil {
			l.more.ahead = l.more.ahead[:0]
		}
		return
	case compareCounters(key, l.lastID()) <= 0:
		return
	}
	l.setLast(key)
	if l.more == nil {
		return
	}
	ahead := l.more.ahead
	for i := 0; i < len(ahead); {
		switch a, last := ahead[i], l.lastID(); {
		case isNextCounter(last, a):
			l.setLast(a)
			ahead = slices.Delete(ahead, i, i+1)
			i = 0
		case compareCounters(a, last) <= 0:
			ahead = slices.Delete(ahead, i, i+1)
		default:
			i++
		}
	}
	l.more.ahead = ahead
}

// isCounter reports whether id reads as a counter in base 10 or 36:
// digits and lower-case letters, no leading zero, at most 13 characters
// (2^64 in base 36).
func isCounter(id protocol.ID) bool {
	if len(id) == 0 || len(id) > 13 || (id[0] == '0' && len(id) > 1) {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// compareCounters compares two ids as counters: shorter first, then byte
// order (digits before letters), which is numeric order in base 10 and 36.
func compareCounters(a, b protocol.ID) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// isNextCounter reports whether next follows last by one, counted in base
// 10 (when last has only digits) or base 36.
func isNextCounter(last, next protocol.ID) bool {
	return follows(last, next, 36) || follows(last, next, 10)
}

// follows reports whether next is last plus one in base (10 or 36), both
// written with digits and lower-case letters.
func follows(last, next protocol.ID, base byte) bool {
	n := len(last)
	for k := 0; k < n; k++ {
		if digit(last[k]) >= base {
			return false
		}
	}
	i := n - 1 // the digit that goes up; those after it turn to 0
	for i >= 0 && digit(last[i]) == base-1 {
		i--
	}
	if i < 0 { // all at the top: one digit more
		if len(next) != n+1 || next[0] != '1' {
			return false
		}
		i, n = 0, n+1
	} else if len(next) != n || last[:i] != next[:i] || digit(next[i]) != digit(last[i])+1 {
		return false
	}
	for k := i + 1; k < n; k++ {
		if next[k] != '0' {
			return false
		}
	}
	return true
}

func digit(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// ordered reports whether m is processed in its session's lane.
func ordered(m *protocol.Message) bool {
	return m.ClientID != "" && m.Channel != protocol.MetaConnect && m.Channel != protocol.MetaHandshake
}

// acquireLanes takes the lanes of the sessions msgs name (in a fixed order,
// so that two batches naming the same sessions cannot wait for each
// other) and returns them, appended to ids, for releaseLanes; it reports
// false when the request ended first. A batch with only a connect takes no lane: it tells the
// lane its id.
func (x *exchange) acquireLanes(msgs []*protocol.Message, ids []string) ([]string, bool) {
	for _, m := range msgs {
		if ordered(m) && !slices.Contains(ids, m.ClientID) {
			ids = append(ids, m.ClientID)
		}
	}
	if len(ids) == 0 {
		for _, m := range msgs {
			if m.Channel == protocol.MetaConnect && m.ClientID != "" {
				x.s.lanes.seen(x.s, m.ClientID, m.ID)
			}
		}
		return nil, true
	}
	if len(ids) > 1 {
		slices.Sort(ids)
	}
	for i, id := range ids {
		if x.s.lanes.acquire(x.ctx, x.s, id, firstID(msgs, id), x.ticket, x.transport != protocol.WebSocket) != nil {
			x.releaseLanes(msgs, ids[:i])
			return nil, false
		}
	}
	return ids, true
}

// releaseLanes releases the lanes of ids, telling each the last id of its
// session's messages in msgs.
func (x *exchange) releaseLanes(msgs []*protocol.Message, ids []string) {
	for _, id := range ids {
		var last protocol.ID
		for _, m := range msgs {
			if m.ClientID == id && m.ID != "" {
				last = m.ID
			}
		}
		x.s.lanes.release(x.s, id, last)
		if c, looked := x.clients[id]; looked && c == nil {
			// No such session (or not this request's): keep no lane for
			// it, so that made-up ids cannot crowd out real sessions'.
			x.s.lanes.forget(x.s, id)
		}
	}
}

// firstID is the id of the first message of session id in msgs.
func firstID(msgs []*protocol.Message, id string) protocol.ID {
	for _, m := range msgs {
		if m.ClientID == id && m.Channel != protocol.MetaHandshake {
			return m.ID
		}
	}
	return ""
}
