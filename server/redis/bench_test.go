package redis

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/server"
)

// BenchmarkRedisPublishFanout publishes to a channel with 1 or 100
// subscribers (each through an exact and a wildcard subscription) and
// reports the Redis round trips per publish, counted by the engine's
// go-redis hook. Queues are drained outside the timer.
func BenchmarkRedisPublishFanout(b *testing.B) {
	for _, subs := range []int{1, 100} {
		b.Run("subs="+strconv.Itoa(subs), func(b *testing.B) {
			e := newTestEngine(b, sharedRedis(b).URL, Options{Budgets: server.Budgets{MaxQueue: 1 << 20}, SweepInterval: time.Hour}, server.EngineHooks{})
			ctx := context.Background()
			for i := range subs {
				id := "s" + strconv.Itoa(i)
				if err := e.CreateSession(ctx, &server.SessionInfo{ID: id, Created: time.Now()}); err != nil {
					b.Fatal(err)
				}
				for _, p := range []string{"/bench/room", "/bench/*"} {
					if err := e.Subscribe(ctx, id, p, 0); err != nil {
						b.Fatal(err)
					}
				}
			}
			p := testPayload("/bench/room", 1)
			// Load the script once so that the count is the steady state.
			if _, err := e.Publish(ctx, p); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			rt := e.Stats().RoundTrips
			for i := range b.N {
				n, err := e.Publish(ctx, p)
				if err != nil || n != subs {
					b.Fatalf("Publish = %d, %v", n, err)
				}
				if i%500 == 499 {
					b.StopTimer()
					rt -= e.Stats().RoundTrips
					for j := range subs {
						_, _ = e.Fetch(ctx, "s"+strconv.Itoa(j), 0)
					}
					rt += e.Stats().RoundTrips
					b.StartTimer()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(e.Stats().RoundTrips-rt)/float64(b.N), "roundtrips/op")
			b.ReportMetric(float64(subs*b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkRedisFetch measures a Fetch that finds one message queued.
func BenchmarkRedisFetch(b *testing.B) {
	e := newTestEngine(b, sharedRedis(b).URL, Options{SweepInterval: time.Hour}, server.EngineHooks{})
	ctx := context.Background()
	if err := e.CreateSession(ctx, &server.SessionInfo{ID: "s"}); err != nil {
		b.Fatal(err)
	}
	p := testPayload("/f", 1)
	_ = e.Deliver(ctx, "s", p)
	_, _ = e.Fetch(ctx, "s", 0)
	b.ResetTimer()
	var rt int64
	for range b.N {
		b.StopTimer()
		_ = e.Deliver(ctx, "s", p)
		before := e.Stats().RoundTrips
		b.StartTimer()
		bt, err := e.Fetch(ctx, "s", time.Second)
		if err != nil || len(bt.Payloads) != 1 {
			b.Fatalf("Fetch = %+v, %v", bt, err)
		}
		rt += e.Stats().RoundTrips - before
	}
	b.ReportMetric(float64(rt)/float64(b.N), "roundtrips/op")
}
