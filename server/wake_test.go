package server

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/protocol"
)

// holdAll starts a held connect for each of clients; then runs with the
// client's index and the exchange once the connect's reply is complete
// (at once for a connect that had something to take): the exchange's
// events are the reply's deliveries.
func holdAll(t *testing.T, s *Server, clients []*Client, then func(i int, x *exchange)) {
	t.Helper()
	connect := &protocol.Message{Channel: protocol.MetaConnect, ID: "1"}
	for i, c := range clients {
		x := &exchange{s: s, ctx: context.Background(), transport: protocol.LongPolling}
		h := x.newHold(c, connect, true)
		if !h.start(func() { then(i, x) }) {
			then(i, x)
		}
	}
}

// clientsOf returns a Client for each session.
func clientsOf(t *testing.T, s *Server, ids []string) []*Client {
	t.Helper()
	clients := make([]*Client, len(ids))
	for i, id := range ids {
		info, ok, err := s.engine.Session(context.Background(), id)
		if !ok || err != nil {
			t.Fatalf("session %s: %v %v", id, ok, err)
		}
		clients[i] = &Client{info: info, transport: protocol.LongPolling}
	}
	return clients
}

// dataNums returns the data of deliveries, which are numbers.
func dataNums(t *testing.T, events [][]byte) []int {
	t.Helper()
	out := make([]int, 0, len(events))
	for _, ev := range events {
		var m struct{ Data int }
		if err := json.Unmarshal(ev, &m); err != nil {
			t.Errorf("delivery %s: %v", ev, err)
			continue
		}
		out = append(out, m.Data)
	}
	return out
}

// TestFanoutWakeOrder: publishes that wake many held connects at once
// (several wake runs of wakeChunk) answer each connect with messages of
// its own session only, and over its connects every session gets every
// message once, in publish order.
func TestFanoutWakeOrder(t *testing.T) {
	t.Parallel()
	const n, rounds, perRound = 3*wakeChunk + 5, 3, 2
	s := quietServer(t, Options{})
	ids := subscribeSessions(t, s, n, "/room")
	clients := clientsOf(t, s, ids)
	ctx := context.Background()
	var mu sync.Mutex
	got := make([][]int, n)
	for r := range rounds {
		var replied atomic.Int64
		holdAll(t, s, clients, func(i int, x *exchange) {
			nums := dataNums(t, x.events)
			if len(nums) == 0 {
				t.Errorf("round %d: session %d answered without a message", r, i)
			}
			mu.Lock()
			got[i] = append(got[i], nums...)
			mu.Unlock()
			x.done()
			replied.Add(1)
		})
		for k := range perRound {
			if _, err := s.Publish(ctx, "/room", r*perRound+k); err != nil {
				t.Fatal(err)
			}
		}
		testutil.Eventually(t, 10*time.Second, func() bool { return replied.Load() == n }, "every held connect answered")
	}
	// What the last replies did not carry waits for the next connect.
	want := make([]int, rounds*perRound)
	for i := range want {
		want[i] = i
	}
	mu.Lock()
	defer mu.Unlock()
	for i, id := range ids {
		b, err := s.engine.Take(ctx, id, TakeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range b.Payloads {
			got[i] = append(got[i], dataNums(t, [][]byte{p.JSON})...)
		}
		if !slices.Equal(got[i], want) {
			t.Errorf("session %d got %v, want %v", i, got[i], want)
		}
	}
}

// firstReady is a memory engine whose ReadyBatch puts session first at
// the head of the batch, wherever the fan-out found it, and counts the
// batches.
type firstReady struct {
	*MemoryEngine
	first   atomic.Pointer[string]
	batches atomic.Int64
}

func (e *firstReady) Start(hooks EngineHooks) error {
	next := hooks.ReadyBatch
	hooks.ReadyBatch = func(ids []string) {
		e.batches.Add(1)
		if first := e.first.Load(); first != nil {
			if i := slices.Index(ids, *first); i > 0 {
				ids[0], ids[i] = ids[i], ids[0]
			}
		}
		next(ids)
	}
	return e.MemoryEngine.Start(hooks)
}

// TestWakeRunStall: a held connect whose reply cannot be delivered (its
// client does not read, the write waits) does not hold up the connects
// woken with it, which are answered meanwhile.
func TestWakeRunStall(t *testing.T) {
	t.Parallel()
	const n = 8
	e := &firstReady{MemoryEngine: NewMemoryEngine(MemoryEngineOptions{})}
	s := quietServer(t, Options{Engine: e})
	ids := subscribeSessions(t, s, n, "/room")
	e.first.Store(&ids[0])
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the server's shutdown, which waits for it
	var replied [n]atomic.Bool
	holdAll(t, s, clientsOf(t, s, ids), func(i int, x *exchange) {
		if i == 0 {
			<-release // the stuck delivery
		}
		if nums := dataNums(t, x.events); !slices.Equal(nums, []int{7}) {
			t.Errorf("session %d got %v, want [7]", i, nums)
		}
		x.done()
		replied[i].Store(true)
	})
	if _, err := s.Publish(context.Background(), "/room", 7); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		for i := 1; i < n; i++ {
			if !replied[i].Load() {
				return false
			}
		}
		return true
	}, "the connects woken after the stuck one answered")
	if e.batches.Load() == 0 {
		t.Fatal("the publish woke its connects one by one, not in a batch")
	}
	if replied[0].Load() {
		t.Fatal("the stuck connect answered before it was released")
	}
	unblock()
	testutil.Eventually(t, 5*time.Second, replied[0].Load, "the stuck connect answered once released")
}
