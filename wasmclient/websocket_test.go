//go:build !js

package wasmclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"

	"github.com/bayeux-go/bayeux/internal/faultproxy"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// onWebSocket reports whether c's session uses the WebSocket.
func onWebSocket(c *Client) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.useWS
}

// transportLog records, through the server's Authorize hook, the
// transport every message arrived on.
type transportLog struct {
	mu   sync.Mutex
	seen []string // "channel transport connectionType"
}

func (l *transportLog) authorize(_ context.Context, c *server.Client, m *protocol.Message) error {
	l.mu.Lock()
	l.seen = append(l.seen, m.Channel+" "+c.Transport()+" "+m.ConnectionType)
	l.mu.Unlock()
	return nil
}

func (l *transportLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}

func (l *transportLog) count(prefix string) int {
	n := 0
	for _, s := range l.all() {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// cutProxy forwards TCP connections to a target and can cut them all at
// once, so that both ends see the connection break.
type cutProxy struct {
	ln       net.Listener
	target   string
	accepted atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	return p
}

func (p *cutProxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns[in], p.conns[out] = true, true
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(in, out)
		go pipe(out, in)
	}
}

// url returns the proxy's address of the server's Bayeux endpoint.
func (p *cutProxy) url() string { return "http://" + p.ln.Addr().String() + "/cometd" }

// cut closes every open connection and returns how many there were.
func (p *cutProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	n := len(p.conns) / 2
	clear(p.conns)
	return n
}

// open returns the number of open connections.
func (p *cutProxy) open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2
}

