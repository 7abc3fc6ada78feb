// Command bayeux-abuse attacks a Bayeux server the way an outsider would
// (login guessing, queue flooding, logout replay, slow bodies, JSONP with
// a login cookie, invalid UTF-8, wildcard lurking and more) and says for
// each attack whether the server defended itself, with the server's RSS
// before and after. By default it starts bin/bayeux on a loopback port;
// with -url it attacks a running server, which must be yours. Run it with
// -h for the flags; the logic lives in internal/abuse.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/bayeux-go/bayeux/internal/abuse"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := abuse.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
