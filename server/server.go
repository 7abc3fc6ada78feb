package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	gws "github.com/gobwas/ws"

	"github.com/bayeux-go/bayeux/internal/keyrate"
	"github.com/bayeux-go/bayeux/internal/netpoll"
	"github.com/bayeux-go/bayeux/internal/origin"
	"github.com/bayeux-go/bayeux/internal/realip"
	"github.com/bayeux-go/bayeux/protocol"
)

// Server is a Bayeux 1.0 server. It implements http.Handler for the
// long-polling and callback-polling transports; mount it on /cometd and its
// sub-paths. Create it with New and stop it with Shutdown.
//
// Order: the messages of one session other than /meta/handshake and
// /meta/connect are processed one request at a time, in order, however
// many requests the client has in flight: in the order the requests
// arrived (an HTTP request when its headers were read, a WebSocket frame
// when it was read), and where the client numbers its messages with a
// counter, as CometD and Faye do, in the counter's order, a request
// waiting up to 50 ms for the requests numbered before it (on one node;
// with a shared engine a client's requests may reach other nodes). A held
// connect never delays them, and one session never delays another.
type Server struct {
	opts   Options
	engine Engine
	log    *slog.Logger

	closing atomic.Bool

	sockets   socketSet
	pollOnce  sync.Once
	netpoll   *netpoll.Poller
	reqIntern requestIntern // what sockets' kept requests share

	seed  maphash.Seed
	conns [memShards]connShard // held connects on this node, by session id

	browsers   [memShards]browserShard // held connects per browser cookie
	ips        ipLimiter               // concurrent requests per client IP
	tcp        ipLimiter               // open connections per peer IP (Serve)
	ipSessions ipSessions
	handshakes *keyrate.Limiter // Options.HandshakeRate per IP address, on this node
	origins    *origin.List
	proxies    *realip.Proxies
	// warnedProxy is set once an untrusted peer's forwarding headers
	// were ignored and logged.
	warnedProxy atomic.Bool

	// lanes order each session's requests; arrivals numbers requests as
	// they arrive (see order.go).
	lanes    lanes
	arrivals atomic.Uint64

	types    []string // supported connection types, preferred first
	locals   sync.Map // session id -> *LocalClient
	stats    Stats
	handlers *handlerTable
	rules    *channelRules // history and presence per channel
	presence presence

	authz authorizers   // per-channel authorizers
	known knownChannels // channels created or seen lately
	ext   extensions    // Options.Extensions
}

type connShard struct {
	mu sync.Mutex
	m  map[string]*hold
}

type browserShard struct {
	mu sync.Mutex
	m  map[string][]browserSlot // browser -> its sessions with held connects
}

// browserSlot is a session holding a connect slot of its browser; n counts
// its connects (an older one being superseded shares the slot).
type browserSlot struct {
	id string
	n  int
}

// Stats are counters exposed for monitoring. Read them with Server.Stats.
type Stats struct {
	Handshakes   atomic.Int64
	MessagesIn   atomic.Int64
	MessagesOut  atomic.Int64
	Published    atomic.Int64
	Errors       atomic.Int64
	HeldConnects atomic.Int64
	// Parked counts held connects waiting without a goroutine: parked
	// long-polls (Options.ParkAfter) and idle WebSockets.
	Parked         atomic.Int64
	Dropped        atomic.Int64
	RequestsDenied atomic.Int64
	// Refused counts what limits refused, by reason (see Refusals).
	Refused Refusals
}

