package bolthistory_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/bolthistory"
)

// BenchmarkPublish measures server publishes to 100 subscribers of a
// channel without history (with the chat's rules in place, so that the
// rule lookup is paid), with history in memory, and with history in a
// bbolt file: one publisher at a time (each waits for its own commit:
// an fsync per message), and many at once (their messages share commits).
func BenchmarkPublish(b *testing.B) {
	rules := []server.ChannelRule{{Pattern: "/chat/**", History: 10000, Presence: true}}
	data := json.RawMessage(`{"user":"bench","chat":"0123456789012345678901234567890123456789012345678901234567890123"}`)
	for _, tc := range []struct {
		name     string
		channel  string
		bolt     bool
		parallel bool
	}{
		{"no-history", "/bench/room", false, false},
		{"memory", "/chat/room", false, false},
		{"bbolt", "/chat/room", true, false},
		{"bbolt-parallel", "/chat/room", true, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			opts := server.Options{Channels: rules, MaxQueue: 1 << 20, Logger: slog.New(slog.DiscardHandler)}
			if tc.bolt {
				st, err := bolthistory.Open(filepath.Join(b.TempDir(), "history.db"), bolthistory.Options{})
				if err != nil {
					b.Fatal(err)
				}
				opts.HistoryStore = st
			}
			srv, err := server.New(opts)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
			e := srv.Engine()
			ctx := context.Background()
			ids := make([]string, 100)
			for i := range ids {
				ids[i] = fmt.Sprintf("s%d", i)
				if err := e.CreateSession(ctx, &server.SessionInfo{ID: ids[i]}); err != nil {
					b.Fatal(err)
				}
				if err := e.Subscribe(ctx, ids[i], tc.channel, 0); err != nil {
					b.Fatal(err)
				}
			}
			drain := func() {
				for _, id := range ids {
					_, _ = e.Take(ctx, id, server.TakeOptions{})
				}
			}
			publish := func() {
				if _, err := srv.Publish(ctx, tc.channel, data); err != nil {
					b.Error(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			if tc.parallel {
				b.SetParallelism(32)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						publish()
					}
				})
			} else {
				for i := range b.N {
					publish()
					if i%512 == 511 {
						b.StopTimer()
						drain()
						b.StartTimer()
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
