package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

func quietServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// subscribeSessions creates n sessions subscribed to pattern.
func subscribeSessions(tb testing.TB, s *Server, n int, pattern string) []string {
	tb.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newID()
		if err := s.engine.CreateSession(ctx, &SessionInfo{ID: ids[i]}); err != nil {
			tb.Fatal(err)
		}
		if err := s.engine.Subscribe(ctx, ids[i], pattern, 0); err != nil {
			tb.Fatal(err)
		}
	}
	return ids
}

// TestPublishEncodesOnce proves that every recipient gets the very same
// encoded bytes: the message is marshalled once per publish, not once per
// subscriber.
func TestPublishEncodesOnce(t *testing.T) {
	s := quietServer(t, Options{})
	ids := subscribeSessions(t, s, 3, "/room/*")
	if _, err := s.Publish(context.Background(), "/room/a", map[string]string{"chat": "hi"}); err != nil {
		t.Fatal(err)
	}
	var first *byte
	for _, id := range ids {
		b, err := s.engine.Take(context.Background(), id, TakeOptions{})
		if err != nil || len(b.Payloads) != 1 {
			t.Fatalf("fetch %s: %v %d", id, err, len(b.Payloads))
		}
		p := &b.Payloads[0].JSON[0]
		if first == nil {
			first = p
		} else if p != first {
			t.Fatal("recipients got different encodings of one publish")
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b.Payloads[0].JSON, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["clientId"]; ok {
			t.Error("delivery carries clientId")
		}
	}
}

// BenchmarkPublishFanout measures one publish reaching N subscribers of a
// wildcard pattern through the memory engine, including the encoding.
func BenchmarkPublishFanout(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			s := quietServer(b, Options{MaxQueue: 1 << 20})
			ids := subscribeSessions(b, s, n, "/bench/*")
			data := json.RawMessage(`{"user":"bench","chat":"0123456789012345678901234567890123456789012345678901234567890123"}`)
			ctx := context.Background()
			drain := func() {
				for _, id := range ids {
					_, _ = s.engine.Take(ctx, id, TakeOptions{})
				}
			}
			// Warm up: let every queue reach its steady capacity, so the
			// numbers are the publish path's, not the queues' first growth.
			for range 512 {
				if _, err := s.Publish(ctx, "/bench/room", data); err != nil {
					b.Fatal(err)
				}
			}
			drain()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := s.Publish(ctx, "/bench/room", data); err != nil {
					b.Fatal(err)
				}
				if i%512 == 511 {
					b.StopTimer()
					drain()
					b.StartTimer()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkHandlePublish measures a remote publish message through the
// exchange (validation, authorization, encoding, fan-out to 100).
func BenchmarkHandlePublish(b *testing.B) {
	s := quietServer(b, Options{MaxQueue: 1 << 20})
	ids := subscribeSessions(b, s, 100, "/bench/room")
	pub := subscribeSessions(b, s, 1, "/other")[0]
	data := json.RawMessage(`{"chat":"hello"}`)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		x := &exchange{s: s, ctx: ctx, transport: protocol.LongPolling}
		x.handle(&protocol.Message{Channel: "/bench/room", ClientID: pub, Data: data, ID: "1"}, true)
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

// benchEngine is a started memory engine with one session, id.
func benchEngine(b *testing.B, id string) *MemoryEngine {
	b.Helper()
	e := NewMemoryEngine(MemoryEngineOptions{})
	if err := e.Start(EngineHooks{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close() })
	if err := e.CreateSession(context.Background(), &SessionInfo{ID: id}); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkQueue: one message queued for a session and taken by its next
// connect (Deliver, then a Take that finds it).
func BenchmarkQueue(b *testing.B) {
	e := benchEngine(b, "q")
	ctx := context.Background()
	p := &Payload{Channel: "/q", JSON: []byte(`{"channel":"/q","data":1}`)}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Deliver(ctx, "q", p); err != nil {
			b.Fatal(err)
		}
		if bt, err := e.Take(ctx, "q", TakeOptions{Watch: true}); err != nil || len(bt.Payloads) != 1 {
			b.Fatalf("take: %v %d", err, len(bt.Payloads))
		}
	}
}

// BenchmarkHoldWake: a held connect (a hold, no goroutine while it waits)
// is woken by a message through the engine's Ready hook; done runs on a
// goroutine of its own.
func BenchmarkHoldWake(b *testing.B) {
	s := quietServer(b, Options{})
	ctx := context.Background()
	info := &SessionInfo{ID: "w"}
	if err := s.engine.CreateSession(ctx, info); err != nil {
		b.Fatal(err)
	}
	c := &Client{info: info}
	p := &Payload{Channel: "/w", JSON: []byte(`{"channel":"/w","data":1}`)}
	woken := make(chan int, 1)
	b.ReportAllocs()
	for b.Loop() {
		x := &exchange{s: s, ctx: ctx, transport: protocol.LongPolling}
		h := x.newHold(c, &protocol.Message{Channel: protocol.MetaConnect, ID: "1"}, true)
		if !h.start(func() { woken <- len(x.events) }) {
			b.Fatal("the connect did not wait")
		}
		if err := s.engine.Deliver(ctx, "w", p); err != nil {
			b.Fatal(err)
		}
		if n := <-woken; n != 1 {
			b.Fatalf("woken with %d messages", n)
		}
		x.done()
	}
}

// BenchmarkEncodeResponse: a connect reply carrying 32 deliveries, encoded
// into a pooled buffer as the long-polling transport does.
func BenchmarkEncodeResponse(b *testing.B) {
	s := quietServer(b, Options{})
	ev := []byte(`{"channel":"/chat/lobby","data":{"user":"alice","chat":"hello there, how is everyone doing today?"}}`)
	m := &protocol.Message{Channel: protocol.MetaConnect, ID: "42"}
	b.ReportAllocs()
	for b.Loop() {
		x := &exchange{s: s}
		x.events = *getEvents(32)
		for range 32 {
			x.events = append(x.events, ev)
		}
		r := m.Reply(true)
		r.Advice = s.retryAdvice()
		x.reply(r)
		if _, _, err := s.responseBody(x, ""); err != nil {
			b.Fatal(err)
		}
		x.pooledEvents = &x.events
		x.done()
	}
}

// BenchmarkSendTo: one publish to 100 subscribers, each then answered by
// its connect (take, per-recipient hook, events of the reply): without a
// SendTo hook, with one that leaves every delivery as it is (the shared
// encoding is written: no more allocations than without), and with one
// that redacts the delivery of 1 subscriber in 100 (one encoding more).
func BenchmarkSendTo(b *testing.B) {
	const n = 100
	leave := func(_ *Client, p *Payload) *Payload { return p }
	redactOne := func(to *Client, p *Payload) *Payload {
		if to.Flag("redact") == "" {
			return p
		}
		q, err := p.WithData(map[string]string{"user": "bench"})
		if err != nil {
			return nil
		}
		return q
	}
	for _, bc := range []struct {
		name string
		hook func(*Client, *Payload) *Payload
	}{{"hook=none", nil}, {"hook=unchanged", leave}, {"hook=redact-1-in-100", redactOne}} {
		b.Run(bc.name, func(b *testing.B) {
			var ext []Extension
			if bc.hook != nil {
				ext = []Extension{{SendTo: bc.hook}}
			}
			s := quietServer(b, Options{MaxQueue: 1 << 20, Extensions: ext})
			ids := subscribeSessions(b, s, n, "/bench/room")
			ctx := context.Background()
			clients := make([]*Client, n)
			for i, id := range ids {
				info, _, _ := s.engine.Session(ctx, id)
				in := *info
				if i == 0 {
					in.Flags = map[string]string{"redact": "yes"}
				}
				clients[i] = &Client{info: &in, transport: protocol.LongPolling}
			}
			data := json.RawMessage(`{"user":"bench","chat":"0123456789012345678901234567890123456789012345678901234567890123"}`)
			connect := &protocol.Message{Channel: protocol.MetaConnect, ID: "1"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Publish(ctx, "/bench/room", data); err != nil {
					b.Fatal(err)
				}
				for _, c := range clients {
					x := &exchange{s: s, ctx: ctx, transport: protocol.LongPolling}
					h := x.newHold(c, connect, false)
					if h.start(nil) || len(x.events) != 1 {
						b.Fatalf("connect: %d events", len(x.events))
					}
					x.done()
				}
			}
			b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
