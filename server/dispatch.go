package server

import (
	"context"
	"encoding/json"
	"errors"
	mathrand "math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// The dispatch of a request's messages: each to its meta handler, its
// service, or the engine (publish), in order, with the replies going into
// the exchange's response.

// process handles every message of a batch in order, in the lanes of the
// sessions it names (see order.go). The caller then starts the held
// connect, if any.
func (x *exchange) process(msgs []*protocol.Message) {
	s := x.s
	s.stats.MessagesIn.Add(int64(len(msgs)))
	if len(msgs) > 1 {
		for _, m := range msgs {
			if m.Channel == protocol.MetaHandshake {
				// A handshake must travel alone: refuse the whole batch so
				// that nothing runs for a session that does not exist yet.
				for _, m := range msgs {
					var adv *protocol.Advice
					if m.Channel == protocol.MetaHandshake {
						adv = noneAdvice()
					}
					x.fail(m, protocol.ErrHandshakeNotAlone, adv)
				}
				return
			}
		}
	}
	var buf [2]string
	ids, ok := x.acquireLanes(msgs, buf[:0])
	if !ok {
		return // the request ended while it waited: nobody reads a reply
	}
	bp, batching := s.engine.(BatchPublisher)
	if batching && len(msgs) > 1 {
		x.batch = make([]pendingPublish, 0, len(msgs))
	}
	for _, m := range msgs {
		if len(x.batch) > 0 && (protocol.IsMeta(m.Channel) || protocol.IsService(m.Channel)) {
			x.flushPublishes(bp) // what came before is published before m runs
		}
		x.handle(m, len(msgs) == 1)
	}
	if len(x.batch) > 0 {
		x.flushPublishes(bp)
	}
	x.batch = nil
	x.releaseLanes(msgs, ids)
	x.waitStored() // after the lanes: the session's next request need not wait
}

// pendingStore is a publish whose message is being stored in a history:
// its reply goes out once it is, and becomes a failure if storing fails.
type pendingStore struct {
	m      *protocol.Message
	stored *Stored
	reply  *protocol.Message
}

// waitStored waits until the messages the request published to channels
// with history are stored (one group commit serves them all).
func (x *exchange) waitStored() {
	for _, ps := range x.stored {
		if err := ps.stored.Wait(x.ctx); err != nil {
			x.engineError("storing a message failed", err, "channel", ps.m.Channel)
			x.s.stats.Errors.Add(1)
			f := ps.m.Fail(protocol.ErrServerError, nil)
			f.Ext = ps.reply.Ext
			*ps.reply = *f
		}
	}
	x.stored = nil
}

// pendingPublish is a publish of the request waiting to go to the engine
// with the others; its reply is in place already and becomes a failure if
// the publish fails.
type pendingPublish struct {
	m     *protocol.Message
	c     *Client
	p     *Payload
	reply *protocol.Message
}

// flushPublishes publishes the collected messages in one engine call.
func (x *exchange) flushPublishes(bp BatchPublisher) {
	batch := x.batch
	x.batch = x.batch[len(batch):]
	ps := make([]*Payload, len(batch))
	for i, pp := range batch {
		ps[i] = pp.p
	}
	ns, errs := bp.PublishBatch(x.ctx, ps)
	for i, pp := range batch {
		if errs[i] != nil {
			x.engineError("publish failed", errs[i], "channel", pp.m.Channel)
			x.s.stats.Errors.Add(1)
			f := pp.m.Fail(protocol.ErrServerError, nil)
			f.Ext = pp.reply.Ext
			*pp.reply = *f
			continue
		}
		x.s.published(pp.c.info.ID, pp.c.info.User, pp.m, pp.p, ns[i])
		if pp.p.Stored != nil {
			x.stored = append(x.stored, pendingStore{pp.m, pp.p.Stored, pp.reply})
		}
	}
}

func (x *exchange) handle(m *protocol.Message, lone bool) {
	s := x.s
	if s.ext.send || s.ext.sendMeta {
		// Runs after the timesync defer below: the hooks see final replies.
		before, hs := len(x.replies), x.hsReply
		defer x.extendReplies(m, before, hs)
	}
	if m.Channel == "" {
		x.fail(m, protocol.ErrChannelMissing, nil)
		return
	}
	if !m.ID.Valid() {
		m.ID = ""
		x.fail(m, protocol.ErrMessageIDInvalid, nil)
		return
	}
	if len(m.Channel) > s.opts.MaxChannelLength {
		x.fail(m, protocol.ErrChannelInvalid.WithArgs("too_long"), nil)
		return
	}
	if meta := protocol.IsMeta(m.Channel); (meta && s.ext.rcvMeta) || (!meta && s.ext.rcv) {
		if !s.ext.incoming(x.ctx, x.sender(m), m) {
			x.fail(m, protocol.ErrMessageDeleted, nil)
			return
		}
	}
	if ts := parseTimesync(m); ts != nil {
		before, hs := len(x.replies), x.hsReply
		defer func() {
			now := time.Now()
			for _, r := range x.replies[before:] {
				setExt(r, "timesync", ts.reply(now))
			}
			if hs == nil && x.hsReply != nil {
				setExt(x.hsReply, "timesync", ts.reply(now))
			}
			if x.hold != nil && x.hold.m == m {
				x.hold.ts = ts
			}
		}()
	}
	switch m.Channel {
	case protocol.MetaHandshake:
		x.handshake(m)
	case protocol.MetaConnect:
		x.connect(m, lone)
	case protocol.MetaDisconnect:
		x.disconnect(m)
	case protocol.MetaSubscribe:
		x.subscribe(m)
	case protocol.MetaUnsubscribe:
		x.unsubscribe(m)
	default:
		x.publish(m)
	}
}

func (x *exchange) handshake(m *protocol.Message) {
	s := x.s
	if s.closing.Load() {
		x.fail(m, protocol.ErrOverloaded, &protocol.Advice{Reconnect: protocol.ReconnectHandshake, Interval: protocol.Ms(1000)})
		return
	}
	if m.Version == "" {
		x.fail(m, protocol.ErrVersionMissing, noneAdvice())
		return
	}
	if len(m.SupportedConnectionTypes) > 0 && !s.sharesType(m.SupportedConnectionTypes) {
		x.fail(m, protocol.ErrNoTransport.WithArgs(s.types...), noneAdvice())
		return
	}
	// The address's limits count the attempt before any work for it
	// (Authorize may check a password).
	id := newID()
	if limited := !x.trial && x.transport != transportLocal; limited {
		if ok, wait := s.handshakes.Allow(x.remoteAddr, time.Now()); !ok {
			s.stats.Refused.Add(RefusedHandshakeRate)
			x.fail(m, protocol.ErrTooManyHandshakes, backoffAdvice(max(wait, time.Second)))
			return
		}
		if !s.ipSessions.add(x.remoteAddr, id, s.sessionExists) {
			s.stats.Refused.Add(RefusedSessionsPerIP)
			x.fail(m, protocol.ErrTooManySessions, backoffAdvice(sessionsRetry))
			return
		}
		defer func() {
			if x.hsReply == nil {
				s.ipSessions.remove(x.remoteAddr, id) // refused: not a session
			}
		}()
	}
	c := x.handshakeClient()
	info := c.info
	info.Ack = m.ExtBool("ack")
	c.handshaking = true
	if !x.authorize(c, m, noneAdvice()) {
		c.handshaking = false
		return
	}
	c.handshaking = false
	info.ID = id
	if err := s.engine.CreateSession(x.ctx, info); err != nil {
		x.engineError("create session failed", err)
		x.fail(m, protocol.ErrServerError, &protocol.Advice{Reconnect: protocol.ReconnectHandshake, Interval: protocol.Ms(1000)})
		return
	}
	s.ipSessions.created(x.remoteAddr, info.ID)
	_ = s.engine.Touch(x.ctx, info.ID, time.Now().Add(s.opts.PollInterval+s.opts.ConnectTimeout))
	s.lanes.seen(s, info.ID, m.ID) // the session's messages are numbered from here
	s.stats.Handshakes.Add(1)
	r := m.Reply(true)
	r.ClientID = info.ID
	r.Version = protocol.Version
	r.MinimumVersion = protocol.Version
	r.SupportedConnectionTypes = s.types
	r.Advice = s.retryAdvice()
	if info.Ack {
		setExt(r, "ack", true)
	}
	x.hsReply = r
	s.emit(Event{Kind: EventClientConnect, ClientID: info.ID, User: info.User, RemoteAddr: info.RemoteAddr})
}

// sessionsRetry is how long an address at Options.MaxSessionsPerIP is
// told to wait before it handshakes again: long enough for abandoned
// sessions to expire meanwhile, short enough for a user to wait.
const sessionsRetry = 10 * time.Second

// backoffAdvice tells a refused handshake to try again after wait plus up
// to half of it at random, so that refused clients do not come back
// together (CometD and Faye handshake again after interval, plus their
// own backoff).
func backoffAdvice(wait time.Duration) *protocol.Advice {
	ms := wait.Milliseconds()
	return &protocol.Advice{Reconnect: protocol.ReconnectHandshake, Interval: protocol.Ms(ms + mathrand.Int64N(ms/2+1))}
}

// sessionExists reports whether the engine still has session id (an
// engine error counts as yes: the limit errs on the side of refusing).
func (s *Server) sessionExists(id string) bool {
	_, ok, err := s.engine.Session(context.Background(), id)
	return ok || err != nil
}

func (s *Server) sharesType(types []string) bool {
	for _, t := range types {
		for _, o := range s.types {
			if t == o {
				return true
			}
		}
	}
	return false
}

func (x *exchange) connect(m *protocol.Message, lone bool) {
	if x.hold != nil {
		x.fail(m, protocol.ErrConnectNotAlone, nil)
		return
	}
	c := x.session(m)
	if c == nil || !x.authorize(c, m, nil) {
		return
	}
	x.hold = x.newHold(c, m, lone)
}

func (x *exchange) disconnect(m *protocol.Message) {
	c := x.session(m)
	if c == nil || !x.authorize(c, m, nil) {
		return
	}
	rs, err := x.s.engine.DestroySession(x.ctx, c.info.ID)
	if err != nil {
		x.fail(m, protocol.ErrServerError, nil)
		return
	}
	x.s.removed(rs, "disconnect")
	delete(x.clients, c.info.ID)
	x.reply(m.Reply(true))
}

// subscriber returns the session of a subscribe or unsubscribe m that
// names channels and is authorized, or nil when m was answered with its
// refusal.
func (x *exchange) subscriber(m *protocol.Message) *Client {
	c := x.session(m)
	if c == nil {
		return nil
	}
	if len(m.Subscription.Channels) == 0 {
		x.fail(m, protocol.ErrSubscriptionMissing, nil)
		return nil
	}
	if !x.authorize(c, m, nil) {
		return nil
	}
	return c
}

func (x *exchange) subscribe(m *protocol.Message) {
	s := x.s
	c := x.subscriber(m)
	if c == nil {
		return
	}
	recovering, err := recoverRequest(m)
	if err != nil {
		x.fail(m, err, nil)
		return
	}
	// Every channel is checked before any is subscribed to.
	for _, ch := range m.Subscription.Channels {
		if len(ch) > s.opts.MaxChannelLength || protocol.ValidatePattern(ch) != nil {
			x.fail(m, protocol.ErrSubscriptionInvalid, nil)
			return
		}
		if protocol.IsMeta(ch) {
			x.fail(m, protocol.ErrSubscribeDenied, nil)
			return
		}
		if err := s.authorizeChannel(x.ctx, c, m, OpSubscribe, ch, true); err != nil {
			x.fail(m, err, nil)
			return
		}
		if of, ok := strings.CutPrefix(ch, PresencePrefix); ok && s.rules.hasPresence(of) {
			// A channel's member list is the channel's: who may not
			// subscribe to it may not read who is in it.
			if err := s.authorizeRead(x.ctx, c, of); err != nil {
				x.fail(m, err, nil)
				return
			}
		}
	}
	var recovered []byte // the reply's ext.recover
	for _, ch := range m.Subscription.Channels {
		if protocol.IsService(ch) {
			continue // service channels are never broadcast: nothing to record
		}
		var err error
		if pol := s.rules.policy(ch); pol != nil {
			var since *protocol.Position
			if p, ok := recovering[ch]; ok {
				since = &p
			}
			var entry json.RawMessage
			entry, err = s.subscribeHistory(x.ctx, s.engine.(Historian), c, ch, pol, since)
			if err == nil {
				if recovered == nil {
					recovered = append(recovered, '{')
				} else {
					recovered = append(recovered, ',')
				}
				recovered = append(protocol.AppendJSONString(recovered, ch), ':')
				recovered = append(recovered, entry...)
			}
		} else {
			err = s.engine.Subscribe(x.ctx, c.info.ID, ch, s.opts.MaxSubscriptions)
		}
		if err != nil {
			if !errors.Is(err, protocol.ErrSubscriptionLimit) && !errors.Is(err, protocol.ErrSessionUnknown) {
				x.engineError("subscribe failed", err)
				err = protocol.ErrServerError
			}
			x.fail(m, err, nil)
			return
		}
		s.emit(Event{Kind: EventSubscribe, ClientID: c.info.ID, User: c.info.User, Channel: ch, Local: c.info.Local})
	}
	r := m.Reply(true)
	if recovered != nil {
		r.Ext = map[string]json.RawMessage{ExtRecover: append(recovered, '}')}
	}
	x.reply(r)
}

func (x *exchange) unsubscribe(m *protocol.Message) {
	s := x.s
	c := x.subscriber(m)
	if c == nil {
		return
	}
	for _, ch := range m.Subscription.Channels {
		if len(ch) > s.opts.MaxChannelLength || protocol.ValidatePattern(ch) != nil {
			x.fail(m, protocol.ErrSubscriptionInvalid, nil)
			return
		}
		ok, err := s.engine.Unsubscribe(x.ctx, c.info.ID, ch)
		if err != nil {
			x.fail(m, err, nil)
			return
		}
		if ok {
			s.emit(Event{Kind: EventUnsubscribe, ClientID: c.info.ID, User: c.info.User, Channel: ch, Local: c.info.Local})
		}
	}
	x.reply(m.Reply(true))
}

var anonymous = &SessionInfo{}

func (x *exchange) publish(m *protocol.Message) {
	s := x.s
	c, err := x.client(m.ClientID)
	if errors.Is(err, errPastDeadline) {
		x.fail(m, err, handshakeAdvice())
		return
	}
	if err != nil {
		x.fail(m, protocol.ErrServerError, nil)
		return
	}
	if c == nil {
		if !s.opts.AnonPublish || x.transport == transportLocal {
			x.fail(m, protocol.ErrSessionUnknown, handshakeAdvice())
			return
		}
		c = x.newClient(anonymous)
	}
	if protocol.IsMeta(m.Channel) || (s.rules.presence && isPresenceChannel(m.Channel)) {
		x.fail(m, protocol.ErrPublishDenied, nil)
		return
	}
	if protocol.ValidateChannel(m.Channel) != nil {
		x.fail(m, protocol.ErrChannelInvalid, nil)
		return
	}
	if m.Data == nil {
		x.fail(m, protocol.ErrDataMissing, nil)
		return
	}
	if limit := s.opts.MaxPublishSize; limit > 0 && publishSize(m) > limit {
		// Refused before Authorize, which may decode the data.
		s.stats.Refused.Add(RefusedPublishSize)
		x.fail(m, protocol.ErrPublishTooLarge.WithArgs(strconv.FormatInt(limit, 10)), nil)
		return
	}
	if !x.authorize(c, m, nil) {
		return
	}
	if err := s.authorizeChannel(x.ctx, c, m, OpPublish, m.Channel, true); err != nil {
		x.fail(m, err, nil)
		return
	}
	if protocol.IsService(m.Channel) {
		x.service(c, m)
		return
	}
	if !s.sendPublish(x.ctx, c, m) {
		x.fail(m, protocol.ErrMessageDeleted, nil)
		return
	}
	if x.batch != nil {
		p, err := s.payload(c.info.ID, m)
		if err != nil {
			x.fail(m, protocol.ErrServerError, nil)
			return
		}
		if x.transport == transportLocal && m.ID != "" {
			p.addID(m.ID)
		}
		r := m.Reply(true)
		x.reply(r)
		x.batch = append(x.batch, pendingPublish{m: m, c: c, p: p, reply: r})
		return
	}
	_, p, err := s.broadcast(x.ctx, c.info.ID, c.info.User, m, x.transport == transportLocal)
	if err != nil {
		x.engineError("publish failed", err, "channel", m.Channel)
		x.fail(m, protocol.ErrServerError, nil)
		return
	}
	r := m.Reply(true)
	x.reply(r)
	if p.Stored != nil {
		x.stored = append(x.stored, pendingStore{m, p.Stored, r})
	}
}

// publishSize is the size of what publishing m stores and sends: its
// channel, data and ext, as encoded.
func publishSize(m *protocol.Message) int64 {
	n := len(m.Channel) + len(m.Data)
	for k, v := range m.Ext {
		n += len(k) + len(v)
	}
	return int64(n)
}

func (x *exchange) service(c *Client, m *protocol.Message) {
	fn := x.s.handlers.lookup(m.Channel)
	if fn == nil {
		x.reply(m.Reply(true)) // like CometD: nobody listens, nothing to say
		return
	}
	answers, err := fn(x.ctx, c, m)
	if err != nil {
		x.fail(m, err, nil) // the one reply: no answer goes with a failure
		return
	}
	completeAnswers(m, answers)
	ext := &x.s.ext
	for _, r := range answers {
		if r == nil || (ext.send && !ext.outgoing(x.ctx, nil, c, r)) {
			continue
		}
		if x.transport == transportLocal {
			if p, err := x.s.payload("", r); err == nil {
				p.Msg = r
				_ = x.s.engine.Deliver(x.ctx, c.info.ID, p)
			}
			continue
		}
		b, err := json.Marshal(r)
		if err != nil {
			x.fail(m, protocol.ErrServerError, nil)
			return
		}
		if ext.sendTo {
			p := ext.deliver(c, &Payload{Channel: r.Channel, JSON: b, Msg: r})
			if p == nil {
				continue
			}
			b = p.JSON
		}
		x.events = append(x.events, b)
	}
	// The answers go before the reply (events first): the publish's one
	// reply, without data, which CometD needs to run the publish callback
	// and, over WebSocket, to clear the message's timeout.
	x.reply(m.Reply(true))
}
