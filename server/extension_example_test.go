package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// An extension deletes what clients send with a forbidden word (the
// publisher is told 404::message_deleted) and marks every publish, once
// for all its subscribers.
func ExampleExtension() {
	filter := server.Extension{
		Rcv: func(_ context.Context, _ *server.Client, m *protocol.Message) bool {
			return !strings.Contains(string(m.Data), "spam")
		},
		Send: func(_ context.Context, _, to *server.Client, m *protocol.Message) bool {
			if to == nil { // a publish: what changes here, every subscriber gets
				if m.Ext == nil {
					m.Ext = make(map[string]json.RawMessage)
				}
				m.Ext["checked"] = json.RawMessage("true")
			}
			return true
		},
	}
	srv, _ := server.New(server.Options{
		Logger:             slog.New(slog.DiscardHandler),
		TrustClientSession: true,
		Extensions:         []server.Extension{filter},
	})
	ts := httptest.NewServer(srv)
	defer func() { srv.BeginShutdown(); ts.Close(); srv.Shutdown(context.Background()) }()

	listener, _ := srv.NewLocalClient("listener")
	got := make(chan string, 2)
	listener.Subscribe("/chat", func(m *protocol.Message, _ string) { got <- string(m.Data) + " checked:" + string(m.Ext["checked"]) })

	c := dial(ts, "")
	fmt.Printf("%q\n", c.publish("/chat", `"buy spam"`))
	fmt.Printf("%q\n", c.publish("/chat", `"hello"`))
	fmt.Println(<-got)
	// Output:
	// "404::message_deleted"
	// ""
	// "hello" checked:true
}

// A per-recipient hook redacts a field for every subscriber but one; the
// deliveries it leaves alone are written from the encoding all share.
func ExampleExtension_sendTo() {
	var auditor *server.LocalClient
	redact := server.Extension{SendTo: func(to *server.Client, p *server.Payload) *server.Payload {
		if p.Channel != "/orders" || to.ID() == auditor.ID() {
			return p // unchanged: not encoded again
		}
		m, err := p.Message()
		if err != nil {
			return nil
		}
		var order map[string]any
		if json.Unmarshal(m.Data, &order) != nil {
			return nil
		}
		delete(order, "card")
		q, err := p.WithData(order)
		if err != nil {
			return nil // drop rather than leak
		}
		return q
	}}
	srv, _ := server.New(server.Options{Extensions: []server.Extension{redact}})
	defer srv.Shutdown(context.Background())

	auditor, _ = srv.NewLocalClient("auditor")
	clerk, _ := srv.NewLocalClient("clerk")
	audited, seen := make(chan string, 1), make(chan string, 1)
	auditor.Subscribe("/orders", func(m *protocol.Message, _ string) { audited <- string(m.Data) })
	clerk.Subscribe("/orders", func(m *protocol.Message, _ string) { seen <- string(m.Data) })

	srv.Publish(context.Background(), "/orders", json.RawMessage(`{"item":"book","card":"4111-1111"}`))
	fmt.Println("auditor:", <-audited)
	fmt.Println("clerk:  ", <-seen)
	// Output:
	// auditor: {"item":"book","card":"4111-1111"}
	// clerk:   {"item":"book"}
}

// WithMessage replaces a whole delivery for one recipient: here the
// publisher's own copy of its message is marked.
func ExamplePayload_WithMessage() {
	mark := server.Extension{SendTo: func(to *server.Client, p *server.Payload) *server.Payload {
		if p.From == "" || p.From != to.ID() {
			return p
		}
		m, err := p.Message()
		if err != nil {
			return p
		}
		own := *m
		own.Ext = map[string]json.RawMessage{"own": json.RawMessage("true")}
		q, err := p.WithMessage(&own)
		if err != nil {
			return p
		}
		return q
	}}
	srv, _ := server.New(server.Options{Extensions: []server.Extension{mark}})
	defer srv.Shutdown(context.Background())

	alice, _ := srv.NewLocalClient("alice")
	bob, _ := srv.NewLocalClient("bob")
	toAlice, toBob := make(chan string, 1), make(chan string, 1)
	alice.Subscribe("/room", func(m *protocol.Message, _ string) { toAlice <- string(m.Ext["own"]) })
	bob.Subscribe("/room", func(m *protocol.Message, _ string) { toBob <- string(m.Ext["own"]) })
	alice.Publish(context.Background(), "/room", "hi")
	fmt.Printf("alice's copy own=%q, bob's own=%q\n", <-toAlice, <-toBob)
	// Output:
	// alice's copy own="true", bob's own=""
}