// New returns a Server with the given options and starts its engine.
func New(opts Options) (*Server, error) {
	opts.setDefaults()
	s := &Server{
		opts:   opts,
		engine: opts.Engine,
		log:    opts.Logger,
		seed:   maphash.MakeSeed(),
	}
	s.reqIntern.seed = maphash.MakeSeed()
	var err error
	if s.origins, err = origin.ParseList(opts.AllowedOrigins); err != nil {
		return nil, fmt.Errorf("bayeux: AllowedOrigins: %w", err)
	}
	if s.proxies, err = realip.New(opts.TrustedProxies, opts.ForwardedHeader); err != nil {
		return nil, fmt.Errorf("bayeux: TrustedProxies: %w", err)
	}
	for i := range s.conns {
		s.conns[i].m = make(map[string]*hold)
		s.browsers[i].m = make(map[string][]browserSlot)
	}
	s.ips.init(opts.ClientMaxConnections)
	s.tcp.init(opts.MaxConnsPerIP)
	s.ipSessions.init(opts.MaxSessionsPerIP)
	s.handshakes = keyrate.New(opts.HandshakeRate, opts.HandshakeBurst)
	s.stats.Refused.Declare(RefusedOrigin, RefusedIPRequests, RefusedIPConns, RefusedBodyTimeout, RefusedJSONPSite, RefusedBatch,
		RefusedPublishSize, RefusedSessionsPerIP, RefusedHandshakeRate, DropQueueLength, DropQueueBytes, DropQueuedBytes, DropHistory, RefusedDeadline,
		RefusedRecover)
	_, s.lanes.waitGaps = opts.Engine.(*MemoryEngine) // one node: see order.go
	if !opts.NoWebSocket {
		s.types = append(s.types, protocol.WebSocket)
	}
	s.types = append(s.types, protocol.LongPolling, protocol.CallbackPolling)
	if s.rules, err = newChannelRules(opts.Channels, opts.HistoryChannelBytes); err != nil {
		return nil, fmt.Errorf("bayeux: Channels: %w", err)
	}
	s.known.init()
	for _, ca := range opts.Authorizers {
		if _, err := s.AddAuthorizer(ca.Pattern, ca.Authorizer); err != nil {
			return nil, fmt.Errorf("bayeux: Authorizers: %s: %w", ca.Pattern, err)
		}
	}
	s.ext = newExtensions(opts.Extensions)
	services := opts.Services
	if s.rules.history || s.rules.presence {
		if _, ok := s.engine.(Historian); s.rules.history && !ok {
			return nil, fmt.Errorf("bayeux: Channels keep history but the engine %T keeps none", s.engine)
		}
		services = make(map[string]ServiceFunc, len(opts.Services)+2)
		if s.rules.history {
			services["history"] = s.historyService
		}
		if s.rules.presence {
			services["presence"] = s.presenceService
		}
		for k, v := range opts.Services {
			services[k] = v
		}
	}
	h, err := newHandlerTable(services, !opts.NoEcho)
	if err != nil {
		return nil, err
	}
	s.handlers = h
	if err := s.engine.Start(EngineHooks{Expired: s.expired, Ready: s.ready, ReadyBatch: s.readyBatch, Dropped: s.dropped}); err != nil {
		return nil, err
	}
	return s, nil
}

// Options returns the server's options with defaults filled in.
func (s *Server) Options() Options { return s.opts }

// Engine returns the server's engine.
func (s *Server) Engine() Engine { return s.engine }

// Stats returns the server's live counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Shutdown answers every held connect at once (with reconnect:"retry"
// advice and whatever is queued), makes new connects return immediately,
// closes local clients and then the engine. Call it after (or while)
// stopping the HTTP server; ctx bounds the wait.
func (s *Server) Shutdown(ctx context.Context) error {
	s.BeginShutdown()
	s.locals.Range(func(_, v any) bool {
		v.(*LocalClient).Close()
		return true
	})
	// Wait for held connects to finish writing.
	for s.stats.HeldConnects.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	if p, ok := s.engine.(interface{ Pending() (int, int) }); ok {
		if msgs, sessions := p.Pending(); msgs > 0 {
			// The memory engine's queues end with the process: say so.
			s.log.Warn("undelivered messages discarded at shutdown", "messages", msgs, "sessions", sessions)
		}
	}
	// Wait for a poller being started by a socket that is still being
	// upgraded (and start none after this).
	s.pollOnce.Do(func() {})
	if s.netpoll != nil {
		// Sockets still parked are closed by the http.Server or their peer.
		_ = s.netpoll.Close()
	}
	return s.engine.Close()
}

// ShuttingDown reports whether BeginShutdown was called.
func (s *Server) ShuttingDown() bool { return s.closing.Load() }

// BeginShutdown releases held connects and stops holding new ones. It is
// the first step of Shutdown and safe to call more than once.
func (s *Server) BeginShutdown() {
	s.closing.Store(true)
	// Held connects answer now (those registered after this see closing).
	var held []*hold
	for i := range s.conns {
		sh := &s.conns[i]
		sh.mu.Lock()
		for _, h := range sh.m {
			held = append(held, h)
		}
		sh.mu.Unlock()
	}
	for _, h := range held {
		h.cancel()
	}
	// Let the held connects' replies go out first, then close the sockets.
	sockets := s.sockets.closeAll()
	if len(sockets) > 0 {
		time.AfterFunc(500*time.Millisecond, func() {
			for _, ws := range sockets {
				ws.close(gws.StatusGoingAway, "server shutting down")
			}
		})
	}
}

