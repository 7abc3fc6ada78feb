package server

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

type localMsg struct {
	m    *protocol.Message
	from string
}

// listen returns a listener that forwards to a channel.
func listen() (LocalListener, chan localMsg) {
	ch := make(chan localMsg, 100)
	return func(m *protocol.Message, from string) { ch <- localMsg{m, from} }, ch
}

func recvLocal(t *testing.T, ch <-chan localMsg) localMsg {
	t.Helper()
	select {
	case lm := <-ch:
		return lm
	case <-time.After(hWait):
		t.Fatal("local listener not called")
		return localMsg{}
	}
}

func noLocal(t *testing.T, ch <-chan localMsg, d time.Duration) {
	t.Helper()
	select {
	case lm := <-ch:
		t.Fatalf("unexpected local delivery %+v from %q", lm.m, lm.from)
	case <-time.After(d):
	}
}

func newLocal(t *testing.T, h *harness, hint string) *LocalClient {
	t.Helper()
	lc, err := h.srv.NewLocalClient(hint)
	if err != nil {
		t.Fatal(err)
	}
	return lc
}

func TestLocalSubscribeReceivesRemotePublish(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	lc := newLocal(t, h, "bot")
	if !strings.HasPrefix(lc.ID(), "bot_") {
		t.Errorf("ID = %q, want the bot_ prefix", lc.ID())
	}
	fn, ch := listen()
	if err := lc.Subscribe("/chat/*", fn); err != nil {
		t.Fatal(err)
	}
	a := h.client().start()
	m := publishMsg(a.id, "/chat/room", map[string]string{"text": "hi"})
	m.ID = "p1"
	a.must(m)
	lm := recvLocal(t, ch)
	if lm.from != a.id {
		t.Errorf("from = %q, want the publisher %q", lm.from, a.id)
	}
	if lm.m.Channel != "/chat/room" || string(lm.m.Data) != `{"text":"hi"}` || lm.m.ClientID != "" || lm.m.ID != "" {
		t.Errorf("local delivery = %+v", lm.m)
	}
	// Messages on other channels do not reach the listener.
	a.publish("/other", 1)
	a.publish("/chat/room/deeper", 1)
	noLocal(t, ch, 100*time.Millisecond)

	if err := lc.Subscribe("/meta/*", fn); err == nil {
		t.Error("local subscribe to /meta/* accepted")
	}
	if err := lc.Subscribe("/a/*/b", fn); err == nil {
		t.Error("local subscribe to an invalid pattern accepted")
	}
	// Unsubscribe stops delivery.
	if err := lc.Unsubscribe("/chat/*"); err != nil {
		t.Fatal(err)
	}
	a.publish("/chat/room", 2)
	noLocal(t, ch, 100*time.Millisecond)
}

func TestLocalPublishReachesRemote(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	a.subscribe("/news/**")
	lc := newLocal(t, h, "")
	ctx := context.Background()
	if err := lc.Publish(ctx, "/news/today", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := lc.Publish(ctx, "/news/raw", json.RawMessage(`[1,2]`)); err != nil {
		t.Fatal(err)
	}
	msgs := a.connectNow()
	if d := deliveries(msgs); len(d) != 2 || string(d[0].Data) != `{"n":1}` || string(d[1].Data) != `[1,2]` {
		t.Errorf("remote got %s", dump(msgs))
	}
	if strings.Contains(dump(msgs), lc.ID()) {
		t.Errorf("local client's id leaked: %s", dump(msgs))
	}
	ev := h.events.wait(t, "publish", func(ev Event) bool { return ev.Kind == EventPublish })
	if ev.ClientID != lc.ID() || ev.Channel != "/news/today" {
		t.Errorf("publish event = %+v", ev)
	}

	type testCase struct {
		channel string
		data    any
		want    error
	}
	for _, tc := range []testCase{
		{"/meta/x", 1, protocol.ErrPublishDenied},
		{"/a/*", 1, protocol.ErrChannelInvalid},
		{"bad", 1, protocol.ErrChannelInvalid},
		{"/news/x", json.RawMessage(`{`), nil},
		{"/news/x", func() {}, nil},
	} {
		err := lc.Publish(ctx, tc.channel, tc.data)
		if err == nil {
			t.Errorf("Publish(%s, %v) accepted", tc.channel, tc.data)
		} else if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("Publish(%s) = %v, want %v", tc.channel, err, tc.want)
		}
	}
	if d := deliveries(a.connectNow()); len(d) != 0 {
		t.Errorf("refused local publishes delivered: %s", dump(d))
	}
}

func TestLocalServiceEcho(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	watcher := h.client().start()
	watcher.subscribe("/service/**")
	lc := newLocal(t, h, "svc")
	fn, ch := listen()
	if err := lc.Subscribe("/service/echo", fn); err != nil {
		t.Fatal(err)
	}
	if err := lc.Publish(context.Background(), "/service/echo", map[string]int{"x": 1}); err != nil {
		t.Fatal(err)
	}
	lm := recvLocal(t, ch)
	if lm.m.Channel != "/service/echo" || string(lm.m.Data) != `{"x":1}` {
		t.Errorf("echo reply = %+v", lm.m)
	}
	if lm.from != "" {
		t.Errorf("from = %q, want the server", lm.from)
	}
	if d := deliveries(watcher.connectNow()); len(d) != 0 {
		t.Errorf("local service reply reached a remote client: %s", dump(d))
	}
}

