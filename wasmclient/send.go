package wasmclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// maxPerRequest is how many queued messages the sender puts in one HTTP
// request at most (a Batch larger than that still goes in one). The
// server's default limit is 256.
const maxPerRequest = 100

// request is a message other than handshake and connect, from the time it
// is queued until its reply. Its fields are guarded by Client.mu until
// done is closed; then reply and err are read-only.
type request struct {
	msg  *protocol.Message
	call bool // a service call: wait for the reply that carries data
	// noRetry: do not queue it again after a 402 (a disconnect).
	noRetry   bool
	retried   bool
	acked     bool
	abandoned bool // the caller stopped waiting
	finished  bool
	done      chan struct{}
	reply     *protocol.Message
	err       error
}

func newRequest(m *protocol.Message, call bool) *request {
	return &request{msg: m, call: call, done: make(chan struct{})}
}

// complete finishes q once; the caller holds Client.mu.
func (q *request) complete(reply *protocol.Message, err error) {
	if q.finished {
		return
	}
	q.finished = true
	q.reply, q.err = reply, err
	close(q.done)
}

// send queues msgs as one group and waits for their replies. It returns
// the requests, completed, or ctx's error.
func (c *Client) send(ctx context.Context, call bool, msgs ...*protocol.Message) ([]*request, error) {
	reqs := make([]*request, len(msgs))
	for i, m := range msgs {
		reqs[i] = newRequest(m, call)
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil, ErrDisconnected
	}
	c.enqueueLocked(reqs...)
	c.mu.Unlock()
	for _, q := range reqs {
		if _, err := c.wait(ctx, q); err != nil && ctx.Err() != nil {
			for _, q := range reqs {
				c.abandon(q)
			}
			return nil, ctx.Err()
		}
	}
	return reqs, nil
}

// enqueueLocked gives ids to reqs and queues them as one group.
func (c *Client) enqueueLocked(reqs ...*request) {
	for _, q := range reqs {
		q.msg.ID = c.nextID()
	}
	c.queue = append(c.queue, reqs)
	if c.ready {
		c.kickSender()
	}
}

func (c *Client) kickSender() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// wait waits for q's reply or for ctx to end.
func (c *Client) wait(ctx context.Context, q *request) (*protocol.Message, error) {
	select {
	case <-q.done:
		return q.reply, q.err
	case <-ctx.Done():
		c.abandon(q)
		return nil, ctx.Err()
	}
}

// abandon forgets q: it is not sent if still queued, and a late reply is
// ignored.
func (c *Client) abandon(q *request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q.abandoned = true
	if c.pending[q.msg.ID] == q {
		delete(c.pending, q.msg.ID)
	}
}

// sender sends the queued messages of run r, one request at a time, in
// order.
func (c *Client) sender(r *runState) {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-c.kick:
		}
		for {
			batch, ws, stale := c.take(r)
			if stale {
				// A newer run's sender may have been meant: pass it on.
				c.kickSender()
				return
			}
			if len(batch) == 0 {
				break
			}
			c.sendBatch(r, c.transport(ws), batch)
		}
	}
}

// take removes the next groups from the queue, stamps the session id on
// them and registers them as pending; ws tells whether the session uses
// the WebSocket. It returns nothing while the client is not ready; stale
// is true when r is no longer the current run.
func (c *Client) take(r *runState) (batch []*request, ws, stale bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run != r {
		return nil, false, true
	}
	if !c.ready || c.clientID == "" {
		return nil, false, false
	}
	var out []*request
	for len(c.queue) > 0 {
		g := c.queue[0]
		if len(out) > 0 && len(out)+len(g) > maxPerRequest {
			break
		}
		c.queue[0] = nil
		c.queue = c.queue[1:]
		for _, q := range g {
			if q.abandoned || q.finished {
				continue
			}
			q.msg.ClientID = c.clientID
			c.pending[q.msg.ID] = q
			out = append(out, q)
		}
	}
	if len(c.queue) == 0 {
		c.queue = nil
	}
	return out, c.useWS, false
}

