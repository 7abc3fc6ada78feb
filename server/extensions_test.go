package server

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// recordingExtension records every hook call as "NAME:hook:channel" in
// log and lets everything through.
func recordingExtension(name string, log *authzLog) Extension {
	return Extension{
		Rcv: func(_ context.Context, _ *Client, m *protocol.Message) bool {
			log.add(name + ":rcv:" + m.Channel)
			return true
		},
		RcvMeta: func(_ context.Context, _ *Client, m *protocol.Message) bool {
			log.add(name + ":rcvMeta:" + m.Channel)
			return true
		},
		Send: func(_ context.Context, _, to *Client, m *protocol.Message) bool {
			who := "all"
			if to != nil {
				who = "one"
			}
			log.add(name + ":send:" + who + ":" + m.Channel)
			return true
		},
		SendMeta: func(_ context.Context, _ *Client, m *protocol.Message) bool {
			log.add(name + ":sendMeta:" + m.Channel)
			return true
		},
		SendTo: func(_ *Client, p *Payload) *Payload {
			log.add(name + ":sendTo:" + p.Channel)
			return p
		},
	}
}

// TestExtensionOrder: extensions apply in order to incoming messages and
// in reverse order to outgoing ones; a publish is sent once for all its
// subscribers (Send) and once per subscriber (SendTo); its reply is a
// message to one session (Send), a meta reply passes SendMeta.
func TestExtensionOrder(t *testing.T) {
	t.Parallel()
	log := &authzLog{}
	h := newHarness(t, Options{Extensions: []Extension{recordingExtension("A", log), recordingExtension("B", log)}})
	sub := h.client().start()
	sub.subscribe("/x")
	pub := h.client().start()
	skip := len(log.all())
	pub.publish("/x", 1)
	if got := dataOf(t, sub.connectNow(), "/x"); !slices.Equal(got, []any{1.0}) {
		t.Fatalf("delivered %v", got)
	}
	got := log.all()[skip:]
	want := []string{
		"A:rcv:/x", "B:rcv:/x", // incoming, in order
		"B:send:all:/x", "A:send:all:/x", // the publish, once, in reverse
		"B:send:one:/x", "A:send:one:/x", // its reply to the publisher
		"A:rcvMeta:/meta/connect", "B:rcvMeta:/meta/connect",
		"B:sendTo:/x", "A:sendTo:/x", // the delivery to the subscriber
		"B:sendMeta:/meta/connect", "A:sendMeta:/meta/connect",
	}
	if !slices.Equal(got, want) {
		t.Errorf("hooks ran\n%q\nwant\n%q", got, want)
	}
}

