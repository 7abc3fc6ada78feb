package server

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// authzLog records which authorizers were asked what, in order.
type authzLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *authzLog) add(s string) {
	l.mu.Lock()
	l.calls = append(l.calls, s)
	l.mu.Unlock()
}

func (l *authzLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// answers is what a test authorizer says per operation; a missing one
// ignores.
type answers map[Operation]Result

// fixed is an authorizer on pattern answering as a says, recording each
// question as "NAME:op:channel" in log (when not nil).
func fixed(pattern, name string, a answers, log *authzLog) ChannelAuthorizer {
	return ChannelAuthorizer{Pattern: pattern, Authorizer: AuthorizerFunc(
		func(_ context.Context, op Operation, channel string, _ *Client, _ *protocol.Message) Result {
			if log != nil {
				log.add(name + ":" + op.String() + ":" + channel)
			}
			return a[op]
		})}
}

var (
	grantAll     = answers{OpCreate: Grant(), OpSubscribe: Grant(), OpPublish: Grant()}
	grantSubPub  = answers{OpSubscribe: Grant(), OpPublish: Grant()}
	grantCreate  = answers{OpCreate: Grant()}
	ignoreAll    = answers{}
	denyPublish  = answers{OpCreate: Grant(), OpSubscribe: Grant(), OpPublish: Deny("no_publish")}
	denySubcribe = answers{OpCreate: Grant(), OpSubscribe: Deny("no_subscribe"), OpPublish: Grant()}
)

// TestAuthorizerPrecedence: CometD's algorithm through the real server,
// for subscribes and publishes of a remote client. A channel "exists"
// when a local client (which no authorizer is asked about) subscribed to
// it first.
func TestAuthorizerPrecedence(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name    string
		rules   []ChannelAuthorizer
		exists  bool   // a local client subscribes to channel first
		op      string // "subscribe" or "publish"
		channel string
		want    string // the error, "" for success
	}
	cases := []testCase{
		{name: "no authorizers: subscribe", op: "subscribe", channel: "/a/b"},
		{name: "no authorizers: publish", op: "publish", channel: "/a/b"},
		{name: "one grant", rules: []ChannelAuthorizer{fixed("/a/b", "g", grantAll, nil)}, op: "publish", channel: "/a/b"},
		{name: "grant and deny: deny wins", rules: []ChannelAuthorizer{fixed("/a/**", "g", grantAll, nil), fixed("/a/b", "d", denyPublish, nil)},
			op: "publish", channel: "/a/b", want: "403:no_publish:publish_denied"},
		{name: "deny and grant on one pattern", rules: []ChannelAuthorizer{fixed("/a/b", "d", denySubcribe, nil), fixed("/a/b", "g", grantAll, nil)},
			op: "subscribe", channel: "/a/b", want: "403:no_subscribe:subscribe_denied"},
		{name: "ignore only: create denied", rules: []ChannelAuthorizer{fixed("/a/**", "i", ignoreAll, nil)},
			op: "publish", channel: "/a/b", want: "403:denied_by_not_granting:channel_create_denied"},
		{name: "ignore only: existing channel, publish denied", rules: []ChannelAuthorizer{fixed("/a/**", "i", ignoreAll, nil)},
			exists: true, op: "publish", channel: "/a/b", want: "403:denied_by_not_granting:publish_denied"},
		{name: "ignore and grant", rules: []ChannelAuthorizer{fixed("/a/**", "i", ignoreAll, nil), fixed("/a/*", "g", grantAll, nil)},
			op: "subscribe", channel: "/a/b"},
		{name: "authorizers of other channels do not apply", rules: []ChannelAuthorizer{fixed("/x/**", "i", ignoreAll, nil), fixed("/a/c", "i", ignoreAll, nil)},
			op: "publish", channel: "/a/b"},
		{name: "wildcard parent /** applies", rules: []ChannelAuthorizer{fixed("/**", "d", denyPublish, nil)},
			op: "publish", channel: "/a/b/c", want: "403:no_publish:publish_denied"},
		{name: "deep parent applies", rules: []ChannelAuthorizer{fixed("/a/**", "d", denyPublish, nil)},
			op: "publish", channel: "/a/b/c", want: "403:no_publish:publish_denied"},
		{name: "one-segment wildcard does not reach two segments down", rules: []ChannelAuthorizer{fixed("/a/*", "d", denyPublish, nil)},
			op: "publish", channel: "/a/b/c"},
		{name: "subscribing to a wildcard asks its own and wider", rules: []ChannelAuthorizer{fixed("/a/*", "d", denySubcribe, nil)},
			op: "subscribe", channel: "/a/*", want: "403:no_subscribe:subscribe_denied"},
		{name: "subscribing to a wildcard does not ask the channels below", rules: []ChannelAuthorizer{fixed("/a/b", "d", denySubcribe, nil)},
			op: "subscribe", channel: "/a/*"},
		{name: "subscribing to /** asks /** alone", rules: []ChannelAuthorizer{fixed("/a/**", "d", denySubcribe, nil)},
			op: "subscribe", channel: "/**"},
		{name: "create not granted: subscribe", rules: []ChannelAuthorizer{fixed("/a/**", "sp", grantSubPub, nil)},
			op: "subscribe", channel: "/a/b", want: "403:denied_by_not_granting:create_denied"},
		{name: "create not granted: publish", rules: []ChannelAuthorizer{fixed("/a/**", "sp", grantSubPub, nil)},
			op: "publish", channel: "/a/b", want: "403:denied_by_not_granting:channel_create_denied"},
		{name: "create not needed for an existing channel", rules: []ChannelAuthorizer{fixed("/a/**", "sp", grantSubPub, nil)},
			exists: true, op: "publish", channel: "/a/b"},
		{name: "create granted alone is not publish", rules: []ChannelAuthorizer{fixed("/a/**", "c", grantCreate, nil)},
			op: "publish", channel: "/a/b", want: "403:denied_by_not_granting:publish_denied"},
		{name: "create and subscribe by two authorizers", rules: []ChannelAuthorizer{fixed("/a/**", "c", grantCreate, nil), fixed("/a/b", "sp", grantSubPub, nil)},
			op: "subscribe", channel: "/a/b"},
		{name: "deny without a reason", rules: []ChannelAuthorizer{fixed("/a/b", "d", answers{OpCreate: Grant(), OpPublish: Deny("")}, nil)},
			op: "publish", channel: "/a/b", want: "403:denied_by_authorizer:publish_denied"},
		{name: "service publish is asked", rules: []ChannelAuthorizer{fixed("/service/**", "d", denyPublish, nil)},
			op: "publish", channel: "/service/echo", want: "403:no_publish:publish_denied"},
		{name: "service publish granted", rules: []ChannelAuthorizer{fixed("/service/echo", "g", grantAll, nil)},
			op: "publish", channel: "/service/echo"},
		{name: "service subscription is asked", rules: []ChannelAuthorizer{fixed("/**", "d", denySubcribe, nil)},
			op: "subscribe", channel: "/service/echo", want: "403:no_subscribe:subscribe_denied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Options{Authorizers: tc.rules})
			if tc.exists {
				lc, err := h.srv.NewLocalClient("owner")
				if err != nil {
					t.Fatal(err)
				}
				defer lc.Close()
				if err := lc.Subscribe(tc.channel, func(*protocol.Message, string) {}); err != nil {
					t.Fatal(err)
				}
			}
			c := h.client().start()
			var r *protocol.Message
			switch tc.op {
			case "subscribe":
				r = replyTo(t, c.must(subscribeMsg(c.id, tc.channel)), protocol.MetaSubscribe)
			case "publish":
				r = replyTo(t, c.must(publishMsg(c.id, tc.channel, "x")), tc.channel)
			}
			if tc.want == "" {
				if !r.IsSuccessful() {
					t.Errorf("%s %s: %s, want success", tc.op, tc.channel, r.Error)
				}
				return
			}
			wantError(t, r, tc.want)
		})
	}
}

