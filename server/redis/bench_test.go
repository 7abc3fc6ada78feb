package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/enginetest"
)

// redisCPU returns the CPU time redis-server used so far (user + system,
// from INFO cpu).
func redisCPU(b *testing.B, c goredis.UniversalClient) time.Duration {
	b.Helper()
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

// fanoutBench is node A with subs sessions on /bench/room, each taken
// once (so that A takes for them and follows the stream), and node B
// that publishes.
func fanoutBench(b *testing.B, subs int) (a, pub testEngine, ids []string) {
	b.Helper()
	url := sharedRedis(b).URL
	opts := Options{SweepInterval: time.Hour}
	a = newTestEngine(b, url, opts, server.EngineHooks{})
	opts.Prefix = a.opts.Prefix
	pub = newTestEngine(b, url, opts, server.EngineHooks{})
	ctx := context.Background()
	for i := range subs {
		id := "s" + strconv.Itoa(i)
		if err := a.CreateSession(ctx, &server.SessionInfo{ID: id, Created: time.Now()}); err != nil {
			b.Fatal(err)
		}
		if err := a.Subscribe(ctx, id, "/bench/room", 0); err != nil {
			b.Fatal(err)
		}
		if _, err := a.Take(ctx, id, server.TakeOptions{}); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	return a, pub, ids
}

// BenchmarkRedisPublish publishes to a channel with 1, 50 or 500
// subscribers whose sessions one node takes for, and reports per publish
// the round trips of the publishing node, the notices the subscribers'
// node got and the CPU redis-server used: none of them depends on the
// number of subscribers.
func BenchmarkRedisPublish(b *testing.B) {
	for _, tc := range []struct {
		subs    int
		history bool
	}{{1, false}, {50, false}, {500, false}, {50, true}} {
		name := fmt.Sprintf("subs=%d", tc.subs)
		if tc.history {
			name += ",history" // kept in the channel's history stream too
		}
		subs := tc.subs
		b.Run(name, func(b *testing.B) {
			a, pub, _ := fanoutBench(b, subs)
			ctx := context.Background()
			payload := func() *server.Payload {
				p := testPayload("/bench/room", 1)
				if tc.history {
					p.History = &server.HistoryPolicy{MaxLen: 1000}
				}
				return p
			}
			if _, err := pub.Publish(ctx, payload()); err != nil { // the script is loaded
				b.Fatal(err)
			}
			rt, notices := pub.Stats().RoundTrips, a.Stats().Notices
			cpu := redisCPU(b, pub.Client())
			p := payload()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if tc.history {
					p = payload() // a kept message is given its position
				}
				if n, err := pub.Publish(ctx, p); err != nil || n != subs {
					b.Fatalf("Publish = %d, %v", n, err)
				}
			}
			b.StopTimer()
			used := redisCPU(b, pub.Client()) - cpu
			b.ReportMetric(float64(pub.Stats().RoundTrips-rt-1)/float64(b.N), "roundtrips/op")
			b.ReportMetric(float64(a.Stats().Notices-notices)/float64(b.N), "notices/op")
			b.ReportMetric(float64(used.Microseconds())/float64(b.N), "redis-us/op")
		})
	}
}

// BenchmarkRedisFanoutTake is the whole path for 1, 50 or 500
// subscribers: every session waits as a held connect does (a take with
// Watch, then Ready), one publish wakes them, each takes the message and
// commits its position. The commits of the sessions that take at the
// same moment share a round trip (commit-roundtrips/op); redis-us/op is
// the CPU redis-server used per publish, takes included.
func BenchmarkRedisFanoutTake(b *testing.B) {
	for _, subs := range []int{1, 50, 500} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			a, pub, ids := fanoutBench(b, subs)
			ctx := context.Background()
			p := testPayload("/bench/room", 1)
			cpu := redisCPU(b, pub.Client())
			batches := a.Stats().CommitBatches
			held := make([]*enginetest.Pending, len(ids))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for i, id := range ids {
					held[i] = a.node.Begin(ctx, id, server.TakeOptions{}, 10*time.Second)
				}
				if _, err := pub.Publish(ctx, p); err != nil {
					b.Fatal(err)
				}
				for _, h := range held {
					if bt, err := h.Wait(); err != nil || len(bt.Payloads) != 1 {
						b.Fatalf("took %d messages, %v", len(bt.Payloads), err)
					}
				}
			}
			b.StopTimer()
			used := redisCPU(b, pub.Client()) - cpu
			b.ReportMetric(float64(used.Microseconds())/float64(b.N), "redis-us/op")
			b.ReportMetric(float64(a.Stats().CommitBatches-batches)/float64(b.N), "commit-roundtrips/op")
			b.ReportMetric(float64(subs*b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
