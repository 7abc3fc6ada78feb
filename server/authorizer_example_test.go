package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// exampleClient is a Bayeux client of the examples: raw JSON over HTTP.
type exampleClient struct {
	url string
	id  string
}

// dial handshakes with ext.role set to role.
func dial(ts *httptest.Server, role string) *exampleClient {
	c := &exampleClient{url: ts.URL + "/cometd"}
	hs := c.post(`{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"role":"` + role + `"}}`)
	c.id = hs[0].ClientID
	return c
}

// post sends one message and returns the response's messages.
func (c *exampleClient) post(msg string) []protocol.Message {
	res, err := http.Post(c.url, "application/json", strings.NewReader("["+msg+"]"))
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	var out []protocol.Message
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		panic(err)
	}
	return out
}

// subscribe returns the reply's error ("" when it succeeded).
func (c *exampleClient) subscribe(channel string) string {
	return c.post(`{"channel":"/meta/subscribe","clientId":"` + c.id + `","subscription":"` + channel + `"}`)[0].Error
}

// publish returns the reply's error ("" when it succeeded).
func (c *exampleClient) publish(channel, data string) string {
	for _, m := range c.post(`{"channel":"` + channel + `","clientId":"` + c.id + `","data":` + data + `}`) {
		if m.Successful != nil {
			return m.Error
		}
	}
	return "no reply"
}

// roles gives each session the role its handshake asks for (an example:
// a real hook authenticates).
func roles(_ context.Context, c *server.Client, m *protocol.Message) error {
	if m.Channel == protocol.MetaHandshake {
		var role string
		json.Unmarshal(m.Ext["role"], &role)
		c.SetFlag("role", role)
	}
	return nil
}

// CometD's game example: an authorizer on /game/** ignores everything by
// default (so that nothing is allowed unless granted), lets captains
// create games and everyone watch them; who may play is decided per game.
func ExampleOptions_authorizers() {
	games := server.AuthorizerFunc(func(_ context.Context, op server.Operation, _ string, c *server.Client, _ *protocol.Message) server.Result {
		switch {
		case c.Flag("role") == "banned":
			return server.Deny("banned")
		case op == server.OpCreate && c.Flag("role") == "captain":
			return server.Grant()
		case op == server.OpSubscribe:
			return server.Grant()
		}
		return server.Ignore()
	})
	srv, _ := server.New(server.Options{
		Logger:             slog.New(slog.DiscardHandler),
		TrustClientSession: true, // the example's client keeps no cookies
		Authorize:          roles,
		Authorizers:        []server.ChannelAuthorizer{{Pattern: "/game/**", Authorizer: games}},
	})
	ts := httptest.NewServer(srv)
	defer func() { srv.BeginShutdown(); ts.Close(); srv.Shutdown(context.Background()) }()

	fan, captain, banned := dial(ts, "fan"), dial(ts, "captain"), dial(ts, "banned")
	fmt.Printf("fan starts a game: %q\n", fan.subscribe("/game/1"))
	fmt.Printf("captain starts it: %q\n", captain.subscribe("/game/1"))
	fmt.Printf("fan watches it:    %q\n", fan.subscribe("/game/1"))
	fmt.Printf("fan plays:         %q\n", fan.publish("/game/1", `"e4"`))
	fmt.Printf("banned watches:    %q\n", banned.subscribe("/game/1"))
	fmt.Printf("elsewhere:         %q\n", fan.publish("/lobby", `"hi"`))
	// Output:
	// fan starts a game: "403:denied_by_not_granting:create_denied"
	// captain starts it: ""
	// fan watches it:    ""
	// fan plays:         "403:denied_by_not_granting:publish_denied"
	// banned watches:    "403:banned:subscribe_denied"
	// elsewhere:         ""
}

// Authorizers can be added while the server runs: when a game starts,
// its players may play in it, until it ends.
func ExampleServer_AddAuthorizer() {
	srv, _ := server.New(server.Options{
		Logger:             slog.New(slog.DiscardHandler),
		TrustClientSession: true,
		Authorize:          roles,
		Authorizers: []server.ChannelAuthorizer{{Pattern: "/game/**", Authorizer: server.AuthorizerFunc(
			func(context.Context, server.Operation, string, *server.Client, *protocol.Message) server.Result {
				return server.Ignore() // nothing unless granted
			})}},
	})
	ts := httptest.NewServer(srv)
	defer func() { srv.BeginShutdown(); ts.Close(); srv.Shutdown(context.Background()) }()

	players := map[string]bool{"white": true, "black": true}
	end, _ := srv.AddAuthorizer("/game/7", server.AuthorizerFunc(
		func(_ context.Context, op server.Operation, _ string, c *server.Client, _ *protocol.Message) server.Result {
			if op == server.OpPublish && !players[c.Flag("role")] {
				return server.Ignore()
			}
			return server.Grant()
		}))
	white, fan := dial(ts, "white"), dial(ts, "fan")
	fmt.Printf("white plays: %q\n", white.publish("/game/7", `"e4"`))
	fmt.Printf("fan plays:   %q\n", fan.publish("/game/7", `"e5"`))
	end() // the game's channel is gone with its authorizer (nobody subscribed)
	fmt.Printf("game over:   %q\n", white.publish("/game/7", `"Qh5"`))
	// Output:
	// white plays: ""
	// fan plays:   "403:denied_by_not_granting:publish_denied"
	// game over:   "403:denied_by_not_granting:channel_create_denied"
}