func (c *Client) sendBatch(r *runState, t Transport, batch []*request) {
	msgs := make([]*protocol.Message, len(batch))
	for i, q := range batch {
		msgs[i] = q.msg
	}
	resp, err := c.roundTrip(r.ctx, t, msgs, c.opts.MaxNetworkDelay)
	if err == nil {
		c.route(resp, "")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, q := range batch {
		if c.pending[q.msg.ID] != q || q.acked {
			continue // answered, queued again, or a call waiting for data
		}
		delete(c.pending, q.msg.ID)
		if err != nil {
			q.complete(nil, err)
		} else {
			q.complete(nil, ErrNoReply)
		}
	}
}

// roundTrip runs the outgoing extensions, sends msgs with t in one request
// that may take up to timeout, decodes the response and runs the incoming
// extensions on it.
func (c *Client) roundTrip(ctx context.Context, t Transport, msgs []*protocol.Message, timeout time.Duration) ([]*protocol.Message, error) {
	for _, m := range msgs {
		for _, e := range c.exts {
			e.Outgoing(m)
		}
		if m.ID == "" {
			// Every message has one already; this keeps it so whatever
			// an extension did: the WebSocket transport matches replies
			// by id.
			m.ID = c.nextID()
		}
	}
	body, err := json.Marshal(msgs)
	if err != nil {
		return nil, fmt.Errorf("wasmclient: encoding request: %w", err)
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	b, err := t.Send(tctx, c.url, body)
	if err != nil {
		return nil, err
	}
	return c.decode(b)
}

// pushed handles a WebSocket frame that answers no request in flight: a
// late reply, or events from a server that delivers them outside
// /meta/connect.
func (c *Client) pushed(b []byte) {
	c.mu.Lock()
	running := c.run != nil
	c.mu.Unlock()
	if !running {
		return
	}
	resp, err := c.decode(b)
	if err != nil {
		c.log.Debug("wasmclient: bad websocket frame", "err", err)
		return
	}
	c.route(resp, "")
}

// decode decodes a response and runs the incoming extensions on it.
func (c *Client) decode(b []byte) ([]*protocol.Message, error) {
	var resp []*protocol.Message
	var err error
	if t := bytes.TrimSpace(b); !bytes.Equal(t, []byte("[]")) {
		if resp, err = protocol.DecodeBatch(t); err != nil {
			return nil, fmt.Errorf("wasmclient: decoding response: %w", err)
		}
	}
	if len(c.exts) == 0 {
		return resp, nil
	}
	kept := resp[:0]
outer:
	for _, m := range resp {
		for _, e := range c.exts {
			if !e.Incoming(m) {
				continue outer
			}
		}
		kept = append(kept, m)
	}
	return kept, nil
}

// route hands every message of a response to whoever waits for it: the
// reply with id own (a handshake or connect) is returned, replies to
// queued messages complete them, and deliveries go to the listeners, in
// order, on the delivery goroutine.
func (c *Client) route(resp []*protocol.Message, own protocol.ID) *protocol.Message {
	var ownReply *protocol.Message
	var deliveries []*protocol.Message
	c.mu.Lock()
	for _, m := range resp {
		if own != "" && ownReply == nil && m.ID == own && protocol.IsMeta(m.Channel) {
			ownReply = m
			continue
		}
		if m.ID != "" {
			if q := c.pending[m.ID]; q != nil && q.msg.Channel == m.Channel {
				if q.call && m.Data != nil {
					// The service's answer (it comes before the publish
					// reply, or later on a connect).
					delete(c.pending, m.ID)
					q.complete(m, nil)
					continue
				}
				if m.Successful != nil {
					c.replyLocked(q, m)
					continue
				}
			}
		}
		if m.Data != nil && !protocol.IsMeta(m.Channel) && m.Successful == nil {
			deliveries = append(deliveries, m)
		}
		// Anything else (a late reply, a server-sent /meta message) is
		// of no use to anyone.
	}
	c.mu.Unlock()
	if len(deliveries) > 0 {
		c.disp.post(func() {
			for _, m := range deliveries {
				c.deliver(m)
			}
		})
	}
	return ownReply
}

// replyLocked handles the reply m to the queued message q.
func (c *Client) replyLocked(q *request, m *protocol.Message) {
	if q.msg.Channel == protocol.MetaSubscribe && len(q.msg.Subscription.Channels) == 1 {
		ch := q.msg.Subscription.Channels[0]
		if m.IsSuccessful() {
			c.disp.post(func() { c.subscribed(ch, m) })
		} else if cs := c.subs[ch]; cs != nil && cs.recovering {
			// Whether it is sent again or fails, the waiting deliveries go
			// on now (a later recovery skips the copies).
			c.disp.post(func() { c.released(ch) })
		}
	}
	if !m.IsSuccessful() {
		rc, _ := replyAdvice(m, "", 0)
		if rc == protocol.ReconnectHandshake && !q.retried && !q.noRetry {
			// The session is gone (expired, server restarted): send it
			// again, once, with the next session.
			q.retried = true
			delete(c.pending, q.msg.ID)
			c.queue = append([][]*request{{q}}, c.queue...)
			if q.msg.ClientID == c.clientID {
				c.ready = false
			} else if c.ready {
				c.kickSender()
			}
			return
		}
		delete(c.pending, q.msg.ID)
		q.complete(m, replyError(m))
		return
	}
	if q.call {
		// Acknowledged; the answer may still come on a connect.
		q.acked = true
		id := q.msg.ID
		time.AfterFunc(c.opts.MaxNetworkDelay, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.pending[id] == q {
				delete(c.pending, id)
				q.complete(nil, ErrNoReply)
			}
		})
		return
	}
	delete(c.pending, q.msg.ID)
	q.complete(m, nil)
}