// TestExtensionDeletes: a hook returning false deletes the message; the
// hooks after it do not see it.
func TestExtensionDeletes(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name string
		ext  Extension
		// check runs with a subscriber to /x and a publisher, both
		// started, after the extension was installed.
		check func(t *testing.T, h *harness, sub, pub *rawClient)
		// notSeen is a hook call of the extension after the deleting
		// one that must not happen.
		notSeen string
	}
	cases := []testCase{
		{name: "rcv: a publish", ext: Extension{Rcv: func(_ context.Context, _ *Client, m *protocol.Message) bool { return m.Channel != "/x" }},
			check: func(t *testing.T, h *harness, sub, pub *rawClient) {
				wantError(t, replyTo(t, pub.must(publishMsg(pub.id, "/x", 1)), "/x"), "404::message_deleted")
				if d := deliveries(sub.connectNow()); len(d) != 0 {
					t.Errorf("deleted publish delivered: %s", dump(d))
				}
			}, notSeen: "inner:rcv:/x"},
		{name: "rcvMeta: a subscribe", ext: Extension{RcvMeta: func(_ context.Context, _ *Client, m *protocol.Message) bool {
			return m.Channel != protocol.MetaSubscribe || m.Subscription.Channels[0] != "/y"
		}},
			check: func(t *testing.T, h *harness, sub, pub *rawClient) {
				wantError(t, replyTo(t, sub.must(subscribeMsg(sub.id, "/y")), protocol.MetaSubscribe), "404::message_deleted")
				pub.publish("/y", 1)
				if d := deliveries(sub.connectNow()); len(d) != 0 {
					t.Errorf("a deleted subscribe subscribed: %s", dump(d))
				}
			}, notSeen: "inner:rcvMeta:/meta/subscribe"},
		{name: "rcvMeta: a handshake", ext: Extension{RcvMeta: func(_ context.Context, c *Client, m *protocol.Message) bool {
			return m.Channel != protocol.MetaHandshake || !m.ExtBool("refuse") || c.ID() != "" || c.RemoteAddr() == ""
		}},
			check: func(t *testing.T, h *harness, sub, pub *rawClient) {
				hs := handshakeMsg()
				hs.Ext = map[string]json.RawMessage{"refuse": json.RawMessage("true")}
				r := only(t, h.client().must(hs), protocol.MetaHandshake)
				wantError(t, r, "404::message_deleted")
				if r.ClientID != "" || h.sessionCount() != 2 {
					t.Errorf("a deleted handshake made a session: %+v, %d sessions", r, h.sessionCount())
				}
			}, notSeen: "inner:rcvMeta:/meta/handshake"},
		{name: "send: a publish, for everybody", ext: Extension{Send: func(_ context.Context, from, to *Client, m *protocol.Message) bool {
			return to != nil || from == nil || m.Channel != "/x"
		}},
			check: func(t *testing.T, h *harness, sub, pub *rawClient) {
				wantError(t, replyTo(t, pub.must(publishMsg(pub.id, "/x", 1)), "/x"), "404::message_deleted")
				if _, err := h.srv.Publish(context.Background(), "/x", 2); err != nil {
					t.Errorf("a server publish (from nil) was deleted: %v", err)
				}
				if got := dataOf(t, sub.connectNow(), "/x"); !slices.Equal(got, []any{2.0}) {
					t.Errorf("delivered %v, want only the server's [2]", got)
				}
			}},
		{name: "send: a push", ext: Extension{Send: func(_ context.Context, _, to *Client, m *protocol.Message) bool {
			return to == nil || m.Channel != "/pushed"
		}},
			check: func(t *testing.T, h *harness, sub, pub *rawClient) {
				if err := h.srv.Push(context.Background(), sub.id, "/pushed", 1); err != protocol.ErrMessageDeleted {
					t.Errorf("Push = %v, want ErrMessageDeleted", err)
				}
				if d := deliveries(sub.connectNow()); len(d) != 0 {
					t.Errorf("deleted push delivered: %s", dump(d))
				}
			}, notSeen: "outer:send:one:/pushed"},
		{name: "sendMeta: a reply", ext: Extension{SendMeta: func(_ context.Context, _ *Client, m *protocol.Message) bool {
			return m.Channel != protocol.MetaSubscribe || m.Subscription.Channels[0] != "/y"
		}},
			check: func(t *testing.T, h *harness, sub, pub *rawClient) {
				if r := sub.send(subscribeMsg(sub.id, "/y")); r.err != nil || len(r.msgs) != 0 {
					t.Errorf("a deleted reply was sent: %v", r)
				}
				pub.publish("/y", 1) // the subscribe itself happened
				if got := dataOf(t, sub.connectNow(), "/y"); !slices.Equal(got, []any{1.0}) {
					t.Errorf("delivered %v, want [1]", got)
				}
			}, notSeen: "outer:sendMeta:/meta/subscribe"},
		{name: "sendTo: one recipient", ext: Extension{SendTo: func(to *Client, p *Payload) *Payload {
			if to.Flag("mute") != "" {
				return nil
			}
			return p
		}},
			check: func(t *testing.T, h *harness, sub, pub *rawClient) {
				muted := h.client()
				hs := handshakeMsg()
				hs.Ext = map[string]json.RawMessage{"mute": json.RawMessage("true")}
				muted.id = only(t, muted.must(hs), protocol.MetaHandshake).ClientID
				muted.connectNow()
				muted.subscribe("/x")
				pub.publish("/x", 1)
				if d := deliveries(muted.connectNow()); len(d) != 0 {
					t.Errorf("dropped delivery sent: %s", dump(d))
				}
				if got := dataOf(t, sub.connectNow(), "/x"); !slices.Equal(got, []any{1.0}) {
					t.Errorf("the other subscriber got %v, want [1]", got)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log := &authzLog{}
			h := newHarness(t, Options{
				Extensions: []Extension{recordingExtension("outer", log), tc.ext, recordingExtension("inner", log)},
				Authorize: func(_ context.Context, c *Client, m *protocol.Message) error {
					if m.Channel == protocol.MetaHandshake && m.ExtBool("mute") {
						c.SetFlag("mute", "yes")
					}
					return nil
				},
			})
			sub := h.client().start()
			sub.subscribe("/x")
			pub := h.client().start()
			skip := len(log.all())
			tc.check(t, h, sub, pub)
			if tc.notSeen != "" && slices.Contains(log.all()[skip:], tc.notSeen) {
				t.Errorf("%s happened after the message was deleted", tc.notSeen)
			}
		})
	}
}

