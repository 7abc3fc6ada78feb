package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// testServer is a Bayeux server wired with a Recorder as the app does.
type testServer struct {
	t   *testing.T
	srv *server.Server
	rec *Recorder
	hs  *httptest.Server
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	rec := NewRecorder(RecorderOptions{Interval: time.Hour}) // samples taken by the test
	srv, err := server.New(server.Options{
		Logger:         slog.New(slog.DiscardHandler),
		OnEvent:        rec.OnEvent,
		Authorize:      rec.Authorize(nil),
		PollTimeout:    2 * time.Second,
		ConnectTimeout: 10 * time.Second,
		// Requests from the test carry no browser cookie.
		TrustClientSession: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	rec.Attach(srv)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.BeginShutdown()
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		rec.Close()
	})
	return &testServer{t: t, srv: srv, rec: rec, hs: hs}
}

// bayeux posts msgs as one long-polling batch and returns the replies.
func (s *testServer) bayeux(msgs ...*protocol.Message) []*protocol.Message {
	s.t.Helper()
	body, _ := json.Marshal(msgs)
	resp, err := http.Post(s.hs.URL+"/cometd", "application/json", bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []*protocol.Message
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		s.t.Fatalf("decode: %v", err)
	}
	return out
}

// client handshakes, subscribes to channels and sends one quick connect.
func (s *testServer) client(channels ...string) string {
	s.t.Helper()
	hs := s.bayeux(&protocol.Message{Channel: protocol.MetaHandshake, Version: "1.0", SupportedConnectionTypes: []string{protocol.LongPolling}})
	if len(hs) != 1 || !hs[0].IsSuccessful() {
		s.t.Fatalf("handshake: %+v", hs)
	}
	id := hs[0].ClientID
	s.bayeux(&protocol.Message{Channel: protocol.MetaConnect, ClientID: id, ConnectionType: protocol.LongPolling, Advice: &protocol.Advice{Timeout: protocol.Ms(0)}})
	for _, ch := range channels {
		r := s.bayeux(&protocol.Message{Channel: protocol.MetaSubscribe, ClientID: id, Subscription: protocol.Subscription{Channels: []string{ch}}})
		if !r[0].IsSuccessful() {
			s.t.Fatalf("subscribe %s: %s", ch, r[0].Error)
		}
	}
	return id
}

func TestRecorderActivityAndSnapshot(t *testing.T) {
	s := newTestServer(t)
	before := time.Now()
	a := s.client("/chat/demo", "/news/*")
	b := s.client("/chat/demo")
	lc, err := s.srv.NewLocalClient("bot")
	if err != nil {
		t.Fatal(err)
	}
	if err := lc.Subscribe("/chat/demo", func(*protocol.Message, string) {}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a, b} {
		act, ok := s.rec.Activity(id)
		if !ok || act.Transport != protocol.LongPolling || act.LastSeen.Before(before) {
			t.Errorf("Activity(%s) = %+v, %v; want long-polling seen after the test started", id[:8], act, ok)
		}
	}
	if _, ok := s.rec.Activity(lc.ID()); ok {
		t.Error("a LocalClient has activity (it bypasses Authorize)")
	}

	snap, err := s.rec.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Sessions) != 3 {
		t.Fatalf("%d sessions, want 3", len(snap.Sessions))
	}
	if got := snap.ByTransport; got[protocol.LongPolling] != 2 || got[TransportLocal] != 1 || len(got) != 2 {
		t.Errorf("ByTransport = %v", got)
	}
	if snap.Subscribed != 2 {
		t.Errorf("Subscribed = %d, want 2 (/chat/demo, /news/*)", snap.Subscribed)
	}
	subs := map[string]int{}
	for _, c := range snap.Channels {
		subs[c.Name] = c.Subscribers
	}
	if subs["/chat/demo"] != 3 || subs["/news/*"] != 1 {
		t.Errorf("subscribers = %v", subs)
	}
	if snap.QueueKnown {
		for _, row := range snap.Sessions {
			if row.Queue < 0 {
				t.Errorf("queue of %s unknown although the engine tells", row.Info.ID[:8])
			}
		}
	} else if snap.Sessions[0].Queue != -1 {
		t.Errorf("Queue = %d without a QueueInspector, want -1", snap.Sessions[0].Queue)
	}

	// Filters: by user (none set here) and by channel, wildcards included.
	if got := len(snap.Filter("", "/news/today")); got != 1 {
		t.Errorf("Filter(channel /news/today) = %d sessions, want 1 (through /news/*)", got)
	}
	if got := len(snap.Filter("", "/chat/demo")); got != 3 {
		t.Errorf("Filter(channel /chat/demo) = %d sessions, want 3", got)
	}
	if got := len(snap.Filter("nobody", "")); got != 0 {
		t.Errorf("Filter(user nobody) = %d sessions", got)
	}

	// A disconnect forgets the session's activity.
	if ok, err := s.srv.Disconnect(context.Background(), a); !ok || err != nil {
		t.Fatalf("Disconnect: %v %v", ok, err)
	}
	if _, ok := s.rec.Activity(a); ok {
		t.Error("activity kept after the session ended")
	}
}

