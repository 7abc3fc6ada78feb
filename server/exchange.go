package server

import (
	"context"
	"encoding/json"
	"errors"
	mathrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// exchange is one inbound batch of messages and the response being built
// for it, whatever the transport. It is used by one goroutine.
type exchange struct {
	s          *Server
	ctx        context.Context
	transport  string
	remoteAddr string
	req        *http.Request
	// browser is the request's BAYEUX_BROWSER cookie value, or a new one
	// (newBrowser) when the request carried none.
	browser    string
	newBrowser bool
	// http2 is true when connects are not limited per browser (HTTP/2
	// and WebSocket multiplex, so a held connect blocks nothing).
	http2 bool
	// bound is the session a WebSocket is bound to by its handshake.
	bound string
	// superseded is set by finish when a newer connect took over.
	superseded bool
	// trial is set for TryHandshake: its session is removed at once, so
	// the per-address session and handshake limits do not apply.
	trial bool
	// ticket is the request's arrival number (Server.arrivals), its place
	// in its sessions' order (see lanes).
	ticket uint64

	clients map[string]*Client

	hsReply *protocol.Message
	events  [][]byte
	replies []*protocol.Message
	hold    *pendingConnect
	held    *heldConnect // hold's registration while it waits
	// after runs once the response was written (or failed).
	after []func()
	// pooledEvents holds events' backing array; bufs are pooled buffers
	// of the response. done gives them back.
	pooledEvents *[][]byte
	bufs         []*[]byte
}

// pendingConnect is the /meta/connect of the batch, answered last.
type pendingConnect struct {
	c        *Client
	m        *protocol.Message
	timeout  time.Duration
	multiple bool
	advice   bool
	// id is m's, kept alone while the connect waits.
	id protocol.ID
	// ack is the batch the client acknowledged (ack extension sessions).
	ack uint64
	ts  *timesync
}

func (x *exchange) reply(r *protocol.Message) { x.replies = append(x.replies, r) }

// engineError logs an engine failure, unless the request itself went away
// (the client hung up or gave up): that is not the server's error.
func (x *exchange) engineError(what string, err error, attrs ...any) {
	if x.ctx.Err() != nil {
		x.s.log.Debug(what+" (request ended)", append(attrs, "err", err)...)
		return
	}
	x.s.log.Error(what, append(attrs, "err", err)...)
}

func (x *exchange) fail(m *protocol.Message, err error, advice *protocol.Advice) {
	x.s.stats.Errors.Add(1)
	x.reply(m.Fail(err, advice))
}

func handshakeAdvice() *protocol.Advice {
	return &protocol.Advice{Reconnect: protocol.ReconnectHandshake, Interval: protocol.Ms(0)}
}

// closingAdvice is the connect advice while the server shuts down: retry,
// but not at once and not all together (the listener may still accept a
// few requests), so clients do not spin against a closing server.
func (s *Server) closingAdvice() *protocol.Advice {
	a := s.retryAdvice()
	a.Interval = protocol.Ms(1000 + mathrand.Int64N(1000))
	return a
}

func noneAdvice() *protocol.Advice { return &protocol.Advice{Reconnect: protocol.ReconnectNone} }

func (s *Server) retryAdvice() *protocol.Advice {
	return &protocol.Advice{
		Reconnect:   protocol.ReconnectRetry,
		Interval:    protocol.Ms(s.opts.PollInterval.Milliseconds()),
		Timeout:     protocol.Ms(s.opts.PollTimeout.Milliseconds()),
		MaxInterval: s.opts.ConnectTimeout.Milliseconds(),
	}
}

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
	for _, m := range msgs {
		x.handle(m, len(msgs) == 1)
	}
	x.releaseLanes(msgs, ids)
}

