package enginetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// RunHistory runs the history scenarios only (Run runs them too), for a
// Historian engine with another history store behind it.
func RunHistory(t *testing.T, newEngine func(t *testing.T, opts Options) server.Engine) {
	runScenarios(t, newEngine, historyScenarios)
}

var historyScenarios = []scenario{
	{"HistoryPositions", testHistoryPositions},
	{"HistoryPages", testHistoryPages},
	{"HistoryRetention", testHistoryRetention},
	{"HistoryAge", testHistoryAge},
	{"HistoryEpochs", testHistoryEpochs},
	{"HistorySubscribeRace", testHistorySubscribeRace},
	{"HistoryChannels", testHistoryChannels},
}

// historian returns n's engine as a Historian, skipping the scenario for
// an engine that keeps no history.
func historian(t *testing.T, n *Node) server.Historian {
	h, ok := n.Engine.(server.Historian)
	if !ok {
		t.Skipf("%T keeps no history", n.Engine)
	}
	return h
}

// policy is a history policy keeping n messages.
func policy(n int) *server.HistoryPolicy { return &server.HistoryPolicy{MaxLen: n} }

// PublishKept publishes data n on channel, kept under pol, and returns
// the position the engine gave it.
func PublishKept(t testing.TB, e server.Engine, channel string, n int, pol *server.HistoryPolicy) protocol.Position {
	t.Helper()
	p := Payload(channel, n)
	p.History = pol
	if _, err := e.Publish(context.Background(), p); err != nil {
		t.Fatalf("Publish(%s, %d): %v", channel, n, err)
	}
	if err := p.Stored.Wait(context.Background()); err != nil {
		t.Fatalf("Publish(%s, %d) not stored: %v", channel, n, err)
	}
	return p.Pos
}

// Read reads a history or fails the test.
func Read(t testing.TB, h server.Historian, channel string, q server.HistoryQuery) server.HistoryPage {
	t.Helper()
	pg, err := h.History(context.Background(), channel, q)
	if err != nil {
		t.Fatalf("History(%s): %v", channel, err)
	}
	return pg
}

// PageNums is the data of a page's messages, in order, checking that
// each carries its position in ext.pos.
func PageNums(t testing.TB, pg server.HistoryPage) []int {
	t.Helper()
	out := make([]int, 0, len(pg.Messages))
	for _, p := range pg.Messages {
		checkPos(t, p)
		out = append(out, Num(t, p))
	}
	return out
}

// PosOf is the position a delivery carries in ext.pos (Payload.Pos is
// set only where the engine gave it).
func PosOf(t testing.TB, p *server.Payload) protocol.Position {
	t.Helper()
	m, err := p.Message()
	if err != nil {
		t.Fatal(err)
	}
	pos, ok := protocol.PositionOf(m)
	if !ok {
		t.Fatalf("delivery %s has no ext.pos", p.JSON)
	}
	return pos
}

