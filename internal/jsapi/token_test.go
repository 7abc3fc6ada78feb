//go:build !js

package jsapi

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/internal/testutil/chattest"
	"github.com/bayeux-go/bayeux/internal/testutil/tokentest"
	"github.com/bayeux-go/bayeux/server"
)

// startTokenServer runs a server with the chat's token login and returns
// its /cometd URL and the server.
func startTokenServer(t *testing.T) (string, *server.Server) {
	t.Helper()
	ch := tokentest.Chat(t)
	srv, hs := chattest.Serve(t, ch, server.Options{ConnectTimeout: 2 * time.Second})
	return hs.URL + "/cometd", srv
}

// TestConnectWithToken: connect({token}) logs in with the token, and the
// getToken bridge (what bayeux.js does: ask(n) -> token(n, ...)) gives
// the fresh tokens that keep the session past the first one's expiry.
func TestConnectWithToken(t *testing.T) {
	url, srv := startTokenServer(t)
	p := newPage(t, New())
	var asked atomic.Int32
	ask := Func(func(args ...any) {
		asked.Add(1)
		n := args[0].(int)
		// As bayeux.js answers, later, from the page's event loop.
		go p.must("token", float64(n), tokentest.Mint(t, "alice", 3*time.Second, time.Now()), nil)
	})
	first := tokentest.Mint(t, "alice", 3*time.Second, time.Now())
	p.must("connect", opts(map[string]any{"url": url, "token": first, "webSocket": false}), ask)
	id := p.must("clientId").(string)
	info, _, _ := srv.Engine().Session(context.Background(), id)
	if info.User != tokentest.Prefix+"alice" {
		t.Fatalf("session user %q", info.User)
	}
	testutil.Eventually(t, 3*wait, func() bool { return time.Now().After(info.Deadline.Add(time.Second)) }, "the first token's expiry")
	if got := p.must("clientId").(string); got != id {
		t.Fatalf("clientId %q after the first token's expiry, want the same session %q", got, id)
	}
	if asked.Load() == 0 {
		t.Error("getToken was never asked")
	}
	p.must("disconnect")

	// getToken's failure is the connection's error; a wrong getToken is
	// refused at once.
	fail := Func(func(args ...any) { go p.must("token", float64(args[0].(int)), nil, "no login on the site") })
	if _, err := p.call("connect", opts(map[string]any{"url": url, "webSocket": false}), fail); err == nil || !strings.Contains(err.Error(), "no login on the site") {
		t.Errorf("connect with a failing getToken: %v", err)
	}
	if _, err := p.call("connect", opts(map[string]any{"url": url}), "not a function"); err == nil || !strings.Contains(err.Error(), "getToken must be a function") {
		t.Errorf("connect with getToken a string: %v", err)
	}
	if _, err := p.call("connect", opts(map[string]any{"url": url, "user": "alice", "token": first})); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("connect with a user and a token: %v", err)
	}
	// A stale answer is dropped.
	p.must("token", float64(999), "x", nil)
}