// TestAuthorizerOrder: the authorizers are asked from the widest pattern
// to the channel itself, in registration order for one pattern, and a
// deny stops the asking.
func TestAuthorizerOrder(t *testing.T) {
	t.Parallel()
	log := &authzLog{}
	h := newHarness(t, Options{Authorizers: []ChannelAuthorizer{
		fixed("/a/b/c", "name", grantAll, log),
		fixed("/a/b/*", "star", grantAll, log),
		fixed("/a/**", "deep1", grantAll, log),
		fixed("/**", "root", grantAll, log),
		fixed("/a/b/**", "deep2", grantAll, log),
		fixed("/a/**", "deep1b", grantAll, log),
	}})
	c := h.client().start()
	c.publish("/a/b/c", 1) // exists by its authorizer: no create
	c.publish("/a/b/d", 2)
	want := []string{
		"root:publish:/a/b/c", "deep1:publish:/a/b/c", "deep1b:publish:/a/b/c", "deep2:publish:/a/b/c", "star:publish:/a/b/c", "name:publish:/a/b/c",
		"root:create:/a/b/d", "deep1:create:/a/b/d", "deep1b:create:/a/b/d", "deep2:create:/a/b/d", "star:create:/a/b/d",
		"root:publish:/a/b/d", "deep1:publish:/a/b/d", "deep1b:publish:/a/b/d", "deep2:publish:/a/b/d", "star:publish:/a/b/d",
	}
	if got := log.all(); !slices.Equal(got, want) {
		t.Errorf("asked\n%q\nwant\n%q", got, want)
	}

	// The channel was just created: a second publish asks no create.
	log2 := &authzLog{}
	h2 := newHarness(t, Options{Authorizers: []ChannelAuthorizer{
		fixed("/**", "root", answers{OpCreate: Grant(), OpPublish: Deny("stop")}, log2),
		fixed("/a/**", "deep", grantAll, log2),
	}})
	c2 := h2.client().start()
	wantError(t, replyTo(t, c2.must(publishMsg(c2.id, "/a/b", 1)), "/a/b"), "403:stop:publish_denied")
	wantError(t, replyTo(t, c2.must(publishMsg(c2.id, "/a/b", 2)), "/a/b"), "403:stop:publish_denied")
	want = []string{"root:create:/a/b", "deep:create:/a/b", "root:publish:/a/b", "root:publish:/a/b"}
	if got := log2.all(); !slices.Equal(got, want) {
		t.Errorf("asked %q, want %q (a deny stops; a created channel needs no create)", got, want)
	}
}

