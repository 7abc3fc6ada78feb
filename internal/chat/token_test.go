package chat_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/chat"
	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/auth"
)

var tokenSecret = []byte("0123456789abcdef0123456789abcdef")

// tokenKey is the hs256 key of the token tests.
func tokenKey(t *testing.T) auth.TokenKey {
	t.Helper()
	keys, err := auth.ParseTokenKeys("hs256:" + base64.StdEncoding.EncodeToString(tokenSecret))
	if err != nil {
		t.Fatal(err)
	}
	return keys[0]
}

// withTokens turns the token login on, users named "blog:" + sub, at most
// failures invalid tokens per address (0: no limit).
func (cs *chatServer) withTokens(o auth.TokenOptions, failures int) *chatServer {
	cs.t.Helper()
	o.Keys = []auth.TokenKey{tokenKey(cs.t)}
	v, err := auth.NewTokenVerifier(o)
	if err != nil {
		cs.t.Fatal(err)
	}
	tk, err := chat.NewTokens(v, "blog:", auth.NewTokenLimiter(failures, time.Minute))
	if err != nil {
		cs.t.Fatal(err)
	}
	cs.chat.Tokens = tk
	return cs
}

func mint(t *testing.T, o auth.MintOptions) string {
	t.Helper()
	tok, err := auth.MintToken(tokenKey(t), o)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func tokenExt(tok string) map[string]json.RawMessage {
	b, _ := json.Marshal(map[string]string{"token": tok})
	return map[string]json.RawMessage{"auth": b}
}

func (c *client) tokenLogin(tok string) *client {
	c.t.Helper()
	if r := c.handshake(tokenExt(tok)); !r.IsSuccessful() {
		c.t.Fatalf("token handshake: %s", r.Error)
	}
	return c
}

func (c *client) refresh(tok string) *protocol.Message {
	c.t.Helper()
	m := publishMsg(chat.RefreshService, map[string]string{"token": tok})
	return reply(c.t, c.send(m), m)
}

func (cs *chatServer) refused(reason string) int64 { return cs.srv.Stats().Refused.Load(reason) }

// TestTokenLogin: a valid token logs in as prefix+sub (a token for
// "admin" is not the local admin), and every kind of bad token is refused
// with 403::invalid_token and reconnect "none", counted by reason.
func TestTokenLogin(t *testing.T) {
	cs := newChatServer(t, 10*time.Second).withTokens(auth.TokenOptions{Audience: "chat"}, 0)
	alice := cs.client().tokenLogin(mint(t, auth.MintOptions{Subject: "alice", Audience: "chat"}))
	if u := alice.whoami(); u != "blog:alice" {
		t.Errorf("whoami = %q, want blog:alice", u)
	}
	alice.mustSubscribe("/chat/demo")
	if r := alice.publish("/chat/demo", map[string]string{"chat": "hello"}); !r.IsSuccessful() {
		t.Fatalf("publish: %s", r.Error)
	}
	got := alice.collect("the message", func(ms []*protocol.Message) bool { return len(ms) > 0 })
	var msg chat.Message
	if json.Unmarshal(got[0].Data, &msg); msg.User != "blog:alice" {
		t.Errorf("stamped user %q", msg.User)
	}
	if u := cs.client().tokenLogin(mint(t, auth.MintOptions{Subject: "admin", Audience: "chat"})).whoami(); u != "blog:admin" {
		t.Errorf("a token for admin is %q", u)
	}
	info := cs.sessionOf(alice.id)
	if info.Flags[chat.FlagAuth] != "token" || info.Deadline.IsZero() {
		t.Errorf("session info %+v", info)
	}

	now := time.Now()
	type testCase struct {
		name, token, reason string
	}
	for _, tc := range []testCase{
		{"expired", mint(t, auth.MintOptions{Subject: "alice", Audience: "chat", Now: now.Add(-time.Hour)}), auth.TokenExpired},
		{"alg none", unsignedToken(`{"alg":"none"}`, `{"sub":"admin","aud":"chat","exp":`+unix(now.Add(time.Minute))+`}`), auth.TokenAlg},
		{"wrong key", wrongKeyToken(t, now), auth.TokenSignature},
		{"wrong audience", mint(t, auth.MintOptions{Subject: "alice", Audience: "other"}), auth.TokenAudience},
		{"too long a lifetime", mint(t, auth.MintOptions{Subject: "alice", Audience: "chat", TTL: 3 * time.Hour}), auth.TokenLifetime},
		{"garbage", "x.y.z", auth.TokenMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := cs.refused(tc.reason)
			r := cs.client().handshake(tokenExt(tc.token))
			wantError(t, r, "403::invalid_token")
			if r.Advice == nil || r.Advice.Reconnect != protocol.ReconnectNone {
				t.Errorf("advice %+v, want reconnect none", r.Advice)
			}
			if n := cs.refused(tc.reason); n != before+1 {
				t.Errorf("refused %s: %d, want %d", tc.reason, n, before+1)
			}
		})
	}
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func unsignedToken(header, payload string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "."
}

func wrongKeyToken(t *testing.T, now time.Time) string {
	keys, err := auth.ParseTokenKeys("hs256:" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("w", 32))))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.MintToken(keys[0], auth.MintOptions{Subject: "alice", Audience: "chat", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (cs *chatServer) sessionOf(id string) *server.SessionInfo {
	cs.t.Helper()
	info, ok, err := cs.srv.Engine().Session(context.Background(), id)
	if err != nil || !ok {
		cs.t.Fatalf("session %s: %v %v", id, ok, err)
	}
	return info
}

// TestTokenChannels: a channels claim limits subscribe, publish and the
// room history; a wildcard subscription cannot escape it.
func TestTokenChannels(t *testing.T) {
	cs := newChatServer(t, 10*time.Second).withTokens(auth.TokenOptions{}, 0)
	support := cs.client().tokenLogin(mint(t, auth.MintOptions{Subject: "alice", Channels: []string{"/chat/support"}}))
	rooms := cs.client().tokenLogin(mint(t, auth.MintOptions{Subject: "bob", Channels: []string{"/chat/*", "/news/*"}}))
	none := cs.client().tokenLogin(mint(t, auth.MintOptions{Subject: "carol", Channels: []string{}}))
	type testCase struct {
		name    string
		c       *client
		op      string // subscribe, publish, history
		channel string
		ok      bool
	}
	for _, tc := range []testCase{
		{"the room", support, "subscribe", "/chat/support", true},
		{"the room's members", support, "subscribe", "/presence/chat/support", true},
		{"another room", support, "subscribe", "/chat/other", false},
		{"another room's members", support, "subscribe", "/presence/chat/other", false},
		{"rooms wildcard", support, "subscribe", "/chat/*", false},
		{"deep wildcard", support, "subscribe", "/chat/**", false},
		{"everything", support, "subscribe", "/**", false},
		{"outside the chat", support, "subscribe", "/news", false},
		{"publish in the room", support, "publish", "/chat/support", true},
		{"publish elsewhere", support, "publish", "/chat/other", false},
		{"publish outside the chat", support, "publish", "/news", false},
		{"history of the room", support, "history", "support", true},
		{"history of another room", support, "history", "other", false},
		{"*: a room", rooms, "subscribe", "/chat/x", true},
		{"*: the same wildcard", rooms, "subscribe", "/news/*", true},
		{"*: a deeper wildcard", rooms, "subscribe", "/news/**", false},
		{"*: a deeper channel", rooms, "subscribe", "/news/a/b", false},
		{"*: members of a room", rooms, "subscribe", "/presence/chat/x", true},
		{"*: members wildcard", rooms, "subscribe", "/presence/chat/*", true},
		{"*: publish", rooms, "publish", "/chat/y", true},
		{"empty claim: nothing", none, "subscribe", "/chat/demo", false},
		{"empty claim: no publish", none, "publish", "/chat/demo", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := cs.refused(chat.RefusedTokenChannels)
			var r *protocol.Message
			switch tc.op {
			case "subscribe":
				r = tc.c.subscribe(tc.channel)
			case "publish":
				r = tc.c.publish(tc.channel, map[string]string{"chat": "hi"})
			case "history":
				m := publishMsg("/service/history", map[string]string{"channel": "/chat/" + tc.channel})
				r = reply(t, tc.c.send(m), m)
			}
			if r.IsSuccessful() != tc.ok {
				t.Fatalf("%s %s: successful %v (%s), want %v", tc.op, tc.channel, r.IsSuccessful(), r.Error, tc.ok)
			}
			want := before
			if !tc.ok {
				want++
				wantDenied(t, r, chat.DeniedTokenChannels)
			}
			if n := cs.refused(chat.RefusedTokenChannels); n != want {
				t.Errorf("refused token_channels %d, want %d", n, want)
			}
		})
	}
}

// TestTokenRefresh: a fresh token for the same user and channels keeps the
// session past the first token's expiry; other tokens are refused.
func TestTokenRefresh(t *testing.T) {
	cs := newChatServer(t, 10*time.Second).withTokens(auth.TokenOptions{Leeway: -1}, 0)
	chs := []string{"/chat/support"}
	c := cs.client().tokenLogin(mint(t, auth.MintOptions{Subject: "alice", TTL: 2 * time.Second, Channels: chs}))
	first := cs.sessionOf(c.id).Deadline

	for _, tc := range []struct {
		name, token, err, reason string
	}{
		{"another user", mint(t, auth.MintOptions{Subject: "bob", Channels: chs}), "403::invalid_token", auth.TokenMismatch},
		{"other channels", mint(t, auth.MintOptions{Subject: "alice", Channels: []string{"/chat/*"}}), "403::invalid_token", auth.TokenMismatch},
		{"no channels claim", mint(t, auth.MintOptions{Subject: "alice"}), "403::invalid_token", auth.TokenMismatch},
		{"expired", mint(t, auth.MintOptions{Subject: "alice", Channels: chs, Now: time.Now().Add(-time.Hour)}), "403::invalid_token", auth.TokenExpired},
	} {
		before := cs.refused(tc.reason)
		wantError(t, c.refresh(tc.token), tc.err)
		if n := cs.refused(tc.reason); n != before+1 {
			t.Errorf("%s: refused %s %d, want %d", tc.name, tc.reason, n, before+1)
		}
	}
	if d := cs.sessionOf(c.id).Deadline; !d.Equal(first) {
		t.Fatalf("a refused refresh moved the deadline to %v", d)
	}

	r := c.refresh(mint(t, auth.MintOptions{Subject: "alice", TTL: time.Hour, Channels: chs}))
	if !r.IsSuccessful() {
		t.Fatalf("refresh: %s", r.Error)
	}
	var out struct{ Expires int64 }
	if json.Unmarshal(r.Data, &out); time.UnixMilli(out.Expires).Before(time.Now().Add(59 * time.Minute)) {
		t.Errorf("refresh reply %s", r.Data)
	}
	testutil.Eventually(t, wait, func() bool { return time.Now().After(first) }, "the first token's expiry")
	c.connect(0)
	c.mustSubscribe("/chat/support")

	// A session that logged in with a password has no token to refresh.
	pw := cs.client().login("bob")
	wantError(t, pw.refresh(mint(t, auth.MintOptions{Subject: "bob"})), "403::not_a_token_session")
}

// TestTokenSessionEnds: without a refresh the session ends at the token's
// expiry with 403::token_expired and handshake advice; handshaking again
// with the same token is refused for good.
func TestTokenSessionEnds(t *testing.T) {
	cs := newChatServer(t, 10*time.Second).withTokens(auth.TokenOptions{Leeway: -1}, 0)
	tok := mint(t, auth.MintOptions{Subject: "alice", TTL: time.Second})
	c := cs.client().tokenLogin(tok)
	deadline := cs.sessionOf(c.id).Deadline
	c.connect(0)
	testutil.Eventually(t, wait, func() bool { return time.Now().After(deadline) }, "the token's expiry")
	m := &protocol.Message{Channel: protocol.MetaConnect, ConnectionType: protocol.LongPolling}
	r := reply(t, c.send(m), m)
	wantError(t, r, "403::token_expired")
	if r.Advice == nil || r.Advice.Reconnect != protocol.ReconnectHandshake {
		t.Errorf("advice %+v, want reconnect handshake", r.Advice)
	}
	if n := cs.refused(server.RefusedDeadline); n != 1 {
		t.Errorf("refused session_deadline %d", n)
	}
	again := cs.client().handshake(tokenExt(tok))
	wantError(t, again, "403::invalid_token")
	if again.Advice == nil || again.Advice.Reconnect != protocol.ReconnectNone {
		t.Errorf("advice %+v, want reconnect none", again.Advice)
	}
}

// TestTokenRateLimit: an address that presented too many invalid tokens
// is refused before its tokens are verified, valid ones included.
func TestTokenRateLimit(t *testing.T) {
	cs := newChatServer(t, 10*time.Second).withTokens(auth.TokenOptions{}, 3)
	good := mint(t, auth.MintOptions{Subject: "alice"})
	cs.client().tokenLogin(good) // a valid token counts nothing
	for range 3 {
		wantError(t, cs.client().handshake(tokenExt("bad.token.here")), "403::invalid_token")
	}
	wantError(t, cs.client().handshake(tokenExt(good)), "403::rate_limited")
	if n := cs.refused(auth.TokenRateLimited); n != 1 {
		t.Errorf("refused token_rate %d, want 1", n)
	}
}

// TestTokenLoginOff: without a verifier a token is refused and counted.
func TestTokenLoginOff(t *testing.T) {
	cs := newChatServer(t, 10*time.Second)
	wantError(t, cs.client().handshake(tokenExt(mint(t, auth.MintOptions{Subject: "alice"}))), "403::invalid_token")
	if n := cs.refused(chat.RefusedTokenDisabled); n != 1 {
		t.Errorf("refused token_disabled %d", n)
	}
	v, _ := auth.NewTokenVerifier(auth.TokenOptions{Keys: []auth.TokenKey{tokenKey(t)}})
	for _, prefix := range []string{"", "blog", "blog :", strings.Repeat("x", 40) + ":"} {
		if _, err := chat.NewTokens(v, prefix, nil); err == nil {
			t.Errorf("prefix %q accepted", prefix)
		}
	}
}

// TestTokenUserNeverAdmin: a token user is no admin even when the admin
// list would say so (names with ':' are never local users).
func TestTokenUserNeverAdmin(t *testing.T) {
	cs := newChatServer(t, 10*time.Second).withTokens(auth.TokenOptions{}, 0)
	cs.chat.IsAdmin = func(string) bool { return true }
	c := cs.client().tokenLogin(mint(t, auth.MintOptions{Subject: "admin"}))
	wantError(t, c.subscribe("/chat/*"), "403:room_wildcard_denied:subscribe_denied")
	cs.client().login("bob").mustSubscribe("/chat/*") // a local admin may
}
