//go:build !js

package wasmclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

func TestPublishSubscribeBetweenClients(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	alice := connected(t, ts.url, Options{})
	bob := connected(t, ts.url, Options{})
	ctx := ctxT(t)
	if alice.ClientID() == "" || alice.ClientID() == bob.ClientID() {
		t.Fatalf("client ids %q and %q", alice.ClientID(), bob.ClientID())
	}

	in := newInbox()
	if _, err := bob.Subscribe(ctx, "/chat/room1", in.fn); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	payload := map[string]any{
		"user":   "alice",
		"chat":   "héllo \"wörld\" <b>&</b> \u2603 \U0001F600\n\ttab",
		"n":      42,
		"f":      -1.5e-7,
		"big":    9007199254740991,
		"ok":     true,
		"none":   nil,
		"list":   []any{1, "two", []any{3.5}, map[string]any{"four": 4}},
		"nested": map[string]any{"a": map[string]any{"b": map[string]any{"c": []any{}}}, "empty": map[string]any{}},
	}
	want, _ := json.Marshal(payload)
	if err := alice.Publish(ctx, "/chat/room1", payload); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	m := in.next(t, tWait)
	if m.Channel != "/chat/room1" {
		t.Errorf("channel %q", m.Channel)
	}
	if !jsonEqual(t, m.Data, want) {
		t.Errorf("data\n got %s\nwant %s", m.Data, want)
	}
	if m.ClientID != "" || m.ID != "" {
		t.Errorf("delivery leaks clientId %q / id %q", m.ClientID, m.ID)
	}

	// Raw JSON goes through unchanged, and the publisher gets its own
	// message only if it subscribed.
	if err := alice.Publish(ctx, "/chat/room1", json.RawMessage(`[1,{"x":"y"}]`)); err != nil {
		t.Fatal(err)
	}
	if m := in.next(t, tWait); string(m.Data) != `[1,{"x":"y"}]` {
		t.Errorf("raw data %s", m.Data)
	}
}

func TestWildcardsAndLocalFanOut(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	c := connected(t, ts.url, Options{})
	pub := connected(t, ts.url, Options{})
	ctx := ctxT(t)

	exact1, exact2, one, any := newInbox(), newInbox(), newInbox(), newInbox()
	for _, s := range []struct {
		ch string
		in *inbox
	}{{"/news/sport", exact1}, {"/news/sport", exact2}, {"/news/*", one}, {"/news/**", any}} {
		if _, err := c.Subscribe(ctx, s.ch, s.in.fn); err != nil {
			t.Fatalf("Subscribe %s: %v", s.ch, err)
		}
	}
	// Three server subscriptions: the second /news/sport listener shares
	// the first's.
	if n := ts.count(server.EventSubscribe, ""); n != 3 {
		t.Errorf("%d server subscriptions, want 3", n)
	}

	if err := pub.Publish(ctx, "/news/sport", "goal"); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]*inbox{"exact1": exact1, "exact2": exact2, "one": one, "any": any} {
		if m := in.next(t, tWait); string(m.Data) != `"goal"` {
			t.Errorf("%s got %s", name, m.Data)
		}
	}
	if err := pub.Publish(ctx, "/news/sport/live", "deep"); err != nil {
		t.Fatal(err)
	}
	if m := any.next(t, tWait); string(m.Data) != `"deep"` {
		t.Errorf("/news/** got %s", m.Data)
	}
	// Deliveries are in order on one goroutine: once "deep" arrived, a
	// wrong delivery of the first message to anyone would have too.
	for name, in := range map[string]*inbox{"exact1": exact1, "exact2": exact2, "one": one, "any": any} {
		select {
		case m := <-in.ch:
			t.Errorf("%s got an extra message %s on %s", name, m.Data, m.Channel)
		default:
		}
	}
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	c := connected(t, ts.url, Options{})
	pub := connected(t, ts.url, Options{})
	ctx := ctxT(t)

	first, second, marker := newInbox(), newInbox(), newInbox()
	s1, err := c.Subscribe(ctx, "/topic", first.fn)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := c.Subscribe(ctx, "/topic", second.fn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, "/marker", marker.fn); err != nil {
		t.Fatal(err)
	}

	// Removing one of two listeners keeps the server subscription.
	if err := s1.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if n := ts.count(server.EventUnsubscribe, "/topic"); n != 0 {
		t.Fatalf("server unsubscribed while a listener is left (%d)", n)
	}
	if err := pub.Publish(ctx, "/topic", 1); err != nil {
		t.Fatal(err)
	}
	second.next(t, tWait)
	first.empty(t)

	// The last listener goes: /meta/unsubscribe.
	if err := c.Unsubscribe(ctx, s2); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe(ctx, s2); err != nil {
		t.Fatalf("second Unsubscribe: %v", err)
	}
	if n := ts.count(server.EventUnsubscribe, "/topic"); n != 1 {
		t.Fatalf("%d server unsubscribes, want 1", n)
	}
	if err := pub.Publish(ctx, "/topic", 2); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "/marker", "m"); err != nil {
		t.Fatal(err)
	}
	marker.next(t, tWait) // in order: /topic would have come first
	first.empty(t)
	second.empty(t)
	if got := c.Subscriptions(); len(got) != 1 || got[0] != "/marker" {
		t.Errorf("Subscriptions() = %v", got)
	}
}