// TestAuthorizerWithAuthorize: Options.Authorize decides first, and a
// message it refuses is not shown to the authorizers; the authorizers
// decide what it lets through. Meta channels are never asked about, and
// local clients are asked neither.
func TestAuthorizerWithAuthorize(t *testing.T) {
	t.Parallel()
	log := &authzLog{}
	h := newHarness(t, Options{
		Authorize: func(_ context.Context, _ *Client, m *protocol.Message) error {
			if m.Channel == "/a/refused" {
				return &protocol.Error{Code: 403, Message: "by_hook"}
			}
			return nil
		},
		Authorizers: []ChannelAuthorizer{fixed("/**", "root", answers{OpCreate: Grant(), OpSubscribe: Grant(), OpPublish: Deny("by_authorizer")}, log)},
	})
	c := h.client().start() // handshake and connect: meta, not asked
	wantError(t, replyTo(t, c.must(publishMsg(c.id, "/a/refused", 1)), "/a/refused"), "403::by_hook")
	wantError(t, replyTo(t, c.must(publishMsg(c.id, "/a/other", 1)), "/a/other"), "403:by_authorizer:publish_denied")
	c.subscribe("/a/other")
	c.unsubscribe("/a/other")
	if got, want := log.all(), []string{"root:create:/a/other", "root:publish:/a/other", "root:subscribe:/a/other"}; !slices.Equal(got, want) {
		t.Errorf("asked %q, want %q", got, want)
	}

	lc, err := h.srv.NewLocalClient("bot")
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	if err := lc.Publish(context.Background(), "/a/local", 1); err != nil {
		t.Errorf("local publish: %v (authorizers do not apply to local clients)", err)
	}
	if n := len(log.all()); n != 3 {
		t.Errorf("authorizers asked about a local client: %q", log.all())
	}
}

