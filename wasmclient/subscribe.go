package wasmclient

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/bayeux-go/bayeux/protocol"
)

// Subscription is one listener on a channel or pattern, returned by
// Subscribe. It is safe for concurrent use.
type Subscription struct {
	c       *Client
	channel string
	fn      func(*protocol.Message)
	closed  atomic.Bool
}

// Channel returns the channel name or pattern subscribed to.
func (s *Subscription) Channel() string { return s.channel }

// Unsubscribe is c.Unsubscribe(ctx, s).
func (s *Subscription) Unsubscribe(ctx context.Context) error { return s.c.Unsubscribe(ctx, s) }

// channelSubs are the listeners of one channel or pattern. The server
// knows the channel once once op, the /meta/subscribe that created the
// entry, succeeded (op is then nil).
type channelSubs struct {
	subs []*Subscription
	op   *request
}

// Subscribe adds fn as a listener of channel, a channel name or a pattern
// ending in "*" (one segment) or "**" (any number of segments). The first
// listener of a channel sends /meta/subscribe and Subscribe returns its
// error (a *protocol.Error such as 403::subscribe_denied); later listeners
// of the same channel share that server subscription. The server sends
// one copy of a message per session even when several subscriptions
// match it; the client hands it to every listener whose channel matches.
// Subscriptions survive re-handshakes (they are sent again to the new
// session) and Disconnect.
//
// fn runs on the delivery goroutine (see the package documentation). If
// Subscribe is called before Connect, or while reconnecting, it waits for
// the session (bounded by ctx).
func (c *Client) Subscribe(ctx context.Context, channel string, fn func(*protocol.Message)) (*Subscription, error) {
	if fn == nil {
		return nil, errors.New("wasmclient: Subscribe with a nil listener")
	}
	if err := protocol.ValidatePattern(channel); err != nil {
		return nil, err
	}
	s := &Subscription{c: c, channel: channel, fn: fn}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil, ErrDisconnected
	}
	cs := c.subs[channel]
	if cs == nil {
		cs = &channelSubs{op: newRequest(subscribeMessage(protocol.MetaSubscribe, channel), false)}
		c.subs[channel] = cs
		c.enqueueLocked(cs.op)
	}
	cs.subs = append(cs.subs, s)
	op := cs.op
	c.mu.Unlock()
	if op == nil {
		return s, nil
	}

	select {
	case <-op.done:
	case <-ctx.Done():
		c.remove(s)
		return nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if op.err != nil {
		if c.subs[channel] == cs {
			delete(c.subs, channel)
		}
		return nil, op.err
	}
	if cs.op == op {
		cs.op = nil
	}
	return s, nil
}

// Unsubscribe removes the listener s. When it was the last listener of its
// channel, /meta/unsubscribe is sent and Unsubscribe returns its error.
// No message is delivered to s after Unsubscribe starts, except one that
// is being delivered at that moment. Unsubscribing twice does nothing.
func (c *Client) Unsubscribe(ctx context.Context, s *Subscription) error {
	q := c.remove(s)
	if q == nil {
		return nil
	}
	_, err := c.wait(ctx, q)
	return err
}

// remove drops s and returns the queued /meta/unsubscribe, if one is needed.
func (c *Client) remove(s *Subscription) *request {
	if s.closed.Swap(true) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := c.subs[s.channel]
	if cs == nil {
		return nil
	}
	for i, o := range cs.subs {
		if o == s {
			cs.subs = append(cs.subs[:i:i], cs.subs[i+1:]...)
			break
		}
	}
	if len(cs.subs) > 0 {
		return nil
	}
	delete(c.subs, s.channel)
	if op := cs.op; op != nil && !op.finished && c.pending[op.msg.ID] != op {
		// The subscribe is still queued: drop it instead.
		op.abandoned = true
		op.complete(nil, context.Canceled)
		return nil
	}
	if c.closing || c.run == nil {
		return nil // no session to tell
	}
	q := newRequest(subscribeMessage(protocol.MetaUnsubscribe, s.channel), false)
	c.enqueueLocked(q)
	return q
}

// Subscriptions returns the channels and patterns that have listeners.
func (c *Client) Subscriptions() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.subs))
	for ch := range c.subs {
		out = append(out, ch)
	}
	return out
}

func subscribeMessage(meta, channel string) *protocol.Message {
	return &protocol.Message{Channel: meta, Subscription: protocol.Subscription{Channels: []string{channel}}}
}

// deliver hands m to every listener whose channel matches m.Channel: the
// exact channel first, then the wildcard patterns, deepest first.
func (c *Client) deliver(m *protocol.Message) {
	var buf [8]string
	names := protocol.Wilds(append(buf[:0], m.Channel), m.Channel)
	var subs []*Subscription
	c.mu.Lock()
	for _, n := range names {
		if cs := c.subs[n]; cs != nil {
			subs = append(subs, cs.subs...)
		}
	}
	c.mu.Unlock()
	for _, s := range subs {
		if !s.closed.Load() {
			c.disp.safe(func() { s.fn(m) })
		}
	}
}