func TestCallEcho(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{
		Services: map[string]server.ServiceFunc{
			"fail": func(context.Context, *server.Client, *protocol.Message) ([]*protocol.Message, error) {
				return nil, &protocol.Error{Code: 400, Message: "bad_request"}
			},
			"silent": func(context.Context, *server.Client, *protocol.Message) ([]*protocol.Message, error) {
				return nil, nil
			},
		},
	}, nil)
	c := connected(t, ts.url, Options{MaxNetworkDelay: 500 * time.Millisecond})
	ctx := ctxT(t)

	data := map[string]any{"q": "ping", "n": []int{1, 2, 3}}
	want, _ := json.Marshal(data)
	reply, err := c.Call(ctx, "/service/echo", data)
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	if reply.Channel != "/service/echo" || !jsonEqual(t, reply.Data, want) {
		t.Errorf("reply %s %s", reply.Channel, reply.Data)
	}
	reply, err = c.Call(ctx, "echo", "short")
	if err != nil || string(reply.Data) != `"short"` {
		t.Errorf("Call(echo) = %v, %v", reply, err)
	}

	var pe *protocol.Error
	if _, err := c.Call(ctx, "fail", 1); !errors.As(err, &pe) || pe.Code != 400 {
		t.Errorf("failing service: %v", err)
	}
	if _, err := c.Call(ctx, "silent", 1); !errors.Is(err, ErrNoReply) {
		t.Errorf("silent service: %v, want ErrNoReply", err)
	}
	if _, err := c.Call(ctx, "/chat/x", 1); err == nil {
		t.Error("Call on a broadcast channel succeeded")
	}
}

