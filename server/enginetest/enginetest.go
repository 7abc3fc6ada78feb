// Package enginetest is the behaviour every server.Engine must show; engine
// implementations run it from their tests. An engine shared by several
// nodes (such as the Redis one) runs the scenarios that need several nodes
// across two of them (Options.Peer).
package enginetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// Wait bounds every wait for something that should happen promptly.
const Wait = 5 * time.Second

// Options configure an engine made for one scenario.
type Options struct {
	// Budgets bound queues and histories (zero fields: the engine's
	// defaults).
	server.Budgets
	// SweepInterval is how often expired sessions are looked for (0: the
	// engine's default).
	SweepInterval time.Duration
	// Hooks are passed to Start. Their Ready and ReadyBatch are the
	// suite's (they chain to the Ready a scenario sets); ReadyBatch is
	// set, as the Server sets it.
	Hooks server.EngineHooks
	// Peer, when not nil, asks for another node of the cluster Peer is in:
	// an engine that shares Peer's state. An engine that cannot be shared
	// by several nodes (such as the in-memory one) returns Peer itself.
	Peer server.Engine
}

// Residue may be implemented by an engine (or by a test's wrapper around
// one) that can list what it still stores. The suite then checks that
// nothing is left once every session is destroyed.
type Residue interface {
	Residue(ctx context.Context) ([]string, error)
}

// maker makes the Nodes of one scenario.
type maker struct {
	newEngine func(*testing.T, Options) server.Engine
	mu        sync.Mutex
	nodes     map[server.Engine]*Node
}

// node returns a started engine for o with its Hub.
func (m *maker) node(t *testing.T, o Options) *Node {
	hub := NewHub()
	if o.Peer != nil {
		m.mu.Lock()
		peer := m.nodes[o.Peer]
		m.mu.Unlock()
		if peer != nil {
			hub = peer.Hub // a single-node engine returns the peer itself
		}
	}
	scenario := o.Hooks.Ready
	o.Hooks.Ready = func(id string) {
		hub.Ready(id)
		if scenario != nil {
			scenario(id)
		}
	}
	ready := o.Hooks.Ready
	o.Hooks.ReadyBatch = func(ids []string) {
		if len(ids) != len(slices.Compact(slices.Sorted(slices.Values(ids)))) {
			t.Errorf("ReadyBatch(%q): a session more than once", ids)
		}
		for _, id := range ids {
			ready(id)
		}
	}
	e := m.newEngine(t, o)
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := m.nodes[e]; n != nil {
		return n
	}
	n := &Node{Engine: e, Hub: hub}
	m.nodes[e] = n
	return n
}

// peer returns another node of of's cluster (of itself for an engine that
// has one node).
func (m *maker) peer(t *testing.T, of *Node, o Options) *Node {
	o.Peer = of.Engine
	return m.node(t, o)
}

// Run runs every scenario as a parallel subtest of t. newEngine returns a
// started engine (Start called with opts.Hooks); it closes the engine with
// t.Cleanup.
func Run(t *testing.T, newEngine func(t *testing.T, opts Options) server.Engine) {
	runScenarios(t, newEngine, append(scenarios, historyScenarios...))
}

// scenario is one behaviour of the suite.
type scenario struct {
	name string
	f    func(*testing.T, *maker)
}

func runScenarios(t *testing.T, newEngine func(t *testing.T, opts Options) server.Engine, list []scenario) {
	for _, sc := range list {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.f(t, &maker{newEngine: newEngine, nodes: map[server.Engine]*Node{}})
		})
	}
}

var scenarios = []scenario{
	{"PublishCounts", testPublishCounts},
	{"Dedup", testDedup},
	{"QueueBound", testQueueBound},
	{"FetchWaitsAndWakes", testFetchWaitsAndWakes},
	{"FetchAfterDestroy", testFetchAfterDestroy},
	{"Ready", testReady},
	{"ReadyAcrossNodes", testReadyAcrossNodes},
	{"ReadyMany", testReadyMany},
	{"Supersede", testSupersede},
	{"SubscriptionLimit", testSubscriptionLimit},
	{"Expiry", testExpiry},
	{"Close", testClose},
	{"Ack", testAck},
	{"AckAcrossNodes", testAckAcrossNodes},
	{"Stress", testStress},
	{"ConcurrentPublishOnce", testConcurrentPublishOnce},
	{"Listing", testListing},
	{"QueueBytes", testQueueBytes},
	{"FetchBytes", testFetchBytes},
	{"AckFetchBytes", testAckFetchBytes},
	{"QueuedBytes", testQueuedBytes},
}

// checkNoResidue checks that e, if it can tell, stores nothing any more.
func checkNoResidue(t *testing.T, e server.Engine, when string) {
	t.Helper()
	r, ok := e.(Residue)
	if !ok {
		return
	}
	if left, err := r.Residue(context.Background()); err != nil || len(left) != 0 {
		t.Errorf("left %s: %q, %v", when, left, err)
	}
}

func sessionCount(t *testing.T, e server.Engine) (int, bool) {
	t.Helper()
	l, ok := e.(server.SessionLister)
	if !ok {
		return 0, false
	}
	n, err := l.SessionCount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n, true
}

func testPublishCounts(t *testing.T, m *maker) {
	e := m.node(t, Options{})
	ctx := context.Background()
	subs := map[string]string{
		"exact": "/a/b",
		"one":   "/a/*",
		"many":  "/a/**",
		"all":   "/**",
		"other": "/c",
		"top":   "/*",
	}
	for id, p := range subs {
		CreateSession(t, e, id)
		Subscribe(t, e, id, p)
	}
	CreateSession(t, e, "none")
	tests := []struct {
		channel string
		want    []string
	}{
		{"/a/b", []string{"all", "exact", "many", "one"}},
		{"/a/b/c", []string{"all", "many"}},
		{"/a", []string{"all", "top"}},
		{"/c", []string{"all", "other", "top"}},
		{"/d/e", []string{"all"}},
	}
	for i, tc := range tests {
		// Each session has one subscription: the count is exact.
		n, err := e.Publish(ctx, Payload(tc.channel, i))
		if err != nil || n != len(tc.want) {
			t.Errorf("Publish(%s) = %d, %v; want %d", tc.channel, n, err, len(tc.want))
		}
		var got []string
		for id := range subs {
			b := TakeAll(t, e, id)
			switch len(b.Payloads) {
			case 0:
			case 1:
				if p := b.Payloads[0]; p.Channel != tc.channel || Num(t, p) != i {
					t.Errorf("%s got %+v", id, p)
				}
				got = append(got, id)
			default:
				t.Errorf("%s got %d copies of %s", id, len(b.Payloads), tc.channel)
			}
		}
		if slices.Sort(got); !slices.Equal(got, tc.want) {
			t.Errorf("Publish(%s) reached %q, want %q", tc.channel, got, tc.want)
		}
	}
	if b := TakeAll(t, e, "none"); len(b.Payloads) != 0 {
		t.Errorf("unsubscribed session got %d payloads", len(b.Payloads))
	}
	if ok, err := e.Unsubscribe(ctx, "all", "/**"); !ok || err != nil {
		t.Errorf("Unsubscribe = %v, %v", ok, err)
	}
	if ok, _ := e.Unsubscribe(ctx, "all", "/**"); ok {
		t.Error("second Unsubscribe reported a subscription")
	}
	if n, _ := e.Publish(ctx, Payload("/d/e", 0)); n != 0 {
		t.Errorf("after unsubscribe, Publish reached %d", n)
	}
	if b := TakeAll(t, e, "all"); len(b.Payloads) != 0 {
		t.Errorf("after unsubscribe, the session got %v", Nums(t, b))
	}
	// Subscribing twice is not an error and does not duplicate.
	Subscribe(t, e, "exact", "/a/b", "/a/b")
	if l, ok := e.Engine.(server.SessionLister); ok {
		if subs, _ := l.Subscriptions(ctx, "exact"); !slices.Equal(subs, []string{"/a/b"}) {
			t.Errorf("Subscriptions = %q", subs)
		}
	}
	if n, err := e.Publish(ctx, Payload("/a/b", 9)); n != 3 || err != nil {
		t.Errorf("Publish after a double subscribe = %d, %v; want 3", n, err)
	}
	if got := Nums(t, TakeAll(t, e, "exact")); !slices.Equal(got, []int{9}) {
		t.Errorf("after subscribing twice, got %v", got)
	}
	if n, ok := sessionCount(t, e); ok && n != 7 {
		t.Errorf("SessionCount = %d, want 7", n)
	}
	if info, ok, err := e.Session(ctx, "exact"); !ok || err != nil || info.ID != "exact" {
		t.Errorf("Session = %+v, %v, %v", info, ok, err)
	}
	if _, ok, _ := e.Session(ctx, "missing"); ok {
		t.Error("Session(missing) found")
	}
}