func TestLocalPushToRemote(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	a := h.client().start()
	lc := newLocal(t, h, "")
	ctx := context.Background()
	if err := lc.Push(ctx, a.id, "/private/a", "direct"); err != nil {
		t.Fatal(err)
	}
	if got := dataOf(t, a.connectNow(), "/private/a"); len(got) != 1 || got[0] != "direct" {
		t.Errorf("push delivered %v", got)
	}
	// A push wakes a held connect.
	held := a.connectAsync()
	h.waitHeld(1)
	if err := lc.Push(ctx, a.id, "/private/b", 2); err != nil {
		t.Fatal(err)
	}
	r := a.wait(held, time.Second)
	if got := dataOf(t, r.msgs, "/private/b"); len(got) != 1 || got[0] != 2.0 {
		t.Errorf("push delivered %v: %s", got, r.body)
	}
	if err := lc.Push(ctx, "nosuchclient", "/x", 1); !errors.Is(err, protocol.ErrSessionUnknown) {
		t.Errorf("Push to unknown client = %v", err)
	}
	// A push reaches a local client's listener for a matching pattern.
	fn, ch := listen()
	if err := lc.Subscribe("/inbox/**", fn); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Push(ctx, lc.ID(), "/inbox/1", "note"); err != nil {
		t.Fatal(err)
	}
	if lm := recvLocal(t, ch); string(lm.m.Data) != `"note"` || lm.m.Channel != "/inbox/1" {
		t.Errorf("local push = %+v", lm.m)
	}
}

func TestLocalClose(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	lc := newLocal(t, h, "tmp")
	fn, ch := listen()
	if err := lc.Subscribe("/c", fn); err != nil {
		t.Fatal(err)
	}
	if n := h.sessionCount(); n != 1 {
		t.Errorf("SessionCount = %d", n)
	}
	ev := h.events.wait(t, "client_connect", func(ev Event) bool { return ev.Kind == EventClientConnect })
	if ev.ClientID != lc.ID() || !ev.Local {
		t.Errorf("client_connect = %+v", ev)
	}
	lc.Close()
	ev = h.events.wait(t, "client_disconnect", func(ev Event) bool { return ev.Kind == EventClientDisconnect })
	if ev.ClientID != lc.ID() || !ev.Local || ev.Reason != "disconnect" {
		t.Errorf("client_disconnect = %+v", ev)
	}
	lc.Close() // idempotent
	if n := len(h.events.all()); n != 3 {
		t.Errorf("%d events, want connect, subscribe, disconnect: %+v", n, h.events.all())
	}
	if n := h.sessionCount(); n != 0 {
		t.Errorf("SessionCount = %d after Close", n)
	}
	if err := lc.Subscribe("/d", fn); err == nil {
		t.Error("Subscribe after Close accepted")
	}
	if err := lc.Publish(context.Background(), "/c", 1); !errors.Is(err, protocol.ErrSessionUnknown) {
		t.Errorf("Publish after Close = %v", err)
	}
	if n, _ := h.srv.Publish(context.Background(), "/c", 1); n != 0 {
		t.Errorf("closed local client still subscribed (%d recipients)", n)
	}
	noLocal(t, ch, 50*time.Millisecond)
}

// Authorize is for remote clients: local clients bypass it, and a remote
// request cannot act for a local client's session.
func TestLocalBypassesAuthorize(t *testing.T) {
	t.Parallel()
	var calls, localCalls atomic.Int64
	var serviceSawLocal atomic.Bool
	h := newHarness(t, Options{
		Authorize: func(_ context.Context, c *Client, m *protocol.Message) error {
			calls.Add(1)
			if c.IsLocal() {
				localCalls.Add(1)
			}
			if m.Channel == protocol.MetaHandshake {
				return nil
			}
			return errors.New("remote clients may not do that")
		},
		Services: map[string]ServiceFunc{"who": func(_ context.Context, c *Client, _ *protocol.Message) ([]*protocol.Message, error) {
			serviceSawLocal.Store(c.IsLocal() && c.Transport() == transportLocal && c.Request() == nil)
			return nil, nil
		}},
	})
	lc := newLocal(t, h, "")
	fn, ch := listen()
	if err := lc.Subscribe("/l", fn); err != nil {
		t.Fatal(err)
	}
	if err := lc.Publish(context.Background(), "/l", "self"); err != nil {
		t.Fatal(err)
	}
	if lm := recvLocal(t, ch); lm.from != lc.ID() {
		t.Errorf("from = %q, want own id", lm.from)
	}
	if err := lc.Publish(context.Background(), "/service/who", 1); err != nil {
		t.Fatal(err)
	}
	if !serviceSawLocal.Load() {
		t.Error("service did not see a local client")
	}
	if n := localCalls.Load(); n != 0 {
		t.Errorf("Authorize called %d times for the local client", n)
	}

	// A remote request naming the local client's id is refused.
	thief := h.client()
	thief.id = lc.ID()
	for _, m := range []*protocol.Message{publishMsg(lc.ID(), "/l", "x"), subscribeMsg(lc.ID(), "/z"), disconnectMsg(lc.ID())} {
		wantError(t, replyTo(t, thief.must(m), m.Channel), "402::session_unknown")
	}
	noLocal(t, ch, 50*time.Millisecond)
	if n := h.sessionCount(); n != 1 {
		t.Errorf("SessionCount = %d", n)
	}
	// And remote clients do go through Authorize.
	c := h.client()
	c.handshake()
	before := calls.Load()
	wantError(t, replyTo(t, c.must(publishMsg(c.id, "/l", 1)), "/l"), "403::remote clients may not do that")
	if calls.Load() == before {
		t.Error("Authorize not called for a remote publish")
	}
}