func TestRecorderChannelActivity(t *testing.T) {
	s := newTestServer(t)
	s.client("/a")
	for range 3 {
		if _, err := s.srv.Publish(context.Background(), "/a", map[string]int{"n": 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.srv.Publish(context.Background(), "/nobody/listens", "x"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	act, ok := s.rec.Channel("/a", now)
	if !ok || act.Total != 3 || act.Rate <= 0 || now.Sub(act.Last) > time.Minute {
		t.Fatalf("Channel(/a) = %+v, %v", act, ok)
	}
	snap, err := s.rec.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, c := range snap.Channels {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"/a", "/nobody/listens"}) {
		t.Errorf("channels %q, want /a and the published-to /nobody/listens", names)
	}
	// The rate falls to zero once the window passed, and an idle channel
	// is pruned.
	if act, _ := s.rec.Channel("/a", now.Add(time.Minute)); act.Rate != 0 || act.Total != 3 {
		t.Errorf("a minute later: %+v", act)
	}
	s.rec.Prune(now.Add(2 * time.Hour))
	if _, ok := s.rec.Channel("/a", now); ok {
		t.Error("an idle channel was not pruned")
	}
}

func TestRecorderChannelLimit(t *testing.T) {
	rec := NewRecorder(RecorderOptions{MaxChannels: 2})
	for _, ch := range []string{"/a", "/b", "/c", "/a"} {
		rec.OnEvent(server.Event{Kind: server.EventPublish, Channel: ch})
	}
	got := rec.Channels(time.Now())
	if len(got) != 2 || got["/a"].Total != 2 || got["/b"].Total != 1 {
		t.Errorf("channels = %v, want /a (2) and /b (1) only", got)
	}
}

func TestRecorderSamplesAndRates(t *testing.T) {
	s := newTestServer(t)
	t0 := time.Now()
	s.rec.Sample(t0)
	base := s.rec.Samples()
	in := s.srv.Stats().MessagesIn.Load()
	// 20 messages in over the next 2 s: 10/s.
	s.srv.Stats().MessagesIn.Add(20)
	s.rec.Sample(t0.Add(2 * time.Second))
	got := s.rec.Samples()
	if len(got) != len(base)+1 {
		t.Fatalf("%d samples, want %d", len(got), len(base)+1)
	}
	last := got[len(got)-1]
	if last.MessagesIn != in+20 || last.InRate != 10 {
		t.Errorf("last sample: in %d rate %v, want %d and 10/s", last.MessagesIn, last.InRate, in+20)
	}
	if r := s.rec.RecentRates(2 * time.Second); r.In != 10 || r.Window != 2*time.Second {
		t.Errorf("RecentRates = %+v", r)
	}
	// The history keeps at most Keep samples.
	for i := range 400 {
		s.rec.Sample(t0.Add(time.Duration(3+i) * time.Second))
	}
	if n := len(s.rec.Samples()); n != s.rec.Options().Keep {
		t.Errorf("%d samples kept, want %d", n, s.rec.Options().Keep)
	}
}

func TestRecorderPrunesStaleActivity(t *testing.T) {
	rec := NewRecorder(RecorderOptions{StaleAfter: time.Minute})
	now := time.Now()
	rec.seen("old", protocol.LongPolling, now.Add(-2*time.Minute))
	rec.seen("new", protocol.WebSocket, now)
	rec.Prune(now)
	if _, ok := rec.Activity("old"); ok {
		t.Error("stale activity kept")
	}
	if a, ok := rec.Activity("new"); !ok || a.Transport != protocol.WebSocket {
		t.Errorf("Activity(new) = %+v, %v", a, ok)
	}
}

func TestMetrics(t *testing.T) {
	s := newTestServer(t)
	s.client("/chat/demo")
	var failed int64 = 7
	h := Metrics(MetricsOptions{Recorder: s.rec, FailedLogins: func() int64 { return failed }, Version: "v1.2.3", Engine: "memory"})
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rr.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rr.Code, rr.Body)
	}
	body := rr.Body.String()
	for _, name := range append(MetricNames, "go_goroutines", "go_memstats_heap_alloc_bytes", "process_start_time_seconds") {
		if !strings.Contains(body, "\n"+name) && !strings.HasPrefix(body, name) {
			t.Errorf("metric %s missing", name)
		}
	}
	for _, line := range []string{
		`bayeux_build_info{engine="memory",version="v1.2.3"} 1`,
		"bayeux_sessions 1",
		"bayeux_channels 1",
		`bayeux_sessions_by_transport{transport="long-polling"} 1`,
		`bayeux_sessions_by_transport{transport="websocket"} 0`,
		"bayeux_failed_logins_total 7",
		"bayeux_handshakes_total 1",
	} {
		if !strings.Contains(body, "\n"+line+"\n") {
			t.Errorf("missing line %q", line)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}

func TestReady(t *testing.T) {
	s := newTestServer(t)
	h := &Ready{Server: s.srv}
	get := func() (int, string) {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		b, _ := io.ReadAll(rr.Body)
		return rr.Code, string(b)
	}
	if code, body := get(); code != http.StatusOK || body != "ready\n" {
		t.Errorf("before shutdown: %d %q", code, body)
	}
	h.BeginShutdown()
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Errorf("during shutdown: %d %q", code, body)
	}
}

type failingEngine struct{ server.Engine }

func (failingEngine) Session(context.Context, string) (*server.SessionInfo, bool, error) {
	return nil, false, io.ErrUnexpectedEOF
}

func TestReadyEngineDown(t *testing.T) {
	srv, err := server.New(server.Options{Engine: failingEngine{server.NewMemoryEngine(server.MemoryEngineOptions{})}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	rr := httptest.NewRecorder()
	(&Ready{Server: srv}).ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rr.Code != http.StatusServiceUnavailable || strings.Contains(rr.Body.String(), "EOF") {
		t.Errorf("engine down: %d %q (want 503 without the engine's error)", rr.Code, rr.Body)
	}
}

func TestEngineName(t *testing.T) {
	for in, want := range map[string]string{
		"":                                "memory",
		"memory":                          "memory",
		"redis://localhost:6379/0":        "redis://localhost:6379/0",
		"redis://user:secret@host:6379/1": "redis://host:6379/1",
	} {
		if got := EngineName(in); got != want {
			t.Errorf("EngineName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBuildVersion(t *testing.T) {
	if got := BuildVersion("v9.9.9"); got != "v9.9.9" {
		t.Errorf("override: %q", got)
	}
	if got := BuildVersion(""); got == "" {
		t.Error("empty version")
	}
}

func TestRecorderConcurrent(t *testing.T) {
	s := newTestServer(t)
	ids := []string{s.client("/x"), s.client("/y")}
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				s.rec.OnEvent(server.Event{Kind: server.EventPublish, Channel: []string{"/x", "/y", "/z"}[i%3]})
				s.rec.seen(ids[(g+i)%2], protocol.WebSocket, time.Now())
				if i%50 == 0 {
					if _, err := s.rec.Snapshot(context.Background()); err != nil {
						t.Error(err)
					}
					s.rec.Sample(time.Now())
					s.rec.Prune(time.Now())
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	if got := s.rec.Channels(time.Now())["/x"].Total; got != 4*67 {
		t.Errorf("/x total %d, want %d", got, 4*67)
	}
}

// queueEngine is an engine that tells queue lengths (as the proposed
// MemoryEngine.QueueLen would).
type queueEngine struct{ *server.MemoryEngine }

func (queueEngine) QueueLen(_ context.Context, id string) (int, error) { return len(id), nil }

func TestSnapshotQueueLengths(t *testing.T) {
	srv, err := server.New(server.Options{Engine: queueEngine{server.NewMemoryEngine(server.MemoryEngineOptions{})}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	rec := NewRecorder(RecorderOptions{})
	rec.Attach(srv)
	defer rec.Close()
	lc, err := srv.NewLocalClient("q")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := rec.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !snap.QueueKnown || len(snap.Sessions) != 1 || snap.Sessions[0].Queue != len(lc.ID()) {
		t.Errorf("QueueKnown %v, sessions %+v", snap.QueueKnown, snap.Sessions)
	}
}
