package server

import (
	"context"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/bayeux-go/bayeux/internal/testutil"
)

// dialWSErr dials the harness's endpoint and returns the error instead of
// failing.
func (h *harness) dialWSErr() (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hWait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.url, "http"), nil)
	if err == nil {
		h.t.Cleanup(func() { c.CloseNow() })
	}
	return c, err
}

// One address may hold MaxConnsPerIP connections open; the next is closed
// at once and counted. Idle WebSockets on capped connections still wait
// in the poller without a goroutine.
func TestMaxConnsPerIP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxConnsPerIP: 3})
	var open []*websocket.Conn
	for range 3 {
		c, err := h.dialWSErr()
		if err != nil {
			t.Fatalf("connection within the cap: %v", err)
		}
		open = append(open, c)
	}
	if p := h.srv.poller(); p != nil {
		testutil.Eventually(t, hWait, func() bool { return h.srv.Stats().Parked.Load() == 3 }, "3 idle WebSockets parked in the poller")
	}
	if _, err := h.dialWSErr(); err == nil {
		t.Fatal("a 4th connection from one address was served")
	}
	if n := h.srv.Stats().Refused.Load(RefusedIPConns); n != 1 {
		t.Errorf("refused %s = %d, want 1", RefusedIPConns, n)
	}
	// Closing one frees its slot.
	open[0].CloseNow()
	testutil.Eventually(t, hWait, func() bool {
		c, err := h.dialWSErr()
		if err == nil {
			c.CloseNow()
		}
		return err == nil
	}, "a new connection once one closed")
}

// Trusted proxies carry many clients: their connections are not capped.
func TestMaxConnsPerIPExemptsTrustedProxies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxConnsPerIP: 1, TrustedProxies: []string{"127.0.0.1"}})
	for i := range 3 {
		if _, err := h.dialWSErr(); err != nil {
			t.Fatalf("connection %d from a trusted proxy: %v", i+1, err)
		}
	}
	if n := h.srv.Stats().Refused.Load(RefusedIPConns); n != 0 {
		t.Errorf("refused %s = %d, want 0", RefusedIPConns, n)
	}
}
