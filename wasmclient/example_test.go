//go:build !js

package wasmclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/wasmclient"
)

// Connect, subscribe, publish and call a service. The same code runs in the
// browser when compiled with GOOS=js GOARCH=wasm.
func Example() {
	// A server to talk to; normally it is elsewhere.
	srv, _ := server.New(server.Options{Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(srv.Site(server.SiteOptions{}))
	defer func() {
		srv.BeginShutdown()
		ts.Close()
		srv.Shutdown(context.Background())
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := wasmclient.New(ts.URL+"/cometd", wasmclient.Options{
		// Sent with every handshake, for the server's Authorize hook.
		Ext: map[string]any{"auth": map[string]string{"user": "alice", "password": "secret"}},
	})
	if err := c.Connect(ctx); err != nil {
		fmt.Println("connect:", err) // for example 403::... for a wrong password
		return
	}
	defer c.Disconnect(ctx)

	got := make(chan string, 1)
	_, err := c.Subscribe(ctx, "/chat/*", func(m *protocol.Message) {
		var msg struct{ User, Chat string }
		json.Unmarshal(m.Data, &msg)
		got <- m.Channel + " " + msg.User + ": " + msg.Chat
	})
	if err != nil {
		fmt.Println("subscribe:", err)
		return
	}
	if err := c.Publish(ctx, "/chat/demo", map[string]string{"user": "alice", "chat": "hello"}); err != nil {
		fmt.Println("publish:", err)
		return
	}
	fmt.Println(<-got)

	reply, err := c.Call(ctx, "echo", "ping")
	if err != nil {
		fmt.Println("call:", err)
		return
	}
	fmt.Println("echo:", string(reply.Data))
	// Output:
	// /chat/demo alice: hello
	// echo: "ping"
}

// A chat UI shows the connection state.
func ExampleClient_OnState() {
	c := wasmclient.New("http://localhost:8080/cometd", wasmclient.Options{})
	remove := c.OnState(func(s wasmclient.StateInfo) {
		switch s.State {
		case wasmclient.Reconnecting:
			fmt.Printf("reconnecting in %ds (%v)\n", int(time.Until(s.NextRetry).Seconds()+0.5), s.LastError)
		case wasmclient.Disconnected:
			if s.LastError != nil {
				fmt.Println("stopped:", s.LastError)
			}
		default:
			fmt.Println(s.State) // connecting, connected
		}
	})
	defer remove()
}

// Use the websocket transport, with long-polling as fallback: for example
// behind a proxy that does not pass WebSocket upgrades, the client
// handshakes over long-polling instead and stays there.
func ExampleOptions_webSocket() {
	srv, _ := server.New(server.Options{Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(srv.Site(server.SiteOptions{}))
	defer func() {
		srv.BeginShutdown()
		ts.Close()
		srv.Shutdown(context.Background())
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := wasmclient.New(ts.URL+"/cometd", wasmclient.Options{WebSocket: true})
	if err := c.Connect(ctx); err != nil {
		fmt.Println("connect:", err)
		return
	}
	defer c.Disconnect(ctx)
	reply, err := c.Call(ctx, "echo", "over a socket")
	if err != nil {
		fmt.Println("call:", err)
		return
	}
	fmt.Println(string(reply.Data))
	// Output: "over a socket"
}

// On a channel whose server keeps a history, the client recovers what
// was published while it had no session (a server restart, a network cut
// past the session timeout) by itself, in order and once. OnGap says when
// it could not, for a listener that keeps a view to rebuild.
func ExampleSubscription_OnGap() {
	c := wasmclient.New("https://chat.example/cometd", wasmclient.Options{})
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		return
	}
	var lines []string
	sub, err := c.Subscribe(ctx, "/chat/demo", func(m *protocol.Message) {
		pos, _ := protocol.PositionOf(m) // EPOCH:OFFSET, the message's id
		lines = append(lines, pos.String()+" "+string(m.Data))
	})
	if err != nil {
		return
	}
	sub.OnGap(func() {
		// Missed messages are no longer kept: load the newest again,
		// for example with c.Call(ctx, "/service/history", ...).
		lines = lines[:0]
	})
}
