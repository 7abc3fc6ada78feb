package wasmclient

import (
	"context"
	"encoding/json"
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
	gap     atomic.Pointer[func()]
}

// Channel returns the channel name or pattern subscribed to.
func (s *Subscription) Channel() string { return s.channel }

// Unsubscribe is c.Unsubscribe(ctx, s).
func (s *Subscription) Unsubscribe(ctx context.Context) error { return s.c.Unsubscribe(ctx, s) }

// OnGap sets fn to be called, on the delivery goroutine, when the client
// subscribed to the channel again after it lost its session (a server
// restart, a network cut longer than the session timeout) and could not
// recover what was published meanwhile: the server no longer keeps it all
// (or keeps no history of the channel at all). The listener may have
// missed messages; those that follow are delivered as usual. On a channel
// whose server keeps a history (see the package documentation) the
// client recovers by itself and fn is not called.
func (s *Subscription) OnGap(fn func()) { s.gap.Store(&fn) }

// channelSubs are the listeners of one channel or pattern. The server
// knows the channel once op, the /meta/subscribe that created the entry,
// succeeded (op is then nil).
//
// On a channel whose server keeps a history (its subscribe reply said so
// in ext.recover), pos is the position of the newest message delivered,
// or where the subscription started: a new session's subscribe asks for
// what came after it (recovering), and deliveries of the channel wait in
// held until that reply has been handled.
type channelSubs struct {
	subs       []*Subscription
	op         *request
	history    bool
	pos        protocol.Position
	recovering bool
	held       []*protocol.Message
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
// exact channel first, then the wildcard patterns, deepest first. On a
// channel with history a message at or before the position delivered
// last is a copy (recovered already) and skipped, and one that arrives
// while the channel recovers waits for the recovery.
func (c *Client) deliver(m *protocol.Message) {
	var buf [8]string
	names := protocol.Wilds(append(buf[:0], m.Channel), m.Channel)
	var subs []*Subscription
	c.mu.Lock()
	for _, n := range names {
		cs := c.subs[n]
		if cs == nil {
			continue
		}
		if n == m.Channel {
			if pos, ok := protocol.PositionOf(m); ok {
				switch {
				case cs.history && cs.recovering:
					cs.held = append(cs.held, m)
					continue
				case cs.history && pos.Epoch == cs.pos.Epoch && pos.Offset <= cs.pos.Offset:
					continue
				}
				cs.pos = pos
			}
		}
		subs = append(subs, cs.subs...)
	}
	c.mu.Unlock()
	for _, s := range subs {
		if !s.closed.Load() {
			c.disp.safe(func() { s.fn(m) })
		}
	}
}

// recoverEntry is a channel's entry in a subscribe reply's ext.recover.
type recoverEntry struct {
	Pos       string          `json:"pos"`
	Recovered *bool           `json:"recovered"`
	Messages  json.RawMessage `json:"messages"`
}

// subscribed handles, on the delivery goroutine, the successful reply m
// to a /meta/subscribe of channel: whether the channel has a history and
// where the subscription starts, and for a recovering subscribe the
// messages it recovered, then those that waited.
func (c *Client) subscribed(channel string, m *protocol.Message) {
	var entry recoverEntry
	var entries map[string]json.RawMessage
	history := json.Unmarshal(m.Ext["recover"], &entries) == nil && entries[channel] != nil &&
		json.Unmarshal(entries[channel], &entry) == nil
	top, _ := protocol.ParsePosition(entry.Pos)
	var recovered []*protocol.Message
	if entry.Messages != nil {
		recovered, _ = protocol.DecodeBatch(entry.Messages)
	}
	c.mu.Lock()
	cs := c.subs[channel]
	if cs == nil {
		c.mu.Unlock()
		return
	}
	held := cs.held
	wasRecovering := cs.recovering
	cs.held, cs.recovering, cs.history = nil, false, history
	gap := wasRecovering && (!history || entry.Recovered == nil || !*entry.Recovered)
	switch {
	case !history:
		cs.pos = protocol.Position{}
	case wasRecovering && !gap:
		// Recovered: delivering the messages moves the position on.
	case gap:
		cs.pos = top // what follows is after top
	case top.Epoch == "":
		// No message yet: the first delivered gives the position.
	case top.Epoch != cs.pos.Epoch || top.Offset > cs.pos.Offset:
		// A new subscription starts at top, unless later messages came
		// before its reply.
		cs.pos = top
	}
	subs := cs.subs
	c.mu.Unlock()
	if gap {
		for _, s := range subs {
			if fn := s.gap.Load(); fn != nil && !s.closed.Load() {
				c.disp.safe(*fn)
			}
		}
	}
	for _, r := range recovered {
		c.deliver(r)
	}
	for _, h := range held {
		c.deliver(h)
	}
}

// resubscribeMessage is the /meta/subscribe of a new session for cs: on a
// channel with history it asks for what was published since the last
// message delivered. c.mu is held.
func resubscribeMessage(channel string, cs *channelSubs) *protocol.Message {
	m := subscribeMessage(protocol.MetaSubscribe, channel)
	if !cs.history {
		return m
	}
	since := ""
	if cs.pos.Epoch != "" {
		since = cs.pos.String()
	}
	b, err := json.Marshal(map[string]string{channel: since})
	if err != nil {
		return m
	}
	m.Ext = map[string]json.RawMessage{"recover": b}
	cs.recovering = true
	return m
}

// released delivers, on the delivery goroutine, what waited for a
// recovery that failed.
func (c *Client) released(channel string) {
	c.mu.Lock()
	cs := c.subs[channel]
	if cs == nil {
		c.mu.Unlock()
		return
	}
	held := cs.held
	cs.held, cs.recovering = nil, false
	c.mu.Unlock()
	for _, h := range held {
		c.deliver(h)
	}
}
