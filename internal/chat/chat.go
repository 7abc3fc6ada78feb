// Package chat is the server side of the chat: its policy, written as
// channel rules (Authorizers: who may use /chat/** and the rooms' member
// lists, wildcards over rooms, room creation limits, a token's channels
// claim), the handshake's login and the author stamp on every chat
// message (Authorize), and the /service/chat/whoami request of the chat
// UI.
//
// Rooms are the channels /chat/<room>. A chat message's data is
// {"user","chat","time","id"}; the server sets user (from the
// authenticated identity), time and id, whatever the client sent. A
// room's history and members are the server's general features
// (server.Options.Channels, DefaultChannels): its messages are read with
// /service/history, and its members are published on
// /presence/chat/<room> and answered by /service/presence.
package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bayeux-go/bayeux/internal/keyrate"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/auth"
)

// Channel prefixes.
const (
	RoomPrefix = "/chat/"
	// PresencePrefix starts the channels of the rooms' member lists.
	PresencePrefix = server.PresencePrefix + RoomPrefix
	DefaultRoom    = "demo"
)

// DefaultChannels are the channel rules the chat expects (the default of
// BAYEUX_CHANNELS): every room keeps its last 10000 messages and
// publishes who is in it.
const DefaultChannels = "/chat/**:history=10000,presence"

// DefaultRules are DefaultChannels parsed.
func DefaultRules() []server.ChannelRule {
	rules, err := server.ParseChannelRules(DefaultChannels)
	if err != nil {
		panic(err)
	}
	return rules
}

// Errors sent to clients.
var (
	ErrInvalidCredentials = &protocol.Error{Code: 403, Message: "invalid_credentials"}
	ErrRateLimited        = &protocol.Error{Code: 403, Message: "rate_limited"}
	// ErrLoginUnavailable: the failed-login counters (Redis) did not
	// answer, so no password was checked.
	ErrLoginUnavailable = &protocol.Error{Code: 503, Message: "login_unavailable"}
	ErrBadAuth          = &protocol.Error{Code: 400, Message: "auth_invalid"}
	ErrChatInvalid      = &protocol.Error{Code: 400, Message: "chat_invalid"}
)

// Reasons the chat's channel rules deny for: the argument of the
// refusal (403:REASON:subscribe_denied, publish_denied, create_denied or
// channel_create_denied).
const (
	// DeniedLoginRequired: an anonymous session and a room, a room's
	// member list, or a wildcard over them.
	DeniedLoginRequired = "login_required"
	// DeniedRoomInvalid: /chat or /chat/a/b, which are not rooms.
	DeniedRoomInvalid = "room_invalid"
	// DeniedRoomWildcard: a non-admin's subscription to a wildcard that
	// covers rooms (/**, /chat/*, /chat/**): it would read every room
	// without being in any member list.
	DeniedRoomWildcard = "room_wildcard_denied"
	// DeniedRoomRate: a user creating rooms faster than Chat.RoomRate.
	DeniedRoomRate = "room_rate_limited"
	// DeniedPresenceReadOnly: a publish on a member list (only the
	// server publishes them).
	DeniedPresenceReadOnly = "presence_read_only"
	// DeniedTokenChannels: a token session outside its channels claim.
	DeniedTokenChannels = "token_channels"
)

// Reasons the chat refuses for, counted in server.Stats().Refused.
const (
	RefusedRoomWildcard = "room_wildcard"
	RefusedRoomCreate   = "room_create"
)

// Chat implements the chat policy. Create it with New, pass its
// Authorize, Authorizers and Services to server.Options (with Channels
// holding rules for the rooms, such as DefaultChannels), then Attach the
// server. Its methods are safe for concurrent use.
type Chat struct {
	Auth   *auth.Authenticator
	Logins *auth.Logins // may be nil: then only ext.auth logs in
	// Tokens is the token login (ext.auth.token); nil: tokens are refused.
	Tokens *Tokens
	// MaxText is the longest chat text in characters. Default 2000.
	MaxText int
	Log     *slog.Logger
	// IsAdmin tells whether a user administers the server (nil: nobody
	// does). Administrators may subscribe to wildcards over rooms and
	// create rooms without limit.
	IsAdmin func(user string) bool
	// RoomRate bounds the rooms one user may create per minute, with
	// bursts of RoomBurst (a token bucket per user); 0 means unlimited. A
	// room is created when it is written to or subscribed to while it
	// does not exist (the server's create: it has neither members nor
	// history). Set both before Attach.
	RoomRate  float64
	RoomBurst int

	srv      *server.Server
	roomRate *keyrate.Limiter // RoomRate per user; whether a room exists is the server's to say
}

// New returns a Chat deciding logins with a.
func New(a *auth.Authenticator, l *auth.Logins, log *slog.Logger) *Chat {
	if log == nil {
		log = slog.Default()
	}
	return &Chat{Auth: a, Logins: l, MaxText: 2000, Log: log}
}

