package server_test

import (
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/enginetest"
)

// TestMemoryEngine runs the engine conformance suite on the memory engine.
func TestMemoryEngine(t *testing.T) {
	t.Parallel()
	enginetest.Run(t, func(t *testing.T, opts enginetest.Options) server.Engine {
		if opts.Peer != nil {
			// A memory engine is a cluster of one node.
			return opts.Peer
		}
		e := server.NewMemoryEngine(server.MemoryEngineOptions{Budgets: opts.Budgets, SweepInterval: opts.SweepInterval})
		if err := e.Start(opts.Hooks); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		return e
	})
}

// TestMemoryServerHistory runs the history and presence scenarios on a
// server with the memory engine.
func TestMemoryServerHistory(t *testing.T) {
	t.Parallel()
	enginetest.RunServer(t, func(t *testing.T, opts server.Options) (*server.Server, string) {
		opts.Engine = server.NewMemoryEngine(server.MemoryEngineOptions{SweepInterval: 50 * time.Millisecond})
		return enginetest.Serve(t, opts)
	})
}