func TestPublishErrors(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{
		Authorize: func(_ context.Context, _ *server.Client, m *protocol.Message) error {
			if m.Channel == protocol.MetaSubscribe && strings.HasPrefix(m.Subscription.Channels[0], "/private/") {
				return protocol.ErrSubscribeDenied
			}
			return nil
		},
	}, nil)
	c := connected(t, ts.url, Options{})
	ctx := ctxT(t)

	err := c.Publish(ctx, "/meta/x", "nope")
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != 403 || !errors.Is(err, protocol.ErrPublishDenied) {
		t.Errorf("publish to /meta/x: %v, want 403 publish_denied", err)
	}
	_, err = c.Subscribe(ctx, "/private/x", func(*protocol.Message) {})
	if !errors.Is(err, protocol.ErrSubscribeDenied) {
		t.Errorf("denied subscribe: %v", err)
	}
	if len(c.Subscriptions()) != 0 {
		t.Errorf("a refused subscription was kept: %v", c.Subscriptions())
	}
	// Local validation.
	if err := c.Publish(ctx, "/a/*", 1); err == nil {
		t.Error("publish to a pattern succeeded")
	}
	if err := c.Publish(ctx, "/a", func() {}); err == nil {
		t.Error("publish of a func succeeded")
	}
	if _, err := c.Subscribe(ctx, "no-slash", func(*protocol.Message) {}); err == nil {
		t.Error("subscribe to an invalid channel succeeded")
	}
	// The connection survived all that.
	if err := c.Publish(ctx, "/fine", 1); err != nil {
		t.Errorf("publish after errors: %v", err)
	}
}

// authServer authorizes handshakes with ext.auth and records what it saw.
type authServer struct {
	mu   sync.Mutex
	seen []map[string]string
}

func (a *authServer) authorize(_ context.Context, c *server.Client, m *protocol.Message) error {
	if m.Channel != protocol.MetaHandshake {
		return nil
	}
	var auth map[string]string
	if raw, ok := m.Ext["auth"]; ok {
		_ = json.Unmarshal(raw, &auth)
	}
	a.mu.Lock()
	a.seen = append(a.seen, auth)
	a.mu.Unlock()
	if auth["user"] != "alice" || auth["password"] != "secret" {
		return &protocol.Error{Code: 403, Message: "invalid_credentials"}
	}
	c.SetUser(auth["user"])
	return nil
}

func TestHandshakeExtAuth(t *testing.T) {
	t.Parallel()
	a := &authServer{}
	ts := newTestServer(t, server.Options{Authorize: a.authorize}, nil)
	ext := map[string]any{"auth": map[string]string{"user": "alice", "password": "secret"}}
	c := connected(t, ts.url, Options{Ext: ext})

	a.mu.Lock()
	seen := a.seen
	a.mu.Unlock()
	if len(seen) != 1 || seen[0]["user"] != "alice" || seen[0]["password"] != "secret" {
		t.Fatalf("Authorize saw %v", seen)
	}
	var user string
	for _, ev := range ts.events.all() {
		if ev.Kind == server.EventClientConnect && ev.ClientID == c.ClientID() {
			user = ev.User
		}
	}
	if user != "alice" {
		t.Errorf("session user %q", user)
	}
}

func TestHandshakeRejected(t *testing.T) {
	t.Parallel()
	a := &authServer{}
	ts := newTestServer(t, server.Options{Authorize: a.authorize}, nil)
	c := newTestClient(t, ts.url, Options{Ext: map[string]any{"auth": map[string]string{"user": "alice", "password": "wrong"}}})
	var mu sync.Mutex
	var states []State
	c.OnState(func(s StateInfo) {
		mu.Lock()
		states = append(states, s.State)
		mu.Unlock()
	})

	start := time.Now()
	err := c.Connect(ctxT(t))
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != 403 || pe.Message != "invalid_credentials" {
		t.Fatalf("Connect = %v, want 403::invalid_credentials", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Connect took %v to report a refusal", d)
	}
	st := c.State()
	if st.State != Disconnected || !errors.Is(st.LastError, pe) || st.ClientID != "" {
		t.Errorf("state after refusal %+v", st)
	}
	if n := ts.sessionCount(); n != 0 {
		t.Errorf("%d sessions", n)
	}
	c.disp.wait()
	mu.Lock()
	defer mu.Unlock()
	if len(states) != 2 || states[0] != Connecting || states[1] != Disconnected {
		t.Errorf("states %v, want [connecting disconnected]", states)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) != 1 {
		t.Errorf("%d handshakes after a reconnect:none refusal, want 1", len(a.seen))
	}
}

func TestStateEvents(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	c := newTestClient(t, ts.url, Options{})
	if s := c.State(); s.State != Disconnected {
		t.Fatalf("initial state %v", s.State)
	}
	var mu sync.Mutex
	var got []StateInfo
	c.OnState(func(s StateInfo) {
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	})
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctxT(t)); !errors.Is(err, ErrAlreadyConnected) {
		t.Errorf("second Connect: %v", err)
	}
	if s := c.State(); s.State != Connected || s.ClientID == "" || s.ClientID != c.ClientID() {
		t.Errorf("state after Connect %+v", s)
	}
	if err := c.Disconnect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	c.disp.wait()
	mu.Lock()
	defer mu.Unlock()
	var seq []string
	for _, s := range got {
		seq = append(seq, s.State.String())
	}
	if strings.Join(seq, ",") != "connecting,connected,disconnected" {
		t.Errorf("state sequence %v", seq)
	}
	if len(got) == 3 && (got[1].ClientID == "" || got[2].LastError != nil) {
		t.Errorf("states %+v", got)
	}
}

