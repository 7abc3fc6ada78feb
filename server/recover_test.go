package server

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// recoverEntry decodes a subscribe reply's ext.recover entry of channel
// (nil: none).
type recoverEntry struct {
	Pos       string              `json:"pos"`
	Recovered *bool               `json:"recovered"`
	Messages  []*protocol.Message `json:"messages"`
}

func recoverOf(t *testing.T, r *protocol.Message, channel string) *recoverEntry {
	t.Helper()
	raw, ok := r.Ext[ExtRecover]
	if !ok {
		return nil
	}
	var m map[string]*recoverEntry
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("ext.recover %s: %v", raw, err)
	}
	return m[channel]
}

// subscribeRecover subscribes c to channel asking to recover since (a
// position string, "" for none yet) and returns the reply.
func (c *rawClient) subscribeRecover(channel, since string) *protocol.Message {
	c.t.Helper()
	m := subscribeMsg(c.id, channel)
	b, _ := json.Marshal(map[string]string{channel: since})
	m.Ext = map[string]json.RawMessage{ExtRecover: b}
	return replyTo(c.t, c.must(m), protocol.MetaSubscribe)
}

func nums(t *testing.T, msgs []*protocol.Message) []int {
	t.Helper()
	var out []int
	for _, m := range msgs {
		n, err := strconv.Atoi(string(m.Data))
		if err != nil {
			t.Fatalf("data %s", m.Data)
		}
		out = append(out, n)
	}
	return out
}

// TestRecoverProtocol: the positions in deliveries and subscribe replies,
// and what a subscribe asking to recover gets, with and without the
// messages still kept.
func TestRecoverProtocol(t *testing.T) {
	h := newHarness(t, Options{MaxRecover: 4, Channels: []ChannelRule{{Pattern: "/h/**", History: 5}}})
	a := h.client().start()
	r := replyTo(t, a.must(subscribeMsg(a.id, "/h/a", "/plain")), protocol.MetaSubscribe)
	if e := recoverOf(t, r, "/h/a"); e == nil || e.Pos != "" || e.Recovered != nil {
		t.Fatalf("subscribe to a channel with history and no message yet: ext %s", r.Ext[ExtRecover])
	}
	if e := recoverOf(t, r, "/plain"); e != nil {
		t.Errorf("a channel without history has an ext.recover entry: %+v", e)
	}
	for i := 1; i <= 3; i++ {
		a.publish("/h/a", i)
	}
	var pos []protocol.Position
	for _, d := range deliveries(a.connectNow()) {
		p, ok := protocol.PositionOf(d)
		if !ok {
			t.Fatalf("delivery without its position: %s", dump([]*protocol.Message{d}))
		}
		pos = append(pos, p)
	}
	if len(pos) != 3 || pos[0].Offset != 1 || pos[2].Offset != 3 || pos[0].Epoch != pos[2].Epoch {
		t.Fatalf("positions %v", pos)
	}
	epoch := pos[0].Epoch
	b := h.client().start()
	if e := recoverOf(t, replyTo(t, b.must(subscribeMsg(b.id, "/h/a")), protocol.MetaSubscribe), "/h/a"); e == nil || e.Pos != pos[2].String() {
		t.Errorf("a new subscription starts after %v, reply says %+v", pos[2], e)
	}

	type testCase struct {
		name      string
		since     string
		recovered bool
		want      []int
	}
	check := func(tc testCase) {
		t.Helper()
		c := h.client().start()
		r := c.subscribeRecover("/h/a", tc.since)
		if !r.IsSuccessful() {
			t.Errorf("%s: subscribe failed: %s", tc.name, r.Error)
			return
		}
		e := recoverOf(t, r, "/h/a")
		if e == nil || e.Recovered == nil || *e.Recovered != tc.recovered || !slices.Equal(nums(t, e.Messages), tc.want) {
			t.Errorf("%s: ext.recover %s, want recovered %v %v", tc.name, r.Ext[ExtRecover], tc.recovered, tc.want)
		}
		for _, m := range e.Messages {
			if p, ok := protocol.PositionOf(m); !ok || p.Epoch != epoch || m.Channel != "/h/a" {
				t.Errorf("%s: recovered %s", tc.name, dump([]*protocol.Message{m}))
			}
		}
	}
	for _, tc := range []testCase{
		{"since the first", epoch + ":1", true, []int{2, 3}},
		{"since the newest", epoch + ":3", true, nil},
		{"since before the stream", "", true, []int{1, 2, 3}},
		{"another epoch", "x" + epoch + ":1", false, nil},
	} {
		check(tc)
	}
	// After a recovery, what follows is live, and only that.
	c := h.client().start()
	c.subscribeRecover("/h/a", epoch+":2")
	a.publish("/h/a", 4)
	if got := deliveries(c.connectNow()); !slices.Equal(nums(t, got), []int{4}) {
		t.Errorf("after the recovery the session got %s", dump(got))
	}
	// Positions 1..4 then 5..7; history=5 keeps 3..7.
	for range 3 {
		a.publish("/h/a", 100)
	}
	before := h.srv.Stats().Refused.Load(RefusedRecover)
	for _, tc := range []testCase{
		{"removed by the retention", epoch + ":1", false, nil},
		{"just kept", epoch + ":2", false, nil}, // 5 missed, MaxRecover 4
		{"within MaxRecover", epoch + ":4", true, []int{100, 100, 100}},
		{"since before the stream, trimmed", "", false, nil},
	} {
		check(tc)
	}
	if n := h.srv.Stats().Refused.Load(RefusedRecover) - before; n != 1 {
		t.Errorf("%s counted %d times, want once (MaxRecover)", RefusedRecover, n)
	}

	for _, bad := range []string{`{"/h/a":"nope"}`, `{"/h/a":5}`, `"E:1"`, `{"/h/a":"E:-1"}`} {
		m := subscribeMsg(c.id, "/h/a")
		m.Ext = map[string]json.RawMessage{ExtRecover: json.RawMessage(bad)}
		wantError(t, replyTo(t, c.must(m), protocol.MetaSubscribe), "400::recover_invalid")
	}
}

