package redis

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// waiter is a poll on this node waiting for a wake-up notice. Notices call
// fn, on the pub/sub goroutine: it must not block.
type waiter struct {
	fn   func()
	gone atomic.Bool // a "destroyed" notice arrived
}

func (w *waiter) signal() { w.fn() }

type waiterShard struct {
	mu sync.Mutex
	m  map[string][]*waiter
}

var waiterSeed = maphash.MakeSeed()

func (e *Engine) waiterShard(id string) *waiterShard {
	return &e.waiters[maphash.String(waiterSeed, id)%uint64(len(e.waiters))]
}

func (e *Engine) addWaiter(id string, w *waiter) *waiter {
	sh := e.waiterShard(id)
	sh.mu.Lock()
	sh.m[id] = append(sh.m[id], w)
	sh.mu.Unlock()
	return w
}

func (e *Engine) removeWaiter(id string, w *waiter) {
	sh := e.waiterShard(id)
	sh.mu.Lock()
	ws := sh.m[id]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(sh.m, id)
	} else {
		sh.m[id] = ws
	}
	sh.mu.Unlock()
}

// wake handles a notice: "m"+id (look again) or "d"+id (destroyed).
func (e *Engine) wake(notice string) {
	if len(notice) < 2 {
		return
	}
	e.stats.notices.Add(1)
	gone, id := notice[0] == 'd', notice[1:]
	sh := e.waiterShard(id)
	sh.mu.Lock()
	for _, w := range sh.m[id] {
		if gone {
			w.gone.Store(true)
		}
		w.signal()
	}
	sh.mu.Unlock()
}

// wakeAll makes every waiting Fetch look again (after a pub/sub reconnect,
// notices may have been lost; at Close, they return).
func (e *Engine) wakeAll() {
	for i := range e.waiters {
		sh := &e.waiters[i]
		sh.mu.Lock()
		for _, ws := range sh.m {
			for _, w := range ws {
				w.signal()
			}
		}
		sh.mu.Unlock()
	}
}

