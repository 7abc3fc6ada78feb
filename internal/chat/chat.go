// Package chat is the server side of the chat: who may use /chat/**, the
// author stamp on every chat message, per-room history and presence, and
// the /service/chat/* requests of the chat UI.
//
// Rooms are the channels /chat/<room>. A chat message's data is
// {"user","chat","time","id"}; the server sets user (from the
// authenticated identity), time and id, whatever the client sent. The
// members of a room are the users with a session subscribed to it; every
// change is published on /members/<room> as {"room","members":[...]}.
package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/auth"
)

// Channel prefixes.
const (
	RoomPrefix    = "/chat/"
	MembersPrefix = "/members/"
	DefaultRoom   = "demo"
)

// Errors sent to clients.
var (
	ErrLoginRequired      = &protocol.Error{Code: 403, Message: "login_required"}
	ErrInvalidCredentials = &protocol.Error{Code: 403, Message: "invalid_credentials"}
	ErrRateLimited        = &protocol.Error{Code: 403, Message: "rate_limited"}
	// ErrLoginUnavailable: the failed-login counters (Redis) did not
	// answer, so no password was checked.
	ErrLoginUnavailable = &protocol.Error{Code: 503, Message: "login_unavailable"}
	ErrBadAuth          = &protocol.Error{Code: 400, Message: "auth_invalid"}
	ErrRoomInvalid      = &protocol.Error{Code: 400, Message: "room_invalid"}
	ErrChatInvalid      = &protocol.Error{Code: 400, Message: "chat_invalid"}
	// ErrRoomWildcard refuses a non-admin's wildcard subscription that
	// covers rooms (/**, /chat/*, /chat/**): it would read every room
	// without being in any member list.
	ErrRoomWildcard = &protocol.Error{Code: 403, Message: "room_wildcard_denied"}
	// ErrRoomRate refuses a user creating rooms faster than Chat.RoomRate.
	ErrRoomRate = &protocol.Error{Code: 429, Message: "room_rate_limited"}
)

// Reasons the chat refuses for, counted in server.Stats().Refused.
const (
	RefusedRoomWildcard = "room_wildcard"
	RefusedRoomCreate   = "room_create"
)

// Chat implements the chat policy. Create it with New, pass its
// Authorize, OnEvent and Services to server.Options, then Attach the
// server. Its methods are safe for concurrent use.
type Chat struct {
	Auth   *auth.Authenticator
	Logins *auth.Logins // may be nil: then only ext.auth logs in
	// Tokens is the token login (ext.auth.token); nil: tokens are refused.
	Tokens *Tokens
	// HistorySize is how many messages a room keeps. Default 50.
	HistorySize int
	// MaxText is the longest chat text in characters. Default 2000.
	MaxText int
	Log     *slog.Logger
	// IsAdmin tells whether a user administers the server (nil: nobody
	// does). Administrators may subscribe to wildcards over rooms and
	// create rooms without limit.
	IsAdmin func(user string) bool
	// RoomRate bounds the rooms one user may create per minute, with
	// bursts of RoomBurst (a token bucket per user); 0 means unlimited. A
	// room is created when it is written to or subscribed to while it has
	// neither members nor history. Set both before Attach.
	RoomRate  float64
	RoomBurst int

	srv   *server.Server
	rooms rooms
	// presenceMu orders presence updates: lookup, compare and publish
	// happen as one step, so a late lookup cannot publish a stale list.
	presenceMu sync.Mutex
	members    map[string]string // room -> last published member list
}

// New returns a Chat deciding logins with a.
func New(a *auth.Authenticator, l *auth.Logins, log *slog.Logger) *Chat {
	if log == nil {
		log = slog.Default()
	}
	return &Chat{Auth: a, Logins: l, HistorySize: 50, MaxText: 2000, Log: log, members: map[string]string{}}
}

// Attach gives the chat its server; call it right after server.New. The
// chat's, the login limits' and the token login's refusals are counted in
// the server's Stats().Refused.
func (c *Chat) Attach(s *server.Server) {
	c.srv = s
	c.rooms.init(c.RoomRate, c.RoomBurst)
	s.Stats().Refused.Declare(RefusedRoomWildcard, RefusedRoomCreate, auth.RefusedLoginUserIP, auth.RefusedLoginUser, auth.RefusedLoginIP)
	s.Stats().Refused.Declare(auth.TokenReasons...)
	s.Stats().Refused.Declare(RefusedTokenChannels, RefusedTokenDisabled)
}

// isAdmin: admins are local users, whose names cannot contain ':'; a
// token user's always does (Tokens.Prefix), so it is never an admin, even
// if its name was listed by mistake.
func (c *Chat) isAdmin(user string) bool {
	return auth.ValidName(user) && c.IsAdmin != nil && c.IsAdmin(user)
}

