package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// Engine stores what every node of a cluster must agree on: sessions, their
// subscriptions and what is queued for them, and it fans published messages
// out to the sessions that subscribed. The in-memory engine
// (NewMemoryEngine) is the default; a Redis engine lets several nodes share
// state so that any node can serve any request of any client.
//
// The engine stores and fans out; it never waits. When a session has
// nothing to take, Take with TakeOptions.Watch asks the engine to call
// EngineHooks.Ready once something arrives, and the Server does the
// waiting (timeouts, parked connections, WebSockets) itself.
//
// What an operator's page, presence and channel histories need besides
// is in small optional interfaces (SessionLister, SubscriberLister,
// Historian), so that an engine that does not offer them stays short.
//
// Implementations must be safe for concurrent use by many goroutines and
// must not hold a global lock on the publish path.
type Engine interface {
	// Start begins background work (such as expiring sessions) and reports
	// to hooks. It is called once by the Server before any other method.
	Start(hooks EngineHooks) error
	// Close stops background work. Sessions that wait (Watch) get their
	// Ready call; their next Take fails with ErrEngineClosed.
	Close() error

	// CreateSession stores a new session. Its id must be unique.
	CreateSession(ctx context.Context, info *SessionInfo) error
	// Session returns the stored session, or ok=false when it does not
	// exist. The returned value must not be modified.
	Session(ctx context.Context, id string) (info *SessionInfo, ok bool, err error)
	// DestroySession removes a session with its subscriptions and queue,
	// calls Ready for it if it waits, and returns what was removed (nil
	// when there was no such session).
	DestroySession(ctx context.Context, id string) (*RemovedSession, error)
	// Touch sets the time after which the session expires unless touched
	// again (the zero time: never). Held connects push it past the end of
	// the hold. An engine may apply it with a delay of up to its sweep
	// interval.
	Touch(ctx context.Context, id string, expires time.Time) error

	// Subscribe adds pattern to the session's subscriptions. Adding an
	// existing subscription is not an error. It fails with
	// protocol.ErrSessionUnknown when the session does not exist and with
	// protocol.ErrSubscriptionLimit when the session already has limit
	// subscriptions (limit <= 0 means no limit). Messages published after
	// Subscribe returned reach the session.
	Subscribe(ctx context.Context, id, pattern string, limit int) error
	// Unsubscribe removes a subscription and reports whether it existed.
	Unsubscribe(ctx context.Context, id, pattern string) (bool, error)

	// Publish queues p for every session with a subscription that matches
	// p.Channel, once per session even when several of its subscriptions
	// match, and returns the number of subscribers it reached. An engine
	// that fans out per subscription may count a session once for each of
	// its matching subscriptions; the session still gets the message once.
	// A queue over its bounds (messages or bytes) drops its oldest
	// messages, and when the engine's budget for all queues together is
	// over, the biggest queues drop their oldest (see Budgets); drops are
	// counted in the session's next Batch.Dropped and reported to
	// EngineHooks.Dropped.
	Publish(ctx context.Context, p *Payload) (int, error)
	// Deliver queues p for one session, as Publish does.
	Deliver(ctx context.Context, id string, p *Payload) error

	// Take returns what is queued for the session, oldest first, without
	// waiting: it returns an empty batch when nothing is. Without ack mode
	// what it returns is removed. In ack mode (TakeOptions.Ack) messages
	// stay until acknowledged: Batch.Last numbers the batch, and a later
	// Take whose Acked is at least that number removes them; a Take that
	// acknowledges less returns them again. It fails with
	// protocol.ErrSessionUnknown when the session does not exist and with
	// ErrSuperseded when o.Resume is set and a newer connect of the
	// session took meanwhile on another node; with ErrSessionRemoved when
	// the session was removed while it watched.
	Take(ctx context.Context, id string, o TakeOptions) (Batch, error)
}

// TakeOptions says how Take takes.
type TakeOptions struct {
	// Ack is true for a session using the ack extension.
	Ack bool
	// Acked is the newest batch number the client acknowledged (ack mode).
	Acked uint64
	// Watch asks for one EngineHooks.Ready call for the session when Take
	// returns no messages: as soon as something is queued for it, or it
	// ends (destroyed, expired, taken over by another node, engine
	// closed). The waiter should Take again (with Resume) then.
	Watch bool
	// Resume marks a Take for a connect that took before and waited. A
	// Take without it starts a connect: on an engine shared by several
	// nodes it makes this node the session's taker, and a connect still
	// waiting on another node gets Ready and then ErrSuperseded.
	Resume bool
}