// testDedup: a session reached through several of its subscriptions gets
// each message once, in order; the count is at least the sessions reached
// and at most the subscriptions that matched.
func testDedup(t *testing.T, m *maker) {
	e := m.node(t, Options{})
	ctx := context.Background()
	CreateSession(t, e, "s")
	Subscribe(t, e, "s", "/x/y", "/x/*", "/x/**", "/**")
	CreateSession(t, e, "t")
	Subscribe(t, e, "t", "/x/*")
	for i := range 100 {
		if n, err := e.Publish(ctx, Payload("/x/y", i)); err != nil || n < 2 || n > 5 {
			t.Fatalf("Publish #%d = %d, %v; want 2 sessions (at most 5 subscriptions)", i, n, err)
		}
	}
	for _, id := range []string{"s", "t"} {
		got := Nums(t, TakeAll(t, e, id))
		if len(got) != 100 {
			t.Fatalf("%s got %d payloads, want 100", id, len(got))
		}
		for i, n := range got {
			if n != i {
				t.Fatalf("%s: payload %d is %d: out of order or duplicated", id, i, n)
			}
		}
	}
}

// testQueueBound: at most MaxQueue messages wait for a session; the oldest
// are dropped and counted once, in the next batch.
func testQueueBound(t *testing.T, m *maker) {
	const maxQueue = 3
	e := m.node(t, Options{Budgets: server.Budgets{MaxQueue: maxQueue}})
	ctx := context.Background()
	CreateSession(t, e, "s")
	Subscribe(t, e, "s", "/q")
	for i := range 10 {
		if n, err := e.Publish(ctx, Payload("/q", i)); n != 1 || err != nil {
			t.Fatalf("Publish = %d, %v", n, err)
		}
	}
	b := TakeAll(t, e, "s")
	if got := Nums(t, b); !slices.Equal(got, []int{7, 8, 9}) || b.Dropped != 7 {
		t.Errorf("Take = %v dropped %d, want the newest [7 8 9] and 7 dropped", got, b.Dropped)
	}
	if b = TakeAll(t, e, "s"); len(b.Payloads) != 0 || b.Dropped != 0 {
		t.Errorf("second Take = %v dropped %d, want nothing", Nums(t, b), b.Dropped)
	}
	// Many rounds of overflow keep the newest messages in order, for
	// published and for delivered messages.
	for round := range 6 {
		n := 2 + (round/2)*3
		for i := range n {
			if round%2 == 0 {
				_ = e.Deliver(ctx, "s", Payload("/q", i))
			} else {
				_, _ = e.Publish(ctx, Payload("/q", i))
			}
		}
		b = TakeAll(t, e, "s")
		var want []int
		for i := max(0, n-maxQueue); i < n; i++ {
			want = append(want, i)
		}
		if got := Nums(t, b); !slices.Equal(got, want) || b.Dropped != max(0, n-maxQueue) {
			t.Errorf("round %d: %v dropped %d, want %v dropped %d", round, got, b.Dropped, want, max(0, n-maxQueue))
		}
	}
	// Published and delivered together: still at most maxQueue at once,
	// and every message either returned or counted as dropped.
	for i := range 8 {
		if i%2 == 0 {
			_ = e.Deliver(ctx, "s", Payload("/q", i))
		} else {
			_, _ = e.Publish(ctx, Payload("/q", i))
		}
	}
	b = TakeAll(t, e, "s")
	if got := Nums(t, b); len(got) != maxQueue || b.Dropped != 8-maxQueue {
		t.Errorf("mixed overflow: %v dropped %d, want %d kept and %d dropped", got, b.Dropped, maxQueue, 8-maxQueue)
	}
	// The drop count survives a fetch that waited.
	for i := range 5 {
		_ = e.Deliver(ctx, "s", Payload("/q", i))
	}
	if b, _ = e.Fetch(ctx, "s", time.Second); b.Dropped != 2 || len(b.Payloads) != 3 {
		t.Errorf("Fetch with wait = %v dropped %d", Nums(t, b), b.Dropped)
	}
	// Drops reported by a take that emptied the queue are not reported
	// again by a fetch that waits.
	for i := range 4 {
		_ = e.Deliver(ctx, "s", Payload("/q", i))
	}
	if b = TakeAll(t, e, "s"); b.Dropped != 1 {
		t.Errorf("Take after 4 deliveries: dropped %d, want 1", b.Dropped)
	}
	p := e.Begin(ctx, "s", server.TakeOptions{}, Wait)
	_ = e.Deliver(ctx, "s", Payload("/q", 9))
	if b, _ = awaitPending(p); !slices.Equal(Nums(t, b), []int{9}) || b.Dropped != 0 {
		t.Errorf("after a drained queue, Fetch = %v dropped %d", Nums(t, b), b.Dropped)
	}
}

