package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/protocol"
)

func TestCounters(t *testing.T) {
	type testCase struct {
		last, next protocol.ID
		counter    bool // next reads as a counter
		follows    bool // next is last + 1 in base 10 or 36
		cmp        int  // compareCounters(next, last)
	}
	for _, tc := range []testCase{
		{"1", "2", true, true, 1},
		{"9", "10", true, true, 1},  // base 10
		{"9", "a", true, true, 1},   // base 36
		{"z", "10", true, true, 1},  // base 36
		{"1z", "20", true, true, 1}, // base 36
		{"19", "1a", true, true, 1},
		{"19", "20", true, true, 1},
		{"zz", "100", true, true, 1},
		{"99", "100", true, true, 1},
		{"2", "4", true, false, 1},
		{"4", "2", true, false, -1},
		{"10", "9", true, false, -1},
		{"a", "10", true, false, 1}, // 10 in base 36 is 36
		{"5", "5", true, false, 0},
		{"1", "01", false, false, 1},
		{"1", "A", false, false, 1},
		{"1", "550e8400-e29b", false, false, 1},
		{"1", "", false, false, -1},
	} {
		if got := isCounter(tc.next); got != tc.counter {
			t.Errorf("isCounter(%q) = %v", tc.next, got)
		}
		if got := isNextCounter(tc.last, tc.next); got != tc.follows {
			t.Errorf("isNextCounter(%q, %q) = %v", tc.last, tc.next, got)
		}
		if tc.counter {
			if got := compareCounters(tc.next, tc.last); got != tc.cmp {
				t.Errorf("compareCounters(%q, %q) = %d", tc.next, tc.last, got)
			}
		}
	}
}

// lastID returns the id the server last saw from session id.
func (h *harness) lastID(id string) protocol.ID {
	sh := &h.srv.lanes.shards[h.srv.shard(id)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if l := sh.m[id]; l != nil {
		return protocol.ID(l.last[:l.n])
	}
	return ""
}

// laneWaiting reports how many requests of session id wait for its lane.
func (h *harness) laneWaiting(id string) int {
	sh := &h.srv.lanes.shards[h.srv.shard(id)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if l := sh.m[id]; l != nil {
		return l.waiting()
	}
	return 0
}

// plus returns id + n, id being a decimal counter.
func plus(t *testing.T, id protocol.ID, n int) protocol.ID {
	t.Helper()
	v, err := strconv.Atoi(string(id))
	if err != nil {
		t.Fatalf("id %q is not decimal", id)
	}
	return protocol.ID(strconv.Itoa(v + n))
}

// numbered returns publishes on channel of the values first..first+n-1,
// with the ids of session c following after.
func numbered(t *testing.T, c *rawClient, after protocol.ID, channel string, first, n int) []*protocol.Message {
	msgs := make([]*protocol.Message, n)
	for i := range msgs {
		msgs[i] = publishMsg(c.id, channel, first+i)
		msgs[i].ID = plus(t, after, first+i)
	}
	return msgs
}

// sendAs sends msgs over the named transport and returns the replies;
// safe on any goroutine.
func (c *rawClient) sendAs(transport string, msgs []*protocol.Message) ([]*protocol.Message, error) {
	body, err := json.Marshal(msgs)
	if err != nil {
		return nil, err
	}
	var r result
	switch transport {
	case "json":
		r = c.do(http.MethodPost, c.url, "application/json", body, nil)
	case "form":
		r = c.do(http.MethodPost, c.url, "application/x-www-form-urlencoded", []byte(url.Values{"message": {string(body)}}.Encode()), nil)
	case "jsonp":
		r = c.do(http.MethodGet, c.url+"?"+url.Values{"message": {string(body)}, "jsonp": {"cb"}}.Encode(), "", nil, nil)
		if r.err == nil && r.status == http.StatusOK {
			inner := r.body[len("/**/cb(") : len(r.body)-2]
			r.err = json.Unmarshal(inner, &r.msgs)
		}
	}
	if r.err != nil || r.status != http.StatusOK {
		return nil, fmt.Errorf("%s: %v", transport, r)
	}
	for _, q := range msgs {
		found := false
		for _, m := range r.msgs {
			found = found || m.ID == q.ID && m.IsSuccessful()
		}
		if !found {
			return nil, fmt.Errorf("%s: no successful reply to %s in %s", transport, q.ID, r.body)
		}
	}
	return r.msgs, nil
}

// subscribeUnnumbered subscribes c with an id that is no counter: the
// harness numbers all clients' messages with one counter, so a client's
// own numbers have holes, and with a long reorder wait its request would
// wait for them.
func subscribeUnnumbered(t *testing.T, c *rawClient, channel string) {
	t.Helper()
	m := subscribeMsg(c.id, channel)
	m.ID = protocol.ID("sub-" + c.id)
	if r := replyTo(t, c.must(m), protocol.MetaSubscribe); !r.IsSuccessful() {
		t.Fatalf("subscribe: %+v", r)
	}
}

// received connects sub until it has n deliveries on channel and returns
// their data in order.
func received(t *testing.T, sub *rawClient, channel string, n int) []int {
	t.Helper()
	var got []int
	deadline := time.Now().Add(hWait)
	for len(got) < n && time.Now().Before(deadline) {
		for _, d := range dataOf(t, sub.connectNow(), channel) {
			got = append(got, int(d.(float64)))
		}
	}
	return got
}

func seq(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

// TestOrderWaitsForEarlierNumbers: a request that arrives before the one
// the client numbered before it waits for it, on every HTTP transport;
// deliveries follow the client's numbering.
func TestOrderWaitsForEarlierNumbers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ first, second string }{
		{"json", "json"}, {"form", "json"}, {"json", "jsonp"}, {"jsonp", "form"},
	} {
		t.Run(tc.first+" then "+tc.second, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Options{})
			h.srv.lanes.wait = time.Minute // however slow the test machine
			sub := h.client().start()
			subscribeUnnumbered(t, sub, "/order")
			pub := h.client().start()
			last := h.lastID(pub.id)
			early := numbered(t, pub, last, "/order", 1, 3) // sent last
			late := numbered(t, pub, last, "/order", 4, 3)  // sent first
			lateDone := make(chan error, 1)
			go func() {
				_, err := pub.sendAs(tc.first, late)
				lateDone <- err
			}()
			testutil.Eventually(t, hWait, func() bool { return h.laneWaiting(pub.id) == 1 },
				"the later-numbered request waiting for the earlier one")
			if _, err := pub.sendAs(tc.second, early); err != nil {
				t.Fatal(err)
			}
			if err := <-lateDone; err != nil {
				t.Fatal(err)
			}
			if got := received(t, sub, "/order", 6); fmt.Sprint(got) != fmt.Sprint(seq(1, 6)) {
				t.Fatalf("deliveries %v, want %v", got, seq(1, 6))
			}
			if h.lastID(pub.id) != plus(t, last, 6) {
				t.Errorf("last id %q, want %q", h.lastID(pub.id), plus(t, last, 6))
			}
		})
	}
}

