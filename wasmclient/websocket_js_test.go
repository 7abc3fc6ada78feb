//go:build js && wasm

package wasmclient

import (
	"context"
	"errors"
	"strings"
	"syscall/js"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// These tests run under Node.js (see TestFetchTransportInNode), which has a
// global WebSocket from Node 22 on (Node 20 and 21 with
// --experimental-websocket), against the server at WASMCLIENT_URL.

func jsWebSocketURL(t *testing.T) string {
	u := fetchURL(t)
	if js.Global().Get("WebSocket").Type() != js.TypeFunction {
		t.Skip("no global WebSocket in this Node.js")
	}
	return u
}

func TestJSWebSocketClient(t *testing.T) {
	url := jsWebSocketURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	opts := Options{WebSocket: true, BackoffIncrement: 100 * time.Millisecond}
	a, b := New(url, opts), New(url, opts)
	for _, c := range []*Client{a, b} {
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("Connect: %v", err)
		}
		defer c.Disconnect(ctx)
		c.mu.Lock()
		ws := c.useWS
		c.mu.Unlock()
		if !ws {
			t.Fatal("not on the WebSocket")
		}
	}
	got := make(chan *protocol.Message, 10)
	if _, err := b.Subscribe(ctx, "/wasmws/**", func(m *protocol.Message) { got <- m }); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	next := func() *protocol.Message {
		select {
		case m := <-got:
			return m
		case <-ctx.Done():
			t.Fatal("no delivery")
			return nil
		}
	}
	if err := a.Publish(ctx, "/wasmws/x", map[string]any{"chat": "hé \u2603"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if m := next(); m.Channel != "/wasmws/x" || !strings.Contains(string(m.Data), "\u2603") {
		t.Errorf("got %s %s", m.Channel, m.Data)
	}
	reply, err := a.Call(ctx, "echo", "ping")
	if err != nil || string(reply.Data) != `"ping"` {
		t.Errorf("Call: %v %v", reply, err)
	}

	// The socket breaks: the client dials again and goes on with its
	// session.
	id := b.ClientID()
	b.opts.WebSocketTransport.Close()
	for i := 0; ; i++ {
		if err := a.Publish(ctx, "/wasmws/y", i); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m.Channel != "/wasmws/y" {
				t.Fatalf("got %s", m.Channel)
			}
		case <-time.After(500 * time.Millisecond):
			continue // published before the new connect
		case <-ctx.Done():
			t.Fatal("no delivery after the socket broke")
		}
		break
	}
	if b.ClientID() != id {
		t.Errorf("re-handshook: %q, was %q", b.ClientID(), id)
	}
}

func TestJSWebSocketTransportErrors(t *testing.T) {
	url := jsWebSocketURL(t)
	tr := &WebSocketTransport{}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := tr.Send(ctx, "http://127.0.0.1:1/cometd", []byte(`[{"id":"1","channel":"/meta/handshake"}]`))
	var de *WebSocketDialError
	if !errors.As(err, &de) {
		t.Errorf("dial to nothing: %v", err)
	}
	body, err := tr.Send(ctx, url, []byte(`[{"id":"1","channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]`))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := protocol.DecodeBatch(body)
	if err != nil || !msgs[0].IsSuccessful() {
		t.Fatalf("handshake: %s %v", body, err)
	}
	// A held connect that gets no answer in time closes the socket.
	id := msgs[0].ClientID
	if _, err := tr.Send(ctx, url, []byte(`[{"id":"2","channel":"/meta/connect","connectionType":"websocket","clientId":"`+id+`","advice":{"timeout":0}}]`)); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if _, err := tr.Send(short, url, []byte(`[{"id":"3","channel":"/meta/connect","connectionType":"websocket","clientId":"`+id+`"}]`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unanswered connect: %v", err)
	}
	tr.core.mu.Lock()
	open := tr.core.cur != nil
	tr.core.mu.Unlock()
	if open {
		t.Error("the socket stayed open")
	}
}