func TestDisconnect(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	rec := newRecorder()
	c := connected(t, ts.url, Options{Transport: rec})
	ctx := ctxT(t)
	if _, err := c.Subscribe(ctx, "/x", func(*protocol.Message) {}); err != nil {
		t.Fatal(err)
	}
	// Let the client settle into a held connect.
	testutil.Eventually(t, tWait, func() bool { return ts.srv.Stats().HeldConnects.Load() == 1 }, "a held connect")
	if n := ts.sessionCount(); n != 1 {
		t.Fatalf("%d sessions", n)
	}
	start := time.Now()
	if err := c.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Disconnect took %v", d)
	}
	if n := ts.sessionCount(); n != 0 {
		t.Errorf("%d sessions after Disconnect", n)
	}
	if len(rec.withChannel(protocol.MetaDisconnect)) != 1 {
		t.Error("no /meta/disconnect sent")
	}
	if s := c.State(); s.State != Disconnected || s.LastError != nil || c.ClientID() != "" {
		t.Errorf("state %+v", s)
	}
	if ts.count(server.EventClientDisconnect, "") != 1 {
		t.Error("no client_disconnect event")
	}
	// Nothing runs any more: no new requests.
	n := len(rec.withChannel(protocol.MetaConnect))
	time.Sleep(100 * time.Millisecond)
	if m := len(rec.withChannel(protocol.MetaConnect)); m != n {
		t.Errorf("%d connects after Disconnect", m-n)
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Errorf("second Disconnect: %v", err)
	}

	// The client can connect again; its subscription comes back.
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, tWait, func() bool { return ts.count(server.EventSubscribe, "/x") == 2 }, "re-subscription after Connect")
}

func TestBatchOneRequest(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	rec := newRecorder()
	c := connected(t, ts.url, Options{Transport: rec})
	recv := connected(t, ts.url, Options{})
	ctx := ctxT(t)
	in := newInbox()
	if _, err := recv.Subscribe(ctx, "/batch/**", in.fn); err != nil {
		t.Fatal(err)
	}

	const n = 20
	err := c.Batch(ctx, func(b *Batch) {
		for i := range n {
			b.Publish(fmt.Sprintf("/batch/%d", i%3), i)
		}
	})
	if err != nil {
		t.Fatalf("Batch: %v", err)
	}
	var reqs int
	for _, req := range rec.withChannel("/batch/0") {
		reqs++
		if len(req) != n {
			t.Errorf("request with %d messages, want %d", len(req), n)
		}
	}
	if reqs != 1 {
		t.Errorf("%d requests, want 1", reqs)
	}
	for i := range n {
		m := in.next(t, tWait)
		if string(m.Data) != fmt.Sprint(i) || m.Channel != fmt.Sprintf("/batch/%d", i%3) {
			t.Fatalf("message %d: %s on %s", i, m.Data, m.Channel)
		}
	}

	// One failure fails the batch, the others go through.
	err = c.Batch(ctx, func(b *Batch) {
		b.Publish("/batch/ok", 1)
		b.Publish("/meta/bad", 2)
	})
	if !errors.Is(err, protocol.ErrPublishDenied) {
		t.Errorf("Batch with a denied publish: %v", err)
	}
	in.next(t, tWait)
	if err := c.Batch(ctx, func(b *Batch) { b.Publish("bad channel", 1) }); err == nil {
		t.Error("Batch with an invalid channel succeeded")
	}
}

