package server

import (
	"context"
	"encoding/json"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"

	"github.com/coder/websocket"

	"github.com/bayeux-go/bayeux/protocol"
)

// TestStalledConsumersStayBounded floods 1 KB messages at a channel with a
// long-polling subscriber that stopped connecting, a WebSocket subscriber
// that stopped reading, and a healthy subscriber. The stalled ones cost a
// bounded queue each (oldest dropped, reported), the WebSocket one is cut
// off, and the healthy one receives every message promptly.
func TestStalledConsumersStayBounded(t *testing.T) {
	const (
		maxQueue = 200
		total    = 15000
		burst    = 100
	)
	h := newHarness(t, Options{MaxQueue: maxQueue, ConnectTimeout: time.Minute, WriteTimeout: 300 * time.Millisecond})

	stalledHTTP := h.client().start()
	stalledHTTP.subscribe("/flood")

	stalledWS := h.dialWS(nil)
	stalledWS.send(handshakeMsg())
	stalledWS.id = only(t, stalledWS.read(hWait), protocol.MetaHandshake).ClientID
	stalledWS.send(subscribeMsg(stalledWS.id, "/flood"))
	stalledWS.read(hWait)
	// From now on stalledWS never reads again, but keeps sending connects,
	// so the server has frames to write to a socket nobody drains.
	wsStop := make(chan struct{})
	go func() {
		b, _ := json.Marshal([]*protocol.Message{connectMsg(stalledWS.id, &protocol.Advice{Timeout: protocol.Ms(0)})})
		for {
			select {
			case <-wsStop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if stalledWS.c.Write(context.Background(), websocket.MessageText, b) != nil {
				return
			}
		}
	}()
	defer close(wsStop)

	healthy := h.client().start()
	healthy.subscribe("/flood")
	var received atomic.Int64
	var latencies []time.Duration
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			r := healthy.wait(healthy.connectAsync(), hWait)
			now := time.Now()
			for _, m := range deliveries(r.msgs) {
				var d struct{ Sent int64 }
				if json.Unmarshal(m.Data, &d) == nil {
					latencies = append(latencies, now.Sub(time.Unix(0, d.Sent)))
				}
				received.Add(1)
			}
		}
	}()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	pad := strings.Repeat("x", 1000)
	for i := 0; i < total; i += burst {
		for range burst {
			if _, err := h.srv.Publish(context.Background(), "/flood", map[string]any{"pad": pad, "sent": time.Now().UnixNano()}); err != nil {
				t.Fatal(err)
			}
		}
		// Pace the flood at what the healthy client can take.
		testutil.Eventually(t, hWait, func() bool { return received.Load() >= int64(i+burst) }, "healthy subscriber keeps up")
	}
	close(stop)
	h.client().start().publish("/flood", map[string]any{"sent": time.Now().UnixNano()}) // wakes the last connect
	<-done

	// The harness keeps every event (with its message) for assertions:
	// forget them before measuring.
	h.events.mu.Lock()
	h.events.evs = nil
	h.events.mu.Unlock()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap growth %d KB after %d x 1 KB messages; healthy received %d", growth>>10, total, received.Load())
	// Unbounded queues would keep all 15000 payloads (about 16 MB, shared
	// by the stalled sessions); bounded ones keep at most 200.
	if growth > 6<<20 {
		t.Errorf("heap grew by %d KB: stalled sessions are not bounded", growth>>10)
	}
	for _, id := range []string{stalledHTTP.id, stalledWS.id} {
		if n, err := h.srv.engine.(*MemoryEngine).QueueLen(context.Background(), id); err == nil && n > maxQueue {
			t.Errorf("stalled session %s holds %d messages, bound is %d", shortID(id), n, maxQueue)
		}
	}
	slices.Sort(latencies)
	p99 := latencies[len(latencies)*99/100]
	t.Logf("healthy subscriber latency p50 %v p99 %v", latencies[len(latencies)/2], p99)
	if p99 > time.Second {
		t.Errorf("healthy subscriber p99 latency %v under the flood", p99)
	}

	// The stalled long-poller learns how much it lost.
	msgs := stalledHTTP.connectNow()
	if got := len(deliveries(msgs)); got > maxQueue {
		t.Errorf("stalled session got %d queued messages, bound is %d", got, maxQueue)
	}
	var dropped int
	if err := json.Unmarshal(replyTo(t, msgs, protocol.MetaConnect).Ext["dropped"], &dropped); err != nil || dropped < total-maxQueue {
		t.Errorf("connect reply should report about %d dropped, ext = %v", total-maxQueue, replyTo(t, msgs, protocol.MetaConnect).Ext)
	}

	// The WebSocket that stopped reading was cut off.
	ctx, cancel := context.WithTimeout(context.Background(), hWait)
	defer cancel()
	for {
		if _, _, err := stalledWS.c.Read(ctx); err != nil {
			if websocket.CloseStatus(err) == -1 && ctx.Err() != nil {
				t.Fatal("stalled WebSocket still open")
			}
			break
		}
	}
}