func (s *Server) shard(key string) int { return int(maphash.String(s.seed, key) % memShards) }

// newID returns a session id: 130 random bits in base32 (26 characters,
// lower-case letters and digits).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func (s *Server) emit(ev Event) {
	s.presenceEvent(ev)
	if s.opts.OnEvent != nil {
		s.opts.OnEvent(ev)
	}
}

func (s *Server) expired(rs *RemovedSession) {
	s.log.Debug("session expired", "client", shortID(rs.Info.ID), "user", rs.Info.User)
	s.removed(rs, "expired")
}

// dropped counts what the engine dropped (EngineHooks.Dropped).
func (s *Server) dropped(reason string, n int) { s.stats.Refused.AddN(reason, int64(n)) }

// removed emits client_disconnect for a session the engine removed (rs
// may be nil when there was none) and frees its place among its
// address's sessions.
func (s *Server) removed(rs *RemovedSession, reason string) {
	if rs == nil {
		return
	}
	if !rs.Info.Local {
		s.ipSessions.remove(rs.Info.RemoteAddr, rs.Info.ID)
	}
	s.lanes.forget(s, rs.Info.ID)
	s.emit(Event{Kind: EventClientDisconnect, ClientID: rs.Info.ID, User: rs.Info.User, Local: rs.Info.Local,
		Reason: reason, Channels: rs.Subscriptions})
}

// Disconnect removes a session from the server: its held connect is told
// reconnect:"none" and client_disconnect is emitted with reason "server".
// It reports whether the session existed.
func (s *Server) Disconnect(ctx context.Context, clientID string) (bool, error) {
	rs, err := s.engine.DestroySession(ctx, clientID)
	if err != nil || rs == nil {
		return false, err
	}
	s.removed(rs, "server")
	return true, nil
}

// Publish publishes data (any JSON-encodable value, or json.RawMessage) on
// channel as the server itself, and returns how many sessions it was
// queued for. Publishing to /meta/** or /service/** is refused. On a
// channel with history it returns once the message is stored.
func (s *Server) Publish(ctx context.Context, channel string, data any) (int, error) {
	m, err := newDataMessage(channel, data)
	if err != nil {
		return 0, err
	}
	if err := s.checkBroadcastChannel(channel); err != nil {
		return 0, err
	}
	if !s.sendPublish(ctx, nil, m) {
		return 0, protocol.ErrMessageDeleted
	}
	n, p, err := s.broadcast(ctx, "", "", m, false)
	if err == nil && p.Stored != nil {
		err = p.Stored.Wait(ctx)
	}
	return n, err
}

// Push delivers a message on channel to one client only (the seed's
// client_push), whether or not it subscribed to channel.
func (s *Server) Push(ctx context.Context, clientID, channel string, data any) error {
	m, err := newDataMessage(channel, data)
	if err != nil {
		return err
	}
	if s.ext.send {
		info, ok, err := s.engine.Session(ctx, clientID)
		if err != nil {
			return err
		}
		if !ok {
			return protocol.ErrSessionUnknown
		}
		transport := ""
		if info.Local {
			transport = transportLocal
		}
		if !s.ext.outgoing(ctx, nil, &Client{info: info, transport: transport}, m) {
			return protocol.ErrMessageDeleted
		}
	}
	p, err := s.payload("", m)
	if err != nil {
		return err
	}
	if err := s.engine.Deliver(ctx, clientID, p); err != nil {
		return err
	}
	s.emit(Event{Kind: EventClientPush, ClientID: clientID, Channel: channel, Message: m})
	return nil
}

func (s *Server) checkBroadcastChannel(channel string) error {
	if len(channel) > s.opts.MaxChannelLength {
		return protocol.ErrChannelInvalid
	}
	if err := protocol.ValidateChannel(channel); err != nil {
		return protocol.ErrChannelInvalid
	}
	if protocol.IsMeta(channel) || protocol.IsService(channel) {
		return protocol.ErrPublishDenied
	}
	return nil
}