// TestAuthorizerReads: /service/history, /service/presence and a
// presence subscription ask the authorizers of the channel read whether
// the client may subscribe to it (not whether it may create it).
func TestAuthorizerReads(t *testing.T) {
	t.Parallel()
	secret := AuthorizerFunc(func(_ context.Context, op Operation, _ string, c *Client, _ *protocol.Message) Result {
		if op == OpSubscribe && c.Flag("reader") == "" {
			return Deny("not_a_reader")
		}
		return Grant()
	})
	rules, err := ParseChannelRules("/h/**:history=10,presence")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, Options{Channels: rules, Authorizers: []ChannelAuthorizer{{Pattern: "/h/secret", Authorizer: secret}},
		Authorize: func(_ context.Context, c *Client, m *protocol.Message) error {
			if m.Channel == protocol.MetaHandshake && m.ExtBool("reader") {
				c.SetFlag("reader", "yes")
			}
			return nil
		}})
	reader := h.client()
	hs := handshakeMsg()
	hs.Ext = map[string]json.RawMessage{"reader": json.RawMessage("true")}
	reader.id = only(t, reader.must(hs), protocol.MetaHandshake).ClientID
	reader.connectNow()
	reader.subscribe("/h/secret")
	reader.publish("/h/secret", "s1")
	other := h.client().start()
	other.publish("/h/open", "o1")

	const denied = "403:not_a_reader:subscribe_denied"
	type testCase struct {
		name   string
		msg    *protocol.Message
		reply  string // the reply's channel
		reader string // the reader's answer: "" for success
		other  string // the other client's answer
	}
	history := func(ch string) *protocol.Message {
		return publishMsg("", "/service/history", map[string]string{"channel": ch})
	}
	for _, tc := range []testCase{
		{name: "history", msg: history("/h/secret"), reply: "/service/history", other: denied},
		{name: "history of another channel", msg: history("/h/open"), reply: "/service/history"},
		{name: "presence service", msg: publishMsg("", "/service/presence", map[string]string{"channel": "/h/secret"}), reply: "/service/presence", other: denied},
		{name: "presence channel", msg: subscribeMsg("", "/presence/h/secret"), reply: protocol.MetaSubscribe, other: denied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, who := range []struct {
				c    *rawClient
				want string
			}{{reader, tc.reader}, {other, tc.other}} {
				m := *tc.msg
				m.ID, m.ClientID = nextMsgID(), who.c.id
				r := replyTo(t, who.c.must(&m), tc.reply)
				if who.want == "" {
					if !r.IsSuccessful() {
						t.Errorf("%s: %s", tc.name, r.Error)
					}
					continue
				}
				wantError(t, r, who.want)
			}
		})
	}
}

// TestAddAuthorizer: an authorizer added while the server runs applies
// at once, makes the channel of its name exist (no create asked), and
// stops applying when removed.
func TestAddAuthorizer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{Authorizers: []ChannelAuthorizer{fixed("/game/**", "base", ignoreAll, nil)}})
	c := h.client().start()
	wantError(t, replyTo(t, c.must(publishMsg(c.id, "/game/1", 1)), "/game/1"), "403:denied_by_not_granting:channel_create_denied")
	remove, err := h.srv.AddAuthorizer("/game/1", AuthorizerFunc(func(_ context.Context, op Operation, _ string, _ *Client, _ *protocol.Message) Result {
		if op == OpCreate {
			return Deny("asked_create") // never: the channel exists by its authorizer
		}
		return Grant()
	}))
	if err != nil {
		t.Fatal(err)
	}
	c.subscribe("/game/1")
	c.publish("/game/1", 2)
	if got := dataOf(t, c.connectNow(), "/game/1"); !slices.Equal(got, []any{2.0}) {
		t.Errorf("delivered %v, want [2]", got)
	}
	remove()
	remove() // twice is harmless
	wantError(t, replyTo(t, c.must(publishMsg(c.id, "/game/1", 3)), "/game/1"), "403:denied_by_not_granting:publish_denied")

	for _, bad := range []string{"/meta/connect", "/meta/**", "no-slash", "/a/**/b"} {
		if _, err := h.srv.AddAuthorizer(bad, AuthorizerFunc(nil)); err == nil {
			t.Errorf("AddAuthorizer(%q) accepted", bad)
		}
	}
	if _, err := New(Options{Authorizers: []ChannelAuthorizer{{Pattern: "/meta/*", Authorizer: AuthorizerFunc(nil)}}}); err == nil {
		t.Error("New accepted an authorizer on /meta/*")
	}
}

