package redis

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// pubsub is the node's pub/sub connection: its own notice channel and the
// notice channels of the streams it reads. go-redis re-dials and
// re-subscribes after an error; a connection that stops answering pings
// is replaced.
type pubsub struct {
	e     *Engine
	ready chan struct{} // closed at the first subscription

	mu sync.Mutex
	ps *goredis.PubSub
}

func newPubsub(e *Engine, ready chan struct{}) *pubsub {
	p := &pubsub{e: e, ready: ready}
	p.ps = e.client.Subscribe(e.ctx, e.node)
	return p
}

// subscribe adds stream notice channels (the confirmation syncs them).
func (p *pubsub) subscribe(channels ...string) {
	p.mu.Lock()
	ps := p.ps
	p.mu.Unlock()
	if err := ps.Subscribe(p.e.ctx, channels...); err != nil && p.e.ctx.Err() == nil {
		// go-redis subscribes again when it reconnects.
		p.e.log.Debug("subscribing to stream notices failed", "err", err)
	}
}

func (p *pubsub) unsubscribe(channels ...string) {
	p.mu.Lock()
	ps := p.ps
	p.mu.Unlock()
	_ = ps.Unsubscribe(p.e.ctx, channels...)
}

func (p *pubsub) close() {
	p.mu.Lock()
	_ = p.ps.Close()
	p.mu.Unlock()
}

// replace opens a new connection subscribed to every channel.
func (p *pubsub) replace() *goredis.PubSub {
	e := p.e
	channels := []string{e.node}
	for _, st := range e.streams.all() {
		channels = append(channels, st.channel)
	}
	p.mu.Lock()
	_ = p.ps.Close()
	p.ps = e.client.Subscribe(e.ctx, channels...)
	ps := p.ps
	p.mu.Unlock()
	return ps
}

// pingEvery is how often the idle pub/sub connection is checked.
const pingEvery = 5 * time.Second

// run receives notices until Close.
func (p *pubsub) run() {
	e := p.e
	defer e.wg.Done()
	var (
		lost       error // the connection failed and has not come back yet
		first      = true
		pingSent   bool
		backoff    = 20 * time.Millisecond
		maxBackoff = time.Second
	)
	p.mu.Lock()
	ps := p.ps
	p.mu.Unlock()
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
				ps = p.replace()
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
			p.message(m)
		case *goredis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if m.Channel != e.node {
				if name, ok := strings.CutPrefix(m.Channel, e.k.p+"t:"); ok {
					if st := e.streams.get(name); st != nil {
						st.sync()
					}
				}
				continue
			}
			backoff = 20 * time.Millisecond
			if first {
				first = false
				if lost != nil {
					e.log.Info("redis reachable: pub/sub subscribed", "channel", e.node)
				}
				lost = nil
				close(p.ready)
				continue
			}
			if lost != nil {
				e.stats.reconnects.Add(1)
				e.log.Info("redis pub/sub reconnected; re-checking sessions and streams", "cause", lost)
				go e.recheck()
			}
			lost = nil
		}
	}
}

// message handles one notice.
func (p *pubsub) message(m *goredis.Message) {
	e := p.e
	e.stats.notices.Add(1)
	if m.Channel != e.node {
		name, ok := strings.CutPrefix(m.Channel, e.k.p+"t:")
		if !ok {
			return
		}
		st := e.streams.get(name)
		if st == nil {
			return
		}
		en, err := parseNotice(m.Payload)
		if err != nil {
			e.log.Error("bad stream notice", "stream", name, "err", err)
			return
		}
		st.notice(en)
		return
	}
	n := m.Payload
	if len(n) < 2 {
		return
	}
	switch n[0] {
	case 'm':
		if s := e.owned.get(n[1:]); s != nil {
			s.directChanged()
		}
	case 'c':
		if s := e.owned.get(n[1:]); s != nil {
			s.sstale.Store(true)
			e.wake(s)
		}
	case 'd':
		e.dropOwned(n[1:], server.ErrSessionRemoved)
	case 'i':
		e.deadlineNotice(n[1:])
	case 'f':
		if id, node, ok := strings.Cut(n[1:], ":"); ok {
			go e.handOver(id, node)
		}
	case 'h':
		e.handovers.answered(n[1:])
	case 'r':
		ep, id, ok := strings.Cut(n[1:], ":")
		claim, err := strconv.ParseUint(ep, 10, 64)
		if !ok || err != nil {
			return
		}
		if s := e.owned.get(id); s != nil {
			s.claimedElsewhere(claim)
		}
	}
}

// recheck runs after a pub/sub reconnect, when notices may have been
// lost: the scripts are loaded again (Redis may have restarted), every
// stream is read again, and every session this node takes for is checked:
// still there, still claimed by this node. Redis may not answer yet (a
// Redis Cluster coming back says CLUSTERDOWN for a while): it tries again
// until it could check them all.
func (e *Engine) recheck() {
	ctx := e.ctx
	e.streams.resync()
	for wait := 100 * time.Millisecond; ctx.Err() == nil; wait = min(2*wait, 2*time.Second) {
		err := e.loadScriptsErr(ctx)
		if err == nil {
			err = e.checkOwned(ctx)
		}
		if err == nil {
			return
		}
		e.log.Debug("re-checking sessions after a reconnect failed; trying again", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// checkOwned drops the sessions this node takes for that Redis lost or
// another node claimed, and makes the others read their direct queue and
// subscriptions again.
func (e *Engine) checkOwned(ctx context.Context) error {
	var all []*osession
	e.owned.each(func(s *osession) {
		if s.live() {
			all = append(all, s)
		}
	})
	for len(all) > 0 {
		n := min(len(all), 500)
		part := all[:n]
		all = all[n:]
		pipe := e.client.Pipeline()
		cmds := make([]*goredis.SliceCmd, len(part))
		for i, s := range part {
			cmds[i] = pipe.HMGet(ctx, e.k.sess(s.id), "own", "ep")
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		for i, s := range part {
			v := cmds[i].Val()
			own, _ := v[0].(string)
			ep, _ := v[1].(string)
			switch {
			case v[0] == nil:
				e.drop(s, protocol.ErrSessionUnknown) // Redis lost it
			case own != e.opts.NodeID || ep != strconv.FormatUint(s.epoch.Load(), 10):
				e.drop(s, server.ErrSuperseded)
			default:
				s.dstale.Store(true)
				s.sstale.Store(true)
				e.wake(s)
			}
		}
	}
	return nil
}

var errShortReply = errors.New("short reply")
