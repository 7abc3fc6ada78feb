package chatui

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/wasmclient"
)

// Channels and services of the chat (see internal/chat and the server's
// channel histories and presence).
const (
	roomPrefix      = "/chat/"
	presencePrefix  = "/presence/chat/"
	historyService  = "/service/history"
	presenceService = "/service/presence"
	whoamiService   = "/service/chat/whoami"
)

// pageSize is how many messages a room shows when it opens, and how many
// more each scroll back loads.
const pageSize = 50

// requestTimeout bounds one subscribe, publish or service call, including
// the time it waits for a session while the client reconnects.
const requestTimeout = 30 * time.Second

// events receives what a session learns. The functions are called from
// the client's goroutines (never the UI goroutine) and must not block;
// the component hands them to the UI goroutine with ctx.Dispatch.
type events struct {
	state   func(wasmclient.StateInfo)
	user    func(name string)
	message func(room string, m Message)
	members func(room string, members []string)
	// history is a page of a room's history, oldest first: the newest
	// messages (older false), or those before the oldest shown (older).
	// more says whether older ones are kept.
	history       func(room string, msgs []Message, older, more bool)
	roomError     func(room string, err error)
	loginRequired func(room string)
}

// session is the chat's use of one Bayeux client: it joins rooms
// (presence and chat subscriptions, then the newest page of history and
// the members), loads older pages, sends messages, and after every
// reconnection asks who the user is and who is in each room. What was
// said while the client was away the client recovers by itself; when it
// cannot (too much, or no longer kept) the room loads its newest page
// again.
type session struct {
	c   *wasmclient.Client
	ev  events
	ctx context.Context // ends when the session stops
	end context.CancelFunc

	mu        sync.Mutex
	rooms     map[string]*joined
	connected bool // the last state was Connected
	connects  int  // transitions into Connected
	removeOn  func()
}

type joined struct {
	subs []*wasmclient.Subscription
}

func newSession(endpoint string, opts wasmclient.Options, ev events) *session {
	ctx, end := context.WithCancel(context.Background())
	s := &session{c: wasmclient.New(endpoint, opts), ev: ev, ctx: ctx, end: end, rooms: map[string]*joined{}}
	s.removeOn = s.c.OnState(s.onState)
	return s
}

// start connects. It returns when the first connect succeeded, the server
// refused the handshake for good (then loginRequired is reported too) or
// the session was stopped.
func (s *session) start() error {
	err := s.c.Connect(s.ctx)
	var pe *protocol.Error
	if err != nil && s.ctx.Err() == nil && errors.As(err, &pe) && pe.Code == 403 {
		s.ev.loginRequired("") // the handshake was refused for good
	}
	return err
}

// stop disconnects; it waits at most a few seconds for the server.
func (s *session) stop() {
	s.end()
	s.removeOn()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s.c.Disconnect(ctx)
}

// onState runs on the client's delivery goroutine.
func (s *session) onState(info wasmclient.StateInfo) {
	s.ev.state(info)
	s.mu.Lock()
	up := info.State == wasmclient.Connected && !s.connected
	s.connected = info.State == wasmclient.Connected
	if up {
		s.connects++
	}
	again := up && s.connects > 1
	var rooms []string
	if again {
		for r := range s.rooms {
			rooms = append(rooms, r)
		}
	}
	s.mu.Unlock()
	if !up {
		return
	}
	// Not on this goroutine: a listener must not wait for replies.
	go func() {
		s.whoami()
		for _, r := range rooms {
			s.fetchMembers(r) // changes while away were not seen
		}
	}()
}

func (s *session) whoami() {
	ctx, cancel := context.WithTimeout(s.ctx, requestTimeout)
	defer cancel()
	reply, err := s.c.Call(ctx, whoamiService, map[string]any{})
	if err != nil {
		return // an older server without chat/whoami: show no name
	}
	var who struct {
		User string `json:"user"`
	}
	if json.Unmarshal(reply.Data, &who) != nil {
		return
	}
	if who.User == "" {
		// Handshaken without a login: the login cookie is gone
		// (logged out in another tab, or expired).
		s.ev.loginRequired("")
		return
	}
	s.ev.user(who.User)
}

// join subscribes to the presence and chat channels of room and fetches
// its history. Joining a room already joined (or being joined) does
// nothing.
func (s *session) join(room string) error {
	s.mu.Lock()
	if _, ok := s.rooms[room]; ok {
		s.mu.Unlock()
		return nil
	}
	j := &joined{}
	s.rooms[room] = j
	s.mu.Unlock()

	// fail undoes the join; report says whether to tell the UI.
	fail := func(err error, report bool) error {
		s.mu.Lock()
		mine := s.rooms[room] == j
		if mine {
			delete(s.rooms, room)
		}
		s.mu.Unlock()
		s.unsubscribe(j)
		switch {
		case !mine || !report || s.ctx.Err() != nil:
		case isLoginRequired(err):
			s.ev.loginRequired(room)
		case !stopped(err):
			s.ev.roomError(room, err)
		}
		return err
	}
	listeners := []struct {
		channel string
		fn      func(*protocol.Message)
	}{
		{presencePrefix + room, func(m *protocol.Message) {
			var d struct {
				Members []string `json:"members"`
			}
			if json.Unmarshal(m.Data, &d) == nil {
				s.ev.members(room, d.Members)
			}
		}},
		{roomPrefix + room, func(m *protocol.Message) {
			if msg, ok := chatMessage(m); ok {
				s.ev.message(room, msg)
			}
		}},
	}
	for i, l := range listeners {
		ctx, cancel := context.WithTimeout(s.ctx, requestTimeout)
		sub, err := s.c.Subscribe(ctx, l.channel, l.fn)
		cancel()
		if err != nil {
			return fail(err, true)
		}
		if i == 1 {
			// What was said while away could not be recovered: show the
			// newest again.
			sub.OnGap(func() { go s.fetchHistory(room, nil) })
		}
		s.mu.Lock()
		j.subs = append(j.subs, sub)
		left := s.rooms[room] != j
		s.mu.Unlock()
		if left { // leave ran meanwhile
			return fail(errLeft, false)
		}
	}
	if err := s.fetchHistory(room, nil); isLoginRequired(err) {
		return fail(err, false) // fetchHistory reported it
	}
	s.fetchMembers(room)
	return nil
}

