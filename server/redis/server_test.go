package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/enginetest"
)

// node is a Server on a Redis engine behind an httptest.Server.
type node struct {
	srv *server.Server
	eng *Engine
	url string
}

// startNode starts a node on the shared Redis with key prefix; configure,
// when given, changes the server's options.
func startNode(t *testing.T, prefix string, configure ...func(*server.Options)) *node {
	t.Helper()
	eng, err := New(Options{URL: sharedRedis(t).URL, Prefix: prefix, SweepInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	opts := server.Options{ // New starts eng
		Engine:             eng,
		Logger:             slog.New(slog.DiscardHandler),
		PollTimeout:        5 * time.Second,
		ConnectTimeout:     5 * time.Second,
		TrustClientSession: false,
	}
	for _, f := range configure {
		f(&opts)
	}
	srv, url := enginetest.Serve(t, opts)
	return &node{srv: srv, eng: eng, url: url}
}

// bayeux posts one message to url and returns the reply batch.
func bayeux(t *testing.T, c *http.Client, url string, m *protocol.Message) []*protocol.Message {
	t.Helper()
	body, err := json.Marshal([]*protocol.Message{m})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", url, resp.Status)
	}
	var out []*protocol.Message
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// reply returns the message of out on channel (the last one: replies come
// after events).
func reply(t *testing.T, out []*protocol.Message, channel string) *protocol.Message {
	t.Helper()
	for i := len(out) - 1; i >= 0; i-- {
		if out[i].Channel == channel {
			return out[i]
		}
	}
	t.Fatalf("no %s message in %+v", channel, out)
	return nil
}

// TestTwoServers: two bayeux servers on one Redis behind no sticky load
// balancer. A raw client handshakes on 1, subscribes on 2, holds its
// connect on 1, and its publish on 2 arrives in that connect. The browser
// cookie (held by the client) binds the session on both servers.
func TestTwoServers(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	n1, n2 := startNode(t, prefix), startNode(t, prefix)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 15 * time.Second}

	hs := reply(t, bayeux(t, c, n1.url, &protocol.Message{Channel: protocol.MetaHandshake, Version: "1.0",
		SupportedConnectionTypes: []string{protocol.LongPolling}}), protocol.MetaHandshake)
	if !hs.IsSuccessful() || hs.ClientID == "" {
		t.Fatalf("handshake on 1 = %+v", hs)
	}
	id := hs.ClientID
	sub := reply(t, bayeux(t, c, n2.url, &protocol.Message{Channel: protocol.MetaSubscribe, ClientID: id,
		Subscription: protocol.Subscription{Channels: []string{"/chat/demo"}}}), protocol.MetaSubscribe)
	if !sub.IsSuccessful() {
		t.Fatalf("subscribe on 2 = %+v", sub)
	}
	// The clientId alone, without the browser cookie, is refused on 2 too.
	stranger := &http.Client{Timeout: 5 * time.Second}
	if r := reply(t, bayeux(t, stranger, n2.url, &protocol.Message{Channel: protocol.MetaSubscribe, ClientID: id,
		Subscription: protocol.Subscription{Channels: []string{"/chat/x"}}}), protocol.MetaSubscribe); r.IsSuccessful() ||
		!strings.HasPrefix(r.Error, "402") {
		t.Errorf("subscribe without the cookie = %+v, want 402", r)
	}

	held := make(chan []*protocol.Message, 1)
	go func() {
		held <- bayeux(t, c, n1.url, &protocol.Message{Channel: protocol.MetaConnect, ClientID: id, ConnectionType: protocol.LongPolling})
	}()
	testutil.Eventually(t, hWait, func() bool { return n1.srv.Stats().HeldConnects.Load() == 1 }, "the connect to be held on 1")
	start := time.Now()
	pub := reply(t, bayeux(t, c, n2.url, &protocol.Message{Channel: "/chat/demo", ClientID: id,
		Data: json.RawMessage(`{"chat":"hello"}`)}), "/chat/demo")
	if !pub.IsSuccessful() {
		t.Fatalf("publish on 2 = %+v", pub)
	}
	select {
	case out := <-held:
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("the held connect returned %v after the publish", d)
		}
		var ev *protocol.Message
		for _, m := range out {
			if m.Channel == "/chat/demo" && m.Successful == nil {
				ev = m
			}
		}
		if ev == nil || string(ev.Data) != `{"chat":"hello"}` || ev.ClientID != "" {
			t.Errorf("connect on 1 returned %+v, want the event published on 2", out)
		}
		if r := reply(t, out, protocol.MetaConnect); !r.IsSuccessful() {
			t.Errorf("connect reply = %+v", r)
		}
	case <-time.After(hWait):
		t.Fatal("a publish on 2 did not reach the connect held on 1")
	}

	// Server-side publish on 2 reaches a connect held on 1 as well.
	go func() {
		held <- bayeux(t, c, n1.url, &protocol.Message{Channel: protocol.MetaConnect, ClientID: id, ConnectionType: protocol.LongPolling})
	}()
	testutil.Eventually(t, hWait, func() bool { return n1.srv.Stats().HeldConnects.Load() == 1 }, "the connect to be held on 1")
	if n, err := n2.srv.Publish(context.Background(), "/chat/demo", map[string]string{"chat": "from 2"}); n != 1 || err != nil {
		t.Fatalf("Server.Publish on 2 = %d, %v", n, err)
	}
	select {
	case out := <-held:
		if len(out) != 2 || out[0].Channel != "/chat/demo" {
			t.Errorf("connect on 1 returned %+v", out)
		}
	case <-time.After(hWait):
		t.Fatal("Server.Publish on 2 did not reach the connect held on 1")
	}

	// Disconnect on 2: the session is gone on 1 too.
	if r := reply(t, bayeux(t, c, n2.url, &protocol.Message{Channel: protocol.MetaDisconnect, ClientID: id}), protocol.MetaDisconnect); !r.IsSuccessful() {
		t.Fatalf("disconnect on 2 = %+v", r)
	}
	r := reply(t, bayeux(t, c, n1.url, &protocol.Message{Channel: protocol.MetaConnect, ClientID: id, ConnectionType: protocol.LongPolling}), protocol.MetaConnect)
	if r.IsSuccessful() || !strings.HasPrefix(r.Error, "402") || r.Advice == nil || r.Advice.Reconnect != protocol.ReconnectHandshake {
		t.Errorf("connect on 1 after disconnect on 2 = %+v", r)
	}

	// Redis loses its data: the client is told to handshake again.
	hs = reply(t, bayeux(t, c, n2.url, &protocol.Message{Channel: protocol.MetaHandshake, Version: "1.0",
		SupportedConnectionTypes: []string{protocol.LongPolling}}), protocol.MetaHandshake)
	ctx := context.Background()
	keys, err := n1.eng.Client().Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys %q, %v", keys, err)
	}
	if err := n1.eng.Client().Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	r = reply(t, bayeux(t, c, n1.url, &protocol.Message{Channel: protocol.MetaConnect, ClientID: hs.ClientID, ConnectionType: protocol.LongPolling}), protocol.MetaConnect)
	if r.IsSuccessful() || !strings.HasPrefix(r.Error, "402") || r.Advice == nil || r.Advice.Reconnect != protocol.ReconnectHandshake {
		t.Errorf("connect after Redis lost the session = %+v", r)
	}
}