// TestPublishPositionIsTheServers: a position a client puts in ext.pos is
// replaced by the server's; its other ext stays.
func TestPublishPositionIsTheServers(t *testing.T) {
	h := newHarness(t, Options{Channels: []ChannelRule{{Pattern: "/h", History: 10}}})
	c := h.client().start()
	c.subscribe("/h")
	m := publishMsg(c.id, "/h", 1)
	m.Ext = map[string]json.RawMessage{"pos": json.RawMessage(`"forged:99"`), "x": json.RawMessage(`1`)}
	if r := replyTo(t, c.must(m), "/h"); !r.IsSuccessful() {
		t.Fatal(r.Error)
	}
	d := deliveries(c.connectNow())
	if len(d) != 1 || string(d[0].Ext["x"]) != "1" {
		t.Fatalf("delivered %s", dump(d))
	}
	if p, ok := protocol.PositionOf(d[0]); !ok || p.Epoch == "forged" || p.Offset != 1 {
		t.Errorf("ext.pos %s", d[0].Ext["pos"])
	}
	pg, err := h.srv.History(context.Background(), "/h", HistoryQuery{})
	if err != nil || len(pg.Messages) != 1 || pg.Messages[0].Pos.Offset != 1 {
		t.Errorf("history %+v, %v", pg, err)
	}
}

// gatedHistory is a HistoryStore whose writes are durable only when the
// test says so.
type gatedHistory struct {
	*MemoryHistory
	stored chan *Stored
}

func (g *gatedHistory) Append(channel string, pol HistoryPolicy, encode func(protocol.Position) []byte) (protocol.Position, *Stored, error) {
	pos, _, err := g.MemoryHistory.Append(channel, pol, encode)
	s := NewStored()
	g.stored <- s
	return pos, s, err
}