// Attach gives the chat its server; call it right after server.New. The
// chat's, the login limits' and the token login's refusals are counted in
// the server's Stats().Refused.
func (c *Chat) Attach(s *server.Server) {
	c.srv = s
	c.roomRate = keyrate.New(c.RoomRate/60, c.RoomBurst)
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

// mayCreateRoom takes a token of user's room creation bucket
// (Chat.RoomRate) and reports whether there was one.
func (c *Chat) mayCreateRoom(user string) bool {
	ok, _ := c.roomRate.Allow(user, time.Now())
	return ok
}

// coversRooms reports whether pattern is a wildcard that matches rooms.
func coversRooms(pattern string) bool {
	return protocol.IsWild(pattern) && protocol.Match(pattern, RoomPrefix+DefaultRoom)
}

// coversMembers reports whether pattern is a wildcard that matches the
// rooms' member lists.
func coversMembers(pattern string) bool {
	return protocol.IsWild(pattern) && protocol.Match(pattern, PresencePrefix+DefaultRoom)
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

// Authorizers returns the chat's policy as channel rules for
// server.Options.Authorizers (asked from the widest pattern down, one
// deny wins):
//
//   - /** (site): a token session uses only the channels of its
//     channels claim (service channels excepted); subscribing to a
//     wildcard over rooms or their member lists needs a login, and one
//     over rooms is for admins only. Everything else is granted:
//     anonymous sessions may use any other channel.
//   - /chat and /chat/** (rooms): for logged-in users only; a message
//     goes to a room (/chat/<room>), and a room that does not exist yet
//     is created within the user's RoomRate (admins: unlimited).
//   - /presence/chat and /presence/chat/** (member lists): logged-in
//     users read them; nobody publishes on them (the server does).
func (c *Chat) Authorizers() []server.ChannelAuthorizer {
	site := server.AuthorizerFunc(c.site)
	room := server.AuthorizerFunc(c.room)
	members := server.AuthorizerFunc(c.members)
	return []server.ChannelAuthorizer{
		{Pattern: "/**", Authorizer: site},
		{Pattern: "/chat", Authorizer: room},
		{Pattern: RoomPrefix + "**", Authorizer: room},
		{Pattern: server.PresencePrefix + "/chat", Authorizer: members},
		{Pattern: PresencePrefix + "**", Authorizer: members},
	}
}

// site is the rule on /**.
func (c *Chat) site(_ context.Context, op server.Operation, ch string, cl *server.Client, _ *protocol.Message) server.Result {
	if patterns, limited := tokenChannels(cl); limited && !protocol.IsService(ch) && !allowedByToken(patterns, ch) {
		c.refuse(RefusedTokenChannels)
		return server.Deny(DeniedTokenChannels)
	}
	if op == server.OpSubscribe && (coversRooms(ch) || coversMembers(ch)) {
		if cl.User() == "" {
			return server.Deny(DeniedLoginRequired)
		}
		// A wildcard over rooms reads them all while the reader is in
		// no member list: refused (a member list could not show it).
		if coversRooms(ch) && !c.isAdmin(cl.User()) {
			c.refuse(RefusedRoomWildcard)
			return server.Deny(DeniedRoomWildcard)
		}
	}
	return server.Grant()
}

// room is the rule on /chat and /chat/**.
func (c *Chat) room(_ context.Context, op server.Operation, ch string, cl *server.Client, _ *protocol.Message) server.Result {
	if cl.User() == "" {
		return server.Deny(DeniedLoginRequired)
	}
	switch op {
	case server.OpCreate:
		if protocol.IsWild(ch) {
			return server.Grant() // a subscription over rooms makes no room (site decides it)
		}
		if RoomOf(ch) == "" {
			return server.Deny(DeniedRoomInvalid)
		}
		if !c.isAdmin(cl.User()) && !c.mayCreateRoom(cl.User()) {
			c.refuse(RefusedRoomCreate)
			c.Log.Info("room creation rate-limited", "user", cl.User(), "room", ch)
			return server.Deny(DeniedRoomRate)
		}
	case server.OpPublish:
		if RoomOf(ch) == "" {
			return server.Deny(DeniedRoomInvalid)
		}
	}
	return server.Grant()
}

// members is the rule on /presence/chat and /presence/chat/**.
func (c *Chat) members(_ context.Context, op server.Operation, _ string, cl *server.Client, _ *protocol.Message) server.Result {
	switch {
	case op == server.OpPublish:
		return server.Deny(DeniedPresenceReadOnly)
	case cl.User() == "":
		return server.Deny(DeniedLoginRequired)
	}
	return server.Grant()
}

// Authorize is the server's authorization hook (see server.Options): it
// logs a handshake in and stamps a logged-in user's message to a room;
// what may go where is the channel rules' (Authorizers), asked after it.
func (c *Chat) Authorize(ctx context.Context, cl *server.Client, m *protocol.Message) error {
	switch {
	case m.Channel == protocol.MetaHandshake:
		return c.handshake(ctx, cl, m)
	case cl.User() != "" && RoomOf(m.Channel) != "":
		return c.stamp(cl, m)
	}
	return nil
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

// Services returns the chat's /service/ handlers: chat/whoami answers
// {"user":NAME} ("" when not logged in), and auth/refresh
// (RefreshService) takes a token session's fresh token.
func (c *Chat) Services() map[string]server.ServiceFunc {
	return map[string]server.ServiceFunc{"chat/whoami": whoami,
		strings.TrimPrefix(RefreshService, "/service/"): c.refresh}
}

func whoami(_ context.Context, cl *server.Client, _ *protocol.Message) ([]*protocol.Message, error) {
	b, err := json.Marshal(map[string]string{"user": cl.User()})
	if err != nil {
		return nil, err
	}
	return []*protocol.Message{{Data: b}}, nil
}
