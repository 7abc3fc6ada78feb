//go:build !js

package jsapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

const wait = 5 * time.Second

// startServer runs a Bayeux server whose handshake accepts anonymous
// clients and alice with the password "alice-pw", and returns its
// /cometd URL.
func startServer(t *testing.T) string {
	t.Helper()
	srv, err := server.New(server.Options{
		Logger:         slog.New(slog.DiscardHandler),
		PollTimeout:    2 * time.Second,
		ConnectTimeout: 2 * time.Second,
		Authorize: func(_ context.Context, c *server.Client, m *protocol.Message) error {
			raw, ok := m.Ext["auth"]
			if m.Channel != protocol.MetaHandshake || !ok {
				return nil
			}
			var cred struct{ User, Password string }
			if json.Unmarshal(raw, &cred) != nil || cred.User != "alice" || cred.Password != "alice-pw" {
				return &protocol.Error{Code: 403, Message: "invalid_credentials"}
			}
			c.SetUser(cred.User)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Site(server.SiteOptions{}))
	t.Cleanup(func() {
		srv.BeginShutdown()
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return hs.URL + "/cometd"
}

// page is a test's stand-in for the JavaScript page: it calls the
// methods by name, as the glue does.
type page struct {
	t       *testing.T
	methods map[string]Method
}

func newPage(t *testing.T, a *API) *page {
	p := &page{t: t, methods: map[string]Method{}}
	for _, m := range a.Methods() {
		p.methods[m.Name] = m
	}
	return p
}

func (p *page) call(name string, args ...any) (any, error) {
	p.t.Helper()
	m, ok := p.methods[name]
	if !ok {
		p.t.Fatalf("no method %s", name)
	}
	return m.Fn(args)
}

func (p *page) must(name string, args ...any) any {
	p.t.Helper()
	v, err := p.call(name, args...)
	if err != nil {
		p.t.Fatalf("%s: %v", name, err)
	}
	return v
}

// recorder collects what a Func is called with.
type recorder struct {
	mu   sync.Mutex
	args [][]any
}

func (r *recorder) fn() Func {
	return func(args ...any) {
		r.mu.Lock()
		r.args = append(r.args, args)
		r.mu.Unlock()
	}
}

func (r *recorder) all() [][]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.args)
}

func (r *recorder) states() []string {
	var s []string
	for _, a := range r.all() {
		s = append(s, a[0].(State).State)
	}
	return s
}

func (r *recorder) data() []string {
	var s []string
	for _, a := range r.all() {
		d := a[0].(Delivery)
		s = append(s, d.Channel+" "+string(d.Data))
	}
	return s
}

func opts(v map[string]any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// TestPageSession: what a page does in the documented order works, from
// connect to disconnect: states are heard, messages arrive on the
// subscriptions with their channel, a service call returns its reply, an
// unsubscribed callback gets nothing more, and after disconnect the API
// refuses work until it connects again.
func TestPageSession(t *testing.T) {
	url := startServer(t)
	p := newPage(t, New())
	var states recorder
	remove := p.must("onState", states.fn()).(Remover)
	defer remove()

	if id := p.must("clientId"); id != "" {
		t.Errorf("clientId before connect = %q", id)
	}
	p.must("connect", opts(map[string]any{"url": url, "user": "alice", "password": "alice-pw", "webSocket": false}))
	if id, _ := p.must("clientId").(string); id == "" {
		t.Error("no clientId after connect")
	}
	testutil.Eventually(t, wait, func() bool { return slices.Contains(states.states(), "connected") }, "state connected")

	var x, y recorder
	idX := p.must("subscribe", "/chat/x", x.fn())
	p.must("subscribe", "/chat/y", y.fn())
	p.must("publish", "/chat/x", json.RawMessage(`{"chat":"one"}`))
	testutil.Eventually(t, wait, func() bool { return len(x.all()) == 1 }, "the message on /chat/x")
	if got := x.data(); got[0] != `/chat/x {"chat":"one"}` {
		t.Errorf("delivery %q", got[0])
	}

	reply := p.must("call", "echo", json.RawMessage(`{"n":[1,2]}`))
	if r, ok := reply.(json.RawMessage); !ok || string(r) != `{"n":[1,2]}` {
		t.Errorf("call echo = %v (%T)", reply, reply)
	}

	id, ok := idX.(int)
	if !ok {
		t.Fatalf("subscribe returned %T, want an int id", idX)
	}
	p.must("unsubscribe", float64(id)) // JavaScript numbers are float64
	p.must("unsubscribe", float64(id)) // twice does nothing
	p.must("publish", "/chat/x", "two")
	p.must("publish", "/chat/y", "three")
	// One session's messages arrive in order: once y has its message,
	// x would have had its own.
	testutil.Eventually(t, wait, func() bool { return len(y.all()) == 1 }, "the message on /chat/y")
	if n := len(x.all()); n != 1 {
		t.Errorf("/chat/x got %d messages after unsubscribe, want still 1: %q", n, x.data())
	}

	p.must("disconnect")
	testutil.Eventually(t, wait, func() bool {
		s := states.states()
		return len(s) > 0 && s[len(s)-1] == "disconnected"
	}, "state disconnected")
	if _, err := p.call("publish", "/chat/x", nil); !errors.Is(err, ErrNotConnected) {
		t.Errorf("publish after disconnect: %v", err)
	}
	p.must("disconnect") // twice does nothing

	// The same API connects again; its listeners hear the new client.
	p.must("connect", opts(map[string]any{"url": url, "webSocket": true}))
	p.must("disconnect")
}

// TestConnectFailures: every way connect can fail rejects with words a
// page developer understands, and leaves the API ready to connect again.
func TestConnectFailures(t *testing.T) {
	url := startServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/cometd"
	ln.Close()

	type testCase struct {
		name    string
		arg     any
		wantErr string
	}
	for _, tc := range []testCase{
		{name: "no argument", arg: nil, wantErr: "needs {url}"},
		{name: "a string", arg: url, wantErr: "takes an object"},
		{name: "bad option type", arg: opts(map[string]any{"url": url, "webSocket": "no"}), wantErr: "webSocket must be true or false"},
		{name: "wrong password", arg: opts(map[string]any{"url": url, "user": "alice", "password": "nope"}), wantErr: "invalid_credentials"},
		{name: "no server", arg: opts(map[string]any{"url": closed, "webSocket": false}), wantErr: "connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New()
			p := newPage(t, a)
			_, err := p.call("connect", tc.arg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("connect: %v, want an error with %q", err, tc.wantErr)
			}
			if a.current() != nil {
				t.Error("a failed connect left a client")
			}
			p.must("connect", opts(map[string]any{"url": url}))
			p.must("disconnect")
		})
	}
}

// TestConnectTwice: a second connect while connected is refused and does
// not disturb the first client.
func TestConnectTwice(t *testing.T) {
	url := startServer(t)
	p := newPage(t, New())
	p.must("connect", opts(map[string]any{"url": url, "webSocket": false}))
	defer p.must("disconnect")
	id := p.must("clientId")
	if _, err := p.call("connect", opts(map[string]any{"url": url})); !errors.Is(err, ErrAlreadyConnected) {
		t.Fatalf("second connect: %v", err)
	}
	if got := p.must("clientId"); got != id {
		t.Errorf("clientId changed from %v to %v", id, got)
	}
}

// TestArgumentErrors: wrong arguments are refused with a message naming
// what is expected, before anything is sent.
func TestArgumentErrors(t *testing.T) {
	fn := Func(func(...any) {})
	type testCase struct {
		method  string
		args    []any
		wantErr string
	}
	for _, tc := range []testCase{
		{"subscribe", []any{42.0, fn}, "channel name"},
		{"subscribe", []any{"/chat/x"}, "callback"},
		{"subscribe", []any{"/chat/x", "not a function"}, "callback"},
		{"subscribe", []any{"/chat/x", fn}, "not connected"},
		{"unsubscribe", []any{"1"}, "the id that subscribe gave"},
		{"unsubscribe", []any{1.5}, "the id that subscribe gave"},
		{"unsubscribe", []any{1.0}, "not connected"},
		{"publish", []any{nil, json.RawMessage(`{}`)}, "channel name"},
		{"publish", []any{"/chat/x", fn}, "cannot be a function"},
		{"publish", []any{"/chat/x", nan()}, "cannot be encoded"},
		{"publish", []any{"/chat/x", "hi"}, "not connected"},
		{"call", []any{true}, "service name"},
		{"call", []any{"echo", nil}, "not connected"},
		{"onState", []any{}, "listener function"},
		{"onState", []any{json.RawMessage(`{}`)}, "listener function"},
	} {
		t.Run(tc.method+" "+tc.wantErr, func(t *testing.T) {
			_, err := newPage(t, New()).call(tc.method, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: %v, want an error with %q", tc.method, err, tc.wantErr)
			}
		})
	}
}

// TestRemoverStopsListener: a removed onState listener hears nothing more.
func TestRemoverStopsListener(t *testing.T) {
	url := startServer(t)
	p := newPage(t, New())
	var kept, removed recorder
	p.must("onState", kept.fn())
	p.must("onState", removed.fn()).(Remover)()
	p.must("connect", opts(map[string]any{"url": url, "webSocket": false}))
	p.must("disconnect")
	testutil.Eventually(t, wait, func() bool { return slices.Contains(kept.states(), "disconnected") }, "the kept listener hears disconnected")
	if s := removed.states(); len(s) != 0 {
		t.Errorf("the removed listener heard %q", s)
	}
}