func testFetchWaitsAndWakes(t *testing.T, m *maker) {
	e := m.node(t, Options{})
	ctx := context.Background()
	CreateSession(t, e, "s")

	start := time.Now()
	b, err := e.Fetch(ctx, "s", 0)
	if d := time.Since(start); err != nil || len(b.Payloads) != 0 || d > time.Second {
		t.Errorf("Fetch(0) = %+v, %v after %v", b, err, d)
	}
	start = time.Now()
	b, err = e.Fetch(ctx, "s", 150*time.Millisecond)
	if d := time.Since(start); err != nil || len(b.Payloads) != 0 || d < 140*time.Millisecond || d > 2*time.Second {
		t.Errorf("Fetch(150ms) with nothing queued = %+v, %v after %v", b, err, d)
	}

	p := e.Begin(ctx, "s", server.TakeOptions{}, 10*time.Second)
	if err := e.Deliver(ctx, "s", Payload("/w", 1)); err != nil {
		t.Fatal(err)
	}
	if b, err := awaitPending(p); err != nil || len(b.Payloads) != 1 {
		t.Errorf("woken Fetch = %+v, %v", b, err)
	}

	// A burst of publishes while one fetch waits: all delivered, in order.
	Subscribe(t, e, "s", "/burst")
	Burst(t, e, e, "s", "/burst", 20)

	// Cancelling the context ends the wait without an error.
	cctx, cancel := context.WithCancel(ctx)
	p = e.Begin(cctx, "s", server.TakeOptions{}, 10*time.Second)
	cancel()
	if b, err := awaitPending(p); err != nil || len(b.Payloads) != 0 {
		t.Errorf("cancelled Fetch = %+v, %v", b, err)
	}
	// A message queued before the fetch is returned at once.
	_ = e.Deliver(ctx, "s", Payload("/w", 2))
	start = time.Now()
	if b, _ := e.Fetch(ctx, "s", 10*time.Second); len(b.Payloads) != 1 || time.Since(start) > time.Second {
		t.Errorf("Fetch with a queued message = %+v after %v", b, time.Since(start))
	}
}

func testFetchAfterDestroy(t *testing.T, m *maker) {
	e := m.node(t, Options{})
	ctx := context.Background()
	CreateSession(t, e, "s")
	Subscribe(t, e, "s", "/d", "/d/**")
	p := e.Begin(ctx, "s", server.TakeOptions{}, 10*time.Second)
	rs, err := e.DestroySession(ctx, "s")
	if err != nil || rs == nil || rs.Info == nil || rs.Info.ID != "s" {
		t.Fatalf("DestroySession = %+v, %v", rs, err)
	}
	if subs := slices.Sorted(slices.Values(rs.Subscriptions)); !slices.Equal(subs, []string{"/d", "/d/**"}) {
		t.Errorf("removed session's subscriptions = %q", subs)
	}
	if _, err := awaitPending(p); !sessionUnknown(err) {
		t.Errorf("waiting fetch = %v, want ErrSessionUnknown", err)
	}
	if rs, err := e.DestroySession(ctx, "s"); rs != nil || err != nil {
		t.Errorf("second DestroySession = %+v, %v; want nil, nil", rs, err)
	}
	unknown := map[string]error{}
	_, unknown["Take"] = e.Take(ctx, "s", server.TakeOptions{})
	_, unknown["Take ack"] = e.Take(ctx, "s", server.TakeOptions{Ack: true})
	unknown["Subscribe"] = e.Subscribe(ctx, "s", "/x", 0)
	_, unknown["Unsubscribe"] = e.Unsubscribe(ctx, "s", "/d")
	unknown["Deliver"] = e.Deliver(ctx, "s", Payload("/d", 1))
	unknown["Touch"] = e.Touch(ctx, "s", time.Now())
	if l, ok := e.Engine.(server.SessionLister); ok {
		_, unknown["Subscriptions"] = l.Subscriptions(ctx, "s")
	}
	for op, err := range unknown {
		if !sessionUnknown(err) {
			t.Errorf("%s after destroy = %v, want ErrSessionUnknown", op, err)
		}
	}
	if n, _ := e.Publish(ctx, Payload("/d", 1)); n != 0 {
		t.Errorf("destroyed session still subscribed: Publish reached %d", n)
	}
	if n, ok := sessionCount(t, e); ok && n != 0 {
		t.Errorf("SessionCount = %d", n)
	}
	checkNoResidue(t, e, "after destroy")
}

// testReady: a Take with Watch that finds nothing gets exactly one Ready
// call when something arrives (however much arrives) or the session ends;
// a Take without Watch, or one that returned messages, gets none.
func testReady(t *testing.T, m *maker) {
	e := m.node(t, Options{})
	ctx := context.Background()
	CreateSession(t, e, "r")
	Subscribe(t, e, "r", "/r")

	// No watch: no Ready.
	if b, err := e.Take(ctx, "r", server.TakeOptions{}); err != nil || len(b.Payloads) != 0 {
		t.Fatalf("Take = %v, %v", Nums(t, b), err)
	}
	_, _ = e.Publish(ctx, Payload("/r", 1))
	_ = e.Deliver(ctx, "r", Payload("/direct", 2))
	if b := TakeAll(t, e, "r"); !slices.Equal(Nums(t, b), []int{1, 2}) {
		t.Fatalf("Take = %v, want [1 2]", Nums(t, b))
	}
	_, _ = e.Publish(ctx, Payload("/r", 3))
	if b := TakeAll(t, e, "r"); !slices.Equal(Nums(t, b), []int{3}) {
		t.Fatalf("Take = %v, want [3]", Nums(t, b))
	}
	if n := e.Hub.Calls("r"); n != 0 {
		t.Fatalf("%d Ready calls without a waiting Take", n)
	}

	// Watch on an empty queue: one Ready for a burst.
	ready := e.Hub.Listen("r")
	if b, err := e.Take(ctx, "r", server.TakeOptions{Watch: true}); err != nil || len(b.Payloads) != 0 {
		t.Fatalf("Take = %v, %v", Nums(t, b), err)
	}
	calls := e.Hub.Calls("r")
	for i := 3; i <= 12; i++ {
		_, _ = e.Publish(ctx, Payload("/r", i))
	}
	select {
	case <-ready:
	case <-time.After(Wait):
		t.Fatal("no Ready after a publish to a watching session")
	}
	var got []int
	watches := 1
	for len(got) < 10 {
		ready = e.Hub.Listen("r")
		watches++
		b, err := e.Take(ctx, "r", server.TakeOptions{Watch: true, Resume: true})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, Nums(t, b)...)
		if len(b.Payloads) == 0 {
			select {
			case <-ready:
			case <-time.After(Wait):
				t.Fatalf("got %v, then nothing", got)
			}
		}
	}
	if !slices.Equal(got, []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 12}) {
		t.Errorf("after Ready, took %v", got)
	}
	if n := e.Hub.Calls("r") - calls; n < 1 || n > watches {
		t.Errorf("%d Ready calls for %d watching Takes: at most one each", n, watches)
	}
	calls = e.Hub.Calls("r")
	// A Deliver wakes a watching session as well.
	ready = e.Hub.Listen("r")
	if b, _ := e.Take(ctx, "r", server.TakeOptions{Watch: true}); len(b.Payloads) != 0 {
		t.Fatalf("Take = %v", Nums(t, b))
	}
	_ = e.Deliver(ctx, "r", Payload("/direct", 13))
	select {
	case <-ready:
	case <-time.After(Wait):
		t.Fatal("no Ready after a Deliver to a watching session")
	}
	if b := TakeAll(t, e, "r"); !slices.Equal(Nums(t, b), []int{13}) {
		t.Errorf("after Deliver: %v", Nums(t, b))
	}
	if n := e.Hub.Calls("r") - calls; n != 1 {
		t.Errorf("%d Ready calls for one watch", n)
	}
	// Destroying a watching session wakes it; its Take then fails.
	ready = e.Hub.Listen("r")
	if b, _ := e.Take(ctx, "r", server.TakeOptions{Watch: true}); len(b.Payloads) != 0 {
		t.Fatalf("Take = %v", Nums(t, b))
	}
	if _, err := e.DestroySession(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ready:
	case <-time.After(Wait):
		t.Fatal("no Ready after destroying a watching session")
	}
	if _, err := e.Take(ctx, "r", server.TakeOptions{Resume: true}); !sessionUnknown(err) {
		t.Errorf("Take after destroy = %v", err)
	}
}

