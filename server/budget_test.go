package server

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/protocol"
)

// The attacks of issue 13, finding 2 (anonymous clients exhausting
// memory), run against a real server over HTTP as an attacker's client
// would.

// dropped returns a connect reply's ext.dropped (0 when absent).
func droppedOf(t *testing.T, msgs []*protocol.Message) int {
	t.Helper()
	r := replyTo(t, msgs, protocol.MetaConnect)
	raw, ok := r.Ext["dropped"]
	if !ok {
		return 0
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		t.Fatalf("ext.dropped %s: %v", raw, err)
	}
	return n
}

// ackClient handshakes with the ack extension and sends its first connect.
func (h *harness) ackClient() *rawClient {
	c := h.client()
	hs := handshakeMsg()
	hs.Ext = map[string]json.RawMessage{"ack": json.RawMessage("true")}
	r := only(h.t, c.must(hs), protocol.MetaHandshake)
	c.id = r.ClientID
	c.must(ackConnect(c.id, 0, &protocol.Advice{Timeout: protocol.Ms(0)}))
	return c
}

// heapInUse returns the heap in use after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestAttackQueueFloodStaysBounded: one anonymous subscriber stops
// reading while another client publishes 400 KB messages (24 MB in all).
// The subscriber's queue keeps at most MaxQueueBytes, so the server's heap
// stays bounded; its next connect reports the rest in ext.dropped, and no
// connect reply, with the ack extension either, is bigger than
// MaxReplySize: the rest waits for the next connect.
//
// Not parallel: it measures the heap.
func TestAttackQueueFloodStaysBounded(t *testing.T) {
	const (
		queueBytes = 2 << 20
		replySize  = 1 << 20
		msgSize    = 400 << 10
		total      = 60
	)
	h := newHarness(t, Options{MaxQueueBytes: queueBytes, MaxReplySize: replySize, MaxPublishSize: 512 << 10,
		ConnectTimeout: time.Minute})
	stalled := h.client().start()
	stalled.subscribe("/flood")
	acker := h.ackClient()
	acker.subscribe("/flood")
	pub := h.client().start()

	before := heapInUse()
	pad := strings.Repeat("x", msgSize)
	for i := range total {
		pub.publish("/flood", map[string]any{"n": i, "pad": pad})
	}
	h.events.mu.Lock()
	h.events.evs = nil // the harness keeps every event with its message
	h.events.mu.Unlock()
	pad = ""
	after := heapInUse()
	growth := int64(after) - int64(before)
	eng := h.srv.Engine().(*MemoryEngine)
	t.Logf("heap in use grew by %d KB after %d x %d KB published to 2 stalled subscribers; queued %d KB",
		growth>>10, total, msgSize>>10, eng.QueuedBytes()>>10)
	// Unbounded, each queue would keep all 24 MB (twice: the encoded
	// delivery and its decoded data); bounded, the two queues share at
	// most 2 MB.
	if growth > 10<<20 {
		t.Errorf("heap in use grew by %d KB: the stalled queues are not bounded in bytes", growth>>10)
	}
	for _, c := range []*rawClient{stalled, acker} {
		if n, err := eng.QueueBytes(context.Background(), c.id); err != nil || n > queueBytes {
			t.Errorf("a stalled session queues %d bytes (%v), budget %d", n, err, queueBytes)
		}
	}

	// The stalled subscriber learns what it lost, and each reply is within
	// the cap: the messages kept come over several connects, in order.
	var got []float64
	dropped := 0
	for range total {
		r := stalled.send(connectMsg(stalled.id, &protocol.Advice{Timeout: protocol.Ms(0)}))
		msgs := stalled.checkOK(r)
		if len(r.body) > replySize+4096 {
			t.Errorf("connect reply of %d bytes, cap %d", len(r.body), replySize)
		}
		dropped += droppedOf(t, msgs)
		n := len(got)
		for _, d := range dataOf(t, msgs, "/flood") {
			got = append(got, d.(map[string]any)["n"].(float64))
		}
		if len(got) == n {
			break
		}
	}
	if len(got) == 0 || dropped != total-len(got) || got[len(got)-1] != total-1 {
		t.Errorf("stalled subscriber got %v with %d dropped; want the newest messages and the rest of %d dropped", got, dropped, total)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Errorf("messages out of order or missing: %v", got)
			break
		}
	}

	// With the ack extension, an unacknowledged batch is sent again, each
	// time within the cap.
	var first []float64
	for try := range 2 {
		r := acker.send(ackConnect(acker.id, 0, &protocol.Advice{Timeout: protocol.Ms(0)}))
		msgs := acker.checkOK(r)
		if len(r.body) > replySize+4096 {
			t.Errorf("ack connect reply #%d of %d bytes, cap %d", try, len(r.body), replySize)
		}
		var ns []float64
		for _, d := range dataOf(t, msgs, "/flood") {
			ns = append(ns, d.(map[string]any)["n"].(float64))
		}
		if len(ns) == 0 {
			t.Fatalf("ack connect #%d delivered nothing", try)
		}
		if try == 0 {
			first = ns
			if droppedOf(t, msgs) == 0 {
				t.Error("the ack subscriber's first connect does not report drops")
			}
		} else if len(ns) != len(first) || ns[0] != first[0] {
			t.Errorf("unacknowledged batch re-sent as %v, first sent as %v", ns, first)
		}
	}
}

