package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/chat"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// The attacks of issue 13, finding 3 (a logged-in user growing memory for
// good) and finding 8 (wildcard lurking), run against a real server over
// HTTP.

// padExt is an ext of n bytes.
func padExt(n int) map[string]json.RawMessage {
	return map[string]json.RawMessage{"pad": json.RawMessage(`"` + strings.Repeat("x", n) + `"`)}
}

// publishExt publishes a chat text with ext to channel and returns the
// reply.
func (c *client) publishExt(channel, text string, ext map[string]json.RawMessage) *protocol.Message {
	c.t.Helper()
	m := publishMsg(channel, map[string]string{"chat": text})
	m.Ext = ext
	return reply(c.t, c.send(m), m)
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestChatExtNotStoredOrForwarded: the server builds a chat message
// itself; a client's ext (here 450 KB) reaches neither the room's members
// nor its history.
func TestChatExtNotStoredOrForwarded(t *testing.T) {
	cs := newChatServerWith(t, server.Options{MaxPublishSize: 1 << 20, ConnectTimeout: wait}, nil)
	alice := cs.client().login("alice")
	bob := cs.client().login("bob")
	bob.mustSubscribe("/chat/demo")
	bob.connect(0)
	if r := alice.publishExt("/chat/demo", "hello", padExt(450<<10)); !r.IsSuccessful() {
		t.Fatalf("publish: %s", r.Error)
	}
	got := bob.collect("the message", func(ms []*protocol.Message) bool {
		for _, m := range ms {
			if m.Channel == "/chat/demo" {
				return true
			}
		}
		return false
	})
	for _, m := range got {
		if _, pad := m.Ext["pad"]; m.Channel == "/chat/demo" && pad {
			t.Errorf("delivered with the client's ext: %d bytes", len(dump([]*protocol.Message{m})))
		}
	}
	pg, err := cs.srv.History(context.Background(), "/chat/demo", server.HistoryQuery{Limit: 10})
	if err != nil || len(pg.Messages) != 1 {
		t.Fatalf("history %d entries, %v", len(pg.Messages), err)
	}
	if h := pg.Messages[0].JSON; len(h) > 1024 || strings.Contains(string(h), "pad") {
		t.Errorf("history keeps %d bytes: %.200s", len(h), h)
	}
}

// TestAttackRoomFlood: one user writes to 400 rooms, each message with a
// 100 KB ext. Room creation is rate-limited per user (the excess refused
// with 403:room_rate_limited:channel_create_denied and counted), an admin who is not limited
// still leaves at most MaxHistoryChannels rooms with history, and once
// every session is gone the heap holds next to nothing of it.
func TestAttackRoomFlood(t *testing.T) {
	const (
		rooms      = 400
		burst      = 10
		maxHistory = 50
	)
	cs := newChatServerWith(t, server.Options{MaxPublishSize: 1 << 20, MaxHistoryChannels: maxHistory, ConnectTimeout: time.Minute},
		func(c *chat.Chat) {
			c.RoomRate, c.RoomBurst = 1, burst // one a minute: no token comes back during the test
			c.IsAdmin = func(u string) bool { return u == "carol" }
		})
	before := heapInUse()
	alice := cs.client().login("alice")
	ext := padExt(50 << 10)
	created, refused := 0, 0
	for i := range rooms {
		r := alice.publishExt(fmt.Sprintf("/chat/a%d", i), "hi", ext)
		switch {
		case r.IsSuccessful():
			created++
		case r.Error == "403:room_rate_limited:channel_create_denied":
			refused++
		default:
			t.Fatalf("room %d: %s", i, r.Error)
		}
	}
	if created != burst || refused != rooms-burst {
		t.Errorf("alice created %d rooms and was refused %d; want %d and %d", created, refused, burst, rooms-burst)
	}
	if n := cs.srv.Stats().Refused.Load(chat.RefusedRoomCreate); n != rooms-burst {
		t.Errorf("refused room_create = %d, want %d", n, rooms-burst)
	}
	// Writing again to a room she created is not creating it.
	if r := alice.publishExt("/chat/a0", "again", nil); !r.IsSuccessful() {
		t.Errorf("writing to her own room again: %s", r.Error)
	}
	// Subscribing to a new room is creating it, too.
	if r := alice.subscribe("/chat/fresh"); r.IsSuccessful() || r.Error != "403:room_rate_limited:create_denied" {
		t.Errorf("subscribing to a new room over the rate: %s", dump([]*protocol.Message{r}))
	}

	carol := cs.client().login("carol")
	for i := range rooms {
		if r := carol.publishExt(fmt.Sprintf("/chat/c%d", i), "hi", nil); !r.IsSuccessful() {
			t.Fatalf("admin room %d: %s", i, r.Error)
		}
	}
	withHistory := 0
	for i := range rooms {
		for _, p := range []string{"a", "c"} {
			if pg, _ := cs.srv.History(context.Background(), fmt.Sprintf("/chat/%s%d", p, i), server.HistoryQuery{Limit: 1}); len(pg.Messages) > 0 {
				withHistory++
			}
		}
	}
	if withHistory > maxHistory {
		t.Errorf("%d rooms keep a history, bound %d", withHistory, maxHistory)
	}
	if n := cs.srv.Stats().Refused.Load(server.DropHistory); n == 0 {
		t.Error("no forgotten history counted")
	}

	alice.disconnect()
	carol.disconnect()
	after := heapInUse()
	growth := int64(after) - int64(before)
	t.Logf("heap in use grew by %d KB after %d rooms, %d of them written with %d KB ext", growth>>10, 2*rooms, rooms, len(ext["pad"])>>10)
	// Kept, the exts alone would be 20 MB.
	if growth > 8<<20 {
		t.Errorf("heap in use grew by %d KB with every session gone", growth>>10)
	}
}

// TestWildcardLurkingRefused: a logged-in user who is not an admin cannot
// read every room through a wildcard (while shown in no member list); a
// room of its own, and an admin's wildcard, are fine.
func TestWildcardLurkingRefused(t *testing.T) {
	cs := newChatServerWith(t, server.Options{ConnectTimeout: wait},
		func(c *chat.Chat) { c.IsAdmin = func(u string) bool { return u == "carol" } })
	bob := cs.client().login("bob")
	type testCase struct{ pattern, want string }
	for _, tc := range []testCase{
		{"/chat/**", "403:room_wildcard_denied:subscribe_denied"},
		{"/chat/*", "403:room_wildcard_denied:subscribe_denied"},
		{"/**", "403:room_wildcard_denied:subscribe_denied"},
		{"/presence/chat/*", ""},
		{"/*", ""},
		{"/chat/demo", ""},
	} {
		r := bob.subscribe(tc.pattern)
		if tc.want == "" {
			if !r.IsSuccessful() {
				t.Errorf("subscribe %s: %s", tc.pattern, r.Error)
			}
			continue
		}
		wantError(t, r, tc.want)
	}
	if n := cs.srv.Stats().Refused.Load(chat.RefusedRoomWildcard); n != 3 {
		t.Errorf("refused room_wildcard = %d, want 3", n)
	}
	carol := cs.client().login("carol")
	carol.mustSubscribe("/chat/**")
	alice := cs.client().login("alice")
	if r := alice.publish("/chat/other", map[string]string{"chat": "psst"}); !r.IsSuccessful() {
		t.Fatal(r.Error)
	}
	carol.collect("alice's message through the wildcard", func(ms []*protocol.Message) bool {
		for _, m := range ms {
			if m.Channel == "/chat/other" {
				return true
			}
		}
		return false
	})
	for _, m := range bob.connect(0) {
		if m.Channel == "/chat/other" {
			t.Errorf("bob read a room he is not in: %s", dump([]*protocol.Message{m}))
		}
	}
}