// ErrSessionRemoved is returned by Take for a session that was removed
// (destroyed or expired) while a Take of it watched; it wraps
// protocol.ErrSessionUnknown. A plain protocol.ErrSessionUnknown means the
// session is not there (it never was, or the engine's store lost it): the
// client should handshake again, while a removed client is told not to
// reconnect.
var ErrSessionRemoved = fmt.Errorf("%w (removed)", protocol.ErrSessionUnknown)

// ErrSuperseded is returned by Take (with TakeOptions.Resume) when a newer
// connect of the session took it over on another node.
var ErrSuperseded = errors.New("bayeux: superseded by a newer connect")

// SessionLister is implemented by engines that can list their sessions,
// for operators (the admin pages, metrics, DisconnectWhere). None of it is
// on a hot path.
type SessionLister interface {
	// SessionCount returns the number of sessions.
	SessionCount(ctx context.Context) (int, error)
	// ListSessions returns every session.
	ListSessions(ctx context.Context) ([]*SessionInfo, error)
	// Subscriptions lists the session's subscriptions.
	Subscriptions(ctx context.Context, id string) ([]string, error)
}

// SubscriberLister is implemented by engines that can list the sessions
// subscribed to a channel (presence).
type SubscriberLister interface {
	// Subscribers lists the sessions subscribed to exactly channel (a name
	// or a pattern; wildcard subscriptions that match it are not included).
	Subscribers(ctx context.Context, channel string) ([]*SessionInfo, error)
}

// BatchPublisher is implemented by engines for which publishing several
// messages at once costs less than one by one (the Redis engine sends
// them in one round trip). The Server publishes the messages of one
// request with it.
type BatchPublisher interface {
	// PublishBatch publishes ps in order, as Publish would one after the
	// other, and returns each one's count and error.
	PublishBatch(ctx context.Context, ps []*Payload) ([]int, []error)
}

// ErrNotSupported is returned for an operation the engine does not offer
// (see SessionLister, SubscriberLister, Historian).
var ErrNotSupported = errors.New("bayeux: not supported by this engine")

// RemovedSession describes a session the engine removed.
type RemovedSession struct {
	Info *SessionInfo
	// Subscriptions are the session's subscriptions at removal.
	Subscriptions []string
}

// EngineHooks are the callbacks an Engine makes into the Server.
type EngineHooks struct {
	// Expired is called after the engine removed a session whose expiry
	// time passed.
	Expired func(*RemovedSession)
	// Ready is called once for each Take with Watch that returned no
	// messages, when the session has something to take or ended. It may
	// be called on any goroutine, with engine locks released, and must not
	// block; a Ready for a session nobody waits for any more is harmless.
	Ready func(id string)
	// ReadyBatch, when set, may be called instead of Ready with several
	// sessions at once, by an engine that finds many ready in one pass
	// (the memory engine's fan-out of a publish): it stands for a Ready
	// call for each of ids, which are distinct. The same rules as for
	// Ready hold; it must not keep ids after it returns. Engines that do
	// not batch leave it alone.
	ReadyBatch func(ids []string)
	// Dropped is called when the engine discarded n stored messages for
	// reason: DropQueueLength, DropQueueBytes or DropQueuedBytes (queued
	// messages, also reported to their session in Batch.Dropped), or
	// DropHistory (n channel histories forgotten). It may be nil; it is
	// called on the goroutine that made the drop and must not block.
	Dropped func(reason string, n int)
}

// Reasons an engine drops stored messages for (EngineHooks.Dropped). The
// Server counts them in Stats.Refused under these names.
const (
	// DropQueueLength: a session's queue held Budgets.MaxQueue messages.
	DropQueueLength = "queue_length"
	// DropQueueBytes: a session's queue held more than
	// Budgets.MaxQueueBytes.
	DropQueueBytes = "queue_bytes"
	// DropQueuedBytes: all queues together held more than
	// Budgets.MaxQueuedBytes; the biggest queues dropped their oldest.
	DropQueuedBytes = "queued_bytes"
	// DropHistory: a channel's history was forgotten to keep at most
	// Budgets.MaxHistoryChannels (see Historian).
	DropHistory = "history_channels"
)