func TestWebSocketRoundTrips(t *testing.T) {
	t.Parallel()
	log := &transportLog{}
	ts := newTestServer(t, server.Options{Authorize: log.authorize}, nil)
	rec := newRecorder() // the long-polling transport: must stay unused
	alice := connected(t, ts.url, Options{WebSocket: true, Transport: rec})
	bob := connected(t, ts.url, Options{WebSocket: true})
	ctx := ctxT(t)
	if !onWebSocket(alice) || !onWebSocket(bob) {
		t.Fatalf("not on the WebSocket: %v %v", onWebSocket(alice), onWebSocket(bob))
	}

	in := newInbox()
	sub, err := bob.Subscribe(ctx, "/ws/chat", in.fn)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if err := alice.Publish(ctx, "/ws/chat", map[string]string{"chat": "hé \u2603"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if m := in.next(t, tWait); m.Channel != "/ws/chat" || string(m.Data) != `{"chat":"hé ☃"}` {
		t.Errorf("got %s %s", m.Channel, m.Data)
	}
	reply, err := alice.Call(ctx, "echo", []int{1, 2})
	if err != nil || string(reply.Data) != `[1,2]` {
		t.Errorf("Call = %v, %v", reply, err)
	}
	if err := alice.Batch(ctx, func(b *Batch) {
		for i := range 3 {
			b.Publish("/ws/chat", i)
		}
	}); err != nil {
		t.Fatalf("Batch: %v", err)
	}
	for i := range 3 {
		if m := in.next(t, tWait); string(m.Data) != fmt.Sprint(i) {
			t.Errorf("batch message %d: %s", i, m.Data)
		}
	}
	var pe *protocol.Error
	if err := alice.Publish(ctx, "/meta/nope", 1); !errors.As(err, &pe) {
		t.Errorf("publish on /meta: %v", err)
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	if err := alice.Publish(ctx, "/ws/chat", "unheard"); err != nil {
		t.Fatal(err)
	}
	in.empty(t)

	if n := len(rec.withChannel(protocol.MetaHandshake)) + len(rec.withChannel(protocol.MetaConnect)) +
		len(rec.withChannel("/ws/chat")); n != 0 {
		t.Errorf("%d requests went over long-polling", n)
	}
	for _, s := range log.all() {
		f := strings.Fields(s)
		if f[1] != protocol.WebSocket || (f[0] == protocol.MetaConnect && (len(f) < 3 || f[2] != protocol.WebSocket)) {
			t.Errorf("server saw %q", s)
		}
	}
	if log.count(protocol.MetaHandshake) != 2 || log.count(protocol.MetaConnect) < 2 {
		t.Errorf("server saw %v", log.all())
	}
}

// A held connect does not hold up the other messages on the socket: their
// replies come first and are matched by id; a delivery completes it.
func TestWebSocketDeliveryWhileConnectHeld(t *testing.T) {
	t.Parallel()
	log := &transportLog{}
	ts := newTestServer(t, server.Options{Authorize: log.authorize}, nil)
	c := connected(t, ts.url, Options{WebSocket: true})
	ctx := ctxT(t)
	in := newInbox()
	if _, err := c.Subscribe(ctx, "/held", in.fn); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, tWait, func() bool { return ts.srv.Stats().HeldConnects.Load() == 1 }, "a held connect")
	connects := log.count(protocol.MetaConnect)
	start := time.Now()
	for i := range 5 {
		if r, err := c.Call(ctx, "echo", i); err != nil || string(r.Data) != fmt.Sprint(i) {
			t.Fatalf("Call %d: %v %v", i, r, err)
		}
	}
	if d := time.Since(start); d > tPollTimeout/2 {
		t.Errorf("5 calls took %v: they waited for the held connect", d)
	}
	if n := log.count(protocol.MetaConnect); n != connects || ts.srv.Stats().HeldConnects.Load() != 1 {
		t.Errorf("the calls disturbed the held connect (%d connects, was %d)", n, connects)
	}
	for i := range 3 {
		if _, err := ts.srv.Publish(ctx, "/held", i); err != nil {
			t.Fatal(err)
		}
		if m := in.next(t, tWait); string(m.Data) != fmt.Sprint(i) {
			t.Errorf("got %s, want %d", m.Data, i)
		}
	}
	// The client's own publish: its reply and the delivery it causes
	// (in the connect's frame) may come in either order.
	if err := c.Publish(ctx, "/held", "own"); err != nil {
		t.Fatal(err)
	}
	if m := in.next(t, tWait); string(m.Data) != `"own"` {
		t.Errorf("got %s", m.Data)
	}
	in.empty(t)
}

// The server restarts: the socket breaks, the client dials again,
// re-handshakes on the new server, re-subscribes, and stays on the
// WebSocket.
func TestWebSocketServerRestart(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	ts := newTestServer(t, server.Options{}, l)
	c := connected(t, ts.url, Options{WebSocket: true, BackoffIncrement: 200 * time.Millisecond, MaxBackoff: 2 * time.Second})
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
	log := &transportLog{}
	ts2 := newTestServer(t, server.Options{Authorize: log.authorize, OnEvent: func(ev server.Event) {
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
	in.empty(t)
	if !onWebSocket(c) {
		t.Error("fell back to long-polling after the restart")
	}
	for _, s := range log.all() {
		if !strings.Contains(s, " "+protocol.WebSocket) {
			t.Errorf("new server saw %q", s)
		}
	}
}

// With a server that does not speak WebSocket, the client handshakes at
// once over long-polling and stays there.
func TestWebSocketFallback(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, ts *testServer, url string) {
		t.Helper()
		rec := newRecorder()
		c := connected(t, url, Options{WebSocket: true, Transport: rec})
		if onWebSocket(c) {
			t.Fatal("on the WebSocket")
		}
		ctx := ctxT(t)
		in := newInbox()
		if _, err := c.Subscribe(ctx, "/fb", in.fn); err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(ctx, "/fb", 1); err != nil {
			t.Fatal(err)
		}
		in.next(t, tWait)
		hs := rec.withChannel(protocol.MetaHandshake)
		if len(hs) != 1 || len(hs[0][0].SupportedConnectionTypes) != 1 || hs[0][0].SupportedConnectionTypes[0] != protocol.LongPolling {
			t.Errorf("long-polling handshakes %v", hs)
		}
		for _, req := range rec.withChannel(protocol.MetaConnect) {
			if req[0].ConnectionType != protocol.LongPolling {
				t.Errorf("connectionType %q", req[0].ConnectionType)
			}
		}
		if n := ts.srv.Stats().Handshakes.Load(); n != 1 {
			t.Errorf("%d handshakes", n)
		}
	}
	t.Run("NoWebSocket", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, server.Options{NoWebSocket: true}, nil)
		check(t, ts, ts.url)
	})
	t.Run("UpgradeRefused", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, server.Options{}, nil)
		site := ts.srv.Site(server.SiteOptions{})
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "" {
				http.Error(w, "no websockets here", http.StatusForbidden)
				return
			}
			site.ServeHTTP(w, r)
		}))
		t.Cleanup(hs.Close)
		check(t, ts, hs.URL+"/cometd")
	})
}