// TestSessionsPerIPAcrossNodes: MaxSessionsPerIP counts per node; a
// session of this node that another node removes (its disconnect went
// there) frees its place here too, once this node looks it up.
func TestSessionsPerIPAcrossNodes(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	one := func(o *server.Options) { o.MaxSessionsPerIP = 1 }
	n1, n2 := startNode(t, prefix, one), startNode(t, prefix, one)
	handshake := func(url string) *protocol.Message {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
		return reply(t, bayeux(t, c, url, &protocol.Message{Channel: protocol.MetaHandshake, Version: "1.0",
			SupportedConnectionTypes: []string{protocol.LongPolling}}), protocol.MetaHandshake)
	}
	first := handshake(n1.url)
	if !first.IsSuccessful() {
		t.Fatalf("first handshake on 1 = %+v", first)
	}
	if r := handshake(n1.url); r.IsSuccessful() || r.Error != "429::too_many_sessions" {
		t.Fatalf("second handshake on 1 = %+v, want 429::too_many_sessions", r)
	}
	if r := handshake(n2.url); !r.IsSuccessful() {
		t.Errorf("handshake on 2 = %+v: the limit is per node", r)
	}
	// The first session ends through node 2.
	if rs, err := n2.srv.Disconnect(context.Background(), first.ClientID); !rs || err != nil {
		t.Fatalf("Disconnect on 2 = %v, %v", rs, err)
	}
	testutil.Eventually(t, hWait, func() bool { return handshake(n1.url).IsSuccessful() },
		"node 1 to let a handshake in after its session ended on node 2")
}