// chatMessage is the chat message a delivery carries, with its position.
func chatMessage(m *protocol.Message) (Message, bool) {
	var msg Message
	if json.Unmarshal(m.Data, &msg) != nil {
		return msg, false
	}
	msg.Pos, _ = protocol.PositionOf(m)
	return msg, true
}

// stopped reports whether err only says that the client stopped; the
// status line shows that, and the UI joins again after reconnecting.
func stopped(err error) bool {
	return errors.Is(err, wasmclient.ErrSessionEnded) || errors.Is(err, wasmclient.ErrDisconnected) ||
		errors.Is(err, context.Canceled)
}

// errLeft fails a join that a leave overtook.
var errLeft = errors.New("chatui: left the room while joining")

// unsubscribe removes the listeners of j.
func (s *session) unsubscribe(j *joined) {
	s.mu.Lock()
	subs := j.subs
	j.subs = nil
	s.mu.Unlock()
	for _, sub := range subs {
		ctx, cancel := context.WithTimeout(s.ctx, requestTimeout)
		s.c.Unsubscribe(ctx, sub)
		cancel()
	}
}

// fetchHistory asks for a page of room's history: the newest messages,
// or those before a position (scrolling back).
func (s *session) fetchHistory(room string, before *protocol.Position) error {
	ctx, cancel := context.WithTimeout(s.ctx, requestTimeout)
	defer cancel()
	req := map[string]any{"channel": roomPrefix + room, "limit": pageSize}
	if before != nil {
		req["before"] = before.String()
	}
	reply, err := s.c.Call(ctx, historyService, req)
	if err != nil {
		if isLoginRequired(err) {
			s.ev.loginRequired(room)
		} else if s.ctx.Err() == nil && !stopped(err) && !noHistory(err) {
			s.ev.roomError(room, err)
		}
		if noHistory(err) {
			// The server keeps no history of rooms: an empty room.
			s.ev.history(room, nil, before != nil, false)
			return nil
		}
		return err
	}
	var h struct {
		Messages []*protocol.Message `json:"messages"`
		More     bool                `json:"more"`
	}
	if err := json.Unmarshal(reply.Data, &h); err != nil {
		s.ev.roomError(room, err)
		return err
	}
	msgs := make([]Message, 0, len(h.Messages))
	for _, m := range h.Messages {
		if msg, ok := chatMessage(m); ok {
			msgs = append(msgs, msg)
		}
	}
	s.ev.history(room, msgs, before != nil, h.More)
	return nil
}

// noHistory reports whether err says the server keeps no history of the
// channel.
func noHistory(err error) bool { return err != nil && strings.Contains(err.Error(), "no_history") }

// fetchMembers asks who is in room.
func (s *session) fetchMembers(room string) {
	ctx, cancel := context.WithTimeout(s.ctx, requestTimeout)
	defer cancel()
	reply, err := s.c.Call(ctx, presenceService, map[string]string{"channel": roomPrefix + room})
	if err != nil {
		return // no presence (the status line says why when it matters)
	}
	var p struct {
		Members []string `json:"members"`
	}
	if json.Unmarshal(reply.Data, &p) == nil && p.Members != nil {
		s.ev.members(room, p.Members)
	}
}

// loadOlder loads the page of room's history before pos.
func (s *session) loadOlder(room string, pos protocol.Position) error {
	return s.fetchHistory(room, &pos)
}

// leave unsubscribes from room. A join of the room that follows
// subscribes afresh, even while this unsubscribes.
func (s *session) leave(room string) {
	if j := s.forget(room); j != nil {
		s.unsubscribe(j)
	}
}

// forget marks room as not joined and returns its subscriptions, for
// unsubscribe; it does no I/O.
func (s *session) forget(room string) *joined {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.rooms[room]
	delete(s.rooms, room)
	return j
}

// send publishes text in room. The server stamps the author.
func (s *session) send(room, text string) error {
	ctx, cancel := context.WithTimeout(s.ctx, requestTimeout)
	defer cancel()
	err := s.c.Publish(ctx, roomPrefix+room, map[string]string{"chat": text})
	if isLoginRequired(err) {
		s.ev.loginRequired(room)
	}
	return err
}

// reconnect starts the client again after it stopped for good.
func (s *session) reconnect() error {
	s.mu.Lock()
	s.connected = false
	s.mu.Unlock()
	return s.start()
}
