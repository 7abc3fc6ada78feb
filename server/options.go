package server

import (
	"context"
	"log/slog"
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
	// http.Server for the next request. Default 100ms; negative: never
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

	// Authorize is called for every message a remote or local client sends,
	// after validation and before the message is handled (the seed's
	// MessageACL). Returning an error rejects the message: the client gets
	// a reply with successful:false and the error as Bayeux error string (a
	// *protocol.Error is used as is; other errors become 403::text). On
	// /meta/handshake the hook may call Client.SetUser and Client.SetFlag to
	// authenticate; a rejected handshake is told reconnect:"none".
	Authorize func(ctx context.Context, c *Client, m *protocol.Message) error
	// OnEvent receives lifecycle events (subscribe, unsubscribe, publish,
	// client_push, client_connect, client_disconnect). It is called
	// synchronously on the goroutine that caused the event and must not
	// block.
	OnEvent func(Event)

	// MaxMessageSize bounds one HTTP request body in bytes (413 beyond).
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
	// ClientMaxConnections bounds concurrent Bayeux requests from one IP
	// address; 0 means unlimited. Beyond it requests get HTTP 429.
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
	// the Bayeux endpoint cross-origin; "*" allows all. Same-origin and
	// non-browser requests are always allowed.
	AllowedOrigins []string
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
		o.MaxQueue = 1000
	}
	if o.MaxSessionsPerBrowser == 0 {
		o.MaxSessionsPerBrowser = 1
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.ParkAfter == 0 {
		o.ParkAfter = 100 * time.Millisecond
	}
	if o.MultiSessionInterval <= 0 {
		o.MultiSessionInterval = 2 * time.Second
	}
	if o.Engine == nil {
		o.Engine = NewMemoryEngine(MemoryEngineOptions{MaxQueue: o.MaxQueue})
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
