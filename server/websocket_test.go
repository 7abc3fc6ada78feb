package server

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/coder/websocket"

	"github.com/bayeux-go/bayeux/internal/realip"
	"github.com/bayeux-go/bayeux/protocol"
)

type wsClient struct {
	t  *testing.T
	c  *websocket.Conn
	id string
}

func (h *harness) dialWS(hdr http.Header) *wsClient {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hWait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.url, "http"), &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	h.t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: h.t, c: c}
}

func (w *wsClient) send(msgs ...*protocol.Message) {
	w.t.Helper()
	b, _ := json.Marshal(msgs)
	if err := w.c.Write(context.Background(), websocket.MessageText, b); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wsClient) read(d time.Duration) []*protocol.Message {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, b, err := w.c.Read(ctx)
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	msgs, err := protocol.DecodeBatch(b)
	if err != nil {
		w.t.Fatalf("frame %s: %v", b, err)
	}
	return msgs
}

// TestWebSocketSession: handshake, subscribe, held connect and delivery
// over one socket; several events share one frame.
func TestWebSocketSession(t *testing.T) {
	h := newHarness(t, Options{})
	ws := h.dialWS(nil)
	hs := handshakeMsg()
	hs.SupportedConnectionTypes = []string{protocol.WebSocket}
	ws.send(hs)
	r := only(t, ws.read(hWait), protocol.MetaHandshake)
	if !r.IsSuccessful() || r.SupportedConnectionTypes[0] != protocol.WebSocket {
		t.Fatalf("handshake: %+v", r)
	}
	ws.id = r.ClientID
	first := connectMsg(ws.id, &protocol.Advice{Timeout: protocol.Ms(0)})
	first.ConnectionType = protocol.WebSocket
	ws.send(first)
	if r := replyTo(t, ws.read(hWait), protocol.MetaConnect); !r.IsSuccessful() {
		t.Fatalf("connect: %+v", r)
	}
	ws.send(subscribeMsg(ws.id, "/ws/a"))
	if r := replyTo(t, ws.read(hWait), protocol.MetaSubscribe); !r.IsSuccessful() {
		t.Fatalf("subscribe: %+v", r)
	}
	// Two messages queued before the connect: they share its frame.
	pub := h.client().start()
	pub.must(publishMsg(pub.id, "/ws/a", 1), publishMsg(pub.id, "/ws/a", 2))
	held := connectMsg(ws.id, nil)
	held.ConnectionType = protocol.WebSocket
	ws.send(held)
	got := ws.read(hWait)
	if d := dataOf(t, got, "/ws/a"); len(d) != 2 {
		t.Fatalf("frame: %s", dump(got))
	}
	if r := replyTo(t, got, protocol.MetaConnect); !r.IsSuccessful() {
		t.Fatalf("connect reply: %+v", r)
	}
	// A connect held with nothing queued is woken by the next publish.
	ws.send(held)
	h.waitHeld(1)
	pub.publish("/ws/a", 3)
	if d := dataOf(t, ws.read(hWait), "/ws/a"); len(d) != 1 || d[0].(float64) != 3 {
		t.Fatalf("held connect: %v", d)
	}
}

// TestWebSocketBoundToSession: a socket that handshook cannot act for
// another session, even with its clientId.
func TestWebSocketBoundToSession(t *testing.T) {
	h := newHarness(t, Options{TrustClientSession: true})
	other := h.client().start()
	ws := h.dialWS(nil)
	ws.send(handshakeMsg())
	ws.id = only(t, ws.read(hWait), protocol.MetaHandshake).ClientID
	ws.send(subscribeMsg(other.id, "/ws/hijack"))
	r := replyTo(t, ws.read(hWait), protocol.MetaSubscribe)
	if r.IsSuccessful() || !strings.HasPrefix(r.Error, "402") {
		t.Fatalf("foreign clientId on a bound socket: %+v", r)
	}
}

