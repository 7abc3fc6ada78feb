package server

import (
	"sync/atomic"
	"time"
)

// wakeChunk is the most holds one wakeRun takes in turn.
const wakeChunk = 64

// wakeStall is how long a wakeRun may stay in one take (a delivery that
// blocks) before another goroutine carries on with the holds after it.
const wakeStall = 5 * time.Millisecond

// readyBatch dispatches the engine's ReadyBatch hook: as ready does for
// each session, but the holds it wakes take in turn, a chunk of up to
// wakeChunk on one goroutine (a wakeRun), instead of on a goroutine each.
func (s *Server) readyBatch(ids []string) {
	var w *wakeRun
	for _, id := range ids {
		h := s.held(id)
		if h == nil {
			s.wakeLocal(id)
			continue
		}
		if !h.claim() {
			continue
		}
		if w == nil {
			w = &wakeRun{holds: make([]*hold, 0, min(len(ids), wakeChunk))}
		}
		w.holds = append(w.holds, h)
		if len(w.holds) == wakeChunk {
			w.start()
			w = nil
		}
	}
	if w != nil {
		w.start()
	}
}

// wakeRun takes, in turn and on one goroutine, holds that one publish
// woke (each claimed already: see hold.claim): one goroutine start and
// one stack growth for the chunk instead of one for each hold.
//
// A take may block in its delivery (a parked connection or a WebSocket
// whose client does not read: the write waits up to
// Options.WriteTimeout). So that one slow client does not hold up the
// holds after it, a timer checks every wakeStall, once the run began,
// that it went on to another hold; when it did not, another goroutine
// carries on with the rest. Each hold is taken once, by the goroutine
// that claims its index.
type wakeRun struct {
	holds []*hold
	next  atomic.Int32 // index of the next hold to take
	timer *time.Timer  // set by the first take, before the timer can fire
	seen  int32        // next at the last check (the timer's goroutine only)
}

// start begins taking w's holds on a goroutine.
func (w *wakeRun) start() {
	if len(w.holds) == 1 {
		go w.holds[0].take()
		return
	}
	go w.run()
}

// run takes holds until none is left to claim.
func (w *wakeRun) run() {
	for {
		i := int(w.next.Add(1)) - 1
		if i >= len(w.holds) {
			w.timer.Stop()
			return
		}
		if i == 0 {
			// Armed once w.timer is set: check uses it.
			w.seen = 1
			w.timer = time.AfterFunc(time.Hour, w.check)
			w.timer.Reset(wakeStall)
		}
		w.holds[i].take()
	}
}

// check runs on w's timer: when a take has run since the last check and
// no other began, the run is stuck in it, and a new goroutine goes on.
func (w *wakeRun) check() {
	n := w.next.Load()
	if int(n) >= len(w.holds) {
		return // every hold is taken or being taken
	}
	if n == w.seen {
		go w.run()
	}
	w.seen = n
	w.timer.Reset(wakeStall)
}
