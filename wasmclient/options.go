package wasmclient

import (
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// Options configures a Client. The zero value is usable: every zero field
// takes the default documented on it.
type Options struct {
	// Transport sends the HTTP requests. Default: DefaultTransport(), a
	// fresh cookie-keeping HTTPTransport natively, fetch in the browser.
	Transport Transport
	// Ext is the ext field of /meta/handshake, sent on every (re-)handshake,
	// for example {"auth": {"user": "alice", "password": "secret"}}. Each
	// value must be encodable by encoding/json; Connect fails otherwise.
	Ext map[string]any

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
	// subscriptions and listener panics at Warn). Default slog.Default().
	Logger *slog.Logger

	// OutgoingExt, if set, is called on every message just before it is
	// sent (after the Extensions), for example to add ext fields. It runs
	// on the client's sending goroutines, possibly two at once.
	OutgoingExt func(*protocol.Message)
	// Extensions see every outgoing message, in order, and every incoming
	// one, in order, before the client acts on it.
	Extensions []Extension
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
		o.Logger = slog.Default()
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
