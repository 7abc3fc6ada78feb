package server

import (
	"context"
	"testing"

	"github.com/bayeux-go/bayeux/protocol"
)

// TestShutdownNeverSaysNone: a connect answered while the server shuts
// down, even after its engine closed, is told to retry later (with an
// interval, so clients do not spin), never reconnect:"none".
func TestShutdownNeverSaysNone(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.client().start()
	held := c.connectAsync()
	h.waitHeld(1)
	ctx, cancel := context.WithTimeout(context.Background(), hWait)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range []result{c.wait(held, hWait), c.send(connectMsg(c.id, nil))} {
		rep := replyTo(t, r.msgs, protocol.MetaConnect)
		if rep.Advice == nil || rep.Advice.Reconnect != protocol.ReconnectRetry || rep.Advice.Interval == nil || *rep.Advice.Interval < 1000 {
			t.Fatalf("connect during shutdown: %s", r.body)
		}
	}
}