func (x *exchange) handle(m *protocol.Message, lone bool) {
	s := x.s
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

// client returns the session named by id, or nil when there is none (or
// it belongs to another browser, or to a local client).
func (x *exchange) client(id string) (*Client, error) {
	if id == "" {
		return nil, nil
	}
	if c, ok := x.clients[id]; ok {
		return c, nil
	}
	info, ok, err := x.s.engine.Session(x.ctx, id)
	if err != nil {
		return nil, err
	}
	var c *Client
	if ok && x.owns(info) {
		if info.pastDeadline(time.Now()) {
			x.endAtDeadline(info)
			return nil, errPastDeadline
		}
		c = &Client{info: info, transport: x.transport, req: x.req}
	}
	if x.clients == nil {
		x.clients = make(map[string]*Client, 1)
	}
	x.clients[id] = c
	return c, nil
}

// owns reports whether this request may act for the session.
func (x *exchange) owns(info *SessionInfo) bool {
	if x.transport == transportLocal {
		return info.Local
	}
	if info.Local {
		return false
	}
	if x.bound != "" && info.ID != x.bound {
		return false // a socket acts only for the session it handshook
	}
	if x.s.opts.TrustClientSession || info.Browser == "" {
		return true
	}
	return !x.newBrowser && x.browser == info.Browser
}

// session resolves m's client, replying with an error when it is unknown.
func (x *exchange) session(m *protocol.Message) *Client {
	c, err := x.client(m.ClientID)
	if errors.Is(err, errPastDeadline) {
		x.fail(m, err, handshakeAdvice())
		return nil
	}
	if err != nil {
		x.engineError("engine lookup failed", err)
		x.fail(m, protocol.ErrServerError, &protocol.Advice{Reconnect: protocol.ReconnectRetry, Interval: protocol.Ms(1000)})
		return nil
	}
	if c == nil {
		x.fail(m, protocol.ErrSessionUnknown, handshakeAdvice())
		return nil
	}
	return c
}

func (x *exchange) authorize(c *Client, m *protocol.Message, advice *protocol.Advice) bool {
	if x.s.opts.Authorize == nil || x.transport == transportLocal {
		return true
	}
	if err := x.s.opts.Authorize(x.ctx, c, m); err != nil {
		x.fail(m, err, advice)
		return false
	}
	return true
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
		if ok, wait := s.handshakes.allow(x.remoteAddr, time.Now()); !ok {
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
	info := &SessionInfo{Created: time.Now(), RemoteAddr: x.remoteAddr, Browser: x.browser, Ack: m.ExtBool("ack")}
	c := &Client{info: info, transport: x.transport, req: x.req, handshaking: true}
	if !x.authorize(c, m, noneAdvice()) {
		return
	}
	c.handshaking = false
	info.ID = id
	if err := s.engine.CreateSession(x.ctx, info); err != nil {
		x.engineError("create session failed", err)
		x.fail(m, protocol.ErrServerError, &protocol.Advice{Reconnect: protocol.ReconnectHandshake, Interval: protocol.Ms(1000)})
		return
	}
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
	s := x.s
	if x.hold != nil {
		x.fail(m, protocol.ErrConnectNotAlone, nil)
		return
	}
	c := x.session(m)
	if c == nil || !x.authorize(c, m, nil) {
		return
	}
	timeout := s.opts.PollTimeout
	if m.Advice != nil && m.Advice.Timeout != nil {
		timeout = min(max(time.Duration(*m.Advice.Timeout)*time.Millisecond, 0), timeout)
	}
	if !lone || s.closing.Load() {
		timeout = 0
	}
	timeout = holdUntilDeadline(timeout, c.info)
	x.hold = &pendingConnect{c: c, m: m, timeout: timeout, advice: true}
	if c.info.Ack {
		// The client's last batch; a missing or invalid value acknowledges
		// nothing, so every unacknowledged message is sent again.
		var ack uint64
		if raw, ok := m.Ext["ack"]; ok && json.Unmarshal(raw, &ack) != nil {
			ack = 0
		}
		x.hold.ack = ack
	}
}

// startHold begins the batch's connect. It reports false when the reply is
// complete already (nothing to hold, something queued, or an error), and
// true when the connect waits: then resume is called once, on a goroutine
// of its own, when the reply is complete. Nothing of x may be touched
// between a true return and resume but what park clears.
func (x *exchange) startHold(resume func()) bool {
	h := x.hold
	if h == nil {
		return false
	}
	s := x.s
	id := h.c.info.ID
	ctx := context.WithoutCancel(x.ctx)
	if h.timeout > 0 && !x.http2 && s.opts.MaxSessionsPerBrowser > 0 && h.c.info.Browser != "" {
		if s.acquireBrowser(h.c.info.Browser, id) {
			x.after = append(x.after, func() { s.releaseBrowser(h.c.info.Browser, id) })
		} else {
			h.timeout = 0
			h.multiple = true
		}
	}
	// Only what the reply needs is kept while the connect waits.
	h.id = h.m.ID
	h.m = nil
	held := &heldConnect{}
	s.registerHeld(id, held)
	x.held = held
	if h.timeout > 0 {
		s.stats.HeldConnects.Add(1)
		// Counted until the reply is written: Shutdown waits for it.
		x.after = append(x.after, func() { s.stats.HeldConnects.Add(-1) })
		// The request's context is not kept: a parked connect outlives it.
		// (A transport that can tell the client went away cancels held.)
		x.ctx = context.Background()
		if s.closing.Load() {
			held.cancel() // BeginShutdown may have missed this one
		}
	}
	_ = s.engine.Touch(ctx, id, time.Now().Add(h.timeout+s.opts.ConnectTimeout))
	b, stop, err := s.engine.Poll(id, h.c.info.Ack, h.ack, h.timeout, func(b Batch, err error) {
		x.endHold(b, err)
		resume()
	})
	if stop == nil {
		x.endHold(b, err)
		return false
	}
	held.setStop(stop)
	return true
}

// endHold adds the held connect's events and reply once its poll ended.
func (x *exchange) endHold(b Batch, err error) {
	h, held, s := x.hold, x.held, x.s
	id := h.c.info.ID
	if h.m == nil {
		h.m = &protocol.Message{Channel: protocol.MetaConnect, ID: h.id}
	}
	s.unregisterHeld(id, held)
	x.superseded = held.superseded.Load()
	if h.c.info.Ack && held.superseded.Load() {
		// The newer connect sends these; a stale reply must carry neither
		// events nor a batch number (the CometD client would adopt it).
		b = Batch{Dropped: b.Dropped}
	}

	if errors.Is(err, protocol.ErrSessionUnknown) && s.closing.Load() {
		// The engine closed under a server shutdown: the session may live on
		// (another node, a restart with a shared engine), so retry.
		r := h.m.Reply(true)
		r.Advice = s.closingAdvice()
		x.reply(r)
		return
	}
	if errors.Is(err, protocol.ErrSessionUnknown) {
		// Removed while held: by /meta/disconnect, expiry or an operator.
		r := h.m.Reply(true)
		r.Advice = &protocol.Advice{Reconnect: protocol.ReconnectNone, Interval: protocol.Ms(0)}
		x.reply(r)
		return
	}
	if err != nil {
		x.engineError("fetch failed", err, "client", shortID(id))
		x.fail(h.m, protocol.ErrServerError, &protocol.Advice{Reconnect: protocol.ReconnectRetry, Interval: protocol.Ms(1000)})
		return
	}
	if len(b.Payloads) > 0 && x.events == nil {
		x.pooledEvents = getEvents(len(b.Payloads))
		x.events = *x.pooledEvents
	}
	x.events = slices.Grow(x.events, len(b.Payloads))
	for _, p := range b.Payloads {
		x.events = append(x.events, p.JSON)
	}
	r := h.m.Reply(true)
	r.Advice = s.retryAdvice()
	if s.closing.Load() {
		r.Advice = s.closingAdvice()
	}
	if b.Dropped > 0 {
		// Tell the client that it lost messages (queue overflow).
		s.stats.Dropped.Add(int64(b.Dropped))
		s.log.Warn("session queue overflowed, oldest messages dropped", "client", shortID(id), "dropped", b.Dropped)
		setExt(r, "dropped", b.Dropped)
	}
	if h.c.info.Ack && !held.superseded.Load() {
		setExt(r, "ack", b.Last)
	}
	if h.ts != nil {
		setExt(r, "timesync", h.ts.reply(time.Now()))
	}
	if h.multiple {
		r.Advice.MultipleClients = true
		r.Advice.Interval = protocol.Ms(s.opts.MultiSessionInterval.Milliseconds())
	}
	x.reply(r)
	interval := s.opts.PollInterval
	if h.multiple {
		interval = s.opts.MultiSessionInterval
	}
	ctx := context.WithoutCancel(x.ctx)
	x.after = append(x.after, func() {
		if held.superseded.Load() {
			return // a newer connect holds the session and owns its expiry
		}
		_ = s.engine.Touch(ctx, id, time.Now().Add(interval+s.opts.ConnectTimeout))
	})
}

func (s *Server) registerHeld(id string, h *heldConnect) {
	sh := &s.conns[s.shard(id)]
	sh.mu.Lock()
	old := sh.m[id]
	sh.m[id] = h
	sh.mu.Unlock()
	if old != nil {
		// Exactly one outstanding connect per session: the older one
		// returns at once, without events it has not already taken.
		old.superseded.Store(true)
		old.cancel()
	}
}

func (s *Server) unregisterHeld(id string, h *heldConnect) {
	sh := &s.conns[s.shard(id)]
	sh.mu.Lock()
	if sh.m[id] == h {
		delete(sh.m, id)
	}
	sh.mu.Unlock()
}

// isHeld reports whether a connect of the session is held on this node.
func (s *Server) isHeld(id string) bool {
	sh := &s.conns[s.shard(id)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.m[id] != nil
}

// wakeHeld returns the session's held connect on this node now, if any.
func (s *Server) wakeHeld(id string) {
	sh := &s.conns[s.shard(id)]
	sh.mu.Lock()
	h := sh.m[id]
	sh.mu.Unlock()
	if h != nil {
		h.cancel()
	}
}

// acquireBrowser takes one of the browser's held-connect slots for the
// session. A session that holds a slot already (its older connect is being
// superseded) shares it: one session never counts as two clients.
func (s *Server) acquireBrowser(b, id string) bool {
	sh := &s.browsers[s.shard(b)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	held := sh.m[b]
	for i := range held {
		if held[i].id == id {
			held[i].n++
			return true
		}
	}
	if len(held) >= s.opts.MaxSessionsPerBrowser {
		return false
	}
	sh.m[b] = append(held, browserSlot{id: id, n: 1})
	return true
}

func (s *Server) releaseBrowser(b, id string) {
	sh := &s.browsers[s.shard(b)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	held := sh.m[b]
	for i := range held {
		if held[i].id != id {
			continue
		}
		if held[i].n--; held[i].n == 0 {
			held = append(held[:i], held[i+1:]...)
		}
		break
	}
	if len(held) == 0 {
		delete(sh.m, b)
	} else {
		sh.m[b] = held
	}
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

func (x *exchange) subscribe(m *protocol.Message) {
	s := x.s
	c := x.session(m)
	if c == nil {
		return
	}
	if len(m.Subscription.Channels) == 0 {
		x.fail(m, protocol.ErrSubscriptionMissing, nil)
		return
	}
	if !x.authorize(c, m, nil) {
		return
	}
	for _, ch := range m.Subscription.Channels {
		if len(ch) > s.opts.MaxChannelLength || protocol.ValidatePattern(ch) != nil {
			x.fail(m, protocol.ErrSubscriptionInvalid, nil)
			return
		}
		if protocol.IsMeta(ch) {
			x.fail(m, protocol.ErrSubscribeDenied, nil)
			return
		}
		if protocol.IsService(ch) {
			continue // service channels are never broadcast: nothing to record
		}
		if err := s.engine.Subscribe(x.ctx, c.info.ID, ch, s.opts.MaxSubscriptions); err != nil {
			if !errors.Is(err, protocol.ErrSubscriptionLimit) && !errors.Is(err, protocol.ErrSessionUnknown) {
				x.engineError("subscribe failed", err)
				err = protocol.ErrServerError
			}
			x.fail(m, err, nil)
			return
		}
		s.emit(Event{Kind: EventSubscribe, ClientID: c.info.ID, User: c.info.User, Channel: ch, Local: c.info.Local})
	}
	x.reply(m.Reply(true))
}

func (x *exchange) unsubscribe(m *protocol.Message) {
	s := x.s
	c := x.session(m)
	if c == nil {
		return
	}
	if len(m.Subscription.Channels) == 0 {
		x.fail(m, protocol.ErrSubscriptionMissing, nil)
		return
	}
	if !x.authorize(c, m, nil) {
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
		c = &Client{info: anonymous, transport: x.transport, req: x.req}
	}
	if protocol.IsMeta(m.Channel) {
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
	if protocol.IsService(m.Channel) {
		x.service(c, m)
		return
	}
	if _, err := s.broadcast(x.ctx, c.info.ID, c.info.User, m, x.transport == transportLocal); err != nil {
		x.engineError("publish failed", err, "channel", m.Channel)
		x.fail(m, protocol.ErrServerError, nil)
		return
	}
	x.reply(m.Reply(true))
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
	for _, r := range answers {
		if r == nil {
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
		x.events = append(x.events, b)
	}
	// The answers go before the reply (events first): the publish's one
	// reply, without data, which CometD needs to run the publish callback
	// and, over WebSocket, to clear the message's timeout.
	x.reply(m.Reply(true))
}

// sizeHint estimates the encoded response's size, so that encode
// allocates once.
func (x *exchange) sizeHint() int {
	n := 64 + 160*len(x.replies)
	if x.hsReply != nil {
		n += 320
	}
	for _, e := range x.events {
		n += len(e) + 1
	}
	return n
}

// encode writes the response: [handshake reply, events..., replies...].
func (x *exchange) encode(dst []byte) ([]byte, error) {
	dst = append(dst, '[')
	first := true
	sep := func() {
		if !first {
			dst = append(dst, ',')
		}
		first = false
	}
	if x.hsReply != nil {
		b, err := json.Marshal(x.hsReply)
		if err != nil {
			return nil, err
		}
		sep()
		dst = append(dst, b...)
	}
	for _, e := range x.events {
		sep()
		dst = append(dst, e...)
	}
	for _, r := range x.replies {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		sep()
		dst = append(dst, b...)
	}
	return append(dst, ']'), nil
}

// done runs once the response was written (or failed): the after funcs,
// then the pooled buffers go back.
func (x *exchange) done() {
	for _, f := range x.after {
		f()
	}
	if x.pooledEvents != nil {
		*x.pooledEvents = x.events
		putEvents(x.pooledEvents)
		x.pooledEvents, x.events = nil, nil
	}
	for _, b := range x.bufs {
		putBuf(b)
	}
	x.bufs = nil
}

// buf returns a pooled buffer that done gives back.
func (x *exchange) buf(n int) []byte {
	b := getBuf(n)
	x.bufs = append(x.bufs, b)
	return *b
}