// coversRooms reports whether pattern is a wildcard that matches rooms.
func coversRooms(pattern string) bool {
	return protocol.IsWild(pattern) && protocol.Match(pattern, RoomPrefix+DefaultRoom)
}

// RoomOf returns the room of a room channel (/chat/<room>), or "".
func RoomOf(channel string) string {
	room, ok := strings.CutPrefix(channel, RoomPrefix)
	if !ok || !ValidRoom(room) {
		return ""
	}
	return room
}

// ValidRoom reports whether room can name a room: one channel segment of
// at most 64 bytes, without wildcards.
func ValidRoom(room string) bool {
	if room == "" || len(room) > 64 || room == "*" || room == "**" || strings.Contains(room, "/") {
		return false
	}
	return protocol.ValidateChannel("/"+room) == nil
}

func isChatChannel(ch string) bool {
	return ch == "/chat" || strings.HasPrefix(ch, RoomPrefix) || ch == "/members" || strings.HasPrefix(ch, MembersPrefix)
}

// Authorize is the server's authorization hook (see server.Options).
func (c *Chat) Authorize(ctx context.Context, cl *server.Client, m *protocol.Message) error {
	switch m.Channel {
	case protocol.MetaHandshake:
		return c.handshake(ctx, cl, m)
	case protocol.MetaSubscribe:
		if err := c.checkTokenChannels(cl, m); err != nil {
			return err
		}
		for _, ch := range m.Subscription.Channels {
			// "/**" matches every room too.
			if (isChatChannel(ch) || ch == "/**") && cl.User() == "" {
				return ErrLoginRequired
			}
			// A wildcard over rooms reads them all while the reader is in
			// no member list: refused (a member list could not show it).
			if coversRooms(ch) && !c.isAdmin(cl.User()) {
				c.srv.Stats().Refused.Add(RefusedRoomWildcard)
				return ErrRoomWildcard
			}
		}
		for _, ch := range m.Subscription.Channels {
			if room := RoomOf(ch); room != "" {
				if err := c.useRoom(ctx, cl.User(), room); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if protocol.IsMeta(m.Channel) || protocol.IsService(m.Channel) {
		return nil
	}
	if err := c.checkTokenChannels(cl, m); err != nil {
		return err
	}
	if strings.HasPrefix(m.Channel, MembersPrefix) {
		return protocol.ErrPublishDenied // only the server publishes presence
	}
	if !isChatChannel(m.Channel) {
		return nil
	}
	if cl.User() == "" {
		return ErrLoginRequired
	}
	room := RoomOf(m.Channel)
	if room == "" {
		return ErrRoomInvalid
	}
	if err := c.stamp(cl, m); err != nil {
		return err
	}
	return c.useRoom(ctx, cl.User(), room)
}

func (c *Chat) handshake(ctx context.Context, cl *server.Client, m *protocol.Message) error {
	if raw, ok := m.Ext["auth"]; ok {
		var cred struct {
			User     string `json:"user"`
			Password string `json:"password"`
			Token    string `json:"token"`
		}
		if err := json.Unmarshal(raw, &cred); err != nil {
			return ErrBadAuth
		}
		if cred.Token != "" {
			return c.tokenLogin(cl, cred.Token)
		}
		err := c.Auth.Authenticate(ctx, cred.User, cred.Password, cl.RemoteAddr())
		var limit *auth.LimitError
		switch {
		case errors.As(err, &limit):
			c.srv.Stats().Refused.Add(limit.Reason)
			c.Log.Warn("login rate-limited", "user", cred.User, "ip", cl.RemoteAddr(), "limit", limit.Reason)
			return ErrRateLimited
		case errors.Is(err, auth.ErrInvalidCredentials):
			c.Log.Info("login failed", "user", cred.User, "ip", cl.RemoteAddr())
			return ErrInvalidCredentials
		case err != nil:
			c.Log.Error("login check failed", "user", cred.User, "ip", cl.RemoteAddr(), "err", err)
			return ErrLoginUnavailable
		}
		cl.SetUser(cred.User)
		cl.SetFlag("auth", "password")
		return nil
	}
	if r := cl.Request(); r != nil && c.Logins != nil {
		if l, ok := c.Logins.Current(r); ok && c.Auth.Users.Exists(l.User) {
			cl.SetUser(l.User)
			cl.SetFlag("auth", "cookie")
			cl.SetFlag(auth.SessionFlag, l.ID)
		}
	}
	return nil // anonymous sessions may use other channels
}

// stamp replaces a chat message with the server's version: data is
// rebuilt from the text alone and the client's ext is neither stored nor
// forwarded.
func (c *Chat) stamp(cl *server.Client, m *protocol.Message) error {
	var in struct {
		Chat *string `json:"chat"`
	}
	if err := json.Unmarshal(m.Data, &in); err != nil || in.Chat == nil {
		return ErrChatInvalid
	}
	text := strings.TrimSpace(*in.Chat)
	if text == "" || !utf8.ValidString(text) || utf8.RuneCountInString(text) > c.MaxText {
		return ErrChatInvalid
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	out, err := json.Marshal(Message{
		User: cl.User(),
		Chat: text,
		Time: time.Now().UTC().Format(time.RFC3339Nano),
		ID:   hex.EncodeToString(id[:]),
	})
	if err != nil {
		return err
	}
	m.Data = out
	m.Ext = nil
	return nil
}

// Message is the data of a chat message as delivered.
type Message struct {
	User string `json:"user"`
	Chat string `json:"chat"`
	Time string `json:"time"`
	ID   string `json:"id"`
}

// OnEvent keeps history and presence up to date (see server.Options).
func (c *Chat) OnEvent(ev server.Event) {
	switch ev.Kind {
	case server.EventPublish:
		if h, ok := c.srv.Engine().(server.Historian); ok && RoomOf(ev.Channel) != "" && ev.Payload != nil {
			if err := h.AppendHistory(context.Background(), ev.Channel, ev.Payload.JSON, c.HistorySize); err != nil {
				c.Log.Error("history append failed", "channel", ev.Channel, "err", err)
			}
		}
	case server.EventSubscribe, server.EventUnsubscribe:
		if room := RoomOf(ev.Channel); room != "" {
			c.presenceChanged(room)
		}
	case server.EventClientDisconnect:
		for _, ch := range ev.Channels {
			if room := RoomOf(ch); room != "" {
				c.presenceChanged(room)
			}
		}
	}
}

// Members returns the users in room, sorted (none when the engine cannot
// list subscribers: see server.SubscriberLister).
func (c *Chat) Members(ctx context.Context, room string) ([]string, error) {
	l, ok := c.srv.Engine().(server.SubscriberLister)
	if !ok {
		return []string{}, nil
	}
	infos, err := l.Subscribers(ctx, RoomPrefix+room)
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

func (c *Chat) presenceChanged(room string) {
	ctx := context.Background()
	c.presenceMu.Lock()
	defer c.presenceMu.Unlock()
	users, err := c.Members(ctx, room)
	if err != nil {
		c.Log.Error("presence lookup failed", "room", room, "err", err)
		return
	}
	key := strings.Join(users, "\x00")
	if old, seen := c.members[room]; seen && old == key {
		return
	}
	if len(users) == 0 {
		delete(c.members, room)
	} else {
		c.members[room] = key
	}
	if _, err := c.srv.Publish(ctx, MembersPrefix+room, map[string]any{"room": room, "members": users}); err != nil {
		c.Log.Error("presence publish failed", "room", room, "err", err)
	}
}

// Services returns the chat's /service/ handlers: chat/history answers
// {"room"} with {"room","messages":[...],"members":[...]},
// chat/whoami answers {"user":NAME} ("" when not logged in), and
// auth/refresh (RefreshService) takes a token session's fresh token.
func (c *Chat) Services() map[string]server.ServiceFunc {
	return map[string]server.ServiceFunc{"chat/history": c.history, "chat/whoami": whoami,
		strings.TrimPrefix(RefreshService, "/service/"): c.refresh}
}

func whoami(_ context.Context, cl *server.Client, _ *protocol.Message) ([]*protocol.Message, error) {
	b, err := json.Marshal(map[string]string{"user": cl.User()})
	if err != nil {
		return nil, err
	}
	return []*protocol.Message{{Data: b}}, nil
}

func (c *Chat) history(ctx context.Context, cl *server.Client, m *protocol.Message) ([]*protocol.Message, error) {
	if cl.User() == "" {
		return nil, ErrLoginRequired
	}
	var in struct {
		Room string `json:"room"`
	}
	if err := json.Unmarshal(m.Data, &in); err != nil || !ValidRoom(in.Room) {
		return nil, ErrRoomInvalid
	}
	if patterns, limited := tokenChannels(cl); limited && !allowedByToken(patterns, RoomPrefix+in.Room) {
		c.refuse(RefusedTokenChannels)
		return nil, protocol.ErrSubscribeDenied
	}
	var raw [][]byte
	if h, ok := c.srv.Engine().(server.Historian); ok {
		var err error
		if raw, err = h.History(ctx, RoomPrefix+in.Room, c.HistorySize); err != nil {
			return nil, err
		}
	}
	msgs := make([]json.RawMessage, 0, len(raw))
	for _, r := range raw {
		var d struct {
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal(r, &d) == nil && d.Data != nil {
			msgs = append(msgs, d.Data)
		}
	}
	members, err := c.Members(ctx, in.Room)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(map[string]any{"room": in.Room, "messages": msgs, "members": members})
	if err != nil {
		return nil, err
	}
	return []*protocol.Message{{Data: out}}, nil
}