func (e *Engine) waiting() int {
	n := 0
	for i := range e.waiters {
		sh := &e.waiters[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// pingEvery is how often the idle pub/sub connection is checked.
const pingEvery = 5 * time.Second

// receive runs the node's pub/sub connection: it delivers wake-up notices
// to waiters and watches the connection. go-redis re-dials and
// re-subscribes after an error; a connection that stops answering pings
// is replaced.
func (e *Engine) receive(ready chan struct{}) {
	defer e.wg.Done()
	ps := e.subscribe()
	defer func() { _ = ps.Close() }()
	var (
		lost       error // the connection failed and has not come back yet
		first      = true
		pingSent   bool
		backoff    = 20 * time.Millisecond
		maxBackoff = time.Second
	)
	for {
		msg, err := ps.ReceiveTimeout(e.ctx, pingEvery)
		if e.ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && lost == nil {
				if !pingSent {
					pingSent = true
					if err := ps.Ping(e.ctx); err == nil {
						continue
					}
				}
				// Two quiet periods with a ping outstanding: the connection
				// is dead without having been closed. Replace it.
				err = errors.New("pub/sub connection stopped answering")
				_ = ps.Close()
				ps = e.subscribe()
			}
			pingSent = false
			e.stats.errors.Add(1)
			if lost == nil {
				lost = err
				e.log.Warn("redis pub/sub connection lost; reconnecting", "err", err)
			}
			select {
			case <-e.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		pingSent = false
		switch m := msg.(type) {
		case *goredis.Message:
			e.wake(m.Payload)
		case *goredis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			backoff = 20 * time.Millisecond
			if first {
				first = false
				if lost != nil {
					e.log.Info("redis reachable: pub/sub subscribed", "channel", e.notice)
				}
				lost = nil
				close(ready)
				continue
			}
			if lost != nil {
				e.stats.reconnects.Add(1)
				e.log.Info("redis pub/sub reconnected; re-checking waiting connects", "cause", lost)
			}
			lost = nil
			e.wakeAll()
		}
	}
}

// subscribe opens a pub/sub connection on the node's notice channel. Close
// closes it too: that ends a receive blocked on it.
func (e *Engine) subscribe() *goredis.PubSub {
	ps := e.client.Subscribe(e.ctx, e.notice)
	e.psMu.Lock()
	e.ps = ps
	e.psMu.Unlock()
	return ps
}

// Fetch implements server.Engine.
func (e *Engine) Fetch(ctx context.Context, id string, wait time.Duration) (server.Batch, error) {
	return server.FetchByPoll(ctx, func(done func(server.Batch, error)) (server.Batch, func() bool, error) {
		return e.poll(ctx, id, false, 0, wait, done)
	})
}

// FetchAck implements server.Engine.
func (e *Engine) FetchAck(ctx context.Context, id string, ack uint64, wait time.Duration) (server.Batch, error) {
	return server.FetchByPoll(ctx, func(done func(server.Batch, error)) (server.Batch, func() bool, error) {
		return e.poll(ctx, id, true, ack, wait, done)
	})
}

// Poll implements server.Engine. The first take runs on the caller's
// goroutine; a poll that waits has no goroutine: notices, its timer and
// stop start one for the script they run.
func (e *Engine) Poll(id string, ackMode bool, ack uint64, wait time.Duration, done func(server.Batch, error)) (server.Batch, func() bool, error) {
	return e.poll(context.Background(), id, ackMode, ack, wait, done)
}

// take results besides a batch.
const (
	takeOK = iota
	takeUnknown
	takeSuperseded
)

// poll claims the session for this fetch and takes what is queued. When
// nothing is and wait > 0 it registers this node as the session's waiter
// (in the same script, so no publish can slip between the take and the
// registration) and waits for a notice, then looks again until something
// arrives or wait passes. A newer fetch for the session, on any node,
// ends this one with an empty batch.
func (e *Engine) poll(ctx context.Context, id string, ackMode bool, ack uint64, wait time.Duration, done func(server.Batch, error)) (server.Batch, func() bool, error) {
	if e.closed.Load() {
		return server.Batch{}, nil, server.ErrEngineClosed
	}
	p := &redisPoll{e: e, id: id, tok: randomHex(8), ackMode: ackMode, ack: ack, done: done}
	if wait > 0 {
		// Registered before the script runs so that no notice is missed.
		p.w = e.addWaiter(id, &waiter{fn: p.notice})
	}
	b, st, err := e.take(ctx, id, true, p.tok, wait > 0, ackMode, ack)
	if err == nil && st == takeUnknown {
		err = protocol.ErrSessionUnknown
	}
	if err != nil || len(b.Payloads) > 0 || wait <= 0 {
		if p.w != nil {
			e.removeWaiter(id, p.w)
		}
		return b, nil, err
	}
	p.first = b
	p.mu.Lock()
	p.timer = time.AfterFunc(wait, p.timeout)
	if p.dirty {
		p.start() // a notice came during the first take
	}
	p.mu.Unlock()
	return server.Batch{}, p.stop, nil
}

// redisPoll is a poll waiting for a notice, its timeout or its stop. At
// most one take script runs for it at a time; a notice during one makes
// it look again.
type redisPoll struct {
	e       *Engine
	id, tok string
	ackMode bool
	ack     uint64
	done    func(server.Batch, error)
	w       *waiter
	first   server.Batch // the first take: nothing but Dropped, Last

	mu       sync.Mutex
	timer    *time.Timer
	running  bool // a take is in flight
	dirty    bool // a notice came since the last take started
	final    bool // the wait passed: the next take is the last
	stopping bool // stop came while a take was in flight
	finished bool // done was called or is about to be
}

func (p *redisPoll) notice() {
	p.mu.Lock()
	p.dirty = true
	if p.timer != nil {
		p.start()
	}
	p.mu.Unlock()
}

func (p *redisPoll) timeout() {
	p.mu.Lock()
	p.final, p.dirty = true, true
	p.start()
	p.mu.Unlock()
}

// start runs a take unless one runs already. p.mu is held.
func (p *redisPoll) start() {
	if p.running || p.finished {
		return
	}
	p.running = true
	go p.check()
}

// check takes until something arrives, the wait passes or the session
// is gone, then ends the poll.
func (p *redisPoll) check() {
	e := p.e
	empty := server.Batch{Dropped: p.first.Dropped, Last: p.first.Last}
	for {
		p.mu.Lock()
		if p.finished {
			p.running = false
			p.mu.Unlock()
			return
		}
		if p.stopping {
			p.finished = true
			p.mu.Unlock()
			p.end()
			p.release()
			p.done(empty, nil)
			return
		}
		p.dirty = false
		final := p.final
		p.mu.Unlock()

		var b server.Batch
		var err error
		last := true
		if e.closed.Load() {
			b, err = empty, server.ErrEngineClosed
		} else {
			b2, st, terr := e.take(context.Background(), p.id, false, p.tok, !final, p.ackMode, p.ack)
			switch {
			case terr != nil:
				b, err = empty, terr
			case st == takeUnknown && p.w.gone.Load():
				b, err = empty, protocol.ErrSessionUnknown
			case st == takeUnknown, st == takeSuperseded:
				// Gone without being destroyed (Redis lost it: the next
				// connect finds out), or a newer fetch took over.
				b = empty
			case len(b2.Payloads) > 0 || final:
				b2.Dropped += p.first.Dropped
				b = b2
			default:
				last = false // a notice for something already taken
			}
		}
		p.mu.Lock()
		stopping := p.stopping
		if !last && !p.dirty && !stopping {
			p.running = false
			p.mu.Unlock()
			return // wait for the next notice or the timeout
		}
		if last || stopping {
			p.finished = true
		}
		p.mu.Unlock()
		if stopping {
			// Stopped while this take ran: what it took goes out (lost
			// otherwise), and the waiter registration is given up.
			p.end()
			p.release()
			if !last {
				b, err = empty, nil
			}
			p.done(b, err)
			return
		}
		if last {
			p.end()
			p.done(b, err)
			return
		}
	}
}

func (p *redisPoll) release() {
	e := p.e
	if err := releaseScript.Run(context.Background(), e.client, nil, e.p, p.id, p.tok).Err(); err != nil && !e.closed.Load() {
		e.log.Debug("releasing a session's waiter failed", "err", err)
	}
}

// end releases the poll's waiter and timer.
func (p *redisPoll) end() {
	p.timer.Stop()
	p.e.removeWaiter(p.id, p.w)
}

// stop ends the poll early with nothing taken, and gives up the session's
// waiter registration in Redis.
func (p *redisPoll) stop() bool {
	p.mu.Lock()
	if p.finished || p.stopping {
		p.mu.Unlock()
		return false
	}
	if p.running {
		// A take is in flight: it ends the poll with what it took.
		p.stopping = true
		p.mu.Unlock()
		return true
	}
	p.finished = true
	p.mu.Unlock()
	p.end()
	go func() {
		p.release()
		p.done(server.Batch{Dropped: p.first.Dropped, Last: p.first.Last}, nil)
	}()
	return true
}

// take runs the take script. Its context is detached from ctx: once the
// script removed messages from Redis, the reply must be read.
func (e *Engine) take(ctx context.Context, id string, claim bool, tok string, register, ackMode bool, ack uint64) (server.Batch, int, error) {
	b := server.Batch{Last: ack}
	mode, reg, ackArg := "check", "0", ""
	if claim {
		mode = "claim"
	}
	if register {
		reg = "1"
	}
	if ackMode {
		ackArg = fmt.Sprint(ack)
	}
	v, err := takeScript.Run(context.WithoutCancel(ctx), e.client, nil, e.p, id, mode, tok, e.opts.NodeID, reg, ackArg, e.opts.MaxFetchBytes).Slice()
	if err != nil {
		return b, takeOK, e.fail("fetch", err)
	}
	if len(v) == 0 {
		return b, takeOK, e.fail("fetch", errors.New("empty reply"))
	}
	head, _ := v[0].(int64)
	switch head {
	case -1:
		return b, takeUnknown, nil
	case -2:
		return b, takeSuperseded, nil
	}
	if len(v) < 2 {
		return b, takeOK, e.fail("fetch", errors.New("short reply"))
	}
	b.Dropped = int(head)
	base, _ := v[1].(int64)
	if n := len(v) - 2; n > 0 {
		b.Payloads = make([]*server.Payload, 0, n)
		b.Last = uint64(base) + uint64(n)
	}
	for _, x := range v[2:] {
		s, _ := x.(string)
		p, err := decodeEntry(s)
		if err != nil {
			return b, takeOK, err
		}
		b.Payloads = append(b.Payloads, p)
	}
	return b, takeOK, nil
}
