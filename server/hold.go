package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// hold is a /meta/connect waiting on this node for its session to have
// something to take: the one waiting type of every transport. The engine's
// Ready hook wakes it (Server.ready), its timer ends it, and cancel ends it
// early (a newer connect, the client gone, shutdown). While it waits it has
// no goroutine: a wake-up runs one Take on a goroutine of its own, at most
// one at a time. done is called exactly once, on the goroutine that ended
// the wait, with what the connect's reply carries.
type hold struct {
	s    *Server
	id   string
	opts TakeOptions
	done func(Batch, error)
	// superseded is set when a newer connect of the session took over
	// (on this node or, through the engine, on another).
	superseded atomic.Bool

	mu       sync.Mutex
	timer    *time.Timer
	state    int8 // holdStarting, holdWaiting, holdTaking or holdDone
	dirty    bool // a Ready came while a take ran
	final    bool // the wait passed: the next take is the last
	canceled bool
	// first is what the first take returned besides messages (drops, the
	// batch number), added to the reply.
	first Batch
}

const (
	holdStarting = iota
	holdWaiting
	holdTaking
	holdDone
)

// newHold returns a hold for session id that calls done when it ends
// after waiting (see start).
func (s *Server) newHold(id string, opts TakeOptions, done func(Batch, error)) *hold {
	return &hold{s: s, id: id, opts: opts, done: done}
}

// start takes what is queued for the session and, when nothing is and
// wait > 0, holds: it reports waits, and done is called later (on another
// goroutine) with what arrives, or with nothing when the wait passes or
// the hold is canceled. Otherwise it returns what the take returned and
// done is never called. While it waits, the hold is registered as the
// session's held connect on this node (a newer one cancels it).
func (h *hold) start(wait time.Duration) (b Batch, err error, waits bool) {
	s, id := h.s, h.id
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
	h.first = b
	if h.opts.Ack {
		h.opts.Acked = max(h.opts.Acked, b.Last)
	}
	h.mu.Lock()
	h.timer = time.AfterFunc(wait, h.timeout)
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

// ready is the engine's Ready for this hold's session: take again.
func (h *hold) ready() {
	h.mu.Lock()
	switch h.state {
	case holdWaiting:
		h.state = holdTaking
		h.mu.Unlock()
		go h.take()
		return
	case holdStarting, holdTaking:
		h.dirty = true
	}
	h.mu.Unlock()
}

// timeout runs on the timer's goroutine: one last take.
func (h *hold) timeout() {
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
		b, err := h.s.engine.Take(context.Background(), h.id, o)
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

// finish unregisters the hold and calls done with the first take's drops
// and batch number added.
func (h *hold) finish(b Batch, err error) {
	h.s.unregisterHeld(h.id, h)
	b.Dropped += h.first.Dropped
	if len(b.Payloads) == 0 && b.Last < h.first.Last {
		b.Last = h.first.Last
	}
	h.done(b, err)
}

// ready dispatches the engine's Ready hook: to the session's held connect
// on this node, else to its local client.
func (s *Server) ready(id string) {
	sh := &s.conns[s.shard(id)]
	sh.mu.Lock()
	h := sh.m[id]
	sh.mu.Unlock()
	if h != nil {
		h.ready()
		return
	}
	if lc, ok := s.locals.Load(id); ok {
		lc.(*LocalClient).wake()
	}
}
