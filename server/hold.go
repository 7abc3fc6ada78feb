package server

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// hold is a /meta/connect of this node: the one waiting type of every
// transport (long-polling, callback-polling, WebSocket). It takes what is
// queued for its session and, when nothing is, waits: the engine's Ready
// hook wakes it (Server.ready), its timer ends it, and cancel ends it early
// (a newer connect, the client gone, shutdown). While it waits it has no
// goroutine; a wake-up runs one Take on a goroutine of its own, at most one
// at a time. Its reply goes into its exchange's response, and leaves by
// the transport's way: the socket (WebSocket: the hold has no exchange
// while it waits, the reply gets one of its own), the handler that waits
// for it (Wait), or the parked connection that took the handler's place
// (park); or through a callback given to start.
type hold struct {
	s *Server
	x *exchange // whose response the reply goes into; nil for a WebSocket's until the reply

	// The connect.
	c       *Client
	m       *protocol.Message // nil once the hold waits (only id is kept)
	id      protocol.ID
	timeout time.Duration
	ts      *timesync

	// opts are the takes' options; Acked is the client's ext.ack first.
	opts TakeOptions

	mu    sync.Mutex
	timer *time.Timer
	// What the first take returned besides messages (drops, the batch
	// number), added to the reply.
	firstDropped int
	firstLast    uint64

	// How the reply leaves, unless by a WebSocket (see deliver).
	then   func()        // the caller's, if it takes the reply itself
	woken  chan struct{} // closed for the handler waiting in Wait
	parked *parkedConn   // set before out becomes outParked
	out    atomic.Int32  // outWaiting, outWoken or outParked

	// superseded is set when a newer connect of the session took over
	// (on this node or, through the engine, on another).
	superseded atomic.Bool
	multiple   bool // the browser's connect slots are all taken
	// What start took, given back by release: a slot of the browser's
	// connects, a count in HeldConnects.
	browserSlot bool
	counted     bool

	// Under mu.
	state    int8 // holdStarting, holdWaiting, holdTaking or holdDone
	dirty    bool // a Ready came while a take ran
	final    bool // the wait passed: the next take is the last
	canceled bool
}

const (
	holdStarting = iota
	holdWaiting
	holdTaking
	holdDone
)

const (
	outWaiting = iota
	outWoken
	outParked
)

// newHold is the connect m of client c, answered in x's response.
func (x *exchange) newHold(c *Client, m *protocol.Message, lone bool) *hold {
	s := x.s
	timeout := s.opts.PollTimeout
	if m.Advice != nil && m.Advice.Timeout != nil {
		timeout = min(max(time.Duration(*m.Advice.Timeout)*time.Millisecond, 0), timeout)
	}
	if !lone || s.closing.Load() {
		timeout = 0
	}
	timeout = holdUntilDeadline(timeout, c.info)
	h := &hold{s: s, x: x, c: c, m: m, timeout: timeout}
	if c.info.Ack {
		// The client's last batch; a missing or invalid value acknowledges
		// nothing, so every unacknowledged message is sent again.
		if raw, ok := m.Ext["ack"]; ok && json.Unmarshal(raw, &h.opts.Acked) != nil {
			h.opts.Acked = 0
		}
	}
	return h
}

// start begins the connect. It reports false when its reply is in the
// response already (nothing to hold, something queued, or an error), and
// true when it waits: then the reply is delivered later, on another
// goroutine, through then (if not nil), else to the WebSocket
// (wsConn.replied), else to Wait or to the parked connection. Nothing of
// x may be touched between a true return and the delivery but what park
// clears. A WebSocket's hold starts without an exchange (x nil): its
// reply makes its own (exchange).
func (h *hold) start(then func()) bool {
	s, x := h.s, h.x
	id := h.c.info.ID
	ctx, http2 := context.Background(), true // a WebSocket's
	if x != nil {
		ctx, http2 = context.WithoutCancel(x.ctx), x.http2
	}
	if h.timeout > 0 && !http2 && s.opts.MaxSessionsPerBrowser > 0 && h.c.info.Browser != "" {
		if s.acquireBrowser(h.c.info.Browser, id) {
			h.browserSlot = true
		} else {
			h.timeout = 0
			h.multiple = true
		}
	}
	// Only what the reply needs is kept while the connect waits (a
	// WebSocket client's request is built again if asked for).
	h.id = h.m.ID
	h.m = nil
	if h.c.ws != nil {
		h.c.req.Store(nil)
	}
	if h.timeout > 0 {
		// Counted until the reply is written: Shutdown waits for it.
		s.stats.HeldConnects.Add(1)
		h.counted = true
		// The request's context is not kept: a parked connect outlives it.
		// (A transport that can tell the client went away cancels it.)
		if x != nil {
			x.ctx = context.Background()
		}
	}
	h.then = then
	if then == nil && h.c.ws == nil {
		h.woken = make(chan struct{})
	}
	_ = s.engine.Touch(ctx, id, time.Now().Add(h.timeout+s.opts.ConnectTimeout))
	h.opts.Ack = h.c.info.Ack
	b, err, waits := h.wait(h.timeout)
	if !waits {
		h.reply(b, err)
		return false
	}
	if s.closing.Load() {
		h.cancel() // BeginShutdown may have missed this one
	}
	return true
}