// TestOrderConcurrentRequests: many requests of one client sent at once,
// numbered in order, reach a subscriber in that order, each request's
// messages together.
func TestOrderConcurrentRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.srv.lanes.wait = time.Minute // however slow the test machine
	sub := h.client().start()
	subscribeUnnumbered(t, sub, "/burst")
	pub := h.client().start()
	const requests, per = 8, 10
	last := h.lastID(pub.id)
	errs := make(chan error, requests)
	var wg sync.WaitGroup
	for r := requests - 1; r >= 0; r-- { // started last-numbered first
		wg.Add(1)
		go func(msgs []*protocol.Message) {
			defer wg.Done()
			_, err := pub.sendAs("json", msgs)
			errs <- err
		}(numbered(t, pub, last, "/burst", 1+r*per, per))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := received(t, sub, "/burst", requests*per); fmt.Sprint(got) != fmt.Sprint(seq(1, requests*per)) {
		t.Fatalf("deliveries %v", got)
	}
}

// TestOrderMissingNumberDoesNotStall: a client that skipped a number (a
// request it gave up on) is served after a short wait, and then goes on
// without waiting.
func TestOrderMissingNumberDoesNotStall(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	sub := h.client().start()
	sub.subscribe("/gap")
	pub := h.client().start()
	last := h.lastID(pub.id)
	if _, err := pub.sendAs("json", numbered(t, pub, last, "/gap", 2, 2)); err != nil { // 1 never comes
		t.Fatal(err)
	}
	if _, err := pub.sendAs("json", numbered(t, pub, last, "/gap", 4, 1)); err != nil {
		t.Fatal(err)
	}
	if got := received(t, sub, "/gap", 3); fmt.Sprint(got) != "[2 3 4]" {
		t.Fatalf("deliveries %v", got)
	}
}

// TestOrderConnectNumbersCount: a connect's id is a number of the session
// too, even when the connect overtakes the publish numbered before it: the
// publish does not wait for it, and the last id seen is the connect's.
func TestOrderConnectNumbersCount(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.srv.lanes.wait = time.Minute // however slow the test machine
	pub := h.client().start()
	last := h.lastID(pub.id)
	conn := connectMsg(pub.id, nil)
	conn.ID = plus(t, last, 2)
	held := pub.async(conn) // overtakes the publish numbered before it
	h.waitHeld(1)
	if h.lastID(pub.id) != last {
		t.Fatalf("last id %q after a connect out of order, want %q", h.lastID(pub.id), last)
	}
	p := publishMsg(pub.id, "/c", 1)
	p.ID = plus(t, last, 1)
	pub.must(p)
	if h.lastID(pub.id) != plus(t, last, 2) {
		t.Fatalf("last id %q, want the connect's %q", h.lastID(pub.id), plus(t, last, 2))
	}
	if _, err := h.srv.Disconnect(context.Background(), pub.id); err != nil {
		t.Fatal(err)
	}
	pub.wait(held, hWait)
}

