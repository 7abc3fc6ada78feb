package server

import (
	"context"
	"log/slog"
	"math"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// Options configures a Server. The zero value is usable: every zero field
// takes the default documented on it.
type Options struct {
	// Engine stores sessions, subscriptions and queues. Default: a
	// MemoryEngine with MaxQueue.
	Engine Engine
	// Logger receives the server's logs. Default: slog.Default().
	Logger *slog.Logger

	// PollTimeout is how long a /meta/connect is held when nothing is queued
	// (the "timeout" advice). Default 30s.
	PollTimeout time.Duration
	// PollInterval is the "interval" advice: how long clients wait between
	// a connect reply and the next connect. Default 0.
	PollInterval time.Duration
	// ConnectTimeout is how long a session lives without a /meta/connect
	// after the previous connect reply was written (CometD's maxInterval).
	// A session whose connect is held never expires. Default 30s.
	ConnectTimeout time.Duration

	// ParkAfter is how long a held long-polling connect keeps its
	// goroutine and HTTP buffers. After it, a connect on a connection
	// accepted by Server.Serve is parked: the connection is taken from
	// net/http and waits with no goroutine (about 10 KiB less per idle
	// client), is answered by whoever wakes it, and then goes back to the
	// http.Server for the next request. Default 50ms; negative: never
	// park.
	ParkAfter time.Duration

	// NoWebSocket turns the websocket transport off; long-polling and
	// callback-polling remain.
	NoWebSocket bool
	// WriteTimeout bounds writing one WebSocket frame or a parked
	// connect's response; a client that does not read for that long is
	// disconnected (its session expires as usual). Default 10s.
	WriteTimeout time.Duration

	// AnonPublish lets clients publish without a handshake (no or unknown
	// clientId). Default false: such publishes get 402::session_unknown.
	AnonPublish bool

	// Services handles publishes to /service/NAME: the key is NAME (it may
	// contain slashes). The key "_handler" is the fallback for service
	// channels without an entry of their own. "echo" is built in unless
	// replaced or NoEcho is set.
	Services map[string]ServiceFunc
	// NoEcho removes the built-in /service/echo.
	NoEcho bool

	// Authorize is called for every message a remote client sends, after
	// validation and the incoming Extensions, before the message is
	// handled (the seed's MessageACL; CometD's SecurityPolicy). Returning
	// an error rejects the message: the client gets a reply with
	// successful:false and the error as Bayeux error string (a
	// *protocol.Error is used as is; other errors become 403::text). On
	// /meta/handshake the hook may call Client.SetUser and Client.SetFlag to
	// authenticate; a rejected handshake is told reconnect:"none". A
	// subscribe or publish it lets through is then decided by the
	// Authorizers. Local clients are not asked.
	Authorize func(ctx context.Context, c *Client, m *protocol.Message) error
	// Authorizers decide create, subscribe and publish per channel
	// pattern, with CometD's Authorizer semantics (see Authorizer and
	// authorizer.go): the authorizers of a channel are those of its name
	// and of the wildcards that cover it; none at all grants, one deny
	// wins, and otherwise one must grant. More can be added while the
	// server runs (Server.AddAuthorizer). New fails on a meta or invalid
	// pattern.
	Authorizers []ChannelAuthorizer
	// Extensions see the messages coming in and going out, in order in
	// and in reverse order out, and may change or delete them; an
	// Extension's SendTo changes or drops one delivery for one session
	// (see Extension).
	Extensions []Extension
	// OnEvent receives lifecycle events (subscribe, unsubscribe, publish,
	// client_push, client_connect, client_disconnect). It is called
	// synchronously on the goroutine that caused the event and must not
	// block.
	OnEvent func(Event)

	// MaxMessageSize bounds one HTTP request body in bytes (413 beyond),
	// and one WebSocket message, its fragments together (the socket is
	// closed with 1009 as soon as a frame header announces more).
	// Default 512 KiB.
	MaxMessageSize int64
	// MaxBatch bounds the number of messages in one request or WebSocket
	// frame: a batch over it is refused (HTTP 400, or the socket closed
	// with 1008) as soon as the decoder reaches the message after the
	// limit, and counted as RefusedBatch. Default 256.
	MaxBatch int
	// MaxChannelLength bounds a channel name in bytes. Default 256.
	MaxChannelLength int
	// MaxSubscriptions bounds the subscriptions of one session. Default 1024.
	MaxSubscriptions int
	// MaxQueue bounds one session's queue; the oldest message is dropped
	// when it is full. Default 1000. Ignored when Engine is set.
	MaxQueue int
	// MaxQueueBytes bounds one session's queue in bytes; beyond it the
	// oldest messages are dropped (the newest stays) and reported in the
	// next connect reply's ext.dropped. Default DefaultMaxQueueBytes.
	// Ignored when Engine is set (see Budgets).
	MaxQueueBytes int64
	// MaxQueuedBytes bounds all sessions' queues together; beyond it the
	// biggest queues drop their oldest messages (see
	// Budgets.MaxQueuedBytes). Default DefaultMaxQueuedBytes. Ignored when
	// Engine is set.
	MaxQueuedBytes int64
	// MaxReplySize bounds the queued messages one connect reply (or
	// WebSocket frame) carries, in bytes; the rest stay queued for the
	// next connect. A reply carries at least one message. Default
	// DefaultMaxFetchBytes. Ignored when Engine is set (its
	// Budgets.MaxFetchBytes).
	MaxReplySize int64
	// MaxHistoryChannels bounds the channels the engine keeps a history
	// for (least recently used forgotten). Default
	// DefaultMaxHistoryChannels. Ignored when Engine or HistoryStore is
	// set.
	MaxHistoryChannels int

	// Channels turns history and presence on per channel pattern (see
	// ChannelRule; the first rule that matches a channel applies). A
	// channel with history keeps its last messages: deliveries carry
	// their position (ext.pos), /service/history reads them, and a
	// client that lost its session recovers what it missed when it
	// subscribes again (ext.recover). A channel with presence has its
	// member list published on PresencePrefix+channel, and
	// /service/presence answers it. History needs an engine that keeps
	// it (a Historian); New fails otherwise.
	Channels []ChannelRule
	// HistoryStore keeps the histories of the default engine (see
	// MemoryEngineOptions.History). Default: in memory. Ignored when
	// Engine is set.
	HistoryStore HistoryStore
	// HistoryChannelBytes bounds each channel's history in bytes (the
	// oldest messages are removed beyond; the newest stays). Default
	// DefaultHistoryChannelBytes; negative: no limit.
	HistoryChannelBytes int64
	// MaxHistoryPage bounds the messages one /service/history reply
	// returns. Default DefaultMaxHistoryPage.
	MaxHistoryPage int
	// MaxRecover bounds the messages a subscribe recovers; a client that
	// missed more is told they are not recovered. Default
	// DefaultMaxRecover.
	MaxRecover int
	// MaxPublishSize bounds one message a client publishes: its channel,
	// data and ext in bytes. A bigger one is refused with
	// 413::publish_too_large (counted as RefusedPublishSize); the others
	// of its batch go on. Default 64 KiB; negative: no limit.
	MaxPublishSize int64
	// MaxSessionsPerIP bounds the sessions created from one IP address
	// that live at once on this server (a node, with a shared engine). A
	// handshake beyond it is refused with 429::too_many_sessions and
	// advice to handshake again later. 0 means unlimited.
	MaxSessionsPerIP int
	// HandshakeRate bounds handshakes per IP address and second on this
	// server, with bursts of HandshakeBurst (a token bucket). A handshake
	// beyond it is refused with 429::too_many_handshakes and advice to
	// handshake again once the bucket has a token. 0 means unlimited.
	HandshakeRate float64
	// HandshakeBurst is the token bucket's size for HandshakeRate.
	// Default: HandshakeRate rounded up, at least 1.
	HandshakeBurst int
	// ClientMaxConnections bounds concurrent requests from one client IP
	// address (see TrustedProxies): Bayeux requests, held connects and
	// WebSockets, and, for the handler of Site, every other route too;
	// 0 means unlimited. Beyond it requests get HTTP 429.
	ClientMaxConnections int
	// MaxSessionsPerBrowser is how many connects one browser (identified by
	// the BAYEUX_BROWSER cookie) may hold at once over HTTP/1.x; others are
	// answered at once with multiple-clients advice. Default 1; negative
	// means unlimited. HTTP/2 is never limited.
	MaxSessionsPerBrowser int
	// MultiSessionInterval is the interval advised to the extra sessions of
	// a browser. Default 2s.
	MultiSessionInterval time.Duration
	// TrustClientSession accepts a clientId without the browser cookie it
	// was issued with. Default false: a session made by a browser is bound
	// to its cookie, so a leaked clientId alone cannot hijack it.
	TrustClientSession bool
	// AllowedOrigins lists the origins (scheme://host[:port]) that may use
	// the Bayeux endpoint cross-origin, with the browser's cookies; they
	// match by scheme, host and port (a default port is the same as
	// none). "*" allows every other origin too, but never with
	// credentials: those get Access-Control-Allow-Origin: * without
	// Access-Control-Allow-Credentials, and their requests reach
	// Authorize without cookies (Client.Request). Same-origin and
	// non-browser requests are always allowed. New fails on an entry
	// that is not an origin.
	AllowedOrigins []string

	// TrustedProxies lists the reverse proxies (CIDR prefixes such as
	// 10.0.0.0/8, or addresses) whose forwarding headers are believed:
	// only for requests from those peers does the client's address (for
	// every per-IP limit, Client.RemoteAddr and logs) and scheme (for
	// Secure cookies and the same-origin test) come from the headers
	// named by ForwardedHeader, taking the right-most address that is not
	// itself a trusted proxy. Default: none, every request is its
	// connection's.
	TrustedProxies []string
	// ForwardedHeader names the headers trusted proxies use:
	// "x-forwarded" (X-Forwarded-For and X-Forwarded-Proto, the default)
	// or "forwarded" (RFC 7239). The other family is ignored, so that a
	// header the proxy passes through from the client cannot be used to
	// spoof an address.
	ForwardedHeader string
	// MaxConnsPerIP bounds the connections one peer address may hold
	// open on a listener served by Serve or ServeTLS, whatever the route
	// (idle keep-alive, slow headers, held connects, WebSockets); excess
	// connections are closed at once. Trusted proxies are exempt (their
	// clients are limited per request by ClientMaxConnections). 0 means
	// unlimited.
	MaxConnsPerIP int
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = 30 * time.Second
	}
	if o.PollInterval < 0 {
		o.PollInterval = 0
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = 512 << 10
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.MaxChannelLength <= 0 {
		o.MaxChannelLength = 256
	}
	if o.MaxSubscriptions <= 0 {
		o.MaxSubscriptions = 1024
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = DefaultMaxQueue
	}
	if o.MaxPublishSize == 0 {
		o.MaxPublishSize = DefaultMaxPublishSize
	}
	if o.HandshakeRate > 0 && o.HandshakeBurst <= 0 {
		o.HandshakeBurst = max(1, int(math.Ceil(o.HandshakeRate)))
	}
	if o.MaxSessionsPerBrowser == 0 {
		o.MaxSessionsPerBrowser = 1
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.ParkAfter == 0 {
		o.ParkAfter = 50 * time.Millisecond
	}
	if o.MultiSessionInterval <= 0 {
		o.MultiSessionInterval = 2 * time.Second
	}
	switch {
	case o.HistoryChannelBytes == 0:
		o.HistoryChannelBytes = DefaultHistoryChannelBytes
	case o.HistoryChannelBytes < 0:
		o.HistoryChannelBytes = 0
	}
	if o.MaxHistoryPage <= 0 {
		o.MaxHistoryPage = DefaultMaxHistoryPage
	}
	if o.MaxRecover <= 0 {
		o.MaxRecover = DefaultMaxRecover
	}
	if o.Engine == nil {
		o.Engine = NewMemoryEngine(MemoryEngineOptions{Budgets: o.budgets(), History: o.HistoryStore})
	}
}

// DefaultMaxPublishSize is Options.MaxPublishSize's default.
const DefaultMaxPublishSize = 64 << 10

// budgets returns the budgets of the engine the server makes when
// Options.Engine is nil.
func (o *Options) budgets() Budgets {
	return Budgets{
		MaxQueue:           o.MaxQueue,
		MaxQueueBytes:      o.MaxQueueBytes,
		MaxFetchBytes:      o.MaxReplySize,
		MaxQueuedBytes:     o.MaxQueuedBytes,
		MaxHistoryChannels: o.MaxHistoryChannels,
	}
}

// ServiceFunc handles a message published to a /service/ channel and
// returns its answers, sent to the caller only, ahead of the publish's
// reply (in the same response or WebSocket frame; queued for a local
// client), in CometD's remote-call shape:
//
//   - The first answer on the request's channel (an empty Channel means
//     that channel) is the call's result: it gets the request's id and
//     successful:true unless they are set, so that CometD's remoteCall,
//     wasmclient's Call and a Faye subscription to the service channel
//     take it. A result with Successful set to false is a failed call that
//     still carries data (CometD's RemoteCall failure).
//   - Every other answer, on the request's channel or another one, is a
//     plain message to the caller: no id or successful unless set.
//   - The publish itself always gets exactly one reply, successful and
//     without data, as every publish does: CometD runs a publish's
//     callback, and over WebSocket clears the message's timeout, only on
//     that reply (folding the result into it would leave CometD's publish
//     callback uncalled and its WebSocket closed after maxNetworkDelay).
//     Returning no answer sends only that reply.
//   - An error fails the publish instead: the one reply is successful:false
//     with the error (a *protocol.Error as is, other errors as 403::text),
//     and no answer is sent.
//
// No answer carries a clientId. ServiceFuncs run on the request's
// goroutine, concurrently with each other but never with another message
// of the same session (see Per-session order in order.go), so a service
// must not wait for a later request of its caller.
type ServiceFunc func(ctx context.Context, c *Client, m *protocol.Message) ([]*protocol.Message, error)

// EventKind names a lifecycle event.
type EventKind string

// Lifecycle events, named as in the seed server.
const (
	EventSubscribe        EventKind = "subscribe"
	EventUnsubscribe      EventKind = "unsubscribe"
	EventPublish          EventKind = "publish"
	EventClientPush       EventKind = "client_push"
	EventClientConnect    EventKind = "client_connect"
	EventClientDisconnect EventKind = "client_disconnect"
)

// Event is passed to Options.OnEvent.
type Event struct {
	Kind     EventKind
	ClientID string
	// User is the authenticated identity of the client, if any.
	User string
	// Channel is set for subscribe, unsubscribe, publish and client_push.
	Channel string
	// Message is the message for publish and client_push.
	Message *protocol.Message
	// Payload is the encoded delivery of a publish.
	Payload *Payload
	// Channels are the subscriptions a client had, for client_disconnect.
	Channels []string
	// RemoteAddr is the client's address for client_connect.
	RemoteAddr string
	// Local is true for in-process clients.
	Local bool
	// Reason says why a client_disconnect happened: "disconnect" (the
	// client asked), "expired" (no connect in time) or "server" (the
	// server removed it).
	Reason string
}