// testReadyMany: one publish to many watching sessions gives each of
// them exactly one Ready (through Ready or ReadyBatch), and each then
// takes the message.
func testReadyMany(t *testing.T, m *maker) {
	e := m.node(t, Options{})
	ctx := context.Background()
	const n = 150
	ids := make([]string, n)
	ready := make([]<-chan struct{}, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("many-%d", i)
		CreateSession(t, e, ids[i])
		Subscribe(t, e, ids[i], "/many")
		ready[i] = e.Hub.Listen(ids[i])
		if b, err := e.Take(ctx, ids[i], server.TakeOptions{Watch: true}); err != nil || len(b.Payloads) != 0 {
			t.Fatalf("Take(%s) = %v, %v", ids[i], Nums(t, b), err)
		}
	}
	if _, err := e.Publish(ctx, Payload("/many", 1)); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		select {
		case <-ready[i]:
		case <-time.After(Wait):
			t.Fatalf("no Ready for %s, watching session %d of %d", id, i+1, n)
		}
		if b := TakeAll(t, e, id); !slices.Equal(Nums(t, b), []int{1}) {
			t.Errorf("%s took %v, want [1]", id, Nums(t, b))
		}
	}
	for _, id := range ids {
		if c := e.Hub.Calls(id); c != 1 {
			t.Errorf("%s got %d Ready calls for one watch", id, c)
		}
	}
}

// testReadyAcrossNodes: a session that waits on one node is woken by a
// publish, a delivery, a subscription made on another node, and by its
// destruction there.
func testReadyAcrossNodes(t *testing.T, m *maker) {
	a := m.node(t, Options{})
	b := m.peer(t, a, Options{})
	ctx := context.Background()
	CreateSession(t, b, "s")
	Subscribe(t, b, "s", "/n/*")
	p := a.Begin(ctx, "s", server.TakeOptions{}, 10*time.Second)
	if n, err := b.Publish(ctx, Payload("/n/1", 1)); n != 1 || err != nil {
		t.Fatalf("Publish on b = %d, %v", n, err)
	}
	if bt, err := awaitPending(p); err != nil || !slices.Equal(Nums(t, bt), []int{1}) {
		t.Fatalf("fetch on a = %v, %v; want [1]", Nums(t, bt), err)
	}
	p = a.Begin(ctx, "s", server.TakeOptions{}, 10*time.Second)
	if err := b.Deliver(ctx, "s", Payload("/direct", 2)); err != nil {
		t.Fatal(err)
	}
	if bt, err := awaitPending(p); err != nil || !slices.Equal(Nums(t, bt), []int{2}) {
		t.Fatalf("fetch on a = %v, %v; want [2]", Nums(t, bt), err)
	}
	// Subscribed on b while a waits: a publish afterwards reaches a.
	p = a.Begin(ctx, "s", server.TakeOptions{}, 10*time.Second)
	Subscribe(t, b, "s", "/other")
	if _, err := a.Publish(ctx, Payload("/other", 3)); err != nil {
		t.Fatal(err)
	}
	if bt, err := awaitPending(p); err != nil || !slices.Equal(Nums(t, bt), []int{3}) {
		t.Fatalf("fetch on a = %v, %v; want [3]", Nums(t, bt), err)
	}
	// Unsubscribed on b: nothing more arrives on a.
	if ok, err := b.Unsubscribe(ctx, "s", "/other"); !ok || err != nil {
		t.Fatalf("Unsubscribe on b = %v, %v", ok, err)
	}
	_, _ = a.Publish(ctx, Payload("/other", 4))
	_, _ = a.Publish(ctx, Payload("/n/x", 5))
	got := []int{}
	for len(got) == 0 {
		bt, err := a.Fetch(ctx, "s", Wait)
		if err != nil || len(bt.Payloads) == 0 {
			t.Fatalf("fetch on a = %v, %v", Nums(t, bt), err)
		}
		got = Nums(t, bt)
	}
	if !slices.Equal(got, []int{5}) {
		t.Errorf("after unsubscribing on b, a got %v; want [5]", got)
	}
	// Destroyed on b while a waits.
	p = a.Begin(ctx, "s", server.TakeOptions{}, 10*time.Second)
	if rs, err := b.DestroySession(ctx, "s"); rs == nil || err != nil {
		t.Fatalf("DestroySession on b = %+v, %v", rs, err)
	}
	if _, err := awaitPending(p); !sessionUnknown(err) {
		t.Errorf("fetch on a after destroy on b = %v, want ErrSessionUnknown", err)
	}
}

// testSupersede: a connect that starts on another node takes the session
// over; the one waiting on the first node ends with ErrSuperseded and the
// messages go to the newer one. (An engine with one node has nothing to
// test here: the Server supersedes connects on its own node.)
func testSupersede(t *testing.T, m *maker) {
	a := m.node(t, Options{})
	b := m.peer(t, a, Options{})
	if a == b {
		return
	}
	ctx := context.Background()
	CreateSession(t, a, "s")
	Subscribe(t, a, "s", "/sup")
	older := a.Begin(ctx, "s", server.TakeOptions{}, 10*time.Second)
	newer := b.Begin(ctx, "s", server.TakeOptions{}, 10*time.Second)
	if bt, err := awaitPending(older); !errors.Is(err, server.ErrSuperseded) || len(bt.Payloads) != 0 {
		t.Errorf("older fetch = %v, %v; want ErrSuperseded", Nums(t, bt), err)
	}
	if _, err := a.Publish(ctx, Payload("/sup", 1)); err != nil {
		t.Fatal(err)
	}
	if bt, err := awaitPending(newer); err != nil || !slices.Equal(Nums(t, bt), []int{1}) {
		t.Errorf("newer fetch = %v, %v; want [1]", Nums(t, bt), err)
	}
	// The session can come back to the first node.
	p := a.Begin(ctx, "s", server.TakeOptions{}, 10*time.Second)
	_, _ = b.Publish(ctx, Payload("/sup", 2))
	if bt, err := awaitPending(p); err != nil || !slices.Equal(Nums(t, bt), []int{2}) {
		t.Errorf("fetch back on a = %v, %v; want [2]", Nums(t, bt), err)
	}
}

