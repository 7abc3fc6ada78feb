package server

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

func ackConnect(id string, ack uint64, advice *protocol.Advice) *protocol.Message {
	m := connectMsg(id, advice)
	b, _ := json.Marshal(ack)
	m.Ext = map[string]json.RawMessage{"ack": b}
	return m
}

func replyAck(t *testing.T, msgs []*protocol.Message) uint64 {
	t.Helper()
	r := replyTo(t, msgs, protocol.MetaConnect)
	var n uint64
	if err := json.Unmarshal(r.Ext["ack"], &n); err != nil {
		t.Fatalf("connect reply without ext.ack number: %+v", r)
	}
	return n
}

// TestAckRedeliversWhenReplyLost: with the ack extension, messages stay
// queued until a connect acknowledges their batch; a client that lost a
// connect reply gets the same messages again, in order, and nothing after
// acknowledging.
func TestAckRedeliversWhenReplyLost(t *testing.T) {
	h := newHarness(t, Options{})
	sub := h.client()
	hs := handshakeMsg()
	hs.Ext = map[string]json.RawMessage{"ack": json.RawMessage("true")}
	r := only(t, sub.must(hs), protocol.MetaHandshake)
	if string(r.Ext["ack"]) != "true" {
		t.Fatalf("handshake reply ext = %v, want ack:true", r.Ext)
	}
	sub.id = r.ClientID
	first := sub.must(ackConnect(sub.id, 0, &protocol.Advice{Timeout: protocol.Ms(0)}))
	batch := replyAck(t, first)
	sub.subscribe("/ack/a")
	pub := h.client().start()
	for i := range 3 {
		pub.publish("/ack/a", i)
	}
	got := sub.must(ackConnect(sub.id, batch, &protocol.Advice{Timeout: protocol.Ms(0)}))
	if d := dataOf(t, got, "/ack/a"); len(d) != 3 {
		t.Fatalf("first delivery: %v", d)
	}
	lost := replyAck(t, got)
	// The reply above is "lost": the client sends its old batch again.
	again := sub.must(ackConnect(sub.id, batch, &protocol.Advice{Timeout: protocol.Ms(0)}))
	if d := dataOf(t, again, "/ack/a"); len(d) != 3 || d[0].(float64) != 0 || d[2].(float64) != 2 {
		t.Fatalf("redelivery: %v", d)
	}
	if replyAck(t, again) != lost {
		t.Fatalf("batch changed on redelivery")
	}
	// Acknowledged: nothing comes again.
	done := sub.must(ackConnect(sub.id, lost, &protocol.Advice{Timeout: protocol.Ms(0)}))
	if d := dataOf(t, done, "/ack/a"); len(d) != 0 {
		t.Fatalf("acknowledged messages delivered again: %v", d)
	}
}

// TestAckSupersededConnectCarriesNoBatch: when connects overlap, the older
// one returns without events and without ext.ack, and the newer one has
// the messages.
func TestAckSupersededConnectCarriesNoBatch(t *testing.T) {
	h := newHarness(t, Options{})
	sub := h.client()
	hs := handshakeMsg()
	hs.Ext = map[string]json.RawMessage{"ack": json.RawMessage("true")}
	sub.id = only(t, sub.must(hs), protocol.MetaHandshake).ClientID
	batch := replyAck(t, sub.must(ackConnect(sub.id, 0, &protocol.Advice{Timeout: protocol.Ms(0)})))
	sub.subscribe("/ack/b")
	old := sub.async(ackConnect(sub.id, batch, nil))
	h.waitHeld(1)
	newer := sub.async(ackConnect(sub.id, batch, nil))
	o := sub.wait(old, hWait)
	if r := replyTo(t, o.msgs, protocol.MetaConnect); r.Ext["ack"] != nil || len(deliveries(o.msgs)) != 0 {
		t.Fatalf("superseded connect reply: %s", o.body)
	}
	h.client().start().publish("/ack/b", "x")
	n := sub.wait(newer, hWait)
	if d := dataOf(t, n.msgs, "/ack/b"); len(d) != 1 {
		t.Fatalf("newer connect: %s", n.body)
	}
}

// TestTimesync answers the timesync extension as CometD's server does.
func TestTimesync(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.client()
	c.handshake()
	tc := time.Now().UnixMilli()
	m := connectMsg(c.id, &protocol.Advice{Timeout: protocol.Ms(0)})
	m.Ext = map[string]json.RawMessage{"timesync": json.RawMessage(`{"tc":` + jsonInt(tc) + `,"l":5,"o":-3}`)}
	r := replyTo(t, c.must(m), protocol.MetaConnect)
	var ts struct{ TC, TS, P, A int64 }
	if err := json.Unmarshal(r.Ext["timesync"], &ts); err != nil {
		t.Fatalf("no timesync in %+v", r)
	}
	if ts.TC != tc || ts.TS < tc-1000 || ts.P < 0 || ts.A != tc-3+5-ts.TS {
		t.Fatalf("timesync reply %+v for tc %d", ts, tc)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }
