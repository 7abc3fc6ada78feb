package chatui

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// Unread counts: a room the user is not looking at counts the messages of
// others newer than the newest one the user saw there (roomState.seen).
// Opening the room clears the count. The room list and the seen times are
// kept in the browser's localStorage per user (savedRooms), so that a
// reload rejoins the rooms and counts what was said meanwhile.

// maxSavedRooms bounds the rooms kept across reloads (each is joined).
const maxSavedRooms = 50

// markSeen records that the user saw every message of the room. It
// reports whether seen moved on.
func (r *roomState) markSeen() bool {
	r.unread = 0
	for i := len(r.msgs) - 1; i >= 0; i-- {
		if at := r.msgs[i].at; !at.IsZero() {
			if at.After(r.seen) {
				r.seen = at
				return true
			}
			return false
		}
	}
	return false
}

// countUnread counts the messages newer than seen that others wrote (me
// is the user; messages are in time order, so it looks only at the new
// end of the list).
func (r *roomState) countUnread(me string) {
	n := 0
	for i := len(r.msgs) - 1; i >= 0; i-- {
		m := r.msgs[i]
		if !m.at.After(r.seen) {
			break
		}
		if m.User != me {
			n++
		}
	}
	r.unread = n
}

// unreadLabel is the badge text: the count, or 99+.
func unreadLabel(n int) string {
	if n > 99 {
		return "99+"
	}
	return strconv.Itoa(n)
}

// savedRooms is what the chat keeps for a user in localStorage: the rooms
// of the room list in order, and the newest message time the user saw in
// each. Room names are not secret, but they are kept per user name.
type savedRooms struct {
	Rooms []string             `json:"rooms"`
	Seen  map[string]time.Time `json:"seen,omitempty"`
}

// saved returns what to keep of c's rooms.
func (c *Chat) saved() savedRooms {
	s := savedRooms{Seen: map[string]time.Time{}}
	for _, r := range c.order {
		if len(s.Rooms) == maxSavedRooms {
			break
		}
		s.Rooms = append(s.Rooms, r)
		if st := c.rooms[r]; st != nil && !st.seen.IsZero() {
			s.Seen[r] = st.seen
		}
	}
	return s
}

// restore merges saved rooms into c: the room list becomes the saved
// order followed by rooms joined since that were not saved; a saved room
// gets its seen time and counts as restored (its first history is not
// taken as seen). Invalid names and rooms past maxSavedRooms are
// dropped. It returns the rooms added.
func (c *Chat) restore(s savedRooms) []string {
	c.init()
	var order, added []string
	in := map[string]bool{}
	for _, r := range s.Rooms {
		if in[r] || !ValidRoom(r) || len(order) == maxSavedRooms {
			continue
		}
		in[r] = true
		order = append(order, r)
		st := c.rooms[r]
		if st == nil {
			st = newRoomState(r)
			st.restored = true
			c.rooms[r] = st
			added = append(added, r)
		}
		if t := s.Seen[r]; t.After(st.seen) {
			st.seen = t
		}
	}
	for _, r := range c.order {
		if !in[r] {
			order = append(order, r)
		}
	}
	c.order = order
	return added
}

func storageKey(user string) string { return "bayeux-chat:" + user }

// saveRooms writes c's rooms to localStorage (not in a frame, whose
// storage belongs to the framing site, and not before the user is known).
// Storage that is full or blocked is skipped: unread counts then last
// until the next reload only.
func (c *Chat) saveRooms() {
	if c.framed || c.user == "" || !c.started {
		return
	}
	b, err := json.Marshal(c.saved())
	if err != nil {
		return
	}
	defer func() { _ = recover() }() // localStorage may throw (blocked, quota)
	app.Window().Get("localStorage").Call("setItem", storageKey(c.user), string(b))
}

// loadRooms reads the rooms saved for user; none when there are none or
// storage is blocked.
func loadRooms(user string) (s savedRooms) {
	defer func() {
		if recover() != nil {
			s = savedRooms{}
		}
	}()
	v := app.Window().Get("localStorage").Call("getItem", storageKey(user))
	if v.Type() != app.TypeString {
		return savedRooms{}
	}
	if json.Unmarshal([]byte(v.String()), &s) != nil {
		return savedRooms{}
	}
	return s
}
