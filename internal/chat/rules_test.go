package chat_test

import (
	"strings"
	"testing"

	"github.com/bayeux-go/bayeux/internal/chat"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/auth"
)

// TestChatRules: the chat's policy as channel rules (Chat.Authorizers),
// through the real server, for each kind of session. /chat/lobby exists
// (alice is in it); every other room does not until the case creates it.
func TestChatRules(t *testing.T) {
	t.Parallel()
	rules, err := server.ParseChannelRules("/chat/**:history=100") // no presence: the chat's member rule alone guards /presence/chat/**
	if err != nil {
		t.Fatal(err)
	}
	cs := newChatServerWith(t, server.Options{ConnectTimeout: wait, Channels: rules}, func(c *chat.Chat) {
		c.IsAdmin = func(u string) bool { return u == "carol" }
		c.RoomRate, c.RoomBurst = 1, 2 // two rooms, then one a minute
	}).withTokens(auth.TokenOptions{}, 0)
	alice := cs.client().login("alice")
	alice.mustSubscribe("/chat/lobby")
	anon := cs.client().anonymous()
	bob := cs.client().login("bob")
	carol := cs.client().login("carol")
	token := cs.client().tokenLogin(mint(t, auth.MintOptions{Subject: "dan", Channels: []string{"/chat/lobby"}}))

	type testCase struct {
		name    string
		c       *client
		op      string // subscribe or publish
		channel string
		want    string // "" for success
	}
	for _, tc := range []testCase{
		{"anonymous: other channels are open", anon, "subscribe", "/news", ""},
		{"anonymous: publish elsewhere", anon, "publish", "/news", ""},
		{"anonymous: an existing room", anon, "subscribe", "/chat/lobby", "403:login_required:subscribe_denied"},
		{"anonymous: writing", anon, "publish", "/chat/lobby", "403:login_required:publish_denied"},
		{"anonymous: a new room", anon, "subscribe", "/chat/new", "403:login_required:create_denied"},
		{"anonymous: members", anon, "subscribe", "/presence/chat/lobby", "403:login_required:create_denied"},
		{"anonymous: everything", anon, "subscribe", "/**", "403:login_required:subscribe_denied"},
		{"user: an existing room", bob, "subscribe", "/chat/lobby", ""},
		{"user: writing", bob, "publish", "/chat/lobby", ""},
		{"user: creates a room by writing", bob, "publish", "/chat/bob1", ""},
		{"user: creates a room by subscribing", bob, "subscribe", "/chat/bob2", ""},
		{"user: over the room rate", bob, "publish", "/chat/bob3", "403:room_rate_limited:channel_create_denied"},
		{"user: still writes to rooms that exist", bob, "publish", "/chat/bob1", ""},
		{"user: a nested channel is no room", bob, "subscribe", "/chat/a/b", "403:room_invalid:create_denied"},
		{"user: /chat is no room", bob, "publish", "/chat", "403:room_invalid:publish_denied"},
		{"user: wildcard over rooms", bob, "subscribe", "/chat/*", "403:room_wildcard_denied:subscribe_denied"},
		{"user: members", bob, "subscribe", "/presence/chat/lobby", ""},
		{"user: members wildcard", bob, "subscribe", "/presence/chat/*", ""},
		{"user: writes a member list", bob, "publish", "/presence/chat/lobby", "403:presence_read_only:publish_denied"},
		{"admin: wildcard over rooms", carol, "subscribe", "/chat/**", ""},
		{"admin: rooms without a rate", carol, "publish", "/chat/c1", ""},
		{"admin: rooms without a rate 2", carol, "publish", "/chat/c2", ""},
		{"admin: rooms without a rate 3", carol, "publish", "/chat/c3", ""},
		{"token: its room", token, "publish", "/chat/lobby", ""},
		{"token: another room", token, "subscribe", "/chat/bob1", "403:token_channels:subscribe_denied"},
		{"token: a new room", token, "publish", "/chat/dan", "403:token_channels:channel_create_denied"},
		{"token: a service", token, "publish", "/service/chat/whoami", ""},
	} {
		var r *protocol.Message
		switch tc.op {
		case "subscribe":
			r = tc.c.subscribe(tc.channel)
		case "publish":
			r = tc.c.publish(tc.channel, map[string]string{"chat": "hi"})
		}
		if tc.want == "" {
			if !r.IsSuccessful() {
				t.Errorf("%s: %s %s: %s", tc.name, tc.op, tc.channel, r.Error)
			}
			continue
		}
		if r.IsSuccessful() || r.Error != tc.want {
			t.Errorf("%s: %s %s: successful %v error %q, want %q", tc.name, tc.op, tc.channel, r.IsSuccessful(), r.Error, tc.want)
		}
	}
	if n := cs.refused(chat.RefusedRoomCreate); n != 1 {
		t.Errorf("refused room_create = %d, want 1", n)
	}
	// The stamp is still Authorize's: alice's message carries her name
	// whatever she sent.
	alice.publish("/chat/lobby", map[string]string{"chat": "signed", "user": "mallory"})
	got := alice.collect("alice's message", func(ms []*protocol.Message) bool {
		for _, m := range ms {
			if m.Channel == "/chat/lobby" && strings.Contains(string(m.Data), `"chat":"signed"`) {
				return true
			}
		}
		return false
	})
	for _, m := range got {
		if strings.Contains(string(m.Data), `"chat":"signed"`) && !strings.Contains(string(m.Data), `"user":"alice"`) {
			t.Errorf("stamped message %s", m.Data)
		}
	}
}
