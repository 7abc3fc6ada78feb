//go:build !js

package wasmclient

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// Timings of the integration tests: short, so that the suite is quick.
const (
	tPollTimeout    = 2 * time.Second
	tConnectTimeout = 2 * time.Second
	// tWait bounds every wait for something that should happen promptly.
	tWait = 5 * time.Second
)

var quiet = slog.New(slog.DiscardHandler)

// testServer is a real Bayeux server behind an httptest.Server, with a
// record of its lifecycle events.
type testServer struct {
	t      *testing.T
	srv    *server.Server
	hs     *httptest.Server
	url    string
	events *eventLog
}

// newTestServer starts a server with opts (zero timings and engine get
// the test defaults) on l, or on a new local port when l is nil.
func newTestServer(t *testing.T, opts server.Options, l net.Listener) *testServer {
	t.Helper()
	if opts.PollTimeout == 0 {
		opts.PollTimeout = tPollTimeout
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = tConnectTimeout
	}
	if opts.Engine == nil {
		opts.Engine = server.NewMemoryEngine(server.MemoryEngineOptions{SweepInterval: 50 * time.Millisecond})
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	log := &eventLog{}
	user := opts.OnEvent
	opts.OnEvent = func(ev server.Event) {
		log.add(ev)
		if user != nil {
			user(ev)
		}
	}
	srv, err := server.New(opts)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	hs := httptest.NewUnstartedServer(srv.Site(server.SiteOptions{}))
	if l != nil {
		hs.Listener.Close()
		hs.Listener = l
	}
	hs.Start()
	ts := &testServer{t: t, srv: srv, hs: hs, url: hs.URL + "/cometd", events: log}
	t.Cleanup(ts.stop)
	return ts
}

// stop shuts the server down the way the application does: release held
// connects, stop HTTP, then close the engine. It may be called twice.
func (ts *testServer) stop() {
	ts.srv.BeginShutdown()
	ts.hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), tWait)
	defer cancel()
	_ = ts.srv.Shutdown(ctx)
}

func (ts *testServer) sessionCount() int {
	n, err := ts.srv.Engine().(server.SessionLister).SessionCount(context.Background())
	if err != nil {
		ts.t.Fatal(err)
	}
	return n
}

// count returns how many events of kind on channel (any channel if "")
// were seen.
func (ts *testServer) count(kind server.EventKind, channel string) int {
	n := 0
	for _, ev := range ts.events.all() {
		if ev.Kind == kind && (channel == "" || ev.Channel == channel) {
			n++
		}
	}
	return n
}

type eventLog struct {
	mu  sync.Mutex
	evs []server.Event
}

func (l *eventLog) add(ev server.Event) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) all() []server.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]server.Event(nil), l.evs...)
}

// newTestClient returns a client of url that is disconnected at the end
// of the test. Zero options get quick test values.
func newTestClient(t *testing.T, url string, opts Options) *Client {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	if opts.BackoffIncrement == 0 {
		opts.BackoffIncrement = 100 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = time.Second
	}
	if opts.MaxNetworkDelay == 0 {
		opts.MaxNetworkDelay = 3 * time.Second
	}
	c := New(url, opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), tWait)
		defer cancel()
		_ = c.Disconnect(ctx)
	})
	return c
}

// connected returns a connected client of url.
func connected(t *testing.T, url string, opts Options) *Client {
	t.Helper()
	c := newTestClient(t, url, opts)
	ctx, cancel := context.WithTimeout(context.Background(), tWait)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), tWait)
	t.Cleanup(cancel)
	return ctx
}

// inbox collects the messages a listener receives.
type inbox struct {
	ch chan *protocol.Message
}

func newInbox() *inbox { return &inbox{ch: make(chan *protocol.Message, 1000)} }

func (in *inbox) fn(m *protocol.Message) { in.ch <- m }

func (in *inbox) next(t *testing.T, d time.Duration) *protocol.Message {
	t.Helper()
	select {
	case m := <-in.ch:
		return m
	case <-time.After(d):
		t.Fatalf("no message within %v", d)
		return nil
	}
}

func (in *inbox) empty(t *testing.T) {
	t.Helper()
	select {
	case m := <-in.ch:
		t.Fatalf("unexpected message on %s: %s", m.Channel, m.Data)
	default:
	}
}

// recorder is a Transport wrapper that records every request and tracks
// how many are in flight.
type recorder struct {
	next Transport
	// before, if set, runs before a request is forwarded; it may block.
	before func(ctx context.Context, msgs []*protocol.Message) error

	mu       sync.Mutex
	requests [][]*protocol.Message
	bodies   []string

	inFlight, maxInFlight atomic.Int32
}

func newRecorder() *recorder { return &recorder{next: NewHTTPTransport()} }

func (r *recorder) Send(ctx context.Context, url string, body []byte) ([]byte, error) {
	n := r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	for {
		m := r.maxInFlight.Load()
		if n <= m || r.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	msgs, err := protocol.DecodeBatch(body)
	if err != nil {
		return nil, fmt.Errorf("client sent invalid JSON: %v", err)
	}
	if r.before != nil {
		if err := r.before(ctx, msgs); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	r.requests = append(r.requests, msgs)
	r.mu.Unlock()
	resp, err := r.next.Send(ctx, url, body)
	r.mu.Lock()
	r.bodies = append(r.bodies, string(resp))
	r.mu.Unlock()
	return resp, err
}

// withChannel returns the recorded requests that carry a message on channel.
func (r *recorder) withChannel(channel string) [][]*protocol.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]*protocol.Message
	for _, req := range r.requests {
		for _, m := range req {
			if m.Channel == channel {
				out = append(out, req)
				break
			}
		}
	}
	return out
}

func (r *recorder) responsesContaining(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, b := range r.bodies {
		if strings.Contains(b, s) {
			n++
		}
	}
	return n
}

// jsonEqual reports whether two JSON texts encode the same value.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("bad JSON %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("bad JSON %s: %v", b, err)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}