func TestConcurrentPublishesAtMostTwoRequests(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	rec := newRecorder()
	c := connected(t, ts.url, Options{Transport: rec})
	recv := connected(t, ts.url, Options{})
	ctx := ctxT(t)
	counts := make(map[string]int)
	var mu sync.Mutex
	if _, err := recv.Subscribe(ctx, "/load/*", func(m *protocol.Message) {
		mu.Lock()
		counts[m.Channel]++
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, tWait, func() bool { return ts.srv.Stats().HeldConnects.Load() == 2 }, "held connects")

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if err := c.Publish(ctx, fmt.Sprintf("/load/%d", g), i); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if m := rec.maxInFlight.Load(); m > 2 {
		t.Errorf("%d requests in flight at once, want at most 2", m)
	}
	testutil.Eventually(t, tWait, func() bool {
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for _, n := range counts {
			total += n
		}
		return total == 200
	}, "200 deliveries")
}

func TestSubscribeAndPublishBeforeConnect(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	c := newTestClient(t, ts.url, Options{})
	ctx := ctxT(t)
	in := newInbox()
	type result struct {
		sub *Subscription
		err error
	}
	subbed := make(chan result, 1)
	go func() {
		s, err := c.Subscribe(ctx, "/early", in.fn)
		subbed <- result{s, err}
	}()
	published := make(chan error, 1)
	go func() {
		// Queued after the subscribe only if it starts later; wait.
		testutil.Eventually(t, tWait, func() bool { return len(c.Subscriptions()) == 1 }, "queued subscribe")
		published <- c.Publish(ctx, "/early", "hi")
	}()
	time.Sleep(50 * time.Millisecond)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-subbed; r.err != nil || r.sub == nil {
		t.Fatalf("Subscribe: %v", r.err)
	}
	if err := <-published; err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if m := in.next(t, tWait); string(m.Data) != `"hi"` {
		t.Errorf("got %s", m.Data)
	}

	// A context that ends before a session exists fails the message.
	idle := newTestClient(t, ts.url, Options{})
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := idle.Publish(short, "/early", 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Publish without a session: %v", err)
	}
}

func TestRetriesWhileServerUnreachable(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	var mu sync.Mutex
	fail := 3
	rec := newRecorder()
	rec.before = func(_ context.Context, msgs []*protocol.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if fail > 0 {
			fail--
			return errors.New("network down")
		}
		return nil
	}
	c := newTestClient(t, ts.url, Options{Transport: rec, BackoffIncrement: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	var states []StateInfo
	c.OnState(func(s StateInfo) {
		mu.Lock()
		states = append(states, s)
		mu.Unlock()
	})
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	c.disp.wait()
	mu.Lock()
	defer mu.Unlock()
	var reconnecting int
	for _, s := range states {
		if s.State == Reconnecting {
			reconnecting++
			if s.LastError == nil || s.NextRetry.IsZero() || s.Failures == 0 {
				t.Errorf("reconnecting state without details: %+v", s)
			}
		}
	}
	if reconnecting != 3 || states[len(states)-1].State != Connected {
		t.Errorf("states %+v", states)
	}

	// A context that ends while the server is unreachable stops the client.
	down := newTestClient(t, "http://127.0.0.1:1/cometd", Options{BackoffIncrement: 10 * time.Millisecond})
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := down.Connect(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Connect to nothing: %v", err)
	}
	if s := down.State(); s.State != Disconnected {
		t.Errorf("state %v", s.State)
	}
}

// TestServerRestart stops the server and starts a new one on the same
// address: the client re-handshakes, re-subscribes and receives again.
func TestServerRestart(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	ts := newTestServer(t, server.Options{}, l)
	c := connected(t, ts.url, Options{BackoffIncrement: 200 * time.Millisecond, MaxBackoff: 2 * time.Second})
	ctx := ctxT(t)
	in := newInbox()
	if _, err := c.Subscribe(ctx, "/restart/x", in.fn); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.srv.Publish(ctx, "/restart/x", "before"); err != nil {
		t.Fatal(err)
	}
	in.next(t, tWait)
	oldID := c.ClientID()

	ts.stop()
	testutil.Eventually(t, tWait, func() bool { return c.State().State == Reconnecting }, "reconnecting state")

	var l2 net.Listener
	testutil.Eventually(t, tWait, func() bool {
		l2, err = net.Listen("tcp", addr)
		return err == nil
	}, "listening on "+addr+" again")
	resub := make(chan struct{}, 1)
	ts2 := newTestServer(t, server.Options{OnEvent: func(ev server.Event) {
		if ev.Kind == server.EventSubscribe && ev.Channel == "/restart/x" {
			resub <- struct{}{}
		}
	}}, l2)
	select {
	case <-resub:
	case <-time.After(15 * time.Second):
		t.Fatalf("no re-subscription within 15s; state %+v", c.State())
	}
	if _, err := ts2.srv.Publish(context.Background(), "/restart/x", "after"); err != nil {
		t.Fatal(err)
	}
	if m := in.next(t, tWait); string(m.Data) != `"after"` {
		t.Errorf("got %s", m.Data)
	}
	if id := c.ClientID(); id == "" || id == oldID {
		t.Errorf("client id %q after restart (was %q)", id, oldID)
	}
	testutil.Eventually(t, tWait, func() bool { return c.State().State == Connected }, "connected state")
	// One listener, one delivery: nothing was subscribed twice.
	in.empty(t)
}

// TestSessionExpiry stalls the client's connect past the server's
// ConnectTimeout: the server expires the session and answers the late
// connect with 402 + reconnect:"handshake"; the client re-handshakes,
// re-subscribes, and sends again the publish that met the dead session.
func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	rec := newRecorder()
	var stall sync.Once
	stalling := make(chan struct{})
	arm := make(chan struct{})
	rec.before = func(ctx context.Context, msgs []*protocol.Message) error {
		if msgs[0].Channel != protocol.MetaConnect {
			return nil
		}
		select {
		case <-arm:
		default:
			return nil
		}
		stalled := false
		stall.Do(func() { stalled = true })
		if stalled {
			close(stalling)
			select {
			case <-time.After(tConnectTimeout + time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	c := connected(t, ts.url, Options{Transport: rec})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	in := newInbox()
	if _, err := c.Subscribe(ctx, "/expiry", in.fn); err != nil {
		t.Fatal(err)
	}
	oldID := c.ClientID()
	close(arm)

	<-stalling
	// Wait until the server expired the session, then publish: the
	// publish meets 402 and is sent again after the re-handshake.
	testutil.Eventually(t, tWait, func() bool { return ts.sessionCount() == 0 }, "session expiry")
	pubErr := make(chan error, 1)
	go func() { pubErr <- c.Publish(ctx, "/expiry", "mine") }()

	if err := <-pubErr; err != nil {
		t.Fatalf("Publish across the expiry: %v", err)
	}
	if m := in.next(t, tWait); string(m.Data) != `"mine"` {
		t.Errorf("got %s", m.Data)
	}
	if rec.responsesContaining("402::session_unknown") < 2 {
		t.Errorf("expected 402 replies to the stalled connect and the publish")
	}
	if id := c.ClientID(); id == "" || id == oldID {
		t.Errorf("client id %q after expiry (was %q)", id, oldID)
	}
	if _, err := ts.srv.Publish(ctx, "/expiry", "server"); err != nil {
		t.Fatal(err)
	}
	if m := in.next(t, tWait); string(m.Data) != `"server"` {
		t.Errorf("got %s", m.Data)
	}
	if n := ts.count(server.EventSubscribe, "/expiry"); n != 2 {
		t.Errorf("%d subscribes, want 2 (original and restored)", n)
	}
}

func TestServerEndsSession(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	c := connected(t, ts.url, Options{})
	testutil.Eventually(t, tWait, func() bool { return ts.srv.Stats().HeldConnects.Load() == 1 }, "a held connect")
	if ok, err := ts.srv.Disconnect(context.Background(), c.ClientID()); !ok || err != nil {
		t.Fatalf("server Disconnect: %v %v", ok, err)
	}
	testutil.Eventually(t, tWait, func() bool { return c.State().State == Disconnected }, "disconnected state")
	if err := c.State().LastError; !errors.Is(err, ErrSessionEnded) {
		t.Errorf("LastError %v", err)
	}
}

type tagExt struct {
	mu  sync.Mutex
	out []string
	in  int
}

func (e *tagExt) Outgoing(m *protocol.Message) {
	e.mu.Lock()
	e.out = append(e.out, m.Channel)
	e.mu.Unlock()
	if m.Channel == "/ext" {
		if m.Ext == nil {
			m.Ext = map[string]json.RawMessage{}
		}
		m.Ext["tag"] = json.RawMessage(`"t1"`)
	}
}

func (e *tagExt) Incoming(m *protocol.Message) bool {
	e.mu.Lock()
	e.in++
	e.mu.Unlock()
	return string(m.Data) != `"drop"`
}

func TestExtensions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	ext := &tagExt{}
	var hook sync.Map
	c := connected(t, ts.url, Options{
		Extensions:  []Extension{ext},
		OutgoingExt: func(m *protocol.Message) { hook.Store(m.Channel, true) },
	})
	ctx := ctxT(t)
	in := newInbox()
	if _, err := c.Subscribe(ctx, "/ext", in.fn); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"drop", "keep"} {
		if err := c.Publish(ctx, "/ext", d); err != nil {
			t.Fatal(err)
		}
	}
	m := in.next(t, tWait)
	if string(m.Data) != `"keep"` || string(m.Ext["tag"]) != `"t1"` {
		t.Errorf("got %s ext %s", m.Data, m.Ext)
	}
	for _, ch := range []string{protocol.MetaHandshake, protocol.MetaConnect, protocol.MetaSubscribe, "/ext"} {
		if _, ok := hook.Load(ch); !ok {
			t.Errorf("OutgoingExt did not see %s", ch)
		}
	}
	ext.mu.Lock()
	defer ext.mu.Unlock()
	if ext.in == 0 || len(ext.out) == 0 || ext.out[0] != protocol.MetaHandshake {
		t.Errorf("extension saw out %v, in %d", ext.out, ext.in)
	}
}

func TestListenerPanicDoesNotStopDelivery(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	c := connected(t, ts.url, Options{})
	ctx := ctxT(t)
	in := newInbox()
	if _, err := c.Subscribe(ctx, "/p", func(*protocol.Message) { panic("boom") }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, "/p", in.fn); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := c.Publish(ctx, "/p", i); err != nil {
			t.Fatal(err)
		}
		in.next(t, tWait)
	}
}

func TestHTTPTransportStatusError(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	_, err := NewHTTPTransport().Send(ctxT(t), strings.TrimSuffix(ts.url, "/cometd")+"/nope", []byte(`[]`))
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != 404 || !strings.Contains(he.Error(), "404") {
		t.Errorf("Send to a missing page: %v", err)
	}
	// A bad request is the server's 400, not a Bayeux reply.
	_, err = NewHTTPTransport().Send(ctxT(t), ts.url, []byte(`[]`))
	if !errors.As(err, &he) || he.StatusCode != 400 || he.Body == "" {
		t.Errorf("empty batch: %v", err)
	}
}

// Two clients with one cookie jar look like two tabs of a browser: the
// server holds the connect of only one and tells the other to poll
// (multiple-clients advice). Both still get their messages.
func TestSharedCookieJar(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{MultiSessionInterval: 300 * time.Millisecond}, nil)
	tr := NewHTTPTransport()
	a := connected(t, ts.url, Options{Transport: tr})
	b := connected(t, ts.url, Options{Transport: tr})
	ctx := ctxT(t)
	ina, inb := newInbox(), newInbox()
	if _, err := a.Subscribe(ctx, "/tabs", ina.fn); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe(ctx, "/tabs", inb.fn); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := ts.srv.Publish(ctx, "/tabs", i); err != nil {
			t.Fatal(err)
		}
		for _, in := range []*inbox{ina, inb} {
			if m := in.next(t, tWait); string(m.Data) != fmt.Sprint(i) {
				t.Fatalf("got %s, want %d", m.Data, i)
			}
		}
	}
	if a.State().State != Connected || b.State().State != Connected {
		t.Errorf("states %v %v", a.State().State, b.State().State)
	}
}

func TestSubscribeCancelledBeforeConnect(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	c := newTestClient(t, ts.url, Options{})
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Subscribe(short, "/never", func(*protocol.Message) {}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Subscribe: %v", err)
	}
	if len(c.Subscriptions()) != 0 {
		t.Errorf("subscriptions %v", c.Subscriptions())
	}
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctxT(t), "/sync", 1); err != nil { // the queue is empty now
		t.Fatal(err)
	}
	if n := ts.count(server.EventSubscribe, ""); n != 0 {
		t.Errorf("the cancelled subscribe was sent (%d)", n)
	}
	if n := ts.count(server.EventUnsubscribe, ""); n != 0 {
		t.Errorf("an unsubscribe was sent (%d)", n)
	}
}

