package wasmclient

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// Options configures a Client. The zero value is usable: every zero field
// takes the default documented on it.
type Options struct {
	// Transport sends the HTTP requests (the long-polling transport).
	// Default: DefaultTransport(), a fresh cookie-keeping HTTPTransport
	// natively, fetch in the browser.
	Transport Transport

	// WebSocket makes the client use the websocket transport (one socket
	// per client, see WebSocketTransport) when it can, and Transport
	// (long-polling) otherwise. Off by default: long-polling works
	// through every proxy, and a socket holds one of the server's
	// per-address connection slots (server Options.ClientMaxConnections)
	// for as long as the client runs.
	//
	// With WebSocket, every handshake is first sent over the socket,
	// advertising supportedConnectionTypes ["websocket","long-polling"].
	// If the socket cannot be opened or breaks before the reply, the
	// client sends the handshake again at once over Transport; if that
	// succeeds, or if the server's handshake reply does not list
	// "websocket", the client uses long-polling until it stops (as CometD
	// does: a WebSocket that never worked is not tried again). If both
	// fail, the next attempt tries the socket first again. Once a
	// handshake succeeded over the socket, the session stays on it
	// (CometD's stickyReconnect): connects and other messages go over it
	// with connectionType "websocket", and a broken socket is dialed
	// again and retried with the usual backoff; only a later handshake
	// (the server forgot the session) may fall back. Each Connect starts
	// with the socket again.
	WebSocket bool
	// WebSocketTransport is the socket transport used when WebSocket is
	// set. Default: a new WebSocketTransport; natively it dials with
	// Transport's http.Client and headers when Transport is an
	// *HTTPTransport with a cookie jar, so that both transports carry the
	// same cookies. It serves this Client only.
	WebSocketTransport *WebSocketTransport

	// Ext is the ext field of /meta/handshake, sent on every (re-)handshake,
	// for example {"auth": {"user": "alice", "password": "secret"}}. Each
	// value must be encodable by encoding/json; Connect fails otherwise.
	Ext map[string]any

	// Token, if set, logs in with a token (a JWT the host site's backend
	// mints for its user): the handshake carries "ext":{"auth":{"token":
	// ...}}, replacing an auth field of Ext. The client calls Token for
	// the first handshake; for a later one when the token it has is due
	// for a refresh; once more, at once, when the server refuses a
	// handshake (the token may have expired or been revoked meanwhile; a
	// second refusal stops the client); and before the token expires (when
	// a fifth of its lifetime, at most a minute, is left, read from its
	// exp and iat), to present the fresh one on TokenRefreshService so that
	// the session goes on. Calls come from the client's goroutines, one at
	// a time; ctx ends with the client. An error fails that attempt, which
	// is retried with backoff as a network failure is.
	Token func(ctx context.Context) (string, error)

	// BackoffIncrement is how much the delay before the next attempt grows
	// after each consecutive failure. Default 1s.
	BackoffIncrement time.Duration
	// MaxBackoff bounds that delay. Default 30s. The delay is randomised
	// by ±50% (and then capped at MaxBackoff) so that the clients of a
	// restarted server spread out instead of coming back in lock-step.
	MaxBackoff time.Duration
	// MaxNetworkDelay is how long a request may take beyond the time the
	// server holds it: a /meta/connect is abandoned after the advised
	// timeout plus MaxNetworkDelay, any other request after
	// MaxNetworkDelay. It also bounds how long Call waits for the service
	// reply after the server acknowledged the call. Default 10s.
	MaxNetworkDelay time.Duration

	// Logger receives the client's diagnostics (retries at Debug, lost
	// subscriptions and listener panics at Warn); a *slog.Logger is one.
	// Default: slog.Default() natively, the browser's console in
	// WebAssembly (which then does not link log/slog).
	Logger Logger

	// OutgoingExt, if set, is called on every message just before it is
	// sent (after the Extensions), for example to add ext fields. It runs
	// on the client's sending goroutines, possibly two at once.
	OutgoingExt func(*protocol.Message)
	// Extensions see every outgoing message, in order, and every incoming
	// one, in order, before the client acts on it.
	Extensions []Extension
}

// Logger is what a Client logs its diagnostics with: messages with
// key-value pairs, as *slog.Logger takes them. It must be safe for
// concurrent use.
type Logger interface {
	Debug(msg string, args ...any)
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
}

// Extension is a Bayeux extension (CometD's client extensions, such as
// ack or timesync). Outgoing is called on every message before it is
// encoded, handshake and connect included, and may modify it (typically
// its Ext). Incoming is called on every received message before the
// client acts on it; returning false drops the message. Both may be called
// from two goroutines at once and must be safe for that; they must not
// call the Client.
type Extension interface {
	Outgoing(m *protocol.Message)
	Incoming(m *protocol.Message) bool
}

// outgoingFunc adapts Options.OutgoingExt.
type outgoingFunc func(*protocol.Message)

func (f outgoingFunc) Outgoing(m *protocol.Message)  { f(m) }
func (outgoingFunc) Incoming(*protocol.Message) bool { return true }

// Defaults of Options.
const (
	DefaultBackoffIncrement = time.Second
	DefaultMaxBackoff       = 30 * time.Second
	DefaultMaxNetworkDelay  = 10 * time.Second
)

func (o *Options) setDefaults() {
	if o.Transport == nil {
		o.Transport = DefaultTransport()
	}
	if o.WebSocket && o.WebSocketTransport == nil {
		o.WebSocketTransport = defaultWebSocketTransport(o.Transport)
	}
	if o.BackoffIncrement <= 0 {
		o.BackoffIncrement = DefaultBackoffIncrement
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxNetworkDelay <= 0 {
		o.MaxNetworkDelay = DefaultMaxNetworkDelay
	}
	if o.Logger == nil {
		o.Logger = defaultLogger()
	}
}

// backoff returns the delay before the attempt that follows the given
// number of consecutive failures: increment × failures, capped at max,
// randomised to [50%, 150%) of that by r ∈ [0, 1), and capped at max
// again. Zero failures means no delay.
func backoff(failures int, increment, max time.Duration, r float64) time.Duration {
	if failures <= 0 || increment <= 0 || max <= 0 {
		return 0
	}
	base := max
	if int64(failures) < int64(max/increment) {
		base = increment * time.Duration(failures)
	}
	d := base/2 + time.Duration(r*float64(base))
	return min(d, max)
}

func (o *Options) backoff(failures int) time.Duration {
	return backoff(failures, o.BackoffIncrement, o.MaxBackoff, rand.Float64())
}
