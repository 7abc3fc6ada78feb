package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// A reply bot, like the seed server's synopsis: a local client subscribed
// to /chat/demo answers every message that is not its own.
func Example_replyBot() {
	srv, _ := server.New(server.Options{})
	defer srv.Shutdown(context.Background())

	bot, _ := srv.NewLocalClient("autobot")
	bot.Subscribe("/chat/demo", func(m *protocol.Message, from string) {
		if from == bot.ID() {
			return // don't auto-reply to my own messages
		}
		var in struct{ User string }
		json.Unmarshal(m.Data, &in)
		bot.Publish(context.Background(), m.Channel, map[string]string{
			"user": "Autobot",
			"chat": "I got your message, " + in.User,
		})
	})

	alice, _ := srv.NewLocalClient("alice")
	got := make(chan string, 1)
	alice.Subscribe("/chat/demo", func(m *protocol.Message, from string) {
		if from == alice.ID() {
			return // alice's own message comes back too
		}
		var in struct{ User, Chat string }
		json.Unmarshal(m.Data, &in)
		got <- in.User + ": " + in.Chat
	})
	alice.Publish(context.Background(), "/chat/demo", map[string]string{"user": "alice", "chat": "hello"})
	fmt.Println(<-got)
	// Output:
	// Autobot: I got your message, alice
}

// Services answer publishes to /service/NAME; "_handler" catches the rest.
func ExampleOptions_services() {
	srv, _ := server.New(server.Options{
		Services: map[string]server.ServiceFunc{
			"upper": func(_ context.Context, _ *server.Client, m *protocol.Message) ([]*protocol.Message, error) {
				var s string
				if err := json.Unmarshal(m.Data, &s); err != nil {
					return nil, &protocol.Error{Code: 400, Message: "string_expected"}
				}
				b, _ := json.Marshal(strings.ToUpper(s))
				return []*protocol.Message{{Data: b}}, nil
			},
			"_handler": func(_ context.Context, _ *server.Client, m *protocol.Message) ([]*protocol.Message, error) {
				return nil, errors.New("no such service")
			},
		},
	})
	defer srv.Shutdown(context.Background())

	lc, _ := srv.NewLocalClient("caller")
	replies := make(chan string, 1)
	lc.Subscribe("/service/upper", func(m *protocol.Message, _ string) { replies <- string(m.Data) })
	lc.Publish(context.Background(), "/service/upper", "shout")
	fmt.Println(<-replies)
	fmt.Println(lc.Publish(context.Background(), "/service/missing", 1))
	// Output:
	// "SHOUT"
	// 403::no such service
}

// Authorize is the seed's MessageACL: it can refuse any message and, at
// handshake, authenticate the client from ext and flag it.
func ExampleOptions_authorize() {
	srv, _ := server.New(server.Options{
		Authorize: func(_ context.Context, c *server.Client, m *protocol.Message) error {
			if m.Channel == protocol.MetaHandshake {
				var cred struct{ User, Password string }
				json.Unmarshal(m.Ext["auth"], &cred)
				if cred.User != "admin" || cred.Password != "password" {
					return &protocol.Error{Code: 403, Message: "invalid_credentials"}
				}
				c.SetUser(cred.User)
				c.SetFlag("is_authenticated", "1")
			}
			return nil
		},
	})
	defer srv.Shutdown(context.Background())
	ts := httptest.NewServer(srv)
	defer ts.Close()

	for _, pw := range []string{"wrong", "password"} {
		body := `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],` +
			`"ext":{"auth":{"user":"admin","password":"` + pw + `"}}}]`
		resp, _ := http.Post(ts.URL+"/cometd", "application/json", strings.NewReader(body))
		var replies []protocol.Message
		json.NewDecoder(resp.Body).Decode(&replies)
		resp.Body.Close()
		r := replies[0]
		fmt.Println(r.IsSuccessful(), r.Error, r.Advice.Reconnect)
	}
	// Output:
	// false 403::invalid_credentials none
	// true  retry
}

// OnEvent receives lifecycle events synchronously.
func ExampleOptions_onEvent() {
	events := make(chan string, 10)
	srv, _ := server.New(server.Options{OnEvent: func(ev server.Event) {
		events <- strings.TrimSpace(fmt.Sprint(ev.Kind, " ", ev.Channel))
	}})
	defer srv.Shutdown(context.Background())
	lc, _ := srv.NewLocalClient("x")
	lc.Subscribe("/news", func(*protocol.Message, string) {})
	srv.Publish(context.Background(), "/news", "hi")
	lc.Close()
	for range 4 {
		select {
		case e := <-events:
			fmt.Println(e)
		case <-time.After(time.Second):
		}
	}
	// Output:
	// client_connect
	// subscribe /news
	// publish /news
	// client_disconnect
}

// Budgets bound what an engine keeps for clients that stop reading: here
// a queue holds at most 64 bytes, so of three 40-byte messages only the
// newest waits, and the next take says how many were dropped (a connect
// reply tells the client in ext.dropped). The hook counts drops by reason,
// as the Server does in Stats().Refused.
func ExampleBudgets() {
	e := server.NewMemoryEngine(server.MemoryEngineOptions{Budgets: server.Budgets{MaxQueueBytes: 64}})
	e.Start(server.EngineHooks{Dropped: func(reason string, n int) { fmt.Println("dropped", n, reason) }})
	defer e.Close()
	ctx := context.Background()
	e.CreateSession(ctx, &server.SessionInfo{ID: "slow"})
	for i := range 3 {
		e.Deliver(ctx, "slow", &server.Payload{Channel: "/news", JSON: fmt.Appendf(nil, `{"channel":"/news","data":"item %d.."}`, i)})
	}
	b, _ := e.Take(ctx, "slow", server.TakeOptions{})
	fmt.Println(len(b.Payloads), "queued,", b.Dropped, "dropped")
	// Output:
	// dropped 1 queue_bytes
	// dropped 1 queue_bytes
	// 1 queued, 2 dropped
}
