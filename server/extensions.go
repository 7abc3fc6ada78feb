package server

import (
	"context"
	"encoding/json"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// Extension hooks into the messages the server receives and sends: the
// Go form of CometD's BayeuxServer.Extension (rcv, rcvMeta, send,
// sendMeta) and, with SendTo, of its per-session
// ServerSession.Extension.send. Every field is optional; a nil one is
// skipped at no cost.
//
// Order: Options.Extensions apply in order to what comes in and in
// reverse order to what goes out, so that the first extension is the
// outermost (it sees an incoming message first and an outgoing one
// last), as in CometD. A hook that returns false (SendTo: nil) deletes
// the message: the hooks after it do not see it.
//
// The built-in ack and timesync extensions stay inside the server, as
// if registered after every Extension: incoming, they read a message
// after the Rcv hooks changed it; outgoing, their ext.ack and
// ext.timesync are in the replies that the SendMeta hooks see.
//
// Hooks run on the goroutine that handles the message (for SendTo, the
// one that answers the connect), concurrently with other sessions'
// messages, and must be quick and safe for concurrent use. They apply
// to local clients too (Client.IsLocal). Messages they get are the
// server's: a hook may change them in place (Rcv, RcvMeta, Send,
// SendMeta), but must not keep them after it returns.
type Extension struct {
	// Rcv sees each non-meta message a client sends (a publish, on a
	// broadcast or a service channel) once its channel and id are valid,
	// before anything else looks at it (Options.Authorize, the
	// authorizers, the service): it may change it. Returning false
	// deletes it: the client is answered 404::message_deleted. from is
	// the sending session, nil when it has none (Options.AnonPublish) or
	// an unknown one.
	Rcv func(ctx context.Context, from *Client, m *protocol.Message) bool
	// RcvMeta is Rcv for meta messages (/meta/handshake, /meta/connect,
	// /meta/subscribe ...). For a handshake, from is the client being
	// handshaken (its ID is still ""); Client.SetUser has no effect
	// here (Options.Authorize authenticates).
	RcvMeta func(ctx context.Context, from *Client, m *protocol.Message) bool
	// Send sees each non-meta message the server sends, before it is
	// encoded:
	//   - a publish, once for all its subscribers (to is nil, from the
	//     publisher, nil for the server's own: Server.Publish,
	//     presence). What Send changes, every subscriber gets; returning
	//     false publishes it to nobody, and its publisher is answered
	//     404::message_deleted (Server.Publish returns
	//     protocol.ErrMessageDeleted).
	//   - a message to one session (to is set; from nil): the answers of
	//     a service, Server.Push, and the reply to a publish (Successful
	//     set), as in CometD. Returning false: it is not sent
	//     (Server.Push returns protocol.ErrMessageDeleted).
	Send func(ctx context.Context, from, to *Client, m *protocol.Message) bool
	// SendMeta sees each reply to a meta message before it is sent (to:
	// the session it answers, nil when there is none, such as a refused
	// handshake). Returning false: it is not sent (its client times out
	// and retries, as the Bayeux clients do for a lost reply).
	SendMeta func(ctx context.Context, to *Client, m *protocol.Message) bool
	// SendTo is the per-recipient hook (CometD's
	// ServerSession.Extension.send): it sees each message delivered to
	// each session (remote or local) just before it is written to that
	// session alone, and returns what to write: p itself when it leaves
	// the delivery as it is (then the encoding shared by every recipient
	// is written, not re-encoded), a replacement made with
	// Payload.WithData or Payload.WithMessage (encoded for this session
	// only), or nil to drop the delivery for this session. It sees
	// deliveries of publishes and pushes, the answers of services, and
	// the messages of /service/history pages and of a subscription's
	// recovery. p is shared by every recipient and must not be changed.
	// Reading p.Channel is free; p.Message decodes the message when the
	// engine did not keep it decoded (Redis), so look at the channel
	// first. In ack mode a delivery sent again passes SendTo again.
	SendTo func(to *Client, p *Payload) *Payload
}

// extensions is Options.Extensions with what they hook into.
type extensions struct {
	list                                 []Extension
	rcv, rcvMeta, send, sendMeta, sendTo bool
}

func newExtensions(list []Extension) extensions {
	e := extensions{list: list}
	for _, x := range list {
		e.rcv = e.rcv || x.Rcv != nil
		e.rcvMeta = e.rcvMeta || x.RcvMeta != nil
		e.send = e.send || x.Send != nil
		e.sendMeta = e.sendMeta || x.SendMeta != nil
		e.sendTo = e.sendTo || x.SendTo != nil
	}
	return e
}

// incoming runs the Rcv or RcvMeta hooks in order; false: m is deleted.
func (e *extensions) incoming(ctx context.Context, from *Client, m *protocol.Message) bool {
	meta := protocol.IsMeta(m.Channel)
	for i := range e.list {
		f := e.list[i].Rcv
		if meta {
			f = e.list[i].RcvMeta
		}
		if f != nil && !f(ctx, from, m) {
			return false
		}
	}
	return true
}

// outgoing runs the Send or SendMeta hooks in reverse order; false: m is
// deleted.
func (e *extensions) outgoing(ctx context.Context, from, to *Client, m *protocol.Message) bool {
	meta := protocol.IsMeta(m.Channel)
	if (meta && !e.sendMeta) || (!meta && !e.send) {
		return true
	}
	for i := len(e.list) - 1; i >= 0; i-- {
		x := &e.list[i]
		if meta {
			if x.SendMeta != nil && !x.SendMeta(ctx, to, m) {
				return false
			}
		} else if x.Send != nil && !x.Send(ctx, from, to, m) {
			return false
		}
	}
	return true
}

// deliver runs the SendTo hooks in reverse order on one delivery to to;
// nil: dropped.
func (e *extensions) deliver(to *Client, p *Payload) *Payload {
	for i := len(e.list) - 1; i >= 0 && p != nil; i-- {
		if f := e.list[i].SendTo; f != nil {
			p = f(to, p)
		}
	}
	return p
}

// deliverAll runs SendTo on the deliveries ps to one session and returns
// what to write: ps itself when no hook changed or dropped any (nothing
// is copied or encoded), else a new slice.
func (e *extensions) deliverAll(to *Client, ps []*Payload) []*Payload {
	if !e.sendTo {
		return ps
	}
	var out []*Payload
	for i, p := range ps {
		q := e.deliver(to, p)
		if q != p && out == nil {
			out = make([]*Payload, i, len(ps))
			copy(out, ps[:i])
		}
		if out != nil && q != nil {
			out = append(out, q)
		}
	}
	if out == nil {
		return ps
	}
	return out
}

// WithData returns a copy of p that delivers data instead of p's (data
// as for Server.Publish: a JSON-encodable value or json.RawMessage),
// keeping its channel, id and ext: for a SendTo hook. p is not changed.
func (p *Payload) WithData(data any) (*Payload, error) {
	m, err := p.Message()
	if err != nil {
		return nil, err
	}
	raw, err := protocol.MarshalData(data)
	if err != nil {
		return nil, err
	}
	c := *m
	c.Data = raw
	return p.WithMessage(&c)
}

// WithMessage returns a copy of p that delivers m instead, encoded anew
// (never with m's clientId): for a SendTo hook. p and m are not changed.
func (p *Payload) WithMessage(m *protocol.Message) (*Payload, error) {
	c := *m
	c.ClientID = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	q := *p
	q.Channel, q.JSON, q.Msg = c.Channel, b, &c
	return &q, nil
}

// setExt sets ext[key] of a reply to v encoded as JSON.
func setExt(r *protocol.Message, key string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	if r.Ext == nil {
		r.Ext = make(map[string]json.RawMessage, 1)
	}
	r.Ext[key] = b
}

// timesync is the timesync extension's request data (CometD
// TimeSyncExtension): the client's time tc, its lag l and offset o, and
// when the server received the message.
type timesync struct {
	tc, l, o int64
	ts       int64
	received time.Time
	old      bool // a request without l and o gets the short reply
}

func parseTimesync(m *protocol.Message) *timesync {
	raw, ok := m.Ext["timesync"]
	if !ok || !protocol.IsMeta(m.Channel) {
		return nil
	}
	var in struct {
		TC *int64 `json:"tc"`
		L  *int64 `json:"l"`
		O  *int64 `json:"o"`
	}
	if json.Unmarshal(raw, &in) != nil || in.TC == nil {
		return nil
	}
	now := time.Now()
	t := &timesync{tc: *in.TC, ts: now.UnixMilli(), received: now, old: in.L == nil || in.O == nil}
	if !t.old {
		t.l, t.o = *in.L, *in.O
	}
	return t
}

// reply is the server's answer: tc echoed, ts the receive time, p how long
// the server held the message, and a the accuracy of the client's estimate.
func (t *timesync) reply(now time.Time) map[string]int64 {
	r := map[string]int64{"tc": t.tc, "ts": t.ts, "p": now.Sub(t.received).Milliseconds()}
	if !t.old {
		r["a"] = t.tc + t.o + t.l - t.ts
	}
	return r
}