// TestPublishTooLarge: a message over MaxPublishSize is refused with
// 413:LIMIT:publish_too_large, counted, and never reaches a subscriber;
// the other messages of its batch go through.
func TestPublishTooLarge(t *testing.T) {
	t.Parallel()
	const limit = 1024
	h := newHarness(t, Options{MaxPublishSize: limit})
	sub := h.client().start()
	sub.subscribe("/big")
	pub := h.client().start()
	big := publishMsg(pub.id, "/big", strings.Repeat("x", limit))
	bigExt := publishMsg(pub.id, "/big", "small data")
	bigExt.Ext = map[string]json.RawMessage{"pad": json.RawMessage(`"` + strings.Repeat("y", limit) + `"`)}
	small := publishMsg(pub.id, "/big", "fits")
	msgs := pub.must(big, bigExt, small)
	for _, m := range msgs {
		switch m.ID {
		case big.ID, bigExt.ID:
			wantError(t, m, "413:1024:publish_too_large")
		case small.ID:
			if !m.IsSuccessful() {
				t.Errorf("the small publish of the batch failed: %s", dump([]*protocol.Message{m}))
			}
		}
	}
	if d := dataOf(t, sub.connectNow(), "/big"); len(d) != 1 || d[0] != "fits" {
		t.Errorf("subscriber got %v, want only the small message", d)
	}
	if n := h.srv.Stats().Refused.Load(RefusedPublishSize); n != 2 {
		t.Errorf("refused publish_size = %d, want 2", n)
	}
}