// TestPublishReplyWaitsForStorage: subscribers get a message at once;
// its publisher's reply waits until it is stored, and is a failure when
// storing failed.
func TestPublishReplyWaitsForStorage(t *testing.T) {
	g := &gatedHistory{MemoryHistory: NewMemoryHistory(0), stored: make(chan *Stored, 1)}
	h := newHarness(t, Options{HistoryStore: g, Channels: []ChannelRule{{Pattern: "/h", History: 10}}})
	sub := h.client().start()
	sub.subscribe("/h")
	held := sub.connectAsync()
	pub := h.client().start()
	for _, storeErr := range []error{nil, errors.New("disk full")} {
		reply := pub.async(publishMsg(pub.id, "/h", "x"))
		var s *Stored
		select {
		case s = <-g.stored:
		case <-time.After(hWait):
			t.Fatal("the message never reached the store")
		}
		if storeErr == nil {
			// The subscriber has it before it is stored.
			if d := deliveries(sub.wait(held, hWait).msgs); len(d) != 1 {
				t.Fatalf("held connect got %s", dump(d))
			}
		}
		pub.pending(reply, 100*time.Millisecond, "the publish reply before the message is stored")
		s.Done(storeErr)
		r := replyTo(t, pub.wait(reply, hWait).msgs, "/h")
		if storeErr == nil && !r.IsSuccessful() {
			t.Errorf("stored: reply %s", r.Error)
		}
		if storeErr != nil {
			wantError(t, r, "500::server_error")
		}
	}
}

// onlyEngine hides every optional interface of an engine.
type onlyEngine struct{ Engine }

func TestHistoryNeedsAHistorian(t *testing.T) {
	_, err := New(Options{Engine: onlyEngine{NewMemoryEngine(MemoryEngineOptions{})}, Channels: []ChannelRule{{Pattern: "/h", History: 1}}})
	if err == nil {
		t.Fatal("New accepted history on an engine that keeps none")
	}
	srv, err := New(Options{Engine: onlyEngine{NewMemoryEngine(MemoryEngineOptions{})}, Channels: []ChannelRule{{Pattern: "/h", Presence: true}}})
	if err != nil {
		t.Fatalf("presence alone: %v", err)
	}
	_ = srv.Shutdown(context.Background())
}

func TestParseChannelRules(t *testing.T) {
	type testCase struct {
		in      string
		want    []ChannelRule
		wantErr bool
	}
	for _, tc := range []testCase{
		{in: "", want: nil},
		{in: "/chat/**:history=10000,presence", want: []ChannelRule{{Pattern: "/chat/**", History: 10000, Presence: true}}},
		{in: "/a:presence; /b/*:history=5,ttl=1h\n/c:history=1", want: []ChannelRule{
			{Pattern: "/a", Presence: true}, {Pattern: "/b/*", History: 5, HistoryTTL: time.Hour}, {Pattern: "/c", History: 1}}},
		{in: "/a", wantErr: true},
		{in: "/a:", wantErr: true},
		{in: "/a:history", wantErr: true},
		{in: "/a:history=0", wantErr: true},
		{in: "/a:history=-1", wantErr: true},
		{in: "/a:ttl=1h", wantErr: true},
		{in: "/a:history=1,ttl=soon", wantErr: true},
		{in: "/a:presence=yes", wantErr: true},
		{in: "/a:color=red", wantErr: true},
		{in: "a:presence", wantErr: true},
		{in: "/a/**/b:presence", wantErr: true},
	} {
		got, err := ParseChannelRules(tc.in)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("ParseChannelRules(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		for _, r := range got {
			if again, err := ParseChannelRules(r.String()); err != nil || len(again) != 1 || again[0] != r {
				t.Errorf("%+v does not survive String: %q", r, r.String())
			}
		}
	}
}

