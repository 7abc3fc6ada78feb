package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

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