// payload encodes m once for all recipients. The decoded delivery shares
// its data with the encoding: a queued message holds its bytes once. A
// message on a channel with history gets its policy (and loses an
// ext.pos its sender put: the engine writes the real one).
func (s *Server) payload(from string, m *protocol.Message) (*Payload, error) {
	pol := s.rules.policy(m.Channel)
	if pol != nil {
		if _, ok := m.Ext[protocol.ExtPosition]; ok {
			delete(m.Ext, protocol.ExtPosition)
		}
	}
	b, err := protocol.EncodeDelivery(make([]byte, 0, 48+len(m.Channel)+len(m.Data)), m.Channel, m.Data, m.Ext)
	if err != nil {
		return nil, err
	}
	data := m.Data
	// The channel's JSON string cannot contain `,"data":` unescaped, so
	// the first one starts the data.
	if i := bytes.Index(b, dataKey); len(data) > 0 && i >= 0 && bytes.Equal(b[i+len(dataKey):i+len(dataKey)+len(data)], data) {
		j := i + len(dataKey)
		data = b[j : j+len(data) : j+len(data)]
	}
	d := &protocol.Message{Channel: m.Channel, Data: data, Ext: m.Ext}
	return &Payload{Channel: m.Channel, From: from, JSON: b, Msg: d, History: pol}, nil
}

var dataKey = []byte(`,"data":`)

// broadcast encodes m once and queues it for every subscriber. With
// keepID (a local client's publish) the delivery keeps m's id. The
// payload's Stored says when a message kept in a history is stored.
func (s *Server) broadcast(ctx context.Context, from, user string, m *protocol.Message, keepID bool) (int, *Payload, error) {
	p, err := s.payload(from, m)
	if err != nil {
		return 0, nil, err
	}
	if keepID && m.ID != "" {
		p.addID(m.ID)
	}
	n, err := s.engine.Publish(ctx, p)
	if err != nil {
		return 0, nil, err
	}
	s.published(from, user, m, p, n)
	return n, p, nil
}

// sendPublish runs the Send extensions on m, published by from (nil: the
// server) to every subscriber; false: m is deleted.
func (s *Server) sendPublish(ctx context.Context, from *Client, m *protocol.Message) bool {
	return !s.ext.send || s.ext.outgoing(ctx, from, nil, m)
}

// published counts a publish that reached n subscribers and emits its
// event.
func (s *Server) published(from, user string, m *protocol.Message, p *Payload, n int) {
	s.stats.Published.Add(1)
	s.stats.MessagesOut.Add(int64(n))
	s.emit(Event{Kind: EventPublish, ClientID: from, User: user, Channel: m.Channel, Message: m, Payload: p})
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// TryHandshake runs a /meta/handshake carrying ext through the server's
// real handshake path (validation and Options.Authorize) as if r had sent
// it, and returns the reply with the stored session. The session is
// removed again at once: the login page uses this so that one authority
// decides who someone is. Options.MaxSessionsPerIP and HandshakeRate do
// not apply (the session does not outlive the call; the caller limits its
// own requests).
func (s *Server) TryHandshake(r *http.Request, ext map[string]json.RawMessage) (*protocol.Message, *SessionInfo) {
	m := &protocol.Message{Channel: protocol.MetaHandshake, Version: protocol.Version,
		SupportedConnectionTypes: []string{protocol.LongPolling}, Ext: ext}
	x := &exchange{s: s, ctx: r.Context(), transport: protocol.LongPolling, remoteAddr: s.client(r).IP, req: r, trial: true}
	x.handle(m, true)
	if x.hsReply == nil {
		if len(x.replies) == 0 {
			return m.Fail(protocol.ErrServerError, nil), nil
		}
		return x.replies[0], nil
	}
	info, _, _ := s.engine.Session(r.Context(), x.hsReply.ClientID)
	if rs, _ := s.engine.DestroySession(context.WithoutCancel(r.Context()), x.hsReply.ClientID); rs != nil {
		s.emit(Event{Kind: EventClientDisconnect, ClientID: rs.Info.ID, User: rs.Info.User, Reason: "disconnect"})
	}
	return x.hsReply, info
}

// DisconnectWhere removes every session for which match returns true, as
// Disconnect does, and returns how many it removed. It needs an engine that
// lists its sessions (SessionLister); otherwise it returns ErrNotSupported.
func (s *Server) DisconnectWhere(ctx context.Context, match func(*SessionInfo) bool) (int, error) {
	l, ok := s.engine.(SessionLister)
	if !ok {
		return 0, ErrNotSupported
	}
	infos, err := l.ListSessions(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, in := range infos {
		if !in.Local && match(in) {
			if ok, err := s.Disconnect(ctx, in.ID); err != nil {
				return n, err
			} else if ok {
				n++
			}
		}
	}
	return n, nil
}
