package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"

	"github.com/bayeux-go/bayeux/protocol"
)

// Timings used by the integration tests. They are short so that the suite
// runs quickly; tests that need other values set them in Options. A
// session lives hConnectTimeout after its last connect: long enough for
// a test's steps between two connects on a loaded CI machine (3 s was
// not: TestExtensionChanges lost its session between subscribe and
// publish); tests of expiry set their own.
const (
	hPollTimeout    = 2 * time.Second
	hConnectTimeout = 10 * time.Second
	hSweep          = 50 * time.Millisecond
	// hWait bounds every wait for something that should happen promptly.
	hWait = 5 * time.Second
)

// harness is a Server behind an httptest.Server at /cometd, with a record
// of every lifecycle event.
type harness struct {
	t      *testing.T
	srv    *Server
	hs     *httptest.Server
	url    string
	events *eventLog
}

// newHarness starts a server with opts; zero timing fields get the short
// test defaults and the engine sweeps every 50 ms. setup may change the
// http.Server (timeouts) before it starts.
func newHarness(t *testing.T, opts Options, setup ...func(*http.Server)) *harness {
	t.Helper()
	if opts.PollTimeout == 0 {
		opts.PollTimeout = hPollTimeout
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = hConnectTimeout
	}
	if opts.ParkAfter == 0 {
		opts.ParkAfter = 10 * time.Millisecond
	}
	if opts.Engine == nil {
		opts.Engine = NewMemoryEngine(MemoryEngineOptions{SweepInterval: hSweep, Budgets: opts.budgets(), History: opts.HistoryStore})
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	log := &eventLog{}
	userHook := opts.OnEvent
	opts.OnEvent = func(ev Event) {
		log.add(ev)
		if userHook != nil {
			userHook(ev)
		}
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// Served as Serve does, so that connects held longer than ParkAfter
	// (10ms unless set) are parked: most tests exercise both ways; and
	// connections are capped per IP when MaxConnsPerIP is set.
	hs := httptest.NewUnstartedServer(srv.Handler("/cometd"))
	hs.Listener = parkOn(hs.Config, srv.limitConns(hs.Listener))
	for _, f := range setup {
		f(hs.Config)
	}
	hs.Start()
	h := &harness{t: t, srv: srv, hs: hs, url: hs.URL + "/cometd", events: log}
	t.Cleanup(func() {
		// Release held connects first so that hs.Close does not wait for
		// them to time out.
		srv.BeginShutdown()
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), hWait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return h
}

func (h *harness) sessionCount() int {
	h.t.Helper()
	n, err := h.srv.Engine().(SessionLister).SessionCount(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// waitHeld waits until at least n connects are held by the server.
func (h *harness) waitHeld(n int64) {
	h.t.Helper()
	testutil.Eventually(h.t, hWait, func() bool { return h.srv.Stats().HeldConnects.Load() >= n },
		fmt.Sprintf("%d held connects", n))
}

// eventLog records the server's lifecycle events.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.evs...)
}

func (l *eventLog) find(pred func(Event) bool) (Event, bool) {
	for _, ev := range l.all() {
		if pred(ev) {
			return ev, true
		}
	}
	return Event{}, false
}

// wait waits for an event matching pred.
func (l *eventLog) wait(t *testing.T, what string, pred func(Event) bool) Event {
	t.Helper()
	var found Event
	testutil.Eventually(t, hWait, func() bool {
		ev, ok := l.find(pred)
		found = ev
		return ok
	}, what)
	return found
}

// rawClient speaks Bayeux over HTTP by hand. It keeps cookies in a jar, so
// it behaves like one browser; sibling clients share the jar.
type rawClient struct {
	h   *harness
	t   *testing.T
	hc  *http.Client
	url string
	id  string // clientId after handshake
}

var msgSeq atomic.Int64

func nextMsgID() protocol.ID { return protocol.ID(strconv.FormatInt(msgSeq.Add(1), 10)) }

// client returns a client with its own cookie jar (a new browser).
func (h *harness) client() *rawClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return &rawClient{h: h, t: h.t, hc: &http.Client{Jar: jar, Transport: h.hs.Client().Transport, Timeout: 30 * time.Second}, url: h.url}
}

// noCookies returns a client that never sends or keeps cookies.
func (h *harness) noCookies() *rawClient {
	return &rawClient{h: h, t: h.t, hc: &http.Client{Transport: h.hs.Client().Transport, Timeout: 30 * time.Second}, url: h.url}
}

// sibling returns a new client in the same browser (same cookie jar).
func (c *rawClient) sibling() *rawClient {
	return &rawClient{h: c.h, t: c.t, hc: c.hc, url: c.url}
}

// result is one HTTP exchange.
type result struct {
	status  int
	header  http.Header
	body    []byte
	req     []*protocol.Message
	msgs    []*protocol.Message
	err     error
	elapsed time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("HTTP %d after %v: %s (err %v)", r.status, r.elapsed.Round(time.Millisecond), r.body, r.err)
}

// send posts msgs as a JSON array. Empty ids are filled in. It is safe to
// call from any goroutine: it reports nothing to t.
func (c *rawClient) send(msgs ...*protocol.Message) result {
	return c.sendH(nil, msgs...)
}

// sendH is send with extra request headers.
func (c *rawClient) sendH(hdr http.Header, msgs ...*protocol.Message) result {
	for _, m := range msgs {
		if m.ID == "" {
			m.ID = nextMsgID()
		}
	}
	body, err := json.Marshal(msgs)
	if err != nil {
		return result{err: err}
	}
	r := c.do(http.MethodPost, c.url, "application/json", body, hdr)
	r.req = msgs
	return r
}

// do performs one request and decodes a JSON array response.
func (c *rawClient) do(method, url, ctype string, body []byte, hdr http.Header) result {
	start := time.Now()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return result{err: err}
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return result{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	r := result{status: resp.StatusCode, header: resp.Header}
	r.body, r.err = io.ReadAll(resp.Body)
	r.elapsed = time.Since(start)
	if r.err == nil && resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(r.body, &r.msgs); err != nil {
			r.err = fmt.Errorf("response is not a JSON array of messages: %v", err)
		}
	}
	return r
}

// async sends msgs on another goroutine.
func (c *rawClient) async(msgs ...*protocol.Message) <-chan result {
	ch := make(chan result, 1)
	go func() { ch <- c.send(msgs...) }()
	return ch
}

// wait receives an async result within d, checking the response invariants.
func (c *rawClient) wait(ch <-chan result, d time.Duration) result {
	c.t.Helper()
	select {
	case r := <-ch:
		c.checkOK(r)
		return r
	case <-time.After(d):
		c.t.Fatalf("no response within %v", d)
		return result{}
	}
}

// pending asserts that no response arrives on ch within d.
func (c *rawClient) pending(ch <-chan result, d time.Duration, what string) {
	c.t.Helper()
	select {
	case r := <-ch:
		c.t.Fatalf("%s: expected the request to be held, but it returned: %v", what, r)
	case <-time.After(d):
	}
}

// checkOK fails the test unless r is an HTTP 200 Bayeux response, and
// checks the invariants every response must satisfy.
func (c *rawClient) checkOK(r result) []*protocol.Message {
	c.t.Helper()
	if r.err != nil {
		c.t.Fatalf("request failed: %v", r)
	}
	if r.status != http.StatusOK {
		c.t.Fatalf("want HTTP 200, got %v", r)
	}
	checkInvariants(c.t, r.req, r.msgs, r.body)
	return r.msgs
}

// must sends msgs and returns the response messages (HTTP 200 required).
func (c *rawClient) must(msgs ...*protocol.Message) []*protocol.Message {
	c.t.Helper()
	return c.checkOK(c.send(msgs...))
}

// checkInvariants checks what must hold for every Bayeux response:
//   - a successful reply never advises reconnect:"handshake";
//   - a delivery (no successful field) has data and no clientId or id;
//   - clientId appears only in a successful handshake reply;
//   - an unsuccessful reply has an error (a service's failed result, with
//     data, need not);
//   - every request message with an id gets exactly one reply with that
//     id and channel (successful set, no data; a service's result, which
//     has data, is not a reply);
//   - a /meta/connect reply comes after every delivery.
func checkInvariants(t *testing.T, req, resp []*protocol.Message, body []byte) {
	t.Helper()
	if len(resp) == 0 {
		t.Errorf("empty response %s", body)
	}
	connectAt := -1
	for i, m := range resp {
		if m == nil {
			t.Errorf("null message in response %s", body)
			continue
		}
		if m.IsSuccessful() && m.Advice != nil && m.Advice.Reconnect == protocol.ReconnectHandshake {
			t.Errorf("successful reply advises reconnect:handshake: %s", body)
		}
		if m.Successful == nil {
			if m.ClientID != "" || m.ID != "" {
				t.Errorf("delivery carries clientId/id: %s", body)
			}
			if m.Data == nil {
				t.Errorf("delivery without data: %s", body)
			}
			if connectAt >= 0 {
				t.Errorf("delivery after the /meta/connect reply: %s", body)
			}
		}
		if m.ClientID != "" && (m.Channel != protocol.MetaHandshake || !m.IsSuccessful()) {
			t.Errorf("clientId outside a successful handshake reply: %s", body)
		}
		if m.Successful != nil && !*m.Successful && m.Error == "" && m.Data == nil {
			t.Errorf("unsuccessful reply without error: %s", body)
		}
		if m.Error != "" {
			if _, err := protocol.ParseError(m.Error); err != nil {
				t.Errorf("malformed error %q in %s", m.Error, body)
			}
		}
		if m.Channel == protocol.MetaConnect && m.Successful != nil {
			connectAt = i
		}
	}
	for _, q := range req {
		if q.ID == "" || !q.ID.Valid() {
			continue
		}
		n := 0
		for _, m := range resp {
			if m != nil && m.ID == q.ID && m.Channel == q.Channel && m.Successful != nil && m.Data == nil {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d replies for request %s id %s in %s", n, q.Channel, q.ID, body)
		}
	}
}

// Message builders.

func handshakeMsg() *protocol.Message {
	return &protocol.Message{Channel: protocol.MetaHandshake, Version: "1.0", MinimumVersion: "1.0",
		SupportedConnectionTypes: []string{protocol.LongPolling, protocol.CallbackPolling}}
}

func connectMsg(id string, advice *protocol.Advice) *protocol.Message {
	return &protocol.Message{Channel: protocol.MetaConnect, ClientID: id, ConnectionType: protocol.LongPolling, Advice: advice}
}

func subscribeMsg(id string, subs ...string) *protocol.Message {
	return &protocol.Message{Channel: protocol.MetaSubscribe, ClientID: id, Subscription: protocol.Subscription{Channels: subs}}
}

func unsubscribeMsg(id string, subs ...string) *protocol.Message {
	return &protocol.Message{Channel: protocol.MetaUnsubscribe, ClientID: id, Subscription: protocol.Subscription{Channels: subs}}
}

func publishMsg(id, channel string, data any) *protocol.Message {
	var raw json.RawMessage
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			panic(err)
		}
		raw = b
	}
	return &protocol.Message{Channel: channel, ClientID: id, Data: raw}
}

func disconnectMsg(id string) *protocol.Message {
	return &protocol.Message{Channel: protocol.MetaDisconnect, ClientID: id}
}

// Client steps. Each checks that the step succeeded.

// handshake performs a successful handshake and remembers the clientId.
func (c *rawClient) handshake() *protocol.Message {
	c.t.Helper()
	msgs := c.must(handshakeMsg())
	r := only(c.t, msgs, protocol.MetaHandshake)
	if !r.IsSuccessful() || r.ClientID == "" {
		c.t.Fatalf("handshake failed: %+v", r)
	}
	c.id = r.ClientID
	return r
}

// connectNow sends a connect with advice timeout 0 (returns at once) and
// returns every message of the response.
func (c *rawClient) connectNow() []*protocol.Message {
	c.t.Helper()
	msgs := c.must(connectMsg(c.id, &protocol.Advice{Timeout: protocol.Ms(0)}))
	if r := replyTo(c.t, msgs, protocol.MetaConnect); !r.IsSuccessful() {
		c.t.Fatalf("connect failed: %+v", r)
	}
	return msgs
}

// start handshakes and sends the first (immediate) connect.
func (c *rawClient) start() *rawClient {
	c.t.Helper()
	c.handshake()
	c.connectNow()
	return c
}

// connectAsync sends a long-poll connect without advice.
func (c *rawClient) connectAsync() <-chan result {
	return c.async(connectMsg(c.id, nil))
}

func (c *rawClient) subscribe(subs ...string) {
	c.t.Helper()
	r := replyTo(c.t, c.must(subscribeMsg(c.id, subs...)), protocol.MetaSubscribe)
	if !r.IsSuccessful() {
		c.t.Fatalf("subscribe %q failed: %+v", subs, r)
	}
}

func (c *rawClient) unsubscribe(subs ...string) {
	c.t.Helper()
	r := replyTo(c.t, c.must(unsubscribeMsg(c.id, subs...)), protocol.MetaUnsubscribe)
	if !r.IsSuccessful() {
		c.t.Fatalf("unsubscribe %q failed: %+v", subs, r)
	}
}

// publish publishes and requires success.
func (c *rawClient) publish(channel string, data any) {
	c.t.Helper()
	r := replyTo(c.t, c.must(publishMsg(c.id, channel, data)), channel)
	if !r.IsSuccessful() {
		c.t.Fatalf("publish to %s failed: %+v", channel, r)
	}
}

// Response inspection.

// replyTo returns the reply (a message with successful set) on channel.
func replyTo(t *testing.T, msgs []*protocol.Message, channel string) *protocol.Message {
	t.Helper()
	for _, m := range msgs {
		if m.Channel == channel && m.Successful != nil {
			return m
		}
	}
	t.Fatalf("no reply on %s in %s", channel, dump(msgs))
	return nil
}

// only requires msgs to be exactly one message on channel.
func only(t *testing.T, msgs []*protocol.Message, channel string) *protocol.Message {
	t.Helper()
	if len(msgs) != 1 || msgs[0].Channel != channel {
		t.Fatalf("want exactly one %s message, got %s", channel, dump(msgs))
	}
	return msgs[0]
}

// deliveries returns the messages without a successful field.
func deliveries(msgs []*protocol.Message) []*protocol.Message {
	var out []*protocol.Message
	for _, m := range msgs {
		if m.Successful == nil {
			out = append(out, m)
		}
	}
	return out
}

// dataOf decodes the data of the deliveries on channel.
func dataOf(t *testing.T, msgs []*protocol.Message, channel string) []any {
	t.Helper()
	var out []any
	for _, m := range deliveries(msgs) {
		if m.Channel != channel {
			continue
		}
		var v any
		if err := json.Unmarshal(m.Data, &v); err != nil {
			t.Fatalf("bad data %s", m.Data)
		}
		out = append(out, v)
	}
	return out
}

func dump(msgs []*protocol.Message) string {
	b, _ := json.Marshal(msgs)
	return string(b)
}

// wantError requires m to be an unsuccessful reply with the given error
// (compared as a string).
func wantError(t *testing.T, m *protocol.Message, err string) {
	t.Helper()
	if m.Successful == nil || *m.Successful {
		t.Errorf("%s: want successful:false, got %s", m.Channel, dump([]*protocol.Message{m}))
		return
	}
	if m.Error != err {
		t.Errorf("%s: error = %q, want %q", m.Channel, m.Error, err)
	}
}

// wantHandshakeAdvice requires the advice to be {reconnect:"handshake",interval:0}.
func wantHandshakeAdvice(t *testing.T, m *protocol.Message) {
	t.Helper()
	a := m.Advice
	if a == nil || a.Reconnect != protocol.ReconnectHandshake || a.Interval == nil || *a.Interval != 0 {
		t.Errorf("%s: want advice {reconnect:handshake, interval:0}, got %s", m.Channel, dump([]*protocol.Message{m}))
	}
}
