package server

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// Whether a channel exists, for the authorizers' create (see
// authorizer.go). CometD creates a channel object on the first subscribe
// or publish (the create is authorized then) and sweeps it once it has
// had no subscribers for three sweeps (about 3 s). Here channels are not
// objects: a channel exists while
//
//   - an authorizer is registered on its name (Server.AddAuthorizer),
//   - a session subscribes to it (the name, or the pattern itself for a
//     wildcard; asked of the engine, so every node agrees),
//   - its history keeps a message (Options.Channels), or
//   - it was created, or found to exist, on this node less than
//     channelLinger ago (CometD's sweeps; it also spares the engine a
//     lookup for each message of a busy channel).
//
// An engine that can tell neither (no SubscriberCounter nor
// SubscriberLister) has no channel with subscribers: create is asked
// more often, never less.

// SubscriberCounter is implemented by engines that can count the
// sessions subscribed to a channel without listing them (the server asks
// whether a channel exists, for authorizers' create). The memory and
// Redis engines do.
type SubscriberCounter interface {
	// SubscriberCount counts the sessions subscribed to exactly channel
	// (a name or a pattern), as SubscriberLister.Subscribers lists them.
	SubscriberCount(ctx context.Context, channel string) (int, error)
}

// channelLinger is how long a channel created or found to exist is taken
// to exist on this node without asking the engine again.
const channelLinger = 3 * time.Second

// maxKnownChannels bounds the channels remembered as existing; beyond it
// expired entries are dropped, and new ones are not remembered until
// some expire (the engine is asked each time meanwhile).
const maxKnownChannels = 16 << 10

const knownShards = 16

// knownChannels remembers channels created or seen to exist lately, by
// name, until when (unix nanoseconds). Safe for concurrent use.
type knownChannels struct {
	seed   maphash.Seed
	shards [knownShards]struct {
		mu sync.Mutex
		m  map[string]int64
	}
}

func (k *knownChannels) init() {
	k.seed = maphash.MakeSeed()
	for i := range k.shards {
		k.shards[i].m = make(map[string]int64)
	}
}

// recent reports whether channel was created or seen existing less than
// channelLinger ago.
func (k *knownChannels) recent(channel string, now time.Time) bool {
	sh := &k.shards[maphash.String(k.seed, channel)%knownShards]
	sh.mu.Lock()
	until, ok := sh.m[channel]
	sh.mu.Unlock()
	return ok && now.UnixNano() < until
}

// add remembers channel as existing from now for channelLinger.
func (k *knownChannels) add(channel string) {
	now := time.Now().UnixNano()
	sh := &k.shards[maphash.String(k.seed, channel)%knownShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[channel]; !ok && len(sh.m) >= maxKnownChannels/knownShards {
		for name, until := range sh.m {
			if until <= now {
				delete(sh.m, name)
			}
		}
		if len(sh.m) >= maxKnownChannels/knownShards {
			return
		}
	}
	sh.m[channel] = now + int64(channelLinger)
}

// channelExists reports whether channel exists (see above); t holds the
// authorizers.
func (s *Server) channelExists(ctx context.Context, t *authzTable, channel string) (bool, error) {
	if len(t.names[channel]) > 0 || s.known.recent(channel, time.Now()) {
		return true, nil
	}
	n, err := s.subscriberCount(ctx, channel)
	if err != nil {
		return false, err
	}
	if n == 0 && !protocol.IsWild(channel) && s.rules.policy(channel) != nil {
		pg, err := s.History(ctx, channel, HistoryQuery{Limit: 1})
		if err != nil && !errors.Is(err, ErrNoHistory) {
			return false, err
		}
		n = len(pg.Messages)
	}
	if n == 0 {
		return false, nil
	}
	s.known.add(channel)
	return true, nil
}

// subscriberCount counts the sessions subscribed to exactly channel, as
// far as the engine can tell (0 when it cannot).
func (s *Server) subscriberCount(ctx context.Context, channel string) (int, error) {
	switch e := s.engine.(type) {
	case SubscriberCounter:
		return e.SubscriberCount(ctx, channel)
	case SubscriberLister:
		subs, err := e.Subscribers(ctx, channel)
		return len(subs), err
	}
	return 0, nil
}

// SubscriberCount implements SubscriberCounter.
func (e *MemoryEngine) SubscriberCount(_ context.Context, channel string) (int, error) {
	return len(e.subscribers(channel)), nil
}