// TestAuthorizerAnonymousPublish: an anonymous publisher (AnonPublish)
// is shown to the authorizers as Anonymous.
func TestAuthorizerAnonymousPublish(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{AnonPublish: true, Authorizers: []ChannelAuthorizer{{Pattern: "/**",
		Authorizer: AuthorizerFunc(func(_ context.Context, _ Operation, _ string, c *Client, _ *protocol.Message) Result {
			if c.Anonymous() {
				return Deny("anonymous")
			}
			return Grant()
		})}}})
	anon := h.client()
	wantError(t, replyTo(t, anon.must(publishMsg("", "/a", 1)), "/a"), "403:anonymous:channel_create_denied")
	c := h.client().start()
	c.publish("/a", 1)
}

// TestCoveringPatterns: the wildcards whose authorizers apply to a
// channel are exactly CometD's ChannelId.getWildIds.
func TestCoveringPatterns(t *testing.T) {
	t.Parallel()
	patterns := []string{"/**", "/*", "/a/**", "/a/*", "/a/b/**", "/a/b/*", "/a/b/c/*", "/b/**", "/a/c/*"}
	type testCase struct {
		channel string
		want    []string
	}
	for _, tc := range []testCase{
		{"/a/b/c", []string{"/**", "/a/**", "/a/b/**", "/a/b/*"}},
		{"/a/b", []string{"/**", "/a/**", "/a/*"}},
		{"/a", []string{"/**", "/*"}},
		{"/a/b/*", []string{"/**", "/a/**", "/a/b/**", "/a/b/*"}},
		{"/a/b/**", []string{"/**", "/a/**", "/a/b/**"}},
		{"/a/*", []string{"/**", "/a/**", "/a/*"}},
		{"/*", []string{"/**", "/*"}},
		{"/**", []string{"/**"}},
	} {
		var t1 authorizers
		for _, p := range patterns {
			t1.add(&authzEntry{pattern: p})
		}
		var got []string
		for _, e := range t1.table.Load().wilds {
			if protocol.Covers(e.pattern, tc.channel) {
				got = append(got, e.pattern)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: covered by %q, want %q (widest first)", tc.channel, got, tc.want)
		}
	}
}

// TestChannelExists: a channel exists while it has subscribers, a
// history message or an authorizer of its name, or for a while after it
// was created.
func TestChannelExists(t *testing.T) {
	t.Parallel()
	rules, err := ParseChannelRules("/h/*:history=5")
	if err != nil {
		t.Fatal(err)
	}
	s := quietServer(t, Options{Channels: rules})
	ctx := context.Background()
	if _, err := s.AddAuthorizer("/named", AuthorizerFunc(nil)); err != nil {
		t.Fatal(err)
	}
	ids := subscribeSessions(t, s, 1, "/sub/*")
	if _, err := s.Publish(ctx, "/h/kept", "x"); err != nil {
		t.Fatal(err)
	}
	s.known.add("/made")
	for ch, want := range map[string]bool{"/named": true, "/sub/*": true, "/sub/x": false, "/h/kept": true, "/h/empty": false,
		"/made": true, "/nothing": false} {
		got, err := s.channelExists(ctx, s.authz.table.Load(), ch)
		if err != nil || got != want {
			t.Errorf("exists(%s) = %v, %v; want %v", ch, got, err, want)
		}
	}
	if _, err := s.engine.Unsubscribe(ctx, ids[0], "/sub/*"); err != nil {
		t.Fatal(err)
	}
	// Found to exist a moment ago: remembered for channelLinger.
	if got, _ := s.channelExists(ctx, s.authz.table.Load(), "/sub/*"); !got {
		t.Error("a channel seen existing a moment ago is forgotten at once")
	}
	if s.known.recent("/sub/*", timeAfterLinger()) {
		t.Error("a channel is remembered past channelLinger")
	}
}

// timeAfterLinger is a moment when what is known now is forgotten.
func timeAfterLinger() time.Time { return time.Now().Add(channelLinger + time.Second) }
