package chatui

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func msgBy(user, id string, sec int) Message {
	m := msgAt(id, sec, "text "+id)
	m.User = user
	return m
}

// TestUnreadCounts: a room counts the messages of others newer than the
// newest one seen; the user's own messages and duplicates from a history
// fetched again do not count; seeing the room clears the count.
func TestUnreadCounts(t *testing.T) {
	r := newRoomState("r")
	r.add(msgBy("bob", "1", 1))
	if !r.markSeen() || r.markSeen() {
		t.Fatal("markSeen should move on once")
	}
	r.add(msgBy("bob", "2", 2), msgBy("alice", "3", 3), msgBy("carol", "4", 4))
	r.countUnread("alice")
	if r.unread != 2 {
		t.Errorf("unread = %d, want 2 (alice's own message does not count)", r.unread)
	}
	r.add(msgBy("bob", "1", 1), msgBy("bob", "2", 2)) // history after a reconnect
	r.countUnread("alice")
	if r.unread != 2 {
		t.Errorf("unread after a history overlap = %d, want 2", r.unread)
	}
	r.add(msgBy("bob", "0", 0)) // an older message from history
	r.countUnread("alice")
	if r.unread != 2 {
		t.Errorf("an older message counted: unread = %d", r.unread)
	}
	if !r.markSeen() || r.unread != 0 {
		t.Errorf("after markSeen unread = %d", r.unread)
	}
	r.countUnread("alice")
	if r.unread != 0 {
		t.Errorf("unread = %d after seeing everything", r.unread)
	}

	// A room never seen counts everything of others.
	r = newRoomState("r")
	r.add(msgBy("bob", "1", 1), msgBy("bob", "2", 2))
	r.countUnread("alice")
	if r.unread != 2 {
		t.Errorf("unseen room: unread = %d, want 2", r.unread)
	}

	for n, want := range map[int]string{1: "1", 99: "99", 100: "99+", 500: "99+"} {
		if got := unreadLabel(n); got != want {
			t.Errorf("unreadLabel(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestRestoreRooms: the rooms saved at the last visit come back in their
// order with their seen times, around the room the URL opened; bad or
// surplus entries are dropped.
func TestRestoreRooms(t *testing.T) {
	t1 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	many := make([]string, 60)
	for i := range many {
		many[i] = fmt.Sprintf("r%d", i)
	}
	type testCase struct {
		name      string
		saved     savedRooms
		wantOrder []string
		wantAdded []string
	}
	for _, tc := range []testCase{
		{name: "nothing saved", wantOrder: []string{"demo"}},
		{name: "around the current room",
			saved:     savedRooms{Rooms: []string{"a", "demo", "b"}, Seen: map[string]time.Time{"a": t1}},
			wantOrder: []string{"a", "demo", "b"}, wantAdded: []string{"a", "b"}},
		{name: "current room not saved",
			saved:     savedRooms{Rooms: []string{"a"}},
			wantOrder: []string{"a", "demo"}, wantAdded: []string{"a"}},
		{name: "bad names and duplicates",
			saved:     savedRooms{Rooms: []string{"a/b", "", "<x>", "a", "a", strings.Repeat("x", 65)}},
			wantOrder: []string{"a", "demo"}, wantAdded: []string{"a"}},
		{name: "too many",
			saved:     savedRooms{Rooms: many},
			wantOrder: append(slices.Clone(many[:maxSavedRooms]), "demo"), wantAdded: many[:maxSavedRooms]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Chat{}
			c.init()
			c.rooms["demo"], c.order, c.room = newRoomState("demo"), []string{"demo"}, "demo"
			added := c.restore(tc.saved)
			if !slices.Equal(c.order, tc.wantOrder) || !slices.Equal(added, tc.wantAdded) {
				t.Fatalf("order %v added %v, want %v %v", c.order, added, tc.wantOrder, tc.wantAdded)
			}
			for _, r := range added {
				st := c.rooms[r]
				if st == nil || !st.restored || !st.seen.Equal(tc.saved.Seen[r]) {
					t.Errorf("room %s: %+v", r, st)
				}
			}
			if c.rooms["demo"].restored {
				t.Error("the current room counts as restored")
			}
		})
	}
}

// TestSavedRoomsRoundTrip: what saved writes, restore reads back in
// another page (through JSON, as localStorage keeps it).
func TestSavedRoomsRoundTrip(t *testing.T) {
	c := &Chat{}
	c.init()
	for i, r := range []string{"demo", "x(1)", "other"} {
		st := newRoomState(r)
		st.add(msgBy("bob", r, i+1))
		if r != "other" {
			st.markSeen()
		}
		c.rooms[r], c.order = st, append(c.order, r)
	}
	b, err := json.Marshal(c.saved())
	if err != nil {
		t.Fatal(err)
	}
	var s savedRooms
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	d := &Chat{}
	d.init()
	d.rooms["other"], d.order = newRoomState("other"), []string{"other"}
	d.restore(s)
	if !slices.Equal(d.order, c.order) {
		t.Errorf("order %v, want %v (saved %s)", d.order, c.order, b)
	}
	for _, r := range c.order {
		if !d.rooms[r].seen.Equal(c.rooms[r].seen) {
			t.Errorf("%s: seen %v, want %v", r, d.rooms[r].seen, c.rooms[r].seen)
		}
	}
	// The restored room gets its unread count from its first history.
	x := d.rooms["x(1)"]
	x.add(msgBy("bob", "x(1)", 2), msgBy("bob", "new", 9))
	x.countUnread("alice")
	if x.unread != 1 {
		t.Errorf("restored room: unread %d, want 1", x.unread)
	}
}

// TestRenderUnread: a room with unread messages shows the count in the
// room list; the current room never does.
func TestRenderUnread(t *testing.T) {
	c := &Chat{user: "alice"}
	c.init()
	for _, r := range []string{"demo", "busy", "quiet", "flood"} {
		c.rooms[r], c.order = newRoomState(r), append(c.order, r)
	}
	c.room = "demo"
	c.rooms["busy"].unread = 3
	c.rooms["flood"].unread = 150
	c.rooms["demo"].unread = 5 // not shown: the user is looking at it
	html := render(t, c)
	for room, want := range map[string]string{"busy": ">3</span>", "flood": ">99+</span>", "quiet": "", "demo": ""} {
		i := strings.Index(html, `data-room="`+room+`"`)
		if i < 0 {
			t.Fatalf("no room item %s:\n%s", room, html)
		}
		item := html[i : i+strings.Index(html[i:], "</li>")]
		has := strings.Contains(item, `data-testid="chat-unread"`)
		if want == "" && has || want != "" && (!has || !strings.Contains(item, want)) {
			t.Errorf("room %s: want badge %q in\n%s", room, want, item)
		}
	}
}