// TestOrderOneSessionAtATime: a session's requests are processed one at a
// time (a second request waits while the first is in a slow service),
// while the session's held connect and other sessions go on.
func TestOrderOneSessionAtATime(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	h := newHarness(t, Options{Services: map[string]ServiceFunc{"slow": func(ctx context.Context, _ *Client, _ *protocol.Message) ([]*protocol.Message, error) {
		entered <- struct{}{}
		<-release
		return nil, nil
	}}})
	a := h.client().start()
	b := h.client().start()
	b.subscribe("/one")
	held := a.connectAsync()
	h.waitHeld(1)

	slow := a.async(publishMsg(a.id, "/service/slow", 1))
	<-entered
	next := a.async(publishMsg(a.id, "/one", "after the slow one"))
	testutil.Eventually(t, hWait, func() bool { return h.laneWaiting(a.id) == 1 }, "a's second request waiting for its lane")
	b.publish("/one", "from b") // another session is not held up
	select {
	case r := <-next:
		t.Fatalf("a's second request went while its first was in the service: %v", r)
	default:
	}
	close(release)
	a.wait(slow, hWait)
	a.wait(next, hWait)
	if got := dataOf(t, b.connectNow(), "/one"); fmt.Sprint(got) != "[from b after the slow one]" {
		t.Errorf("deliveries %v", got)
	}
	select {
	case r := <-held:
		t.Fatalf("a's held connect returned: %v", r)
	default: // it waits on: it never took the lane
	}
}

// BenchmarkProcessPublish measures one remote publish request through
// process: its session's lane (in order, uncontended), validation, fan-out
// to 100 subscribers.
func BenchmarkProcessPublish(b *testing.B) {
	s := quietServer(b, Options{MaxQueue: 1 << 20})
	ids := subscribeSessions(b, s, 100, "/bench/room")
	pub := subscribeSessions(b, s, 1, "/other")[0]
	data := json.RawMessage(`{"chat":"hello"}`)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		x := &exchange{s: s, ctx: ctx, transport: protocol.LongPolling, ticket: uint64(i)}
		x.process([]*protocol.Message{{Channel: "/bench/room", ClientID: pub, Data: data, ID: protocol.ID(strconv.Itoa(i + 1))}})
		if len(x.replies) != 1 || !x.replies[0].IsSuccessful() {
			b.Fatalf("publish failed: %+v", x.replies)
		}
		if i%512 == 511 {
			b.StopTimer()
			for _, id := range ids {
				_, _ = s.engine.Take(ctx, id, TakeOptions{})
			}
			b.StartTimer()
		}
	}
}

// sharedEngine stands for an engine shared by several nodes (any engine
// but the memory engine).
type sharedEngine struct{ *MemoryEngine }

// TestOrderSharedEngineWaitsForNothing: with a shared engine a client's
// requests may reach other nodes, so a request numbered after a gap goes
// at once, and no session keeps a lane between requests.
func TestOrderSharedEngineWaitsForNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{Engine: sharedEngine{NewMemoryEngine(MemoryEngineOptions{SweepInterval: hSweep})}})
	h.srv.lanes.wait = time.Minute // would be seen if anything waited
	sub := h.client().start()
	sub.subscribe("/shared")
	pub := h.client().start()
	p := publishMsg(pub.id, "/shared", "after a gap")
	p.ID = "99999"
	pub.must(p)
	if got := dataOf(t, sub.connectNow(), "/shared"); fmt.Sprint(got) != "[after a gap]" {
		t.Fatalf("deliveries %v", got)
	}
	n := 0
	for i := range h.srv.lanes.shards {
		sh := &h.srv.lanes.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	if n != 0 {
		t.Errorf("%d lanes kept", n)
	}
}

// TestOrderUnknownSessionKeepsNoLane: requests naming sessions that do not
// exist are refused and leave no lane behind (made-up ids cannot crowd out
// real sessions' lanes).
func TestOrderUnknownSessionKeepsNoLane(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	c := h.client()
	c.handshake()
	for i := range 20 {
		id := fmt.Sprintf("madeup%020d", i)
		wantError(t, replyTo(t, c.must(publishMsg(id, "/x", 1)), "/x"), "402::session_unknown")
		sh := &h.srv.lanes.shards[h.srv.shard(id)]
		sh.mu.Lock()
		_, kept := sh.m[id]
		sh.mu.Unlock()
		if kept {
			t.Fatalf("a lane is kept for unknown session %s", id)
		}
	}
}
