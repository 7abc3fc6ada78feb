package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// A session that logged in with an expiring credential ends when it
// expires, unless Server.SetDeadline moves its end (a token refresh).
func ExampleClient_SetDeadline() {
	srv, _ := server.New(server.Options{
		Logger:             slog.New(slog.DiscardHandler),
		TrustClientSession: true, // this example's HTTP client keeps no cookies
		Authorize: func(_ context.Context, c *server.Client, m *protocol.Message) error {
			if m.Channel == protocol.MetaHandshake {
				c.SetUser("alice")
				c.SetDeadline(time.Now().Add(50 * time.Millisecond)) // the token's exp
			}
			return nil
		},
	})
	ts := httptest.NewServer(srv.Site(server.SiteOptions{}))
	defer func() { srv.BeginShutdown(); ts.Close(); srv.Shutdown(context.Background()) }()

	post := func(body string) []protocol.Message {
		res, err := ts.Client().Post(ts.URL+"/cometd", "application/json", strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		defer res.Body.Close()
		var out []protocol.Message
		json.NewDecoder(res.Body).Decode(&out)
		return out
	}
	hs := post(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]`)
	id := hs[0].ClientID
	connect := `[{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"long-polling","advice":{"timeout":0}}]`

	// A refresh moves the deadline: the session goes on.
	srv.SetDeadline(context.Background(), id, time.Now().Add(time.Hour))
	fmt.Println(post(connect)[0].IsSuccessful())

	// Without one it ends at the deadline.
	srv.SetDeadline(context.Background(), id, time.Now())
	r := post(connect)[0]
	fmt.Println(r.Error, r.Advice.Reconnect)
	// Output:
	// true
	// 403::token_expired handshake
}

// A local client's message keeps the id and ext it was given, as the seed
// server's local publish did.
func ExampleLocalClient_PublishMessage() {
	srv, _ := server.New(server.Options{})
	defer srv.Shutdown(context.Background())
	listener, _ := srv.NewLocalClient("listener")
	got := make(chan *protocol.Message, 1)
	listener.Subscribe("/news", func(m *protocol.Message, from string) { got <- m })

	feed, _ := srv.NewLocalClient("feed")
	feed.PublishMessage(context.Background(), &protocol.Message{Channel: "/news", ID: "n-17",
		Data: json.RawMessage(`"headline"`), Ext: map[string]json.RawMessage{"source": json.RawMessage(`"wire"`)}})
	m := <-got
	fmt.Println(m.ID, string(m.Data), string(m.Ext["source"]))
	// Output:
	// n-17 "headline" "wire"
}