// TestExtensionChanges: Rcv changes an incoming publish before the
// server handles it, Send changes a publish for all its subscribers, and
// SendMeta sees the built-in timesync's ext in the replies.
func TestExtensionChanges(t *testing.T) {
	t.Parallel()
	var sawTimesync atomic.Bool
	h := newHarness(t, Options{Extensions: []Extension{{
		Rcv: func(_ context.Context, from *Client, m *protocol.Message) bool {
			if from != nil && m.Channel == "/x" {
				setExt(m, "via", "rcv")
			}
			return true
		},
		Send: func(_ context.Context, from, to *Client, m *protocol.Message) bool {
			if to == nil && m.Channel == "/x" {
				m.Data = json.RawMessage(`"rewritten"`)
			}
			return true
		},
		SendMeta: func(_ context.Context, _ *Client, m *protocol.Message) bool {
			if m.Channel == protocol.MetaConnect && m.Ext["timesync"] != nil {
				sawTimesync.Store(true)
			}
			return true
		},
	}}})
	a := h.client().start()
	a.subscribe("/x")
	b := h.client().start()
	b.subscribe("/x")
	a.publish("/x", "original")
	for _, c := range []*rawClient{a, b} {
		msgs := deliveries(c.connectNow())
		if len(msgs) != 1 || string(msgs[0].Data) != `"rewritten"` || string(msgs[0].Ext["via"]) != `"rcv"` {
			t.Errorf("delivered %s, want the rewritten data with ext.via", dump(msgs))
		}
	}
	m := connectMsg(a.id, &protocol.Advice{Timeout: protocol.Ms(0)})
	m.Ext = map[string]json.RawMessage{"timesync": json.RawMessage(`{"tc":1,"l":0,"o":0}`)}
	if r := replyTo(t, a.must(m), protocol.MetaConnect); r.Ext["timesync"] == nil || !sawTimesync.Load() {
		t.Errorf("connect reply %s; SendMeta saw timesync: %v", dump([]*protocol.Message{r}), sawTimesync.Load())
	}
}

// redactCard is the per-recipient hook of the tests and the example:
// a subscriber without the "billing" flag gets /orders messages without
// their "card" field; everything else goes out as it is.
func redactCard(to *Client, p *Payload) *Payload {
	if p.Channel != "/orders" || to.Flag("billing") != "" {
		return p
	}
	m, err := p.Message()
	if err != nil {
		return nil
	}
	var order map[string]any
	if json.Unmarshal(m.Data, &order) != nil {
		return nil
	}
	if _, ok := order["card"]; !ok {
		return p
	}
	delete(order, "card")
	q, err := p.WithData(order)
	if err != nil {
		return nil // drop rather than leak
	}
	return q
}

// billingOptions flags the sessions that handshake with ext.billing.
func billingOptions() Options {
	return Options{
		Extensions: []Extension{{SendTo: redactCard}},
		Authorize: func(_ context.Context, c *Client, m *protocol.Message) error {
			if m.Channel == protocol.MetaHandshake && m.ExtBool("billing") {
				c.SetFlag("billing", "yes")
			}
			return nil
		},
	}
}

const order = `{"item":"book","card":"4111-1111"}`

func wantOrder(t *testing.T, who string, msgs []*protocol.Message, card bool) {
	t.Helper()
	var got []map[string]any
	for _, m := range deliveries(msgs) {
		if m.Channel != "/orders" {
			continue
		}
		var o map[string]any
		if err := json.Unmarshal(m.Data, &o); err != nil {
			t.Fatalf("%s: data %s", who, m.Data)
		}
		if m.ClientID != "" {
			t.Errorf("%s: delivery carries a clientId", who)
		}
		got = append(got, o)
	}
	if len(got) != 1 || got[0]["item"] != "book" {
		t.Fatalf("%s got %v, want one order", who, got)
	}
	if _, has := got[0]["card"]; has != card {
		t.Errorf("%s: card present %v, want %v (%v)", who, has, card, got[0])
	}
}

// TestSendToRedacts: a SendTo hook redacts a field for the subscribers
// without a flag while the others get the original, over long-polling.
func TestSendToRedacts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, billingOptions())
	billing := h.client()
	hs := handshakeMsg()
	hs.Ext = map[string]json.RawMessage{"billing": json.RawMessage("true")}
	billing.id = only(t, billing.must(hs), protocol.MetaHandshake).ClientID
	billing.connectNow()
	billing.subscribe("/orders")
	clerk := h.client().start()
	clerk.subscribe("/orders")
	// A held connect is woken by the publish, as a waiting client is.
	held := clerk.connectAsync()
	h.waitHeld(1)
	shop := h.client().start()
	shop.publish("/orders", json.RawMessage(order))
	wantOrder(t, "clerk", clerk.wait(held, hWait).msgs, false)
	wantOrder(t, "billing", billing.connectNow(), true)
}