// TestAttackQueuedBytesBudget: stalled subscribers on channels of their
// own are flooded until all queues together pass MaxQueuedBytes. The
// documented behaviour: the biggest queues lose their oldest messages
// (each told in ext.dropped), publishing never fails, a subscriber that
// keeps up loses nothing, and once the stalled sessions drain or go the
// budget is free again.
func TestAttackQueuedBytesBudget(t *testing.T) {
	t.Parallel()
	const (
		budget  = 1 << 20
		msgSize = 20 << 10
	)
	h := newHarness(t, Options{MaxQueuedBytes: budget, MaxQueueBytes: budget, ConnectTimeout: time.Minute})
	eng := h.srv.Engine().(*MemoryEngine)
	var stalled []*rawClient
	for i := range 4 {
		c := h.client().start()
		c.subscribe("/stall/" + string(rune('a'+i)))
		stalled = append(stalled, c)
	}
	healthy := h.client().start()
	healthy.subscribe("/chat")
	pub := h.client().start()
	pad := strings.Repeat("x", msgSize)
	healthyGot := 0
	for i := range 200 {
		pub.publish("/stall/"+string(rune('a'+i%4)), map[string]any{"n": i, "pad": pad}) // 4 MB in all
		if i%20 == 0 {
			pub.publish("/chat", i)
			msgs := healthy.connectNow()
			healthyGot += len(dataOf(t, msgs, "/chat"))
			if d := droppedOf(t, msgs); d != 0 {
				t.Errorf("the healthy subscriber lost %d messages", d)
			}
		}
		if q := eng.QueuedBytes(); q > budget+2*msgSize {
			t.Fatalf("after publish %d, %d bytes queued; budget %d", i, q, budget)
		}
	}
	if healthyGot != 10 {
		t.Errorf("the healthy subscriber got %d of its 10 messages", healthyGot)
	}
	if n := h.srv.Stats().Refused.Load(DropQueuedBytes); n == 0 {
		t.Error("no drop counted for the queued_bytes budget")
	}
	// Each stalled subscriber is told what it lost.
	for i, c := range stalled {
		msgs := c.connectNow()
		kept := len(dataOf(t, msgs, "/stall/"+string(rune('a'+i))))
		if d := droppedOf(t, msgs); d == 0 || d+kept > 50 {
			t.Errorf("stalled subscriber %d: kept %d, ext.dropped %d of its 50", i, kept, d)
		}
	}
	// Recovered: the queues are drained (or their sessions gone) and the
	// whole budget takes messages again without a drop.
	for _, c := range stalled[:2] {
		for len(deliveries(c.connectNow())) > 0 {
		}
	}
	for _, c := range stalled[2:] {
		if ok, err := h.srv.Disconnect(context.Background(), c.id); !ok || err != nil {
			t.Fatalf("Disconnect: %v, %v", ok, err)
		}
	}
	testutil.Eventually(t, hWait, func() bool { return eng.QueuedBytes() == 0 }, "the budget to be free")
	refused := h.srv.Stats().Refused.Load(DropQueuedBytes)
	for i := range 40 {
		pub.publish("/stall/a", map[string]any{"n": i, "pad": pad}) // 800 KB
	}
	msgs := stalled[0].connectNow()
	if d, n := droppedOf(t, msgs), len(dataOf(t, msgs, "/stall/a")); d != 0 || n != 40 {
		t.Errorf("after recovery: %d delivered, %d dropped; want 40 and none", n, d)
	}
	if n := h.srv.Stats().Refused.Load(DropQueuedBytes); n != refused {
		t.Errorf("after recovery the budget dropped %d more", n-refused)
	}
}

// handshakeReply sends a handshake from c and returns its reply.
func (c *rawClient) handshakeReply() *protocol.Message {
	c.t.Helper()
	r := only(c.t, c.must(handshakeMsg()), protocol.MetaHandshake)
	if r.IsSuccessful() {
		c.id = r.ClientID
	}
	return r
}

// wantBackoff requires a refused handshake with err and advice to
// handshake again after at least minWait.
func wantBackoff(t *testing.T, r *protocol.Message, err string, minWait time.Duration) {
	t.Helper()
	wantError(t, r, err)
	a := r.Advice
	if a == nil || a.Reconnect != protocol.ReconnectHandshake || a.Interval == nil || time.Duration(*a.Interval)*time.Millisecond < minWait {
		t.Errorf("refused handshake advice %s; want reconnect:handshake and interval >= %v", dump([]*protocol.Message{r}), minWait)
	}
}

