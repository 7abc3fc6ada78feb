package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// watch records that a Take of session id waits for a notice (Watch):
// the next notice for it calls the Ready hook.
func (e *Engine) watch(id string) { e.watched.Store(id, struct{}{}) }

func (e *Engine) unwatch(id string) { e.watched.Delete(id) }

// wake handles a notice: "m"+id (look again) or "d"+id (destroyed).
func (e *Engine) wake(notice string) {
	if len(notice) < 2 {
		return
	}
	e.stats.notices.Add(1)
	if notice[0] == 'd' {
		e.removed.Store(notice[1:], struct{}{})
	}
	e.ready(notice[1:])
}

func (e *Engine) ready(id string) {
	if _, ok := e.watched.LoadAndDelete(id); ok && e.hooks.Ready != nil {
		e.hooks.Ready(id)
	}
}

// wakeAll calls Ready for every watched session (after a pub/sub
// reconnect, notices may have been lost; at Close, they end).
func (e *Engine) wakeAll() {
	e.watched.Range(func(k, _ any) bool {
		e.ready(k.(string))
		return true
	})
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

// Take implements server.Engine. A Take without Resume claims the
// session for this node (a Take waiting elsewhere is told to look again,
// and then finds itself superseded).
func (e *Engine) Take(ctx context.Context, id string, o server.TakeOptions) (server.Batch, error) {
	if e.closed.Load() {
		return server.Batch{}, server.ErrEngineClosed
	}
	if o.Watch {
		e.watch(id) // before the script runs, so that no notice is missed
	}
	b, st, err := e.take(ctx, id, !o.Resume, e.opts.NodeID, o.Watch, o.Ack, o.Acked)
	switch {
	case err != nil:
	case st == takeUnknown:
		err = protocol.ErrSessionUnknown
		if _, ok := e.removed.LoadAndDelete(id); ok {
			err = server.ErrSessionRemoved
		}
	case st == takeSuperseded:
		err = server.ErrSuperseded
	}
	if err != nil || len(b.Payloads) > 0 || !o.Watch {
		e.unwatch(id)
	}
	return b, err
}

// take results besides a batch.
const (
	takeOK = iota
	takeUnknown
	takeSuperseded
)

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
	v, err := takeScript.Run(context.WithoutCancel(ctx), e.client, nil, e.p, id, mode, tok, e.opts.NodeID, reg, ackArg).Slice()
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