// wait takes what is queued for the session and, when nothing is and
// wait > 0, holds: it reports waits, and finish runs later (on another
// goroutine) with what arrives, or with nothing when the wait passes or
// the hold is canceled. Otherwise it returns what the take returned.
// While it waits, the hold is registered as the session's held connect on
// this node (a newer one cancels it).
func (h *hold) wait(wait time.Duration) (b Batch, err error, waits bool) {
	s, id := h.s, h.c.info.ID
	// Registered before the first take, so that no Ready is missed.
	s.registerHeld(id, h)
	h.opts.Watch = wait > 0
	b, err = s.engine.Take(context.Background(), id, h.opts)
	h.opts.Resume, h.opts.Watch = true, true
	if err != nil || len(b.Payloads) > 0 || wait <= 0 {
		h.mu.Lock()
		h.state = holdDone
		h.mu.Unlock()
		s.unregisterHeld(id, h)
		return b, err, false
	}
	h.firstDropped, h.firstLast = b.Dropped, b.Last
	if h.opts.Ack {
		h.opts.Acked = max(h.opts.Acked, b.Last)
	}
	h.mu.Lock()
	h.timer = time.AfterFunc(wait, h.expire)
	switch {
	case h.canceled:
		h.state = holdDone
		h.mu.Unlock()
		h.timer.Stop()
		go h.finish(Batch{}, nil)
	case h.dirty:
		h.dirty = false
		h.state = holdTaking
		h.mu.Unlock()
		go h.take()
	default:
		h.state = holdWaiting
		h.mu.Unlock()
	}
	return Batch{}, nil, true
}

// release gives back what start took, once the reply was written (or
// failed): exchange.done calls it.
func (h *hold) release() {
	if h.browserSlot {
		h.s.releaseBrowser(h.c.info.Browser, h.c.info.ID)
	}
	if h.counted {
		h.s.stats.HeldConnects.Add(-1)
	}
}

// ready is the engine's Ready for this hold's session: take again.
func (h *hold) ready() {
	if h.claim() {
		go h.take()
	}
}

// claim is the engine's Ready for this hold's session without the take:
// it reports true when the hold waited and now takes (the caller must
// run take, once); otherwise the take that runs or starts is told to
// take again (dirty), or the hold is done.
func (h *hold) claim() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch h.state {
	case holdWaiting:
		h.state = holdTaking
		return true
	case holdStarting, holdTaking:
		h.dirty = true
	}
	return false
}

// expire runs on the timer's goroutine: one last take.
func (h *hold) expire() {
	h.mu.Lock()
	h.final = true
	if h.state == holdWaiting {
		h.state = holdTaking
		h.mu.Unlock()
		h.take()
		return
	}
	h.mu.Unlock()
}

// cancel ends the wait now: the connect is answered without taking (what
// is queued stays for the next connect), or, when a take is running, with
// what that take returns. It may be called from any goroutine, more than
// once, and before the hold waits (it then ends as soon as it would).
func (h *hold) cancel() {
	h.mu.Lock()
	h.canceled = true
	if h.state != holdWaiting {
		h.mu.Unlock()
		return
	}
	h.state = holdDone
	h.mu.Unlock()
	h.timer.Stop()
	go h.finish(Batch{}, nil)
}

