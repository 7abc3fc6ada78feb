package server

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/bayeux-go/bayeux/protocol"
)

// Presence of a channel with a presence rule (Options.Channels): the users
// with a session subscribed to exactly the channel (local clients and
// anonymous sessions are not listed). Whenever the list changes it is
// published on PresencePrefix+channel as {"channel", "members": [...]},
// and /service/presence answers {"channel"} with the same. Only the
// server publishes on /presence/**.

// presence remembers the member list last published per channel, so that
// only changes are published.
type presence struct {
	// mu orders presence updates: lookup, compare and publish happen as
	// one step, so a late lookup cannot publish a stale list.
	mu   sync.Mutex
	last map[string]string // channel -> members joined by "\x00"
}

// Members returns the users subscribed to exactly channel, sorted. It
// needs an engine that lists subscribers (SubscriberLister); otherwise
// it returns ErrNotSupported.
func (s *Server) Members(ctx context.Context, channel string) ([]string, error) {
	l, ok := s.engine.(SubscriberLister)
	if !ok {
		return nil, ErrNotSupported
	}
	infos, err := l.Subscribers(ctx, channel)
	if err != nil {
		return nil, err
	}
	users := make([]string, 0, len(infos))
	for _, in := range infos {
		if in.User != "" && !in.Local {
			users = append(users, in.User)
		}
	}
	slices.Sort(users)
	return slices.Compact(users), nil
}

// presenceEvent publishes the presence changes an event may cause.
func (s *Server) presenceEvent(ev Event) {
	if !s.rules.presence {
		return
	}
	switch ev.Kind {
	case EventSubscribe, EventUnsubscribe:
		if s.rules.hasPresence(ev.Channel) {
			s.presenceChanged(ev.Channel)
		}
	case EventClientDisconnect:
		for _, ch := range ev.Channels {
			if s.rules.hasPresence(ch) {
				s.presenceChanged(ch)
			}
		}
	}
}

// presenceChanged publishes channel's members if they changed since
// last published.
func (s *Server) presenceChanged(channel string) {
	ctx := context.Background()
	p := &s.presence
	p.mu.Lock()
	defer p.mu.Unlock()
	users, err := s.Members(ctx, channel)
	if err != nil {
		s.log.Error("presence lookup failed", "channel", channel, "err", err)
		return
	}
	key := strings.Join(users, "\x00")
	if old, seen := p.last[channel]; seen && old == key {
		return
	}
	if len(users) == 0 {
		delete(p.last, channel)
	} else {
		if p.last == nil {
			p.last = make(map[string]string)
		}
		p.last[channel] = key
	}
	data, err := presenceData(channel, users)
	if m := (&protocol.Message{Channel: PresencePrefix + channel, Data: data}); err == nil && s.sendPublish(ctx, nil, m) {
		_, _, err = s.broadcast(ctx, "", "", m, false)
	}
	if err != nil {
		s.log.Error("presence publish failed", "channel", channel, "err", err)
	}
}

func presenceData(channel string, users []string) (json.RawMessage, error) {
	return json.Marshal(struct {
		Channel string   `json:"channel"`
		Members []string `json:"members"`
	}{channel, users})
}

// presenceService is /service/presence: {"channel"} answers {"channel",
// "members": [...]}. The caller must be allowed to subscribe to the
// channel.
func (s *Server) presenceService(ctx context.Context, c *Client, m *protocol.Message) ([]*protocol.Message, error) {
	var in struct {
		Channel string `json:"channel"`
	}
	if err := json.Unmarshal(m.Data, &in); err != nil || protocol.ValidateChannel(in.Channel) != nil {
		return nil, ErrHistoryInvalid
	}
	if !s.rules.hasPresence(in.Channel) {
		return nil, ErrNoPresence
	}
	if err := s.authorizeRead(ctx, c, in.Channel); err != nil {
		return nil, err
	}
	users, err := s.Members(ctx, in.Channel)
	if err != nil {
		s.log.Error("presence lookup failed", "channel", in.Channel, "err", err)
		return nil, protocol.ErrServerError
	}
	data, err := presenceData(in.Channel, users)
	if err != nil {
		return nil, err
	}
	return []*protocol.Message{{Data: data}}, nil
}