// TestWebSocketCloseLeavesSessionToExpire: closing the socket keeps the
// session (a reload may come back) and it expires after ConnectTimeout.
func TestWebSocketCloseLeavesSessionToExpire(t *testing.T) {
	h := newHarness(t, Options{ConnectTimeout: 300 * time.Millisecond})
	ws := h.dialWS(nil)
	ws.send(handshakeMsg())
	ws.id = only(t, ws.read(hWait), protocol.MetaHandshake).ClientID
	held := connectMsg(ws.id, nil)
	ws.send(held)
	h.waitHeld(1)
	ws.c.Close(websocket.StatusNormalClosure, "bye")
	h.events.wait(t, "expiry after socket close", func(ev Event) bool {
		return ev.Kind == EventClientDisconnect && ev.ClientID == ws.id && ev.Reason == "expired"
	})
}

// TestWebSocketBadFrame: invalid JSON closes the socket with 1007 and the
// server keeps serving.
func TestWebSocketBadFrame(t *testing.T) {
	h := newHarness(t, Options{})
	ws := h.dialWS(nil)
	if err := ws.c.Write(context.Background(), websocket.MessageText, []byte("{nope")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hWait)
	defer cancel()
	_, _, err := ws.c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusInvalidFramePayloadData {
		t.Fatalf("close status %v (%v)", websocket.CloseStatus(err), err)
	}
	h.client().start()
}

// TestWebSocketOldSocketCloseKeepsNewConnect: closing a client's old socket
// does not disturb the connect it holds on a new one.
func TestWebSocketOldSocketCloseKeepsNewConnect(t *testing.T) {
	h := newHarness(t, Options{TrustClientSession: true})
	a := h.dialWS(nil)
	a.send(handshakeMsg())
	a.id = only(t, a.read(hWait), protocol.MetaHandshake).ClientID
	a.send(connectMsg(a.id, nil))
	h.waitHeld(1)
	b := h.dialWS(nil)
	b.id = a.id
	b.send(connectMsg(b.id, nil)) // supersedes a's connect
	time.Sleep(100 * time.Millisecond)
	a.c.Close(websocket.StatusNormalClosure, "old tab")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, b2, err := b.c.Read(ctx); err == nil {
		t.Fatalf("the new socket's connect was answered when the old socket closed: %s", b2)
	}
}