func TestDisconnectWhileReconnecting(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	c := connected(t, ts.url, Options{BackoffIncrement: 500 * time.Millisecond, MaxBackoff: 5 * time.Second})
	ctx := ctxT(t)
	ts.stop()
	testutil.Eventually(t, tWait, func() bool { return c.State().State == Reconnecting }, "reconnecting state")
	pub := make(chan error, 1)
	go func() { pub <- c.Publish(ctx, "/held", 1) }() // waits for a session
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := c.Disconnect(ctx); err != nil {
		t.Errorf("Disconnect: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Disconnect took %v", d)
	}
	if err := <-pub; !errors.Is(err, ErrDisconnected) {
		t.Errorf("queued Publish: %v, want ErrDisconnected", err)
	}
	if s := c.State(); s.State != Disconnected || s.LastError != nil {
		t.Errorf("state %+v", s)
	}
}

// A server that is shutting down answers connects at once; the client must
// not spin on it while the listener is still open.
func TestNoSpinWhileServerShutsDown(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	rec := newRecorder()
	c := connected(t, ts.url, Options{Transport: rec, BackoffIncrement: 100 * time.Millisecond})
	testutil.Eventually(t, tWait, func() bool { return ts.srv.Stats().HeldConnects.Load() == 1 }, "a held connect")
	n0 := len(rec.withChannel(protocol.MetaConnect))
	ts.srv.BeginShutdown()
	time.Sleep(300 * time.Millisecond)
	if n := len(rec.withChannel(protocol.MetaConnect)) - n0; n > 10 {
		t.Errorf("%d connects in 300ms while the server shuts down", n)
	}
	if s := c.State(); s.State != Connected {
		t.Errorf("state %v", s.State)
	}
}
