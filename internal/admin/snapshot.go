package admin

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// QueueInspector is implemented by engines that can tell how many
// messages wait in one session's queue. The admin view shows the queue
// length when the server's engine implements it, and "n/a" otherwise.
type QueueInspector interface {
	QueueLen(ctx context.Context, id string) (int, error)
}

// pendingCounter is implemented by the memory engine: messages waiting in
// all queues, and in how many sessions.
type pendingCounter interface {
	Pending() (messages, sessions int)
}

// Transport names used in Snapshot.ByTransport besides the Bayeux
// connection types.
const (
	TransportLocal   = "local"   // an in-process LocalClient
	TransportUnknown = "unknown" // no message seen on this node yet
)

// Session is one row of the clients table.
type Session struct {
	Info          *server.SessionInfo
	Subscriptions []string
	// Transport is the connection type of the session's last message on
	// this node, TransportLocal, or TransportUnknown.
	Transport string
	// LastSeen is the time of the session's last message on this node
	// (zero when unknown).
	LastSeen time.Time
	// Queue is the number of queued messages, or -1 when the engine does
	// not tell (see QueueInspector).
	Queue int
}

// Channel is one row of the channels table.
type Channel struct {
	Name string
	// Subscribers counts the sessions subscribed to exactly Name.
	Subscribers int
	ChannelActivity
}

// Snapshot is the state of the server at one moment, read from the
// engine (so that, on a shared engine, it covers every node) and joined
// with what the Recorder saw on this node.
type Snapshot struct {
	Taken    time.Time
	Sessions []Session // oldest first
	Channels []Channel // by name; subscribed channels and channels with recent publishes
	// ByTransport counts sessions per transport.
	ByTransport map[string]int
	// Subscribed counts channels (names or patterns) with a subscriber.
	Subscribed int
	// QueueKnown is false when the engine cannot tell queue lengths.
	QueueKnown bool
}

// Snapshot reads every session with its subscriptions from the engine
// (which must be a server.SessionLister; otherwise it returns
// server.ErrNotSupported). It costs one engine call per session: fine for
// an operator's page or a metrics scrape, not for a hot path.
func (r *Recorder) Snapshot(ctx context.Context) (*Snapshot, error) {
	s := r.srv.Load()
	if s == nil {
		return nil, errors.New("admin: no server attached")
	}
	eng, ok := s.Engine().(server.SessionLister)
	if !ok {
		return nil, server.ErrNotSupported
	}
	infos, err := eng.ListSessions(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	qi, queueKnown := eng.(QueueInspector)
	snap := &Snapshot{Taken: now, ByTransport: map[string]int{}, QueueKnown: queueKnown}
	subscribers := map[string]int{}
	for _, in := range infos {
		subs, err := eng.Subscriptions(ctx, in.ID)
		if errors.Is(err, protocol.ErrSessionUnknown) {
			continue // ended meanwhile
		}
		if err != nil {
			return nil, err
		}
		slices.Sort(subs)
		row := Session{Info: in, Subscriptions: subs, Transport: TransportUnknown, Queue: -1}
		if a, ok := r.Activity(in.ID); ok {
			row.Transport, row.LastSeen = a.Transport, a.LastSeen
		}
		if in.Local {
			row.Transport = TransportLocal
		}
		if queueKnown {
			if n, err := qi.QueueLen(ctx, in.ID); err == nil {
				row.Queue = n
			}
		}
		for _, ch := range subs {
			subscribers[ch]++
		}
		snap.ByTransport[row.Transport]++
		snap.Sessions = append(snap.Sessions, row)
	}
	slices.SortFunc(snap.Sessions, func(a, b Session) int {
		if c := a.Info.Created.Compare(b.Info.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Info.ID, b.Info.ID)
	})
	snap.Subscribed = len(subscribers)
	seen := r.Channels(now)
	for name, n := range subscribers {
		ch := Channel{Name: name, Subscribers: n}
		ch.ChannelActivity = seen[name]
		delete(seen, name)
		snap.Channels = append(snap.Channels, ch)
	}
	for name, act := range seen {
		snap.Channels = append(snap.Channels, Channel{Name: name, ChannelActivity: act})
	}
	slices.SortFunc(snap.Channels, func(a, b Channel) int { return strings.Compare(a.Name, b.Name) })
	return snap, nil
}

// Pending returns the messages waiting in all session queues and whether
// the engine can tell.
func Pending(e server.Engine) (messages int, ok bool) {
	p, ok := e.(pendingCounter)
	if !ok {
		return 0, false
	}
	messages, _ = p.Pending()
	return messages, true
}

// Filter returns the sessions of user (when not empty) that have a
// subscription matching channel (when not empty): a subscription equal to
// channel, or a wildcard pattern that matches it.
func (s *Snapshot) Filter(user, channel string) []Session {
	var out []Session
	for _, row := range s.Sessions {
		if user != "" && row.Info.User != user {
			continue
		}
		if channel != "" && !slices.ContainsFunc(row.Subscriptions, func(sub string) bool {
			return sub == channel || protocol.Match(sub, channel)
		}) {
			continue
		}
		out = append(out, row)
	}
	return out
}

// EngineName describes the configured engine for display: "memory", or the
// Redis URL with any password removed.
func EngineName(configured string) string {
	if configured == "" {
		return "memory"
	}
	u, err := url.Parse(configured)
	if err != nil || u.Scheme == "" {
		if strings.Contains(configured, "@") {
			return "(unparsable engine URL)"
		}
		return configured
	}
	u.User = nil
	return u.String()
}
