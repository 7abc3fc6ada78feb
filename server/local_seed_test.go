package server

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/bayeux-go/bayeux/protocol"
)

// TestLocalPublishMessageKeepsIDAndExt: as in the seed, a local client's
// publish keeps the id and ext it was given, for local and remote
// subscribers and in the publish event; a service call keeps its id.
func TestLocalPublishMessageKeepsIDAndExt(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	bot, sub := newLocal(t, h, "bot"), newLocal(t, h, "sub")
	fn, ch := listen()
	if err := sub.Subscribe("/chat/*", fn); err != nil {
		t.Fatal(err)
	}
	remote := h.client().start()
	remote.subscribe("/chat/room")

	ext := map[string]json.RawMessage{"source": json.RawMessage(`"seed"`)}
	in := &protocol.Message{Channel: "/chat/room", ID: "seed-1", Data: json.RawMessage(`{"chat":"hi"}`), Ext: ext}
	if err := bot.PublishMessage(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if in.ClientID != "" {
		t.Error("PublishMessage modified its message")
	}
	lm := recvLocal(t, ch)
	if lm.m.ID != "seed-1" || string(lm.m.Ext["source"]) != `"seed"` || string(lm.m.Data) != `{"chat":"hi"}` || lm.from != bot.ID() {
		t.Errorf("local delivery %+v from %q", lm.m, lm.from)
	}
	// The remote subscriber gets the same (no invariant check: the
	// delivery has an id on purpose).
	r := remote.send(connectMsg(remote.id, &protocol.Advice{Timeout: protocol.Ms(0)}))
	var got *protocol.Message
	for _, m := range deliveries(r.msgs) {
		got = m
	}
	if got == nil || got.ID != "seed-1" || string(got.Ext["source"]) != `"seed"` || got.ClientID != "" {
		t.Errorf("remote delivery %s", r.body)
	}
	ev := h.events.wait(t, "publish", func(ev Event) bool { return ev.Kind == EventPublish && ev.ClientID == bot.ID() })
	if ev.Message.ID != "seed-1" || string(ev.Message.Ext["source"]) != `"seed"` {
		t.Errorf("publish event message %+v", ev.Message)
	}

	// Publish, without an id, still delivers none.
	if err := bot.Publish(context.Background(), "/chat/room", 2); err != nil {
		t.Fatal(err)
	}
	if lm := recvLocal(t, ch); lm.m.ID != "" {
		t.Errorf("Publish delivered id %q", lm.m.ID)
	}

	// A service call keeps its id too.
	efn, ech := listen()
	if err := bot.Subscribe("/service/echo", efn); err != nil {
		t.Fatal(err)
	}
	if err := bot.PublishMessage(context.Background(), &protocol.Message{Channel: "/service/echo", ID: "call-7", Data: json.RawMessage(`"x"`)}); err != nil {
		t.Fatal(err)
	}
	if lm := recvLocal(t, ech); lm.m.ID != "call-7" || string(lm.m.Data) != `"x"` {
		t.Errorf("service reply %+v", lm.m)
	}

	for _, bad := range []*protocol.Message{
		nil,
		{Channel: "/chat/room", ID: "has space", Data: json.RawMessage(`1`)},
		{Channel: "/chat/room", Data: json.RawMessage(`{`)},
		{Channel: "/meta/subscribe", Data: json.RawMessage(`1`)},
	} {
		if err := bot.PublishMessage(context.Background(), bad); err == nil {
			t.Errorf("PublishMessage(%+v) succeeded", bad)
		} else if bad != nil && bad.Channel == "/meta/subscribe" && !errors.Is(err, protocol.ErrPublishDenied) {
			t.Errorf("publish to /meta: %v", err)
		}
	}
}
