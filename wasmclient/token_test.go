//go:build !js

package wasmclient

import (
	"context"
	"encoding/base64"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/internal/testutil/tokentest"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// tokenServer is a server with the chat's token login.
type tokenServer struct{ *testServer }

func newTokenServer(t *testing.T) *tokenServer {
	t.Helper()
	ch := tokentest.Chat(t)
	ts := newTestServer(t, server.Options{Authorize: ch.Authorize, Authorizers: ch.Authorizers(), Services: ch.Services()}, nil)
	ch.Attach(ts.srv)
	return &tokenServer{ts}
}

// host is the host site's token endpoint: it mints a token of ttl for
// alice on each call, and counts the calls.
type host struct {
	t     *testing.T
	ttl   time.Duration
	calls atomic.Int32
	// bad makes the next calls return an expired token.
	bad atomic.Int32
	// down makes the calls fail.
	down atomic.Bool
}

func (h *host) token(ctx context.Context) (string, error) {
	h.calls.Add(1)
	if h.down.Load() {
		return "", errors.New("host unavailable")
	}
	now := time.Now()
	if h.bad.Load() > 0 {
		h.bad.Add(-1)
		now = now.Add(-time.Hour)
	}
	return tokentest.Mint(h.t, "alice", h.ttl, now), nil
}

func (ts *tokenServer) deadline(t *testing.T, id string) time.Time {
	t.Helper()
	info, ok, err := ts.srv.Engine().Session(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("session %s: %v %v", id, ok, err)
	}
	return info.Deadline
}

// TestTokenRefreshKeepsSession: the client presents fresh tokens before
// each expires, so its session outlives several tokens.
func TestTokenRefreshKeepsSession(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t)
	h := &host{t: t, ttl: 3 * time.Second}
	c := connected(t, ts.url, Options{Token: h.token})
	id := c.ClientID()
	first := ts.deadline(t, id)
	if u := ts.events.all()[0].User; u != tokentest.Prefix+"alice" {
		t.Errorf("session user %q", u)
	}
	// Past the first token's expiry and well into the second's.
	testutil.Eventually(t, 3*tWait, func() bool { return time.Now().After(first.Add(time.Second)) }, "the first token's expiry")
	testutil.Eventually(t, tWait, func() bool { return ts.deadline(t, id).After(first) }, "a refreshed deadline")
	if st := c.State(); st.State != Connected || st.ClientID != id {
		t.Fatalf("state %+v, want connected with the first session %s", st, id)
	}
	in := newInbox()
	if _, err := c.Subscribe(ctxT(t), "/x", in.fn); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctxT(t), "/x", 1); err != nil {
		t.Fatal(err)
	}
	in.next(t, tWait)
	if n := h.calls.Load(); n < 2 {
		t.Errorf("%d token calls, want at least 2", n)
	}
	if n := ts.srv.Stats().Refused.Load(server.RefusedDeadline); n != 0 {
		t.Errorf("%d sessions ended at their deadline", n)
	}
}

// TestTokenRefusedHandshakeAsksAgain: a refused handshake gets a token
// fetched at once; a second refusal stops the client.
func TestTokenRefusedHandshakeAsksAgain(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t)
	h := &host{t: t, ttl: time.Minute}
	h.bad.Store(1)
	connected(t, ts.url, Options{Token: h.token})
	if n := h.calls.Load(); n != 2 {
		t.Errorf("%d token calls, want 2 (an expired one, then a good one)", n)
	}

	h2 := &host{t: t, ttl: time.Minute}
	h2.bad.Store(10)
	c := newTestClient(t, ts.url, Options{Token: h2.token})
	err := c.Connect(ctxT(t))
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Message != "invalid_token" {
		t.Fatalf("Connect = %v, want 403::invalid_token", err)
	}
	if n := h2.calls.Load(); n != 2 {
		t.Errorf("%d token calls, want 2", n)
	}
}

// TestTokenSessionEndsWithoutRefresh: when the host cannot give a fresh
// token, the session ends at the token's expiry and the client keeps
// trying (it does not give up on a host that is down for a while).
func TestTokenSessionEndsWithoutRefresh(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t)
	h := &host{t: t, ttl: 2 * time.Second}
	c := connected(t, ts.url, Options{Token: h.token})
	h.down.Store(true)
	var mu sync.Mutex
	var errs []error
	c.OnState(func(s StateInfo) {
		mu.Lock()
		errs = append(errs, s.LastError)
		mu.Unlock()
	})
	testutil.Eventually(t, 3*tWait, func() bool { return ts.srv.Stats().Refused.Load(server.RefusedDeadline) == 1 }, "the session's end")
	testutil.Eventually(t, tWait, func() bool {
		st := c.State()
		return st.State == Reconnecting && st.LastError != nil
	}, "reconnecting without a token")
	mu.Lock()
	defer mu.Unlock()
	var expired bool
	for _, err := range errs {
		var pe *protocol.Error
		expired = expired || (errors.As(err, &pe) && pe.Message == "token_expired")
	}
	if !expired {
		t.Errorf("no state change reported 403::token_expired: %v", errs)
	}
}

func TestTokenLifetime(t *testing.T) {
	got := time.Unix(1000, 0)
	enc := base64.RawURLEncoding.EncodeToString
	type testCase struct {
		payload string
		life    time.Duration
		ok      bool
	}
	for _, tc := range []testCase{
		{`{"exp":1300,"iat":1000}`, 300 * time.Second, true},
		{`{"exp":1300,"iat":700}`, 600 * time.Second, true}, // the issuer's clock, not ours
		{`{"exp":1060}`, 60 * time.Second, true},
		{`{"exp":900}`, 0, true},
		{`{"sub":"x"}`, 0, false},
		{`not json`, 0, false},
	} {
		life, ok := tokenLifetime("h."+enc([]byte(tc.payload))+".s", got)
		if life != tc.life || ok != tc.ok {
			t.Errorf("%s: %v %v, want %v %v", tc.payload, life, ok, tc.life, tc.ok)
		}
	}
	if _, ok := tokenLifetime("opaque", got); ok {
		t.Error("an opaque token has a lifetime")
	}
}