// take takes until something arrives, the wait passes or the hold is
// canceled, then finishes; or it waits again for the next Ready.
func (h *hold) take() {
	for {
		h.mu.Lock()
		final := h.final
		h.dirty = false
		h.mu.Unlock()
		o := h.opts
		o.Watch = !final
		b, err := h.s.engine.Take(context.Background(), h.c.info.ID, o)
		if errors.Is(err, ErrSuperseded) {
			h.superseded.Store(true)
			b, err = Batch{}, nil
			final = true
		}
		h.mu.Lock()
		if err != nil || len(b.Payloads) > 0 || final || h.canceled || b.Dropped > 0 {
			h.state = holdDone
			h.mu.Unlock()
			h.timer.Stop()
			h.finish(b, err)
			return
		}
		if h.opts.Ack {
			h.opts.Acked = max(h.opts.Acked, b.Last)
		}
		if !h.dirty && !h.final {
			h.state = holdWaiting
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
	}
}

// finish ends a hold that waited: it unregisters it, builds the reply
// (with the first take's drops and batch number) and delivers it.
func (h *hold) finish(b Batch, err error) {
	h.s.unregisterHeld(h.c.info.ID, h)
	b.Dropped += h.firstDropped
	if len(b.Payloads) == 0 && b.Last < h.firstLast {
		b.Last = h.firstLast
	}
	h.reply(b, err)
	h.deliver()
}

// deliver sends the reply of a hold that waited: through the caller's
// callback, or on its WebSocket, or to the handler waiting in Wait, or
// through the parked connection that took its place.
func (h *hold) deliver() {
	if h.then != nil {
		h.then()
		return
	}
	if ws := h.c.ws; ws != nil {
		ws.replied(h)
		return
	}
	if h.out.CompareAndSwap(outWaiting, outWoken) {
		close(h.woken)
		return
	}
	h.parked.respond()
}

// Wait blocks the handler of a hold that waits (started with a nil then)
// until its reply is complete, or until gone is closed (the client went
// away: the hold is canceled and its reply completed all the same).
func (h *hold) Wait(gone <-chan struct{}) {
	select {
	case <-h.woken:
	case <-gone:
		h.cancel()
		<-h.woken
	}
}

// park hands the reply of a hold that waits to p (its handler returns):
// the goroutine that completes the hold writes it. It reports false when
// the reply was complete already; the caller then writes it through p.
func (h *hold) park(p *parkedConn) bool {
	h.parked = p
	if !h.out.CompareAndSwap(outWaiting, outParked) {
		return false
	}
	h.woken = nil // nobody waits on it any more
	return true
}

// exchange returns the exchange the reply goes into, made now for a
// WebSocket's hold, which waits without one.
func (h *hold) exchange() *exchange {
	if h.x == nil {
		h.x = h.c.ws.exchange()
		h.x.hold = h
	}
	return h.x
}

// reply adds the connect's events and reply to the response.
func (h *hold) reply(b Batch, err error) {
	s, x := h.s, h.exchange()
	id := h.c.info.ID
	if s.ext.sendMeta {
		defer x.extendFrom(len(x.replies), h.c)
	}
	m := h.m
	if m == nil {
		m = &protocol.Message{Channel: protocol.MetaConnect, ID: h.id}
	}
	superseded := h.superseded.Load()
	if h.c.info.Ack && superseded {
		// The newer connect sends these; a stale reply must carry neither
		// events nor a batch number (the CometD client would adopt it).
		b = Batch{Dropped: b.Dropped}
	}

	if errors.Is(err, protocol.ErrSessionUnknown) && s.closing.Load() {
		// The engine closed under a server shutdown: the session may live on
		// (another node, a restart with a shared engine), so retry.
		r := m.Reply(true)
		r.Advice = s.closingAdvice()
		x.reply(r)
		return
	}
	if errors.Is(err, ErrSessionRemoved) {
		// Removed while held: by /meta/disconnect, expiry or an operator.
		r := m.Reply(true)
		r.Advice = &protocol.Advice{Reconnect: protocol.ReconnectNone, Interval: protocol.Ms(0)}
		x.reply(r)
		return
	}
	if errors.Is(err, protocol.ErrSessionUnknown) {
		// Gone without being removed (the engine's store lost it).
		x.fail(m, protocol.ErrSessionUnknown, handshakeAdvice())
		return
	}
	if err != nil {
		x.engineError("take failed", err, "client", shortID(id))
		x.fail(m, protocol.ErrServerError, &protocol.Advice{Reconnect: protocol.ReconnectRetry, Interval: protocol.Ms(1000)})
		return
	}
	x.addEvents(s.ext.deliverAll(h.c, b.Payloads))
	r := m.Reply(true)
	r.Advice = s.retryAdvice()
	if s.closing.Load() {
		r.Advice = s.closingAdvice()
	}
	if b.Dropped > 0 {
		// Tell the client that it lost messages (queue overflow).
		s.stats.Dropped.Add(int64(b.Dropped))
		s.log.Warn("session queue overflowed, oldest messages dropped", "client", shortID(id), "dropped", b.Dropped)
		setExt(r, "dropped", b.Dropped)
	}
	if h.c.info.Ack && !superseded {
		setExt(r, "ack", b.Last)
	}
	if h.ts != nil {
		setExt(r, "timesync", h.ts.reply(time.Now()))
	}
	if h.multiple {
		r.Advice.MultipleClients = true
		r.Advice.Interval = protocol.Ms(s.opts.MultiSessionInterval.Milliseconds())
	}
	x.reply(r)
	interval := s.opts.PollInterval
	if h.multiple {
		interval = s.opts.MultiSessionInterval
	}
	ctx := context.WithoutCancel(x.ctx)
	x.after = append(x.after, func() {
		if h.superseded.Load() {
			return // a newer connect holds the session and owns its expiry
		}
		_ = s.engine.Touch(ctx, id, time.Now().Add(interval+s.opts.ConnectTimeout))
	})
}

// ready dispatches the engine's Ready hook: to the session's held connect
// on this node, else to its local client.
func (s *Server) ready(id string) {
	if h := s.held(id); h != nil {
		h.ready()
		return
	}
	s.wakeLocal(id)
}

// wakeLocal wakes the session's local client, if it is one.
func (s *Server) wakeLocal(id string) {
	if lc, ok := s.locals.Load(id); ok {
		lc.(*LocalClient).wake()
	}
}

// held returns the session's held connect on this node, or nil.
func (s *Server) held(id string) *hold {
	sh := &s.conns[s.shard(id)]
	sh.mu.Lock()
	h := sh.m[id]
	sh.mu.Unlock()
	return h
}

// registerHeld makes h the session's held connect on this node. Exactly
// one connect per session is outstanding: an older one returns at once,
// without events it has not already taken.
func (s *Server) registerHeld(id string, h *hold) {
	sh := &s.conns[s.shard(id)]
	sh.mu.Lock()
	old := sh.m[id]
	sh.m[id] = h
	sh.mu.Unlock()
	if old != nil && old != h {
		old.superseded.Store(true)
		old.cancel()
	}
}

func (s *Server) unregisterHeld(id string, h *hold) {
	sh := &s.conns[s.shard(id)]
	sh.mu.Lock()
	if sh.m[id] == h {
		delete(sh.m, id)
	}
	sh.mu.Unlock()
}

// isHeld reports whether a connect of the session is held on this node.
func (s *Server) isHeld(id string) bool {
	return s.held(id) != nil
}

// wakeHeld returns the session's held connect on this node now, if any.
func (s *Server) wakeHeld(id string) {
	if h := s.held(id); h != nil {
		h.cancel()
	}
}

// acquireBrowser takes one of the browser's held-connect slots for the
// session. A session that holds a slot already (its older connect is being
// superseded) shares it: one session never counts as two clients.
func (s *Server) acquireBrowser(b, id string) bool {
	sh := &s.browsers[s.shard(b)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	held := sh.m[b]
	for i := range held {
		if held[i].id == id {
			held[i].n++
			return true
		}
	}
	if len(held) >= s.opts.MaxSessionsPerBrowser {
		return false
	}
	sh.m[b] = append(held, browserSlot{id: id, n: 1})
	return true
}

func (s *Server) releaseBrowser(b, id string) {
	sh := &s.browsers[s.shard(b)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	held := sh.m[b]
	for i := range held {
		if held[i].id != id {
			continue
		}
		if held[i].n--; held[i].n == 0 {
			held = append(held[:i], held[i+1:]...)
		}
		break
	}
	if len(held) == 0 {
		delete(sh.m, b)
	} else {
		sh.m[b] = held
	}
}