// TestWebSocketIdleClosed: a socket that sends nothing for longer than
// PollTimeout+ConnectTimeout is closed by the server.
func TestWebSocketIdleClosed(t *testing.T) {
	h := newHarness(t, Options{PollTimeout: 100 * time.Millisecond, ConnectTimeout: 100 * time.Millisecond})
	ws := h.dialWS(nil)
	ctx, cancel := context.WithTimeout(context.Background(), hWait)
	defer cancel()
	start := time.Now()
	if _, _, err := ws.c.Read(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("idle socket not closed: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("idle socket closed after %v", d)
	}
}

// TestWebSocketClientRequest: Authorize and services see a socket's
// upgrade request through Client.Request, at the handshake and on every
// later batch: its request line, Host and address, the headers that say
// who the client is and none of the others, the address realip decided,
// and the credentials only when the origin may send them. Every Client
// gets a request of its own (what one hook changes, the next does not
// see), the same one however many goroutines ask for it.
func TestWebSocketClientRequest(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, path, requestURI, host, remoteAddr, ip string
		header                                         http.Header
		tls                                            bool
	}
	type testCase struct {
		name   string
		origin string
		creds  bool
	}
	for _, tc := range []testCase{
		{"listed origin", "https://app.example", true},
		{"origin allowed by *", "https://any.example", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			seenBy := make(chan seen, 4) // handshake, subscribe, service
			sameForAll := make(chan bool, 1)
			record := func(c *Client) {
				r := c.Request()
				if r == nil {
					t.Error("Client.Request is nil over WebSocket")
					return
				}
				seenBy <- seen{method: r.Method, path: r.URL.Path, requestURI: r.RequestURI, host: r.Host, remoteAddr: r.RemoteAddr,
					ip: realip.FromRequest(r).IP, header: r.Header.Clone(), tls: r.TLS != nil}
				// A hook that changes the request changes its own copy.
				r.Header.Set("X-Changed", "1")
				r.URL.Path = "/changed"
			}
			h := newHarness(t, Options{AllowedOrigins: []string{"*", "https://app.example"},
				Authorize: func(_ context.Context, c *Client, m *protocol.Message) error {
					if m.Channel == protocol.MetaHandshake || m.Channel == protocol.MetaSubscribe {
						record(c)
					}
					return nil
				},
				Services: map[string]ServiceFunc{"who": func(_ context.Context, c *Client, _ *protocol.Message) ([]*protocol.Message, error) {
					record(c)
					var wg sync.WaitGroup
					got := make([]*http.Request, 8)
					for i := range got {
						wg.Go(func() { got[i] = c.Request() })
					}
					wg.Wait()
					same := true
					for _, r := range got {
						same = same && r == got[0]
					}
					sameForAll <- same
					return nil, nil
				}},
			})
			ws := h.dialWS(http.Header{"Origin": {tc.origin}, "Cookie": {"bayeux_login=secret"}, "Authorization": {"Basic YTpi"},
				"User-Agent": {"test-agent/1.0"}, "X-Forwarded-For": {"203.0.113.9"}, "X-Custom": {"not kept"},
				"Accept-Language": {"fr"}})
			hs := handshakeMsg()
			hs.SupportedConnectionTypes = []string{protocol.WebSocket}
			ws.send(hs)
			ws.id = only(t, ws.read(hWait), protocol.MetaHandshake).ClientID
			ws.send(subscribeMsg(ws.id, "/ws/who"))
			if r := replyTo(t, ws.read(hWait), protocol.MetaSubscribe); !r.IsSuccessful() {
				t.Fatalf("subscribe: %+v", r)
			}
			ws.send(publishMsg(ws.id, "/service/who", 1))
			ws.read(hWait)
			if !<-sameForAll {
				t.Error("concurrent Client.Request calls returned different requests")
			}
			host := strings.TrimPrefix(h.hs.URL, "http://")
			for i, what := range []string{"handshake", "subscribe", "service"} {
				got := <-seenBy
				if got.method != http.MethodGet || got.path != "/cometd" || got.requestURI != "/cometd" || got.host != host || got.tls {
					t.Errorf("%s: request %s %s (URI %s) Host %s TLS %v, want GET /cometd on %s without TLS",
						what, got.method, got.path, got.requestURI, got.host, got.tls, host)
				}
				if got.ip != "127.0.0.1" || !strings.HasPrefix(got.remoteAddr, "127.0.0.1:") {
					t.Errorf("%s: realip %q, RemoteAddr %q, want the loopback client", what, got.ip, got.remoteAddr)
				}
				want := http.Header{"Origin": {tc.origin}, "User-Agent": {"test-agent/1.0"}, "X-Forwarded-For": {"203.0.113.9"}}
				if tc.creds {
					want["Cookie"] = []string{"bayeux_login=secret"}
					want["Authorization"] = []string{"Basic YTpi"}
				}
				if fmt.Sprint(got.header) != fmt.Sprint(want) {
					t.Errorf("%s (#%d): headers %v, want %v", what, i, got.header, want)
				}
			}
		})
	}
}

// TestRequestIntern: equal header values of different sockets share one
// string; values too long to share are kept as they are.
func TestRequestIntern(t *testing.T) {
	t.Parallel()
	var in requestIntern
	in.seed = maphash.MakeSeed()
	agent := "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
	first := in.value(strings.Clone(agent))
	again := in.value(strings.Clone(agent))
	if again != agent || unsafe.StringData(again) != unsafe.StringData(first) {
		t.Errorf("the same value twice: not shared")
	}
	long := strings.Repeat("a", internMaxValue+1)
	if got := in.value(long); unsafe.StringData(got) != unsafe.StringData(long) || in.value(strings.Clone(long)) == "" {
		t.Errorf("a long value: not kept as it is")
	}
	for i := range 4 * internValues { // fills the table many times over
		in.value(fmt.Sprint("agent ", i))
	}
	if got := in.value(strings.Clone(agent)); got != agent {
		t.Errorf("after others: %q", got)
	}
}