// TestBatchedPublishes: the publishes of one request go to Redis in one
// round trip (the engine is a server.BatchPublisher), in order; each gets
// its own reply, and a connect in the same request comes after them.
func TestBatchedPublishes(t *testing.T) {
	t.Parallel()
	n := startNode(t, testPrefix(t))
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	hs := reply(t, bayeux(t, c, n.url, &protocol.Message{Channel: protocol.MetaHandshake, Version: "1.0",
		SupportedConnectionTypes: []string{protocol.LongPolling}}), protocol.MetaHandshake)
	id := hs.ClientID
	if r := reply(t, bayeux(t, c, n.url, &protocol.Message{Channel: protocol.MetaSubscribe, ClientID: id,
		Subscription: protocol.Subscription{Channels: []string{"/b"}}}), protocol.MetaSubscribe); !r.IsSuccessful() {
		t.Fatalf("subscribe = %+v", r)
	}
	const k = 20
	batch := make([]*protocol.Message, 0, k+1)
	for i := range k {
		batch = append(batch, &protocol.Message{Channel: "/b", ClientID: id, ID: protocol.ID(fmt.Sprint(i)),
			Data: json.RawMessage(fmt.Sprint(i))})
	}
	batch = append(batch, &protocol.Message{Channel: protocol.MetaConnect, ClientID: id, ConnectionType: protocol.LongPolling,
		Advice: &protocol.Advice{Timeout: protocol.Ms(0)}})
	body, _ := json.Marshal(batch)
	before := n.eng.Stats().RoundTrips
	resp, err := c.Post(n.url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []*protocol.Message
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	var got []string
	replies := 0
	for _, m := range out {
		switch {
		case m.Channel == "/b" && m.Successful == nil:
			got = append(got, string(m.Data))
		case m.Channel == "/b":
			if !m.IsSuccessful() || m.ID != protocol.ID(fmt.Sprint(replies)) {
				t.Errorf("reply %d = %+v", replies, m)
			}
			replies++
		}
	}
	if replies != k {
		t.Errorf("%d publish replies, want %d", replies, k)
	}
	want := make([]string, k)
	for i := range want {
		want[i] = fmt.Sprint(i)
	}
	if !slices.Equal(got, want) {
		t.Errorf("the connect in the same request delivered %v, want %v in order", got, want)
	}
	// One round trip for the 20 publishes (and up to 9 for the session,
	// the connect and its commit), not 20.
	rt := n.eng.Stats().RoundTrips - before
	t.Logf("%d round trips", rt)
	if rt > 10 {
		t.Errorf("%d round trips for a request of %d publishes and a connect", rt, k)
	}
}

// serverHistory runs the history and presence scenarios on a server on
// the Redis at url.
func serverHistory(t *testing.T, url func(testing.TB) string) {
	enginetest.RunServer(t, func(t *testing.T, opts server.Options) (*server.Server, string) {
		eng, err := New(Options{URL: url(t), Prefix: testPrefix(t), SweepInterval: 50 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		opts.Engine = eng
		return enginetest.Serve(t, opts) // starts eng
	})
}

// TestServerHistory runs the history and presence scenarios on one
// redis-server.
func TestServerHistory(t *testing.T) {
	t.Parallel()
	serverHistory(t, func(t testing.TB) string { return sharedRedis(t).URL })
}

// TestServerHistoryCluster runs them on a Redis Cluster of three masters.
func TestServerHistoryCluster(t *testing.T) {
	t.Parallel()
	serverHistory(t, func(t testing.TB) string { return sharedCluster(t).URL })
}