func testSubscriptionLimit(t *testing.T, m *maker) {
	e := m.node(t, Options{})
	ctx := context.Background()
	CreateSession(t, e, "s")
	for _, p := range []string{"/a", "/b"} {
		if err := e.Subscribe(ctx, "s", p, 2); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Subscribe(ctx, "s", "/a", 2); err != nil {
		t.Errorf("re-subscribing at the limit = %v", err)
	}
	if err := e.Subscribe(ctx, "s", "/c", 2); !errors.Is(err, protocol.ErrSubscriptionLimit) {
		t.Errorf("over the limit = %v", err)
	}
	if n, _ := e.Publish(ctx, Payload("/c", 1)); n != 0 {
		t.Errorf("a refused subscription receives: Publish reached %d", n)
	}
	if err := e.Subscribe(ctx, "s", "/c", 0); err != nil {
		t.Errorf("limit 0 = %v", err)
	}
}

func testExpiry(t *testing.T, m *maker) {
	expired := make(chan string, 10)
	e := m.node(t, Options{SweepInterval: 20 * time.Millisecond, Hooks: server.EngineHooks{
		Expired: func(rs *server.RemovedSession) { expired <- rs.Info.ID },
	}})
	ctx := context.Background()
	for _, id := range []string{"soon", "later", "never", "kept", "cleared", "taken"} {
		CreateSession(t, e, id)
	}
	Subscribe(t, e, "soon", "/exp")
	const soon = 100 * time.Millisecond
	now := time.Now()
	_ = e.Touch(ctx, "soon", now.Add(soon))
	_ = e.Touch(ctx, "later", now.Add(time.Hour))
	_ = e.Touch(ctx, "kept", now.Add(300*time.Millisecond))
	_ = e.Touch(ctx, "cleared", now.Add(50*time.Millisecond))
	_ = e.Touch(ctx, "cleared", time.Time{}) // zero: never expires
	// A session that was taken (as by a connect) and then touched far
	// ahead stays too.
	_ = TakeAll(t, e, "taken")
	_ = e.Touch(ctx, "taken", now.Add(time.Hour))

	// Keep "kept" alive by touching it, as connects do.
	stop := time.Now().Add(600 * time.Millisecond)
	var got []string
	var at time.Duration
	for time.Now().Before(stop) {
		_ = e.Touch(ctx, "kept", time.Now().Add(300*time.Millisecond))
		select {
		case id := <-expired:
			got = append(got, id)
			at = time.Since(now)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !slices.Equal(got, []string{"soon"}) {
		t.Fatalf("expired %q, want only [soon]", got)
	}
	if at < soon {
		t.Errorf("soon expired after %v, before its expiry time", at)
	}
	if _, ok, _ := e.Session(ctx, "soon"); ok {
		t.Error("expired session still exists")
	}
	if n, _ := e.Publish(ctx, Payload("/exp", 1)); n != 0 {
		t.Errorf("expired session still subscribed")
	}
	for _, id := range []string{"later", "never", "kept", "cleared", "taken"} {
		if _, ok, _ := e.Session(ctx, id); !ok {
			t.Errorf("session %s is gone", id)
		}
	}
	// Once no longer touched, "kept" expires too; so does "taken" when
	// touched to expire soon.
	_ = e.Touch(ctx, "taken", time.Now().Add(50*time.Millisecond))
	left := map[string]bool{"kept": true, "taken": true}
	for len(left) > 0 {
		select {
		case id := <-expired:
			if !left[id] {
				t.Errorf("expired %q, want kept and taken", id)
			}
			delete(left, id)
		case <-time.After(Wait):
			t.Fatalf("%v did not expire", left)
		}
	}
}

func testClose(t *testing.T, m *maker) {
	e := m.node(t, Options{})
	ctx := context.Background()
	CreateSession(t, e, "s")
	if err := CloseWhileWaiting(t, e, "s"); err == nil {
		t.Error("a fetch woken by Close returned no error")
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := e.Publish(ctx, Payload("/a", 1)); !errors.Is(err, server.ErrEngineClosed) {
		t.Errorf("Publish after Close = %v", err)
	}
	if err := e.CreateSession(ctx, &server.SessionInfo{ID: "t"}); !errors.Is(err, server.ErrEngineClosed) {
		t.Errorf("CreateSession after Close = %v", err)
	}
	if _, err := e.Take(ctx, "s", server.TakeOptions{}); !errors.Is(err, server.ErrEngineClosed) {
		t.Errorf("Take after Close = %v", err)
	}
}

// testAck: in ack mode a batch stays until a take acknowledges its number.
func testAck(t *testing.T, m *maker) {
	e := m.node(t, Options{})
	ctx := context.Background()
	CreateAckSession(t, e, "s")
	for i := 1; i <= 3; i++ {
		_ = e.Deliver(ctx, "s", Payload("/a", i))
	}
	b, err := e.FetchAck(ctx, "s", 0, 0)
	l1 := b.Last
	if got := Nums(t, b); err != nil || !slices.Equal(got, []int{1, 2, 3}) || l1 == 0 {
		t.Fatalf("FetchAck(0) = %v last %d, %v", got, l1, err)
	}
	// Not acknowledged: sent again.
	b, _ = e.FetchAck(ctx, "s", 0, 0)
	l2 := b.Last
	if got := Nums(t, b); !slices.Equal(got, []int{1, 2, 3}) || l2 < l1 {
		t.Errorf("FetchAck(0) again = %v last %d", got, l2)
	}
	_ = e.Deliver(ctx, "s", Payload("/a", 4))
	b, _ = e.FetchAck(ctx, "s", l2, 0)
	l3 := b.Last
	if got := Nums(t, b); !slices.Equal(got, []int{4}) || l3 <= l2 {
		t.Errorf("FetchAck(%d) = %v last %d", l2, got, l3)
	}
	b, _ = e.FetchAck(ctx, "s", l3, 0)
	if len(b.Payloads) != 0 || b.Last != l3 {
		t.Errorf("FetchAck(%d) = %v last %d, want nothing and last %d", l3, Nums(t, b), b.Last, l3)
	}
	// Waiting works in ack mode; the acknowledged messages are gone.
	p := e.Begin(ctx, "s", server.TakeOptions{Ack: true, Acked: l3}, Wait)
	_ = e.Deliver(ctx, "s", Payload("/a", 5))
	b, err = awaitPending(p)
	l4 := b.Last
	if got := Nums(t, b); err != nil || !slices.Equal(got, []int{5}) || l4 <= l3 {
		t.Errorf("waiting FetchAck = %v last %d, %v", got, l4, err)
	}
	b, _ = e.FetchAck(ctx, "s", l4, 100*time.Millisecond)
	if len(b.Payloads) != 0 || b.Last != l4 {
		t.Errorf("FetchAck after timeout = %v last %d", Nums(t, b), b.Last)
	}

	// Overflow drops the oldest, acknowledged or not, counted once.
	small := m.node(t, Options{Budgets: server.Budgets{MaxQueue: 3}})
	CreateAckSession(t, small, "s")
	Subscribe(t, small, "s", "/o")
	for i := 1; i <= 5; i++ {
		_, _ = small.Publish(ctx, Payload("/o", i))
	}
	b, _ = small.FetchAck(ctx, "s", 0, 0)
	if got := Nums(t, b); !slices.Equal(got, []int{3, 4, 5}) || b.Dropped != 2 {
		t.Errorf("FetchAck after overflow = %v dropped %d", got, b.Dropped)
	}
	_, _ = small.Publish(ctx, Payload("/o", 6)) // unacknowledged 3 drops out
	b, _ = small.FetchAck(ctx, "s", 0, 0)
	if got := Nums(t, b); !slices.Equal(got, []int{4, 5, 6}) || b.Dropped != 1 {
		t.Errorf("FetchAck again after overflow = %v dropped %d", got, b.Dropped)
	}
	// An ack beyond what was sent acknowledges everything.
	b, _ = small.FetchAck(ctx, "s", b.Last+1000, 0)
	if len(b.Payloads) != 0 {
		t.Errorf("FetchAck(beyond) = %v", Nums(t, b))
	}
	_ = small.Deliver(ctx, "s", Payload("/o", 7))
	b2, _ := small.FetchAck(ctx, "s", b.Last, 0)
	if !slices.Equal(Nums(t, b2), []int{7}) {
		t.Errorf("after an ack beyond: %v", Nums(t, b2))
	}
	if b3, _ := small.FetchAck(ctx, "s", b2.Last, 0); len(b3.Payloads) != 0 {
		t.Errorf("acknowledged %d and got %v again", b2.Last, Nums(t, b3))
	}
}

// testAckAcrossNodes: a client in ack mode whose connects go to either
// node in turn, and whose replies are lost now and then, receives every
// message once and in order.
func testAckAcrossNodes(t *testing.T, m *maker) {
	a := m.node(t, Options{Budgets: server.Budgets{MaxQueue: 1000}})
	b := m.peer(t, a, Options{Budgets: server.Budgets{MaxQueue: 1000}})
	nodes := []*Node{a, b}
	ctx := context.Background()
	CreateAckSession(t, a, "s")
	Subscribe(t, b, "s", "/ack/*")
	r := rand.New(rand.NewPCG(7, 7))
	var acked uint64
	var got []int
	const total = 300
	for i, sent := 0, 0; len(got) < total && i < 10*total; i++ {
		for range r.IntN(4) {
			if sent < total {
				if _, err := nodes[r.IntN(2)].Publish(ctx, Payload("/ack/x", sent)); err != nil {
					t.Fatal(err)
				}
				sent++
			}
		}
		bt, err := nodes[i%2].FetchAck(ctx, "s", acked, 0)
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		if r.IntN(5) == 0 {
			continue // the reply was lost: the client acknowledges nothing new
		}
		got = append(got, Nums(t, bt)...)
		acked = bt.Last
	}
	want := make([]int, total)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(got, want) {
		t.Errorf("received %d messages (want %d once each, in order): %v", len(got), total, got)
	}
}

// testStress runs random operations from many goroutines on shared
// channels, through two nodes of a cluster where the engine has several
// (run it with -race), then checks that the engine's bookkeeping matches
// what the goroutines did.
func testStress(t *testing.T, m *maker) {
	opts := Options{Budgets: server.Budgets{MaxQueue: 50}, SweepInterval: 5 * time.Millisecond}
	n0 := m.node(t, opts)
	e := n0.Engine
	nodes := []server.Engine{e, m.peer(t, n0, opts).Engine}
	ctx := context.Background()
	const workers, ops = 8, 2000
	patterns := []string{"/s/a", "/s/b", "/s/*", "/s/**", "/**", "/s/a/*", "/t"}
	channels := []string{"/s/a", "/s/b", "/s/a/x", "/t", "/u"}
	// states[w] maps each live session of worker w to its subscriptions.
	states := make([]map[string]map[string]bool, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 99))
			live := map[string]map[string]bool{}
			var ids []string
			for i := range ops {
				e := nodes[r.IntN(len(nodes))]
				switch op := r.IntN(10); {
				case op == 0 || len(ids) == 0:
					id := fmt.Sprintf("w%d-%d", w, i)
					if err := e.CreateSession(ctx, &server.SessionInfo{ID: id}); err != nil {
						t.Error(err)
						return
					}
					ids = append(ids, id)
					live[id] = map[string]bool{}
				case op == 1:
					k := r.IntN(len(ids))
					id := ids[k]
					if rs, err := e.DestroySession(ctx, id); rs == nil || err != nil {
						t.Errorf("destroy %s: %v, %v", id, rs, err)
					}
					ids = slices.Delete(ids, k, k+1)
					delete(live, id)
				case op <= 4:
					id, p := ids[r.IntN(len(ids))], patterns[r.IntN(len(patterns))]
					if err := e.Subscribe(ctx, id, p, 0); err != nil {
						t.Errorf("subscribe: %v", err)
					}
					live[id][p] = true
				case op == 5:
					id, p := ids[r.IntN(len(ids))], patterns[r.IntN(len(patterns))]
					if ok, err := e.Unsubscribe(ctx, id, p); err != nil || ok != live[id][p] {
						t.Errorf("unsubscribe %s %s = %v, %v; want %v", id, p, ok, err, live[id][p])
					}
					delete(live[id], p)
				case op <= 7:
					if _, err := e.Publish(ctx, Payload(channels[r.IntN(len(channels))], i)); err != nil {
						t.Errorf("publish: %v", err)
					}
				case op == 8:
					if _, err := e.Take(ctx, ids[r.IntN(len(ids))], server.TakeOptions{}); err != nil {
						t.Errorf("take: %v", err)
					}
				default:
					_ = e.Deliver(ctx, ids[r.IntN(len(ids))], Payload("/direct", i))
					_ = e.Touch(ctx, ids[r.IntN(len(ids))], time.Now().Add(time.Hour))
				}
			}
			states[w] = live
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	total := 0
	for _, live := range states {
		total += len(live)
		for id, subs := range live {
			l, ok := e.(server.SessionLister)
			if !ok {
				break
			}
			got, err := l.Subscriptions(ctx, id)
			if err != nil {
				t.Fatalf("session %s: %v", id, err)
			}
			slices.Sort(got)
			var want []string
			for p := range subs {
				want = append(want, p)
			}
			if slices.Sort(want); !slices.Equal(got, want) {
				t.Errorf("session %s subscriptions %q, want %q", id, got, want)
			}
		}
	}
	if n, ok := sessionCount(t, e); ok && n != total {
		t.Errorf("SessionCount = %d, want %d", n, total)
	}
	// Publish counts agree with the recorded subscriptions: at least the
	// sessions, at most the subscriptions that match.
	for _, ch := range channels {
		sessions, subscriptions := 0, 0
		for _, live := range states {
			for _, subs := range live {
				matched := 0
				for p := range subs {
					if protocol.Match(p, ch) {
						matched++
					}
				}
				subscriptions += matched
				if matched > 0 {
					sessions++
				}
			}
		}
		if n, _ := e.Publish(ctx, Payload(ch, 0)); n < sessions || n > subscriptions {
			t.Errorf("Publish(%s) reached %d, want %d sessions (at most %d subscriptions)", ch, n, sessions, subscriptions)
		}
	}
	// Destroying everything leaves no subscriber behind.
	for _, live := range states {
		for id := range live {
			_, _ = e.DestroySession(ctx, id)
		}
	}
	for _, ch := range channels {
		if n, _ := e.Publish(ctx, Payload(ch, 0)); n != 0 {
			t.Errorf("after destroying every session, Publish(%s) reached %d", ch, n)
		}
	}
	checkNoResidue(t, e, "after destroying every session")
}

// testConcurrentPublishOnce: concurrent publishes, from two nodes where
// the engine has several, to a channel that sessions reach through several
// overlapping subscriptions must each be queued exactly once per session.
func testConcurrentPublishOnce(t *testing.T, m *maker) {
	na := m.node(t, Options{Budgets: server.Budgets{MaxQueue: 1 << 20}})
	nb := m.peer(t, na, Options{Budgets: server.Budgets{MaxQueue: 1 << 20}})
	a, b := na.Engine, nb.Engine
	ctx := context.Background()
	const sessions, workers, each = 20, 8, 500
	for i := range sessions {
		id := "s" + strconv.Itoa(i)
		CreateSession(t, a, id)
		Subscribe(t, b, id, "/d/x", "/d/*", "/d/**", "/**")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for w := range workers {
		wg.Go(func() {
			e := []server.Engine{a, b}[w%2]
			for i := range each {
				if n, err := e.Publish(ctx, Payload("/d/x", w*each+i)); err != nil || n < sessions || n > 4*sessions {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("publish %d = %d, %v", w*each+i, n, err))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for _, msg := range bad {
		t.Error(msg)
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d publishes reported a count other than %d sessions (at most %d subscriptions)", len(bad), workers*each, sessions, 4*sessions)
	}
	badSessions, totalDups := 0, 0
	for i := range sessions {
		bt, err := b.Take(ctx, "s"+strconv.Itoa(i), server.TakeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		seen := make(map[int]int, workers*each)
		for _, n := range Nums(t, bt) {
			seen[n]++
		}
		dups := 0
		for n, c := range seen {
			if c > 1 {
				dups += c - 1
				t.Errorf("session s%d got message %d %d times", i, n, c)
			}
		}
		if len(seen) != workers*each {
			t.Errorf("session s%d: %d distinct messages, want %d", i, len(seen), workers*each)
		}
		if dups > 0 {
			badSessions++
			totalDups += dups
		}
	}
	if badSessions > 0 {
		t.Errorf("%d of %d sessions got duplicates (%d extra copies of %d messages)", badSessions, sessions, totalDups, workers*each)
	}
}

// testListing covers the optional listing interfaces the engine offers.
func testListing(t *testing.T, m *maker) {
	e := m.node(t, Options{}).Engine
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		CreateSession(t, e, id)
	}
	Subscribe(t, e, "a", "/h", "/h/*")
	Subscribe(t, e, "b", "/h/*")
	ids := func(infos []*server.SessionInfo, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, in := range infos {
			out = append(out, in.ID)
		}
		slices.Sort(out)
		return out
	}
	if l, ok := e.(server.SessionLister); ok {
		if got := ids(l.ListSessions(ctx)); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Errorf("ListSessions = %q", got)
		}
		if subs, err := l.Subscriptions(ctx, "a"); err != nil || !slices.Equal(slices.Sorted(slices.Values(subs)), []string{"/h", "/h/*"}) {
			t.Errorf("Subscriptions(a) = %q, %v", subs, err)
		}
	}
	if l, ok := e.(server.SubscriberLister); ok {
		if got := ids(l.Subscribers(ctx, "/h/*")); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("Subscribers(/h/*) = %q", got)
		}
		if got := ids(l.Subscribers(ctx, "/h")); !slices.Equal(got, []string{"a"}) {
			t.Errorf("Subscribers(/h) = %q", got)
		}
		if got := ids(l.Subscribers(ctx, "/h/x")); len(got) != 0 {
			t.Errorf("Subscribers(/h/x) = %q, want none (wildcards are not expanded)", got)
		}
	}
	counts := func(when string, want map[string]int) {
		t.Helper()
		c, ok := e.(server.SubscriberCounter)
		if !ok {
			return
		}
		for ch, n := range want {
			if got, err := c.SubscriberCount(ctx, ch); err != nil || got != n {
				t.Errorf("%s: SubscriberCount(%s) = %d, %v; want %d", when, ch, got, err, n)
			}
		}
	}
	counts("subscribed", map[string]int{"/h/*": 2, "/h": 1, "/h/x": 0, "/nothing": 0})
	_, _ = e.DestroySession(ctx, "a")
	if l, ok := e.(server.SubscriberLister); ok {
		if got := ids(l.Subscribers(ctx, "/h/*")); !slices.Equal(got, []string{"b"}) {
			t.Errorf("after destroy, Subscribers(/h/*) = %q", got)
		}
	}
	counts("after destroy", map[string]int{"/h/*": 1, "/h": 0})
}

// testQueueBytes: a queue over MaxQueueBytes drops its oldest messages,
// counted in Dropped and reported by reason, but always keeps the newest,
// however big.
func testQueueBytes(t *testing.T, m *maker) {
	var drops DropCounter
	e := m.node(t, Options{Budgets: server.Budgets{MaxQueueBytes: 3500}, Hooks: drops.Hooks()})
	ctx := context.Background()
	CreateSession(t, e, "s")
	Subscribe(t, e, "s", "/q")
	for i := range 10 {
		if i%2 == 0 {
			if err := e.Deliver(ctx, "s", SizedPayload("/q", i, 1000)); err != nil {
				t.Fatal(err)
			}
		} else if n, err := e.Publish(ctx, SizedPayload("/q", i, 1000)); n != 1 || err != nil {
			t.Fatalf("Publish = %d, %v", n, err)
		}
	}
	b := TakeAll(t, e, "s")
	if got := Nums(t, b); !slices.Equal(got, []int{7, 8, 9}) || b.Dropped != 7 {
		t.Errorf("Take = %v dropped %d, want the newest 3 KB [7 8 9] and 7 dropped", got, b.Dropped)
	}
	if n := drops.Get(server.DropQueueBytes); n != 7 {
		t.Errorf("Dropped hook reported %d for %s, want 7", n, server.DropQueueBytes)
	}
	// A message bigger than the whole budget stays alone: it is the
	// newest, and a client must be able to receive it.
	_ = e.Deliver(ctx, "s", SizedPayload("/q", 10, 500))
	_ = e.Deliver(ctx, "s", SizedPayload("/q", 11, 5000))
	if b = TakeAll(t, e, "s"); !slices.Equal(Nums(t, b), []int{11}) || b.Dropped != 1 {
		t.Errorf("after a message over the budget, Take = %v dropped %d; want [11] dropped 1", Nums(t, b), b.Dropped)
	}
	// The budget counts what is queued now: taken messages free it.
	for i := range 3 {
		_ = e.Deliver(ctx, "s", SizedPayload("/q", i, 1000))
	}
	if b = TakeAll(t, e, "s"); len(b.Payloads) != 3 || b.Dropped != 0 {
		t.Errorf("after draining, 3 KB queued: Take = %v dropped %d", Nums(t, b), b.Dropped)
	}
	// The message bound still counts, with its own reason.
	small := m.node(t, Options{Budgets: server.Budgets{MaxQueue: 2}, Hooks: drops.Hooks()})
	CreateSession(t, small, "s")
	for i := range 5 {
		_ = small.Deliver(ctx, "s", Payload("/q", i))
	}
	if b = TakeAll(t, small, "s"); !slices.Equal(Nums(t, b), []int{3, 4}) || b.Dropped != 3 {
		t.Errorf("MaxQueue 2: Take = %v dropped %d", Nums(t, b), b.Dropped)
	}
	if n := drops.Get(server.DropQueueLength); n != 3 {
		t.Errorf("Dropped hook reported %d for %s, want 3", n, server.DropQueueLength)
	}
}

// testFetchBytes: one Take returns at most MaxFetchBytes of messages (at
// least one), the rest staying queued for the next, also when it waited.
func testFetchBytes(t *testing.T, m *maker) {
	e := m.node(t, Options{Budgets: server.Budgets{MaxFetchBytes: 2500}})
	ctx := context.Background()
	CreateSession(t, e, "s")
	Subscribe(t, e, "s", "/f")
	for i := range 5 {
		if _, err := e.Publish(ctx, SizedPayload("/f", i, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range [][]int{{0, 1}, {2, 3}, {4}, nil} {
		b := TakeAll(t, e, "s")
		if got := Nums(t, b); !slices.Equal(got, want) || b.Dropped != 0 {
			t.Errorf("Take = %v dropped %d, want %v (2.5 KB per take)", got, b.Dropped, want)
		}
	}
	// One message over the cap goes alone.
	_ = e.Deliver(ctx, "s", SizedPayload("/f", 5, 4000))
	_ = e.Deliver(ctx, "s", SizedPayload("/f", 6, 100))
	if b, _ := e.Fetch(ctx, "s", time.Second); !slices.Equal(Nums(t, b), []int{5}) {
		t.Errorf("Fetch with a 4 KB message first = %v, want [5] alone", Nums(t, b))
	}
	if b, _ := e.Fetch(ctx, "s", time.Second); !slices.Equal(Nums(t, b), []int{6}) {
		t.Errorf("next Fetch = %v, want [6]", Nums(t, b))
	}
	// A waiting fetch woken by a burst takes a capped batch too.
	p := e.Begin(ctx, "s", server.TakeOptions{}, Wait)
	if !p.Waits {
		t.Fatal("a fetch on an empty queue did not wait")
	}
	for i := 7; i < 10; i++ {
		_ = e.Deliver(ctx, "s", SizedPayload("/f", i, 1000))
	}
	b, err := awaitPending(p)
	if err != nil {
		t.Fatal(err)
	}
	got := Nums(t, b)
	if len(got) > 2 {
		t.Errorf("a woken fetch returned %v: more than 2.5 KB", got)
	}
	for range 3 {
		got = append(got, Nums(t, TakeAll(t, e, "s"))...)
	}
	if !slices.Equal(got, []int{7, 8, 9}) {
		t.Errorf("the fetch and takes after it delivered %v, want [7 8 9] in order", got)
	}
}

// testAckFetchBytes: in ack mode a take returns what is unacknowledged
// within MaxFetchBytes; without an ack the same batch is sent again, and
// each ack moves on to the next.
func testAckFetchBytes(t *testing.T, m *maker) {
	e := m.node(t, Options{Budgets: server.Budgets{MaxFetchBytes: 2500}})
	ctx := context.Background()
	CreateAckSession(t, e, "s")
	for i := 1; i <= 5; i++ {
		_ = e.Deliver(ctx, "s", SizedPayload("/a", i, 1000))
	}
	var acked uint64
	for i, tc := range []struct {
		lost bool // the reply is lost: the client acknowledges nothing new
		want []int
	}{
		{true, []int{1, 2}},
		{false, []int{1, 2}}, // not acknowledged: the same, within the cap
		{false, []int{3, 4}},
		{false, []int{5}},
		{false, nil},
	} {
		b, err := e.FetchAck(ctx, "s", acked, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := Nums(t, b); !slices.Equal(got, tc.want) {
			t.Errorf("take %d: %v, want %v", i, got, tc.want)
		}
		if !tc.lost {
			acked = b.Last
		}
	}
	// A message over the cap goes alone, and is sent again until acked.
	_ = e.Deliver(ctx, "s", SizedPayload("/a", 6, 4000))
	_ = e.Deliver(ctx, "s", SizedPayload("/a", 7, 100))
	var last uint64
	for range 2 {
		b, _ := e.FetchAck(ctx, "s", acked, 0)
		if !slices.Equal(Nums(t, b), []int{6}) {
			t.Errorf("FetchAck(%d) = %v, want [6] alone", acked, Nums(t, b))
		}
		last = b.Last
	}
	if b, _ := e.FetchAck(ctx, "s", last, 0); !slices.Equal(Nums(t, b), []int{7}) {
		t.Errorf("FetchAck(%d) = %v, want [7]", last, Nums(t, b))
	}
}

// testQueuedBytes: when all queues together go over MaxQueuedBytes, the
// biggest queue loses its oldest messages until they are back under 7/8
// of it; the small queues keep everything, every drop is reported to its
// session and to the hook, and the engine takes messages again as usual.
func testQueuedBytes(t *testing.T, m *maker) {
	var drops DropCounter
	e := m.node(t, Options{Budgets: server.Budgets{MaxQueuedBytes: 10000, MaxQueueBytes: 1 << 20, MaxFetchBytes: 1 << 20},
		Hooks: drops.Hooks()})
	ctx := context.Background()
	for _, id := range []string{"big", "mid", "small"} {
		CreateSession(t, e, id)
	}
	_ = e.Deliver(ctx, "small", SizedPayload("/d", 0, 1000))
	for i := range 3 {
		_ = e.Deliver(ctx, "mid", SizedPayload("/d", i, 1000))
	}
	// 4 KB elsewhere; the 7th KB of big makes 11 KB: big goes down to
	// 4 KB so that 8 KB (under 8750 bytes) remain.
	for i := range 7 {
		if err := e.Deliver(ctx, "big", SizedPayload("/d", i, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		id      string
		want    []int
		dropped int
	}{
		{"big", []int{3, 4, 5, 6}, 3},
		{"mid", []int{0, 1, 2}, 0},
		{"small", []int{0}, 0},
	} {
		b := TakeAll(t, e, tc.id)
		if got := Nums(t, b); !slices.Equal(got, tc.want) || b.Dropped != tc.dropped {
			t.Errorf("%s: Take = %v dropped %d, want %v dropped %d", tc.id, got, b.Dropped, tc.want, tc.dropped)
		}
	}
	if n := drops.Get(server.DropQueuedBytes); n != 3 {
		t.Errorf("Dropped hook reported %d for %s, want 3", n, server.DropQueuedBytes)
	}
	// Drained: the budget is free again.
	for i := range 9 {
		_ = e.Deliver(ctx, "mid", SizedPayload("/d", i, 1000))
	}
	if b := TakeAll(t, e, "mid"); len(b.Payloads) != 9 || b.Dropped != 0 {
		t.Errorf("after draining, 9 KB to one queue: Take = %v dropped %d", Nums(t, b), b.Dropped)
	}
	// Destroying a session frees its bytes too.
	for i := range 9 {
		_ = e.Deliver(ctx, "big", SizedPayload("/d", i, 1000))
	}
	if _, err := e.DestroySession(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	for i := range 9 {
		_ = e.Deliver(ctx, "small", SizedPayload("/d", i, 1000))
	}
	if b := TakeAll(t, e, "small"); len(b.Payloads) != 9 || b.Dropped != 0 {
		t.Errorf("after destroying a full queue, 9 KB to another: Take = %v dropped %d", Nums(t, b), b.Dropped)
	}
}
