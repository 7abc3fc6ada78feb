// Command bayeux-bench is a load generator for any Bayeux (CometD) server:
// fan-out, chat rooms, idle long-polls and handshake rate, with exact
// loss/duplicate/reorder counting and open-loop latency. Run it with -h for
// the flags; the logic lives in internal/bench.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/bayeux-go/bayeux/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := bench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
