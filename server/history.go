package server

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// Historian is implemented by engines that keep the history of channels
// (Options.Channels with history). A message published with
// Payload.History set is given the next position of its channel's stream
// and stored under the payload's policy, and its delivery carries the
// position in ext.pos (see protocol.Position): the engine rewrites
// Payload.JSON and Payload.Msg before fanning out, so that subscribers
// and the history see the same bytes. Messages of one channel get
// increasing positions in the order subscribers receive them.
//
// An engine keeps the history of at most Budgets.MaxHistoryChannels
// channels: a message on one more forgets the history of the least
// recently used channel (published to or read), reported to
// EngineHooks.Dropped as DropHistory.
type Historian interface {
	// SubscribeHistory is Subscribe for an exact channel that keeps a
	// history. It also returns the position of the channel's newest
	// message at the moment the subscription took effect: the session
	// gets every message published after it, and none at or before it.
	// A channel that has no stream yet returns the zero Position.
	SubscribeHistory(ctx context.Context, id, channel string, limit int) (protocol.Position, error)
	// History reads channel's history (see HistoryQuery). It sees every
	// message whose Publish returned.
	History(ctx context.Context, channel string, q HistoryQuery) (HistoryPage, error)
}

// HistoryQuery says which messages of a history to read: those after
// Since (oldest first), those before Before (the newest of them), or,
// with neither, the newest. Either way the page holds them oldest first.
type HistoryQuery struct {
	Since  *protocol.Position
	Before *protocol.Position
	// Limit bounds the messages returned (at least 1 is used).
	Limit int
	// MaxBytes bounds their JSON in bytes (0: no bound); at least one
	// message is returned when there is one.
	MaxBytes int64
	// MaxAge hides messages older than this (0: none), as the channel's
	// policy would have removed them.
	MaxAge time.Duration
}

// HistoryPage is what History returns.
type HistoryPage struct {
	// Messages are the deliveries, oldest first, each with its position
	// in Pos and in its JSON's ext.pos.
	Messages []*Payload
	// Top is the position of the channel's newest message (the zero
	// Position when the channel has no stream).
	Top protocol.Position
	// More is true when the query's direction holds more messages than
	// were returned: older ones (Before, newest) or newer ones (Since).
	More bool
	// Lost is true for a Since query when messages after Since are no
	// longer kept (removed by the retention, the stream reset or
	// forgotten: Since's epoch is not the stream's). Messages then holds
	// nothing.
	Lost bool
}

// Stored reports when a message kept in a history is durably stored. One
// Stored may serve every message of a group commit. It is safe for
// concurrent use.
type Stored struct {
	done chan struct{}
	err  error
}

// NewStored returns a Stored that is not done yet.
func NewStored() *Stored { return &Stored{done: make(chan struct{})} }

// Done marks it done with err (nil: stored). Call it once.
func (s *Stored) Done(err error) {
	s.err = err
	close(s.done)
}

// Wait waits until it is done and returns its error, or ctx's.
func (s *Stored) Wait(ctx context.Context) error {
	if s == nil {
		return nil
	}
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrHistoryFull is returned for a publish to a channel with history
// while the history store cannot take more (its writes fell behind).
var ErrHistoryFull = errors.New("bayeux: history store overloaded")

// HistoryStore keeps the channel histories of a MemoryEngine: in memory
// (NewMemoryHistory, the default) or durably (the bolthistory package).
// The engine calls Append for one channel at a time (it orders a
// channel's publishes); everything else may run concurrently.
type HistoryStore interface {
	// Start is called once by the engine's Start; report receives what
	// the store drops for a budget (DropHistory), as EngineHooks.Dropped.
	Start(report func(reason string, n int)) error
	// Append gives a message the next position of channel's stream
	// (creating the stream, under a new epoch, if it has none), stores
	// the delivery that encode returns for that position, applies pol,
	// and returns the position and, when the write is not durable yet,
	// what to wait for.
	Append(channel string, pol HistoryPolicy, encode func(protocol.Position) []byte) (protocol.Position, *Stored, error)
	// Top returns the position of channel's newest message, as Append
	// left it (the zero Position for a channel without a stream).
	Top(channel string) protocol.Position
	// Read reads channel's history (see Historian.History).
	Read(ctx context.Context, channel string, q HistoryQuery) (HistoryPage, error)
	// Close stores what is pending and releases the store.
	Close() error
}

// NewEpoch returns a random epoch for a new stream: 12 characters of
// lower-case base32.
func NewEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])[:12]
}

// WithPosition returns the delivery json (as protocol.EncodeDelivery
// made it, hasExt when it has an ext) with pos added to its ext.
func WithPosition(json []byte, hasExt bool, pos protocol.Position) []byte {
	out := make([]byte, 0, len(json)+32)
	if hasExt {
		out = append(out, json[:len(json)-2]...)
		out = append(out, `,"pos":"`...)
	} else {
		out = append(out, json[:len(json)-1]...)
		out = append(out, `,"ext":{"pos":"`...)
	}
	out = pos.Append(out)
	return append(out, `"}}`...)
}

// SetPosition gives p the position pos: p.Pos, and ext.pos in its JSON
// and decoded delivery (see WithPosition). An engine keeping p in a
// history calls it before fanning out. p.JSON must not have an ext.pos
// already (the server removes a client's).
func (p *Payload) SetPosition(pos protocol.Position) error {
	m, err := p.Message()
	if err != nil {
		return err
	}
	p.Pos = pos
	p.JSON = WithPosition(p.JSON, len(m.Ext) > 0, pos)
	c := *m
	c.Ext = make(map[string]json.RawMessage, len(m.Ext)+1)
	for k, v := range m.Ext {
		c.Ext[k] = v
	}
	c.Ext[protocol.ExtPosition] = append(pos.Append([]byte{'"'}), '"')
	p.Msg = &c
	return nil
}

// historyLocks orders the publishes of each channel with a history and
// their subscribes (a channel's lock is one of a few, by hash).
type historyLocks [historyStripes]sync.Mutex

const historyStripes = 64