// Budgets bound what an engine stores, in messages and in bytes (the
// length of each message's JSON). Every engine takes them in its options;
// a zero field takes the default named on it, a negative one means no
// limit (MaxQueue excepted: it is always bounded).
type Budgets struct {
	// MaxQueue bounds each session's queue in messages; when it is full
	// the oldest message is dropped. Default 1000.
	MaxQueue int
	// MaxQueueBytes bounds each session's queue in bytes; beyond it the
	// oldest messages are dropped, but the newest is always kept.
	// Default DefaultMaxQueueBytes.
	MaxQueueBytes int64
	// MaxFetchBytes bounds the messages one Take returns (one connect
	// reply); the rest stay queued. A Take returns at least one message.
	// Default DefaultMaxFetchBytes.
	MaxFetchBytes int64
	// MaxQueuedBytes bounds all queues together. When a publish takes
	// them over it, the engine drops the oldest messages of the biggest
	// queues (levelling them down, biggest first) until they hold at most
	// 7/8 of it: the sessions that let their queues grow pay, not those
	// that keep up, and every drop is reported to its session in
	// Batch.Dropped. Default DefaultMaxQueuedBytes.
	MaxQueuedBytes int64
	// MaxHistoryChannels bounds the channels with a history (see
	// Historian). Default DefaultMaxHistoryChannels.
	MaxHistoryChannels int
}

// Default budgets (see Budgets).
const (
	DefaultMaxQueue           = 1000
	DefaultMaxQueueBytes      = 4 << 20
	DefaultMaxFetchBytes      = 1 << 20
	DefaultMaxQueuedBytes     = 256 << 20
	DefaultMaxHistoryChannels = 200
)

// WithDefaults returns b with every zero field set to its default and
// every negative one (MaxQueue excepted) set to 0, meaning no limit.
func (b Budgets) WithDefaults() Budgets {
	if b.MaxQueue <= 0 {
		b.MaxQueue = DefaultMaxQueue
	}
	b.MaxQueueBytes = orDefault(b.MaxQueueBytes, DefaultMaxQueueBytes)
	b.MaxFetchBytes = orDefault(b.MaxFetchBytes, DefaultMaxFetchBytes)
	b.MaxQueuedBytes = orDefault(b.MaxQueuedBytes, DefaultMaxQueuedBytes)
	b.MaxHistoryChannels = int(orDefault(int64(b.MaxHistoryChannels), DefaultMaxHistoryChannels))
	return b
}

func orDefault(v, def int64) int64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// SessionInfo is what the engine stores about a session. It is written at
// handshake and read-only afterwards, but for Deadline (see
// DeadlineSetter).
type SessionInfo struct {
	ID         string            `json:"id"`
	Created    time.Time         `json:"created"`
	Browser    string            `json:"browser,omitempty"`
	RemoteAddr string            `json:"remoteAddr,omitempty"`
	User       string            `json:"user,omitempty"`
	Flags      map[string]string `json:"flags,omitempty"`
	Local      bool              `json:"local,omitempty"`
	// Ack is true when the client negotiated the ack extension: its
	// messages are taken in ack mode and kept until acknowledged.
	Ack bool `json:"ack,omitempty"`
	// Deadline is when the session ends whatever its activity (the
	// expiry of the token it logged in with); zero: never. Set by
	// Client.SetDeadline at handshake, moved by Server.SetDeadline.
	Deadline time.Time `json:"deadline,omitzero"`
}

// Payload is a message on its way to subscribers. JSON holds its encoding,
// made once at publish and written unchanged to every recipient.
type Payload struct {
	// Channel is the channel the message was published on.
	Channel string
	// From is the publisher's session id, or "" for server publishes. It is
	// never written to remote clients.
	From string
	// JSON is the encoded delivery: {"channel":...,"data":...[,"ext":...]}.
	JSON []byte
	// Msg is the decoded delivery when the publisher is in this process; it
	// saves local clients from decoding JSON. It may be nil.
	Msg *protocol.Message
	// History, set by the server for a channel that keeps a history
	// (Options.Channels), asks a Historian engine to keep the message
	// under this policy (see Historian).
	History *HistoryPolicy
	// Pos is the message's position in its channel's stream, set by the
	// engine when it keeps the message in a history.
	Pos protocol.Position
	// Stored, set by Publish when the message's storage in the history
	// is not durable yet, says when it is: the server replies to the
	// publisher after that. Nil: nothing to wait for.
	Stored *Stored
}

// Message returns the decoded delivery, decoding JSON when needed.
func (p *Payload) Message() (*protocol.Message, error) {
	if p.Msg != nil {
		return p.Msg, nil
	}
	msgs, err := protocol.DecodeBatch(p.JSON)
	if err != nil {
		return nil, err
	}
	return msgs[0], nil
}

// Batch is what Take returns.
type Batch struct {
	Payloads []*Payload
	// Dropped counts messages discarded for this session since the
	// previous Take, because its queue was full (in messages or bytes) or
	// the engine's budget for all queues was (see Budgets).
	Dropped int
	// Last numbers the batch in ack mode (see Take): numbers increase from
	// one batch with messages to the next. For a Take that returned no
	// messages it is the number the client should go on acknowledging.
	Last uint64
}

// ErrEngineClosed is returned by engine calls after Close.
var ErrEngineClosed = errors.New("bayeux: engine closed")
