package chatui

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/wasmclient"
)

// DefaultRoom is the room opened when the URL names none.
const DefaultRoom = "demo"

// MaxRoomLen is the longest room name, in bytes.
const MaxRoomLen = 64

// maxMessages bounds the messages kept per room: when new ones come, the
// oldest go first (scrolling back loads them again).
const maxMessages = 2000

// ValidRoom reports whether name can name a room: 1 to 64 ASCII letters,
// digits and - _ . ! ~ ( ) $ @. The server accepts a few more characters
// (see internal/chat.ValidRoom); the UI offers only these.
func ValidRoom(name string) bool {
	if name == "" || len(name) > MaxRoomLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-_.!~()$@", c) >= 0:
		default:
			return false
		}
	}
	return protocol.ValidateChannel("/chat/"+name) == nil
}

// roomFromURL returns the room named by the query parameter room of u,
// DefaultRoom when there is none, and ok false when the name is invalid
// (the room is then DefaultRoom).
func roomFromURL(u *url.URL) (room string, ok bool) {
	if u == nil {
		return DefaultRoom, true
	}
	r := u.Query().Get("room")
	if r == "" {
		return DefaultRoom, true
	}
	if !ValidRoom(r) {
		return DefaultRoom, false
	}
	return r, true
}

// roomURL returns u with its query replaced by ?room=room.
func roomURL(u *url.URL, room string) *url.URL {
	v := *u
	v.RawQuery = url.Values{"room": {room}}.Encode()
	v.Fragment = ""
	return &v
}

// loginURL is where a browser without a login goes: /login?next=<chat
// page>?room=<room>, both levels escaped. page is the chat's path
// ("/chat/").
func loginURL(page, room string) string {
	next := page + "?" + url.Values{"room": {room}}.Encode()
	return "/login?" + url.Values{"next": {next}}.Encode()
}

// Message is a chat message as the server delivers it on /chat/<room>.
// The server sets User, Time (RFC 3339) and ID, whatever the sender sent;
// Pos is the message's position in the room's history (its ext.pos; zero
// when the server keeps no history of the room).
type Message struct {
	User string            `json:"user"`
	Chat string            `json:"chat"`
	Time string            `json:"time"`
	ID   string            `json:"id"`
	Pos  protocol.Position `json:"-"`
}

// message is a Message with its parsed time (zero if unparsable) and its
// text split into plain text and links.
type message struct {
	Message
	at    time.Time
	spans []span
}

// roomState is what the page knows of one joined room. It is only used
// on the UI goroutine.
type roomState struct {
	name    string
	msgs    []message
	ids     map[string]struct{}
	members []string
	unread  int       // messages of others newer than seen
	seen    time.Time // newest message time the user saw here
	// restored: the room came from localStorage, so its first history
	// may hold messages the user has not seen.
	restored bool
	loaded   bool   // a history reply arrived
	joining  bool   // subscribe/history on the way
	err      string // why joining failed
	// more: the server keeps messages older than those shown; older: a
	// page of them is being loaded.
	more, older bool
}

func newRoomState(name string) *roomState {
	return &roomState{name: name, ids: map[string]struct{}{}}
}

// add merges ms into the room, skipping ids already present, keeping the
// messages in order (by position in the room's history; by time, then
// arrival, without one) and at most maxMessages of them, the newest. It
// returns how many were new.
func (r *roomState) add(ms ...Message) int {
	n := r.merge(ms)
	if over := len(r.msgs) - maxMessages; over > 0 {
		for _, m := range r.msgs[:over] {
			delete(r.ids, m.ID)
		}
		r.msgs = slices.Delete(r.msgs, 0, over)
		r.more = true
	}
	return n
}

// addOlder merges a page of older messages (scrolling back: none is
// dropped for them) and records whether still older ones are kept.
func (r *roomState) addOlder(ms []Message, more bool) int {
	r.more, r.older = more, false
	return r.merge(ms)
}

// merge adds the messages of ms not present yet, in order.
func (r *roomState) merge(ms []Message) int {
	n := 0
	sorted := true
	for _, m := range ms {
		if m.ID != "" {
			if _, dup := r.ids[m.ID]; dup {
				continue
			}
			r.ids[m.ID] = struct{}{}
		}
		at, _ := time.Parse(time.RFC3339Nano, m.Time)
		msg := message{Message: m, at: at, spans: linkify(m.Chat)}
		if k := len(r.msgs); k > 0 && before(msg, r.msgs[k-1]) {
			sorted = false
		}
		r.msgs = append(r.msgs, msg)
		n++
	}
	if !sorted {
		slices.SortStableFunc(r.msgs, func(a, b message) int {
			switch {
			case before(a, b):
				return -1
			case before(b, a):
				return 1
			}
			return 0
		})
	}
	return n
}

// before orders messages: by position in the same history, else by time
// (a message without either stays where it arrived).
func before(a, b message) bool {
	if a.Pos.Epoch != "" && a.Pos.Epoch == b.Pos.Epoch {
		return a.Pos.Offset < b.Pos.Offset
	}
	return !a.at.IsZero() && !b.at.IsZero() && a.at.Before(b.at)
}

// oldest returns the position of the oldest message shown, if it has one.
func (r *roomState) oldest() (protocol.Position, bool) {
	if len(r.msgs) == 0 || r.msgs[0].Pos.Epoch == "" {
		return protocol.Position{}, false
	}
	return r.msgs[0].Pos, true
}

// setMembers records the members of the room, sorted and without
// duplicates.
func (r *roomState) setMembers(m []string) {
	m = slices.Clone(m)
	slices.Sort(m)
	r.members = slices.Compact(m)
}

// statusText is the connection status shown to the user.
func statusText(s wasmclient.StateInfo, now time.Time) string {
	switch s.State {
	case wasmclient.Connected:
		return "connected"
	case wasmclient.Reconnecting:
		if d := s.NextRetry.Sub(now); d > 0 {
			secs := int((d + time.Second - 1) / time.Second)
			return "reconnecting in " + strconv.Itoa(secs) + "s"
		}
		return "reconnecting…"
	case wasmclient.Disconnected:
		if s.LastError != nil {
			return "disconnected: " + reason(s.LastError)
		}
		return "disconnected"
	}
	return "connecting…"
}

// reason turns a client error into words for the status line.
func reason(err error) string {
	var pe *protocol.Error
	var he *wasmclient.HTTPError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, wasmclient.ErrSessionEnded):
		return "the server ended the session"
	case errors.Is(err, wasmclient.ErrDisconnected):
		return "the client was stopped"
	case errors.As(err, &pe):
		if pe.Message != "" {
			return strings.ReplaceAll(pe.Message, "_", " ")
		}
	case errors.As(err, &he):
		return "the server answered " + he.Status
	}
	return strings.TrimPrefix(err.Error(), "wasmclient: ")
}

// isLoginRequired reports whether err says the session has no login.
func isLoginRequired(err error) bool {
	return err != nil && strings.Contains(err.Error(), "login_required")
}

// formatTime shows t in the browser's time zone: the clock time for
// today, else the date too.
func formatTime(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.Local()
	now = now.Local()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04")
	}
	if t.Year() == now.Year() {
		return t.Format("Jan 2 15:04")
	}
	return t.Format("Jan 2 2006 15:04")
}