// A server unreachable at first is no reason to give up the WebSocket:
// the client falls back only when long-polling works where it did not.
func TestWebSocketServerDownAtFirst(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := newTestClient(t, "http://"+addr+"/cometd", Options{WebSocket: true, BackoffIncrement: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- c.Connect(ctxT(t)) }()
	testutil.Eventually(t, tWait, func() bool { s := c.State(); return s.State == Reconnecting && s.Failures >= 2 }, "failed attempts")
	if err := c.State().LastError; err == nil || !strings.Contains(err.Error(), "websocket") {
		t.Errorf("LastError %v does not tell about both transports", err)
	}
	testutil.Eventually(t, tWait, func() bool {
		l, err = net.Listen("tcp", addr)
		return err == nil
	}, "listening on "+addr)
	newTestServer(t, server.Options{}, l)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !onWebSocket(c) {
		t.Error("not on the WebSocket")
	}
}

// The socket is cut again and again while messages flow: the client dials
// again and goes on with the same session (the new socket is trusted by
// its cookie), and with the ack extension nothing is lost or repeated.
func TestWebSocketAckSurvivesCutSockets(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{ConnectTimeout: 10 * time.Second}, nil)
	p := newCutProxy(t, ts.hs.Listener.Addr().String())
	ack := &AckExtension{}
	c := connected(t, p.url(), Options{WebSocket: true, Extensions: []Extension{ack},
		BackoffIncrement: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	ctx := ctxT(t)
	if !onWebSocket(c) || !ack.Enabled() {
		t.Fatalf("ws %v, ack %v", onWebSocket(c), ack.Enabled())
	}
	var mu sync.Mutex
	var got []int
	if _, err := c.Subscribe(ctx, "/cut", func(m *protocol.Message) {
		var n int
		_ = json.Unmarshal(m.Data, &n)
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	id := c.ClientID()
	const total = 400
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := range total {
			if _, err := ts.srv.Publish(context.Background(), "/cut", i); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	cuts := 0
	for range 8 {
		time.Sleep(60 * time.Millisecond)
		cuts += p.cut()
	}
	<-pubDone
	testutil.Eventually(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= total
	}, "all messages")
	time.Sleep(100 * time.Millisecond) // duplicates would come now
	mu.Lock()
	defer mu.Unlock()
	if len(got) != total {
		t.Errorf("%d messages received, want %d", len(got), total)
	}
	for i, n := range got {
		if n != i {
			t.Fatalf("message %d is %d: lost, repeated or reordered", i, n)
		}
	}
	if cuts < 4 {
		t.Errorf("only %d sockets cut", cuts)
	}
	if c.ClientID() != id || ts.count(server.EventClientConnect, "") != 1 {
		t.Errorf("re-handshook: id %q (was %q), %d handshakes", c.ClientID(), id, ts.count(server.EventClientConnect, ""))
	}
	if !onWebSocket(c) {
		t.Error("fell back to long-polling")
	}
	t.Logf("%d sockets cut, %d dialed", cuts, p.accepted.Load())
}

// Random faults: the fault-injecting proxy of the reliability tests kills
// sockets in the middle of frames in both directions.
func TestWebSocketAckThroughFaultProxy(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{ConnectTimeout: 10 * time.Second, MaxQueue: 100000}, nil)
	p, err := faultproxy.Start(faultproxy.Options{Target: ts.hs.Listener.Addr().String(), KillRequest: 0.3, KillResponse: 1,
		MaxRequestBytes: 1500, MaxResponseBytes: 3000, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	// The first handshake must work, or the client falls back; faults are
	// drawn per connection, so the first socket is then cut by cp.
	p.SetFaults(false)
	cp := newCutProxy(t, p.Addr())
	ack := &AckExtension{}
	c := connected(t, cp.url(), Options{WebSocket: true, Extensions: []Extension{ack},
		BackoffIncrement: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	ctx := ctxT(t)
	var mu sync.Mutex
	var got []int
	if _, err := c.Subscribe(ctx, "/faults", func(m *protocol.Message) {
		var n int
		_ = json.Unmarshal(m.Data, &n)
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	p.SetFaults(true)
	cp.cut()
	const total = 1000
	for i := range total {
		if _, err := ts.srv.Publish(context.Background(), "/faults", i); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	testutil.Eventually(t, 15*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= total
	}, "all messages")
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for i, n := range got {
		if n != i {
			t.Fatalf("message %d is %d: lost, repeated or reordered", i, n)
		}
	}
	conns, kReq, kResp := p.Stats()
	t.Logf("%d messages; proxy: %d connections, %d killed mid-request, %d mid-response", len(got), conns, kReq, kResp)
	if kReq+kResp < 5 {
		t.Errorf("only %d sockets killed", kReq+kResp)
	}
	if ts.count(server.EventClientConnect, "") != 1 || !onWebSocket(c) {
		t.Errorf("%d handshakes, on the WebSocket: %v", ts.count(server.EventClientConnect, ""), onWebSocket(c))
	}
}

// Disconnect closes the socket.
func TestWebSocketDisconnectClosesSocket(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, server.Options{}, nil)
	p := newCutProxy(t, ts.hs.Listener.Addr().String())
	c := connected(t, p.url(), Options{WebSocket: true})
	if p.open() != 1 {
		t.Errorf("%d connections open", p.open())
	}
	if err := c.Disconnect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, tWait, func() bool { return p.open() == 0 }, "the socket to close")
	if n := ts.sessionCount(); n != 0 {
		t.Errorf("%d sessions after Disconnect", n)
	}
	// A new Connect dials again.
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if !onWebSocket(c) || p.accepted.Load() != 2 {
		t.Errorf("ws %v, %d connections", onWebSocket(c), p.accepted.Load())
	}
}