// checkPos checks that p's JSON carries p.Pos in ext.pos.
func checkPos(t testing.TB, p *server.Payload) {
	t.Helper()
	m, err := p.Message()
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := protocol.PositionOf(m); !ok || got != p.Pos {
		t.Errorf("delivery %s: ext.pos %v, want %v", p.JSON, got, p.Pos)
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// testHistoryPositions: a kept message gets the next position of its
// channel's stream, in its delivery too, and subscribers get the same
// bytes as the history; a message not kept has no position.
func testHistoryPositions(t *testing.T, m *maker) {
	n := m.node(t, Options{})
	h := historian(t, n)
	e := n.Engine
	ctx := context.Background()
	CreateSession(t, e, "s")
	top, err := h.SubscribeHistory(ctx, "s", "/h", 0)
	if err != nil || !top.IsZero() {
		t.Fatalf("SubscribeHistory of a new channel = %v, %v; want the zero position", top, err)
	}
	var last protocol.Position
	for i := range 5 {
		pos := PublishKept(t, e, "/h", i, policy(10))
		if pos.Epoch == "" || (i > 0 && !pos.After(last)) {
			t.Errorf("message %d got position %v after %v", i, pos, last)
		}
		last = pos
	}
	b := TakeAll(t, e, "s")
	pg := Read(t, h, "/h", server.HistoryQuery{Limit: 10})
	if got := PageNums(t, pg); !slices.Equal(got, seq(0, 4)) {
		t.Fatalf("history = %v, want 0..4", got)
	}
	if pg.Top != last || pg.More {
		t.Errorf("page top %v more %v, want %v false", pg.Top, pg.More, last)
	}
	if len(b.Payloads) != 5 {
		t.Fatalf("the subscriber got %v, want 0..4", Nums(t, b))
	}
	for i, p := range b.Payloads {
		if string(p.JSON) != string(pg.Messages[i].JSON) {
			t.Errorf("delivered %s, history holds %s", p.JSON, pg.Messages[i].JSON)
		}
		checkPos(t, pg.Messages[i])
	}
	// Not kept: no position, the bytes as published.
	p := Payload("/h", 99)
	want := string(p.JSON)
	if _, err := e.Publish(ctx, p); err != nil {
		t.Fatal(err)
	}
	if b := TakeAll(t, e, "s"); len(b.Payloads) != 1 || string(b.Payloads[0].JSON) != want {
		t.Errorf("a message without History was delivered as %v, want %s", Nums(t, b), want)
	}
	if pg := Read(t, h, "/h", server.HistoryQuery{Limit: 10}); len(pg.Messages) != 5 {
		t.Errorf("a message without History was kept: %v", PageNums(t, pg))
	}
	// A second subscriber learns the newest position.
	CreateSession(t, e, "s2")
	if top, err := h.SubscribeHistory(ctx, "s2", "/h", 0); err != nil || top != last {
		t.Errorf("SubscribeHistory = %v, %v; want %v", top, err, last)
	}
}

// testHistoryPages: pages before a position join without gap or
// duplicate down to the first message; pages since a position up to the
// newest; both within their count and byte bounds.
func testHistoryPages(t *testing.T, m *maker) {
	n := m.node(t, Options{})
	h := historian(t, n)
	var pos []protocol.Position
	for i := range 25 {
		pos = append(pos, PublishKept(t, n.Engine, "/p", i, policy(100)))
	}
	// Newest first, page by page, down to the first.
	var got []int
	q := server.HistoryQuery{Limit: 10}
	for range 5 {
		pg := Read(t, h, "/p", q)
		got = append(PageNums(t, pg), got...)
		if !pg.More {
			break
		}
		q.Before = &pg.Messages[0].Pos
	}
	if !slices.Equal(got, seq(0, 24)) {
		t.Errorf("scrolling back in pages of 10 gave %v, want 0..24", got)
	}
	// Every message has the same size (data 10..24; 0..9 are a byte less).
	size := int64(len(Read(t, h, "/p", server.HistoryQuery{Limit: 1}).Messages[0].JSON))
	for _, tc := range []struct {
		name string
		q    server.HistoryQuery
		want []int
		more bool
	}{
		{"newest", server.HistoryQuery{Limit: 3}, seq(22, 24), true},
		{"before 5", server.HistoryQuery{Before: &pos[5], Limit: 10}, seq(0, 4), false},
		{"before 1", server.HistoryQuery{Before: &pos[1], Limit: 10}, []int{0}, false},
		{"before the first", server.HistoryQuery{Before: &pos[0], Limit: 10}, nil, false},
		{"since 20", server.HistoryQuery{Since: &pos[20], Limit: 10}, seq(21, 24), false},
		{"since 10, 3", server.HistoryQuery{Since: &pos[10], Limit: 3}, seq(11, 13), true},
		{"since the newest", server.HistoryQuery{Since: &pos[24], Limit: 10}, nil, false},
		{"since before the first", server.HistoryQuery{Since: &protocol.Position{Epoch: pos[0].Epoch}, Limit: 30}, seq(0, 24), false},
		{"newest, bytes", server.HistoryQuery{Limit: 10, MaxBytes: 2*size + size/2}, seq(23, 24), true},
		{"since 10, bytes", server.HistoryQuery{Since: &pos[10], Limit: 10, MaxBytes: 2*size + size/2}, seq(11, 12), true},
		{"one however big", server.HistoryQuery{Limit: 10, MaxBytes: 1}, []int{24}, true},
	} {
		pg := Read(t, h, "/p", tc.q)
		if got := PageNums(t, pg); !slices.Equal(got, tc.want) || pg.More != tc.more || pg.Lost {
			t.Errorf("%s: %v more %v lost %v; want %v more %v", tc.name, got, pg.More, pg.Lost, tc.want, tc.more)
		}
		if pg.Top != pos[24] {
			t.Errorf("%s: top %v, want %v", tc.name, pg.Top, pos[24])
		}
	}
}

// testHistoryRetention: a history keeps MaxLen messages and MaxBytes
// bytes (the newest always); reading since a removed message says lost.
func testHistoryRetention(t *testing.T, m *maker) {
	n := m.node(t, Options{})
	h := historian(t, n)
	var pos []protocol.Position
	for i := range 8 {
		pos = append(pos, PublishKept(t, n.Engine, "/r", i, policy(5)))
	}
	if got := PageNums(t, Read(t, h, "/r", server.HistoryQuery{Limit: 10})); !slices.Equal(got, seq(3, 7)) {
		t.Errorf("MaxLen 5 kept %v, want 3..7", got)
	}
	for _, tc := range []struct {
		since int
		lost  bool
		want  []int
	}{{0, true, nil}, {1, true, nil}, {2, false, seq(3, 7)}, {5, false, seq(6, 7)}} {
		pg := Read(t, h, "/r", server.HistoryQuery{Since: &pos[tc.since], Limit: 10})
		if got := PageNums(t, pg); pg.Lost != tc.lost || !slices.Equal(got, tc.want) {
			t.Errorf("since %d: %v lost %v; want %v lost %v", tc.since, got, pg.Lost, tc.want, tc.lost)
		}
	}
	// Bytes: room for 3 messages; a big one stays alone.
	PublishKept(t, n.Engine, "/s", 0, policy(1))
	size := int64(len(Read(t, h, "/s", server.HistoryQuery{Limit: 1}).Messages[0].JSON))
	bp := &server.HistoryPolicy{MaxLen: 100, MaxBytes: 3*size + size/2}
	for i := range 6 {
		PublishKept(t, n.Engine, "/b", i, bp)
	}
	if got := PageNums(t, Read(t, h, "/b", server.HistoryQuery{Limit: 10})); !slices.Equal(got, seq(3, 5)) {
		t.Errorf("MaxBytes for 3 messages kept %v, want 3..5", got)
	}
	big := SizedPayload("/b", 6, 1000)
	big.History = bp
	if _, err := n.Engine.Publish(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	if err := big.Stored.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := PageNums(t, Read(t, h, "/b", server.HistoryQuery{Limit: 10})); !slices.Equal(got, []int{6}) {
		t.Errorf("after a message over MaxBytes: %v, want it alone", got)
	}
}

// testHistoryAge: messages older than MaxAge are no longer read, and
// reading since one of them says lost.
func testHistoryAge(t *testing.T, m *maker) {
	n := m.node(t, Options{})
	h := historian(t, n)
	pol := &server.HistoryPolicy{MaxLen: 100, MaxAge: 300 * time.Millisecond}
	first := PublishKept(t, n.Engine, "/a", 0, pol)
	PublishKept(t, n.Engine, "/a", 1, pol)
	q := server.HistoryQuery{Limit: 10, MaxAge: pol.MaxAge}
	if got := PageNums(t, Read(t, h, "/a", q)); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("fresh messages: %v, want 0 1", got)
	}
	deadline := time.Now().Add(Wait)
	for len(Read(t, h, "/a", q).Messages) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("messages past MaxAge still read after %v", Wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
	since := first
	since.Offset--
	if pg := Read(t, h, "/a", server.HistoryQuery{Since: &since, Limit: 10, MaxAge: pol.MaxAge}); !pg.Lost {
		t.Errorf("since before expired messages: lost false, %v", PageNums(t, pg))
	}
	last := PublishKept(t, n.Engine, "/a", 2, pol)
	if pg := Read(t, h, "/a", q); !slices.Equal(PageNums(t, pg), []int{2}) || pg.Top != last {
		t.Errorf("after expiry, a new message: %v top %v", PageNums(t, pg), pg.Top)
	}
}

// testHistoryEpochs: a position of another epoch (a reset or forgotten
// stream) reads as lost; an unknown channel has no stream.
func testHistoryEpochs(t *testing.T, m *maker) {
	n := m.node(t, Options{})
	h := historian(t, n)
	pos := PublishKept(t, n.Engine, "/e", 0, policy(10))
	other := protocol.Position{Epoch: "x" + pos.Epoch, Offset: 0}
	if pg := Read(t, h, "/e", server.HistoryQuery{Since: &other, Limit: 10}); !pg.Lost {
		t.Errorf("since a position of another epoch: lost false, %v", PageNums(t, pg))
	}
	if pg := Read(t, h, "/e", server.HistoryQuery{Before: &other, Limit: 10}); len(pg.Messages) != 0 || pg.Top != pos {
		t.Errorf("before a position of another epoch: %v top %v", PageNums(t, pg), pg.Top)
	}
	// The zero position: "there was no stream": everything since.
	if pg := Read(t, h, "/e", server.HistoryQuery{Since: &protocol.Position{}, Limit: 10}); pg.Lost || !slices.Equal(PageNums(t, pg), []int{0}) {
		t.Errorf("since the zero position: %v lost %v", PageNums(t, pg), pg.Lost)
	}
	pg := Read(t, h, "/unknown", server.HistoryQuery{Limit: 10})
	if len(pg.Messages) != 0 || !pg.Top.IsZero() || pg.More {
		t.Errorf("an unknown channel: %+v", pg)
	}
	if pg := Read(t, h, "/unknown", server.HistoryQuery{Since: &pos, Limit: 10}); !pg.Lost {
		t.Error("since a position on a channel without a stream: lost false")
	}
	if pg := Read(t, h, "/unknown", server.HistoryQuery{Since: &protocol.Position{}, Limit: 10}); pg.Lost {
		t.Error("since the zero position on a channel without a stream: lost")
	}
}

// testHistorySubscribeRace: while messages are published (on another
// node, if any), sessions subscribe one after another; each gets exactly
// the messages after the position its subscribe returned, and reading
// the history since that position gives none of them twice.
func testHistorySubscribeRace(t *testing.T, m *maker) {
	n := m.node(t, Options{})
	h := historian(t, n)
	pub := m.peer(t, n, Options{}).Engine
	ctx := context.Background()
	const total, sessions = 300, 20
	CreateSession(t, n.Engine, "first")
	if _, err := h.SubscribeHistory(ctx, "first", "/race", 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	positions := make([]protocol.Position, total)
	go func() {
		defer wg.Done()
		for i := range total {
			positions[i] = PublishKept(t, pub, "/race", i, policy(1000))
		}
	}()
	tops := make([]protocol.Position, sessions)
	for i := range sessions {
		id := fmt.Sprintf("s%d", i)
		CreateSession(t, n.Engine, id)
		top, err := h.SubscribeHistory(ctx, id, "/race", 0)
		if err != nil {
			t.Fatal(err)
		}
		tops[i] = top
	}
	wg.Wait()
	deadline := time.Now().Add(Wait)
	got := make([][]*server.Payload, sessions)
	for i := range sessions {
		id := fmt.Sprintf("s%d", i)
		for {
			got[i] = append(got[i], TakeAll(t, n.Engine, id).Payloads...)
			if (len(got[i]) > 0 && PosOf(t, got[i][len(got[i])-1]) == positions[total-1]) || time.Now().After(deadline) {
				break
			}
			if len(got[i]) == 0 && tops[i] == positions[total-1] {
				break // subscribed after the last
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i := range sessions {
		// What the session missed comes from the history.
		var before []int
		if !tops[i].IsZero() {
			since := protocol.Position{Epoch: positions[0].Epoch}
			for q := (server.HistoryQuery{Since: &since, Limit: 100}); ; {
				pg := Read(t, h, "/race", q)
				for _, p := range pg.Messages {
					if p.Pos.Offset <= tops[i].Offset {
						before = append(before, Num(t, p))
					}
				}
				if !pg.More {
					break
				}
				q.Since = &pg.Messages[len(pg.Messages)-1].Pos
			}
		}
		var live []int
		for _, p := range got[i] {
			if pos := PosOf(t, p); !pos.After(tops[i]) && !tops[i].IsZero() {
				t.Errorf("session %d subscribed at %v got %v live", i, tops[i], pos)
			}
			live = append(live, Num(t, p))
		}
		if all := append(before, live...); !slices.Equal(all, seq(0, total-1)) {
			t.Errorf("session %d (subscribed at %v): history up to it then live = %d messages, want 0..%d in order", i, tops[i], len(all), total-1)
		}
	}
}

// testHistoryChannels: the engine keeps the history of at most
// MaxHistoryChannels channels, forgetting the least recently used
// (published to or read).
func testHistoryChannels(t *testing.T, m *maker) {
	var drops DropCounter
	n := m.node(t, Options{Budgets: server.Budgets{MaxHistoryChannels: 3}, Hooks: drops.Hooks()})
	h := historian(t, n)
	pub := func(ch string) protocol.Position { return PublishKept(t, n.Engine, ch, 0, policy(5)) }
	var old protocol.Position
	for _, ch := range []string{"/h/0", "/h/1", "/h/2"} {
		if p := pub(ch); ch == "/h/1" {
			old = p
		}
	}
	Read(t, h, "/h/0", server.HistoryQuery{Limit: 5}) // /h/1 is now the least recently used
	pub("/h/3")
	pub("/h/2")
	pub("/h/4") // forgets /h/0
	for _, tc := range []struct {
		ch   string
		want int
	}{{"/h/0", 0}, {"/h/1", 0}, {"/h/2", 2}, {"/h/3", 1}, {"/h/4", 1}} {
		if pg := Read(t, h, tc.ch, server.HistoryQuery{Limit: 5}); len(pg.Messages) != tc.want {
			t.Errorf("History(%s) = %v; want %d messages", tc.ch, PageNums(t, pg), tc.want)
		}
	}
	if n := drops.Get(server.DropHistory); n != 2 {
		t.Errorf("Dropped hook reported %d for %s, want 2", n, server.DropHistory)
	}
	// A forgotten channel starts again under a new epoch.
	if p := pub("/h/1"); p.Epoch == "" || p.Epoch == old.Epoch {
		t.Errorf("a forgotten channel's new stream: position %v (before: %v)", p, old)
	}
}