// TestAttackSessionsPerIP: an address holds at most MaxSessionsPerIP
// sessions; the next handshake is refused with advice to come back later,
// and a disconnect, an expiry or a removal by another node (seen in the
// engine) frees a place.
func TestAttackSessionsPerIP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxSessionsPerIP: 3, ConnectTimeout: 300 * time.Millisecond})
	var cs []*rawClient
	for range 3 {
		c := h.client()
		if r := c.handshakeReply(); !r.IsSuccessful() {
			t.Fatalf("handshake under the limit refused: %s", dump([]*protocol.Message{r}))
		}
		cs = append(cs, c)
	}
	for range 5 {
		wantBackoff(t, h.client().handshakeReply(), "429::too_many_sessions", sessionsRetry)
	}
	if n := h.srv.Stats().Refused.Load(RefusedSessionsPerIP); n != 5 {
		t.Errorf("refused sessions_per_ip = %d, want 5", n)
	}
	// A disconnect frees a place.
	cs[0].must(disconnectMsg(cs[0].id))
	if r := h.client().handshakeReply(); !r.IsSuccessful() {
		t.Errorf("handshake after a disconnect refused: %s", dump([]*protocol.Message{r}))
	}
	// Expiry frees every place.
	testutil.Eventually(t, hWait, func() bool { return h.sessionCount() == 0 }, "every session to expire")
	for range 3 {
		c := h.client()
		if r := c.handshakeReply(); !r.IsSuccessful() {
			t.Errorf("handshake after expiry refused: %s", dump([]*protocol.Message{r}))
		}
		cs = append(cs, c)
	}
	// A session removed elsewhere (another node sharing the engine: this
	// server is not told) is found gone when the address is at its limit,
	// within ipRecheck.
	h2 := newHarness(t, Options{MaxSessionsPerIP: 1, ConnectTimeout: time.Minute})
	c := h2.client()
	if r := c.handshakeReply(); !r.IsSuccessful() {
		t.Fatalf("first handshake refused: %s", dump([]*protocol.Message{r}))
	}
	wantBackoff(t, h2.client().handshakeReply(), "429::too_many_sessions", sessionsRetry)
	if rs, _ := h2.srv.Engine().DestroySession(context.Background(), c.id); rs == nil {
		t.Fatal("no session to destroy")
	}
	testutil.Eventually(t, ipRecheck+hWait, func() bool { return h2.client().handshakeReply().IsSuccessful() },
		"a handshake after the session was removed by another node")
}

// TestAttackSessionsPerIPBurst: handshakes from one address that arrive
// together, each still being authorized while the others are counted,
// create at most MaxSessionsPerIP sessions (a reservation not yet in the
// engine is not taken for a session gone elsewhere).
func TestAttackSessionsPerIPBurst(t *testing.T) {
	t.Parallel()
	const limit, burst = 4, 40
	release := make(chan struct{})
	var held, answered atomic.Int32
	h := newHarness(t, Options{MaxSessionsPerIP: limit, ConnectTimeout: time.Minute,
		Authorize: func(ctx context.Context, c *Client, m *protocol.Message) error {
			if m.Channel == protocol.MetaHandshake {
				held.Add(1)
				<-release
			}
			return nil
		}})
	results := make(chan result, burst)
	for range burst {
		go func() {
			r := h.client().send(handshakeMsg())
			answered.Add(1)
			results <- r
		}()
	}
	// Every handshake is either answered or held in Authorize before the
	// held ones go on.
	testutil.Eventually(t, hWait, func() bool { return held.Load()+answered.Load() == burst }, "every handshake answered or authorizing")
	close(release)
	var ok, refused int
	for range burst {
		r := <-results
		if r.err != nil || len(r.msgs) != 1 {
			t.Fatalf("handshake: %v", r)
		}
		if r.msgs[0].IsSuccessful() {
			ok++
		} else if r.msgs[0].Error == "429::too_many_sessions" {
			refused++
		}
	}
	if ok != limit || refused != burst-limit {
		t.Errorf("%d handshakes at once from one address: %d sessions, %d refused too_many_sessions; want %d and %d", burst, ok, refused, limit, burst-limit)
	}
}

// TestAttackHandshakeRate: handshakes from one address beyond the rate's
// burst are refused with advice to come back when a token is there (not
// at once), and succeed again after that.
func TestAttackHandshakeRate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{HandshakeRate: 2, HandshakeBurst: 3})
	for range 3 {
		if r := h.client().handshakeReply(); !r.IsSuccessful() {
			t.Fatalf("handshake within the burst refused: %s", dump([]*protocol.Message{r}))
		}
	}
	r := h.client().handshakeReply()
	wantBackoff(t, r, "429::too_many_handshakes", time.Second)
	if n := h.srv.Stats().Refused.Load(RefusedHandshakeRate); n != 1 {
		t.Errorf("refused handshake_rate = %d, want 1", n)
	}
	// A client that follows the advice gets in.
	testutil.Eventually(t, time.Duration(*r.Advice.Interval)*time.Millisecond+hWait, func() bool {
		return h.client().handshakeReply().IsSuccessful()
	}, "a handshake after the advised interval")
}