// TestSendToRedactsWebSocket: the same over WebSocket.
func TestSendToRedactsWebSocket(t *testing.T) {
	t.Parallel()
	h := newHarness(t, billingOptions())
	start := func(billing bool) *wsClient {
		ws := h.dialWS(nil)
		hs := handshakeMsg()
		hs.SupportedConnectionTypes = []string{protocol.WebSocket}
		if billing {
			hs.Ext = map[string]json.RawMessage{"billing": json.RawMessage("true")}
		}
		ws.send(hs)
		ws.id = only(t, ws.read(hWait), protocol.MetaHandshake).ClientID
		ws.send(subscribeMsg(ws.id, "/orders"))
		if r := replyTo(t, ws.read(hWait), protocol.MetaSubscribe); !r.IsSuccessful() {
			t.Fatalf("subscribe: %+v", r)
		}
		c := connectMsg(ws.id, nil)
		c.ConnectionType = protocol.WebSocket
		ws.send(c)
		return ws
	}
	billing, clerk := start(true), start(false)
	h.waitHeld(2)
	if _, err := h.srv.Publish(context.Background(), "/orders", json.RawMessage(order)); err != nil {
		t.Fatal(err)
	}
	wantOrder(t, "billing", billing.read(hWait), true)
	wantOrder(t, "clerk", clerk.read(hWait), false)
}

// TestSendToEncodesOnce: deliveries a SendTo hook leaves as they are are
// written from the encoding every recipient shares (not encoded again);
// only the changed one is encoded for its recipient.
func TestSendToEncodesOnce(t *testing.T) {
	t.Parallel()
	s := quietServer(t, Options{Extensions: []Extension{{SendTo: redactCard}}})
	ctx := context.Background()
	ids := subscribeSessions(t, s, 3, "/orders")
	if _, err := s.Publish(ctx, "/orders", json.RawMessage(order)); err != nil {
		t.Fatal(err)
	}
	var events [][]byte
	for i, id := range ids {
		info, _, _ := s.engine.Session(ctx, id)
		if i < 2 {
			c := *info
			c.Flags = map[string]string{"billing": "yes"}
			info = &c
		}
		x := &exchange{s: s, ctx: ctx, transport: protocol.LongPolling}
		h := x.newHold(&Client{info: info}, &protocol.Message{Channel: protocol.MetaConnect, ID: "1"}, false)
		if h.start(nil) || len(x.events) != 1 {
			t.Fatalf("connect of %s: %d events", id, len(x.events))
		}
		events = append(events, x.events[0])
		x.done()
	}
	if &events[0][0] != &events[1][0] {
		t.Error("two recipients the hook left alone got different encodings")
	}
	if &events[2][0] == &events[0][0] || strings.Contains(string(events[2]), "card") {
		t.Errorf("the redacted delivery %s shares the original's bytes", events[2])
	}
}

// TestSendToLocalServiceAndHistory: the per-recipient hook also applies
// to local clients' deliveries, service answers and history pages.
func TestSendToLocalServiceAndHistory(t *testing.T) {
	t.Parallel()
	rules, err := ParseChannelRules("/orders:history=10")
	if err != nil {
		t.Fatal(err)
	}
	opts := billingOptions()
	opts.Channels = rules
	opts.Services = map[string]ServiceFunc{"last": func(context.Context, *Client, *protocol.Message) ([]*protocol.Message, error) {
		return []*protocol.Message{{Channel: "/orders", Data: json.RawMessage(order)}}, nil
	}}
	h := newHarness(t, opts)
	ctx := context.Background()

	lc, err := h.srv.NewLocalClient("clerk")
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	got := make(chan json.RawMessage, 1)
	if err := lc.Subscribe("/orders", func(m *protocol.Message, _ string) { got <- m.Data }); err != nil {
		t.Fatal(err)
	}
	if _, err := h.srv.Publish(ctx, "/orders", json.RawMessage(order)); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if strings.Contains(string(d), "card") {
			t.Errorf("local client got %s", d)
		}
	case <-time.After(hWait):
		t.Fatal("no delivery to the local client")
	}

	clerk := h.client().start()
	msgs := clerk.must(publishMsg(clerk.id, "/service/last", map[string]any{}))
	var answer *protocol.Message
	for _, m := range msgs {
		if m.Channel == "/orders" {
			answer = m
		}
	}
	if answer == nil || strings.Contains(string(answer.Data), "card") || !strings.Contains(string(answer.Data), "book") {
		t.Errorf("service answer %s", dump(msgs))
	}
	page := replyTo(t, clerk.must(publishMsg(clerk.id, "/service/history", map[string]string{"channel": "/orders"})), "/service/history")
	if !strings.Contains(string(page.Data), "book") || strings.Contains(string(page.Data), "card") {
		t.Errorf("history page %s", page.Data)
	}
}