// TestChannelRulesExcluded: meta, service and presence channels never
// keep a history, whatever the patterns say; wildcards neither.
func TestChannelRulesExcluded(t *testing.T) {
	cr, err := newChannelRules([]ChannelRule{{Pattern: "/**", History: 5, Presence: true}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"/meta/connect", "/service/echo", "/presence/chat/a", "/presence", "/a/*"} {
		if cr.policy(ch) != nil || cr.hasPresence(ch) {
			t.Errorf("%s has history or presence", ch)
		}
	}
	if cr.policy("/a/b") == nil || !cr.hasPresence("/a/b") {
		t.Error("/a/b has none")
	}
}

// TestLocalPublishWithIDKeepsPosition: a local client's publish keeps its
// id and ext, and on a channel with history gets its position too: the
// delivery is valid JSON with all three.
func TestLocalPublishWithIDKeepsPosition(t *testing.T) {
	h := newHarness(t, Options{Channels: []ChannelRule{{Pattern: "/h", History: 10}}})
	lc, err := h.srv.NewLocalClient("bot")
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	m := &protocol.Message{Channel: "/h", ID: "m-1", Data: json.RawMessage(`{"n":1}`),
		Ext: map[string]json.RawMessage{"tag": json.RawMessage(`"x"`)}}
	if err := lc.PublishMessage(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	pg, err := h.srv.History(context.Background(), "/h", HistoryQuery{})
	if err != nil || len(pg.Messages) != 1 {
		t.Fatalf("history %+v, %v", pg, err)
	}
	var got protocol.Message
	if err := json.Unmarshal(pg.Messages[0].JSON, &got); err != nil {
		t.Fatalf("stored %s: %v", pg.Messages[0].JSON, err)
	}
	if p, ok := protocol.PositionOf(&got); got.ID != "m-1" || string(got.Ext["tag"]) != `"x"` || !ok || p != pg.Messages[0].Pos {
		t.Errorf("stored %s", pg.Messages[0].JSON)
	}
}

// TestWithPosition: the position goes into the delivery's ext, a new one
// or the one it has, and the result is the same JSON with it.
func TestWithPosition(t *testing.T) {
	pos := protocol.Position{Epoch: "e", Offset: 7}
	for _, tc := range []struct {
		name string
		m    *protocol.Message
	}{
		{"no ext", &protocol.Message{Channel: "/a", Data: json.RawMessage(`{"x":{"y":1}}`)}},
		{"ext", &protocol.Message{Channel: "/a", Data: json.RawMessage(`1`), Ext: map[string]json.RawMessage{"k": json.RawMessage(`{"z":2}`)}}},
		{"null data", &protocol.Message{Channel: "/a"}},
	} {
		b, err := protocol.EncodeDelivery(nil, tc.m.Channel, tc.m.Data, tc.m.Ext)
		if err != nil {
			t.Fatal(err)
		}
		out := WithPosition(b, len(tc.m.Ext) > 0, pos)
		var got protocol.Message
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s: %s: %v", tc.name, out, err)
		}
		if p, ok := protocol.PositionOf(&got); !ok || p != pos || got.Channel != "/a" || len(got.Ext) != len(tc.m.Ext)+1 {
			t.Errorf("%s: %s", tc.name, out)
		}
	}
}

// TestPresenceFollowsTheChannel: who may not subscribe to a channel may
// not subscribe to its presence either, nor ask /service/presence or
// /service/history about it.
func TestPresenceFollowsTheChannel(t *testing.T) {
	h := newHarness(t, Options{
		Channels: []ChannelRule{{Pattern: "/secret", History: 5, Presence: true}, {Pattern: "/open", Presence: true}},
		Authorize: func(_ context.Context, _ *Client, m *protocol.Message) error {
			if m.Channel == protocol.MetaSubscribe && slices.Contains(m.Subscription.Channels, "/secret") {
				return protocol.ErrSubscribeDenied
			}
			return nil
		},
	})
	c := h.client().start()
	denied := "403:denied_by_security_policy:subscribe_denied"
	wantError(t, replyTo(t, c.must(subscribeMsg(c.id, "/presence/secret")), protocol.MetaSubscribe), denied)
	for _, svc := range []string{"/service/presence", "/service/history"} {
		wantError(t, replyTo(t, c.must(publishMsg(c.id, svc, map[string]string{"channel": "/secret"})), svc), denied)
	}
	c.subscribe("/presence/open")
}
