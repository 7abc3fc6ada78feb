package server

import (
	"context"
	"errors"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// Engine stores what every node of a cluster must agree on: sessions, their
// subscriptions and their message queues, and it fans published messages
// out to the queues of matching subscribers. The in-memory engine
// (NewMemoryEngine) is the default; a Redis engine lets several nodes share
// state so that any node can serve any request of any client.
//
// Implementations must be safe for concurrent use by many goroutines and
// must not hold a global lock on the publish path.
type Engine interface {
	// Start begins background work (such as expiring sessions) and reports
	// to hooks. It is called once by the Server before any other method.
	Start(hooks EngineHooks) error
	// Close stops background work and wakes every blocked Fetch.
	Close() error

	// CreateSession stores a new session. Its id must be unique.
	CreateSession(ctx context.Context, info *SessionInfo) error
	// Session returns the stored session, or ok=false when it does not
	// exist. The returned value must not be modified.
	Session(ctx context.Context, id string) (info *SessionInfo, ok bool, err error)
	// DestroySession removes a session with its subscriptions and queue and
	// wakes a Fetch blocked on it. It returns nil when there was no such
	// session.
	DestroySession(ctx context.Context, id string) (*RemovedSession, error)
	// Touch sets the time after which the session expires unless touched
	// again. Held connects push it past the end of the hold.
	Touch(ctx context.Context, id string, expires time.Time) error
	// SessionCount returns the number of sessions.
	SessionCount(ctx context.Context) (int, error)
	// ListSessions returns every session (for operators; not a hot path).
	ListSessions(ctx context.Context) ([]*SessionInfo, error)

	// Subscribe adds pattern to the session's subscriptions. Adding an
	// existing subscription is not an error. It fails with
	// protocol.ErrSessionUnknown when the session does not exist and with
	// protocol.ErrSubscriptionLimit when the session already has limit
	// subscriptions (limit <= 0 means no limit).
	Subscribe(ctx context.Context, id, pattern string, limit int) error
	// Unsubscribe removes a subscription and reports whether it existed.
	Unsubscribe(ctx context.Context, id, pattern string) (bool, error)
	// Subscriptions lists the session's subscriptions.
	Subscriptions(ctx context.Context, id string) ([]string, error)
	// Subscribers lists the sessions subscribed to exactly channel (a name
	// or a pattern; wildcard subscriptions that match it are not included).
	Subscribers(ctx context.Context, channel string) ([]*SessionInfo, error)

	// Publish queues p for every session with a subscription that matches
	// p.Channel, once per session even when several subscriptions match,
	// and returns the number of sessions it was queued for. A queue over
	// its bounds (messages or bytes) drops its oldest messages, and when
	// the engine's budget for all queues together is over, the biggest
	// queues drop their oldest (see Budgets); drops are counted in the
	// session's next Batch.Dropped and reported to EngineHooks.Dropped.
	Publish(ctx context.Context, p *Payload) (int, error)
	// Deliver queues p for one session.
	Deliver(ctx context.Context, id string, p *Payload) error
	// Fetch removes and returns the messages queued for a session, in order:
	// the oldest ones whose JSON adds up to at most the engine's fetch byte
	// cap (Budgets.MaxFetchBytes; at least one message, however big), the
	// rest staying queued for the next Fetch. When none are queued it waits
	// up to wait for one to arrive (or for ctx to end, or for the session
	// to be destroyed). It returns protocol.ErrSessionUnknown when the
	// session does not exist.
	Fetch(ctx context.Context, id string, wait time.Duration) (Batch, error)
	// FetchAck is Fetch for a session using the ack extension: messages
	// stay queued until acknowledged. It first removes the messages whose
	// sequence number is at most ack, then returns the others, oldest
	// first and within the fetch byte cap as Fetch, without removing them
	// (waiting as Fetch does when there are none). Batch.Last is the sequence number of the newest message
	// returned, or ack when none is. Sequence numbers are per session,
	// start at 1 and increase by one per queued message.
	FetchAck(ctx context.Context, id string, ack uint64, wait time.Duration) (Batch, error)

	// Poll is Fetch (ackMode false) or FetchAck (ackMode true, with ack)
	// for a server that holds many connects without a goroutine each. It
	// takes what is queued and returns it at once, with a nil stop, when
	// there is something, when wait <= 0 or on error. Otherwise it returns
	// an empty batch and a stop function, and later calls done exactly
	// once, on a goroutine of its own, with what Fetch would have returned
	// after waiting. stop ends the wait early as a cancelled context ends
	// Fetch (done is still called, with nothing taken, or with what a look
	// already under way took) and reports whether it did; it may be called
	// from any goroutine, more than once.
	Poll(id string, ackMode bool, ack uint64, wait time.Duration, done func(Batch, error)) (b Batch, stop func() bool, err error)

	// AppendHistory appends an encoded message to channel's history and
	// keeps only the newest max entries. The engine keeps the history of
	// at most Budgets.MaxHistoryChannels channels: appending to one more
	// forgets the history of the least recently used channel (appended
	// to or read) and reports it to EngineHooks.Dropped.
	AppendHistory(ctx context.Context, channel string, msg []byte, max int) error
	// History returns up to n of the newest entries of channel's history,
	// oldest first. Reading a channel's history counts as using it.
	History(ctx context.Context, channel string, n int) ([][]byte, error)
}

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
	// Budgets.MaxHistoryChannels.
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
	// MaxFetchBytes bounds the messages one Fetch, FetchAck or Poll
	// returns (one connect reply); the rest stay queued. A fetch returns
	// at least one message. Default DefaultMaxFetchBytes.
	MaxFetchBytes int64
	// MaxQueuedBytes bounds all queues together. When a publish takes
	// them over it, the engine drops the oldest messages of the biggest
	// queues (levelling them down, biggest first) until they hold at most
	// 7/8 of it: the sessions that let their queues grow pay, not those
	// that keep up, and every drop is reported to its session in
	// Batch.Dropped. Default DefaultMaxQueuedBytes.
	MaxQueuedBytes int64
	// MaxHistoryChannels bounds the channels with a history (see
	// AppendHistory). Default DefaultMaxHistoryChannels.
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
	// messages are fetched with FetchAck and kept until acknowledged.
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

// Batch is what Fetch returns.
type Batch struct {
	Payloads []*Payload
	// Dropped counts messages discarded from this session's queue since
	// the previous Fetch, because it was full (in messages or bytes) or
	// the engine's budget for all queues was (see Budgets).
	Dropped int
	// Last is the sequence number of the newest message in Payloads (see
	// FetchAck); for FetchAck without messages it is the ack passed in.
	Last uint64
}

// ErrEngineClosed is returned by engine calls after Close.
var ErrEngineClosed = errors.New("bayeux: engine closed")

// FetchByPoll implements a blocking Fetch or FetchAck with an engine's
// Poll: it waits for the poll's result, or stops it when ctx ends. Engines
// use it so that both ways of fetching behave the same.
func FetchByPoll(ctx context.Context, poll func(done func(Batch, error)) (Batch, func() bool, error)) (Batch, error) {
	type result struct {
		b   Batch
		err error
	}
	ch := make(chan result, 1)
	b, stop, err := poll(func(b Batch, err error) { ch <- result{b, err} })
	if stop == nil {
		return b, err
	}
	select {
	case r := <-ch:
		return r.b, r.err
	case <-ctx.Done():
		stop()
		r := <-ch
		return r.b, r.err
	}
}
