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

// Log in with a token that the host site's backend mints for its user.
// The client asks for it before the first handshake, again when a
// handshake is refused, and before it expires (for a JWT, from its exp),
// to present the fresh one on wasmclient.TokenRefreshService.
func ExampleOptions_token() {
	// A server whose hook accepts the token "t-alice" (the bayeux server
	// verifies JWTs: BAYEUX_TOKEN_KEYS).
	srv, _ := server.New(server.Options{
		Logger: slog.New(slog.DiscardHandler),
		Authorize: func(_ context.Context, c *server.Client, m *protocol.Message) error {
			var a struct{ Token string }
			if m.Channel == protocol.MetaHandshake {
				if json.Unmarshal(m.Ext["auth"], &a) != nil || a.Token != "t-alice" {
					return &protocol.Error{Code: 403, Message: "invalid_token"}
				}
				c.SetUser("alice")
			}
			return nil
		},
		Services: map[string]server.ServiceFunc{
			"chat/whoami": func(_ context.Context, c *server.Client, _ *protocol.Message) ([]*protocol.Message, error) {
				b, _ := json.Marshal(c.User())
				return []*protocol.Message{{Data: b}}, nil
			},
		},
	})
	ts := httptest.NewServer(srv.Site(server.SiteOptions{}))
	defer func() { srv.BeginShutdown(); ts.Close(); srv.Shutdown(context.Background()) }()

	fromHost := func(ctx context.Context) (string, error) {
		// In a page: fetch("/chat-token") on the host site; natively, an
		// HTTP request to it.
		return "t-alice", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := wasmclient.New(ts.URL+"/cometd", wasmclient.Options{Token: fromHost})
	if err := c.Connect(ctx); err != nil {
		fmt.Println("connect:", err)
		return
	}
	defer c.Disconnect(ctx)
	who, _ := c.Call(ctx, "chat/whoami", nil)
	fmt.Println(string(who.Data))
	// Output:
	// "alice"
}
